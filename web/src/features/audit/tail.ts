/**
 * The live tail's state: events received while following, newest first, held back while
 * paused, each shown once (an event can arrive live and again from a catch-up read).
 */
import type { AuditEvent } from "./model";

/** At most this many events stay on screen; older ones drop off the bottom. */
export const TAIL_LIMIT = 500;

export interface TailState {
  /** Shown, newest first. */
  shown: AuditEvent[];
  /** Received while paused, oldest first. */
  held: AuditEvent[];
  paused: boolean;
  /** Positions already taken in (shown, held or dropped). */
  seen: ReadonlySet<string>;
  /** The last position received: where a catch-up read starts after a reconnection. */
  last: string | null;
  /** Events newly shown since the last announcement. */
  unannounced: number;
}

export type TailAction =
  | { type: "receive"; events: AuditEvent[] }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "clear" }
  | { type: "restart" }
  | { type: "announced" };

export const emptyTail: TailState = { shown: [], held: [], paused: false, seen: new Set(), last: null, unannounced: 0 };

/** The next state of the tail. */
export function tailReducer(state: TailState, action: TailAction): TailState {
  switch (action.type) {
    case "receive": {
      const fresh = action.events.filter((e, i, all) => !state.seen.has(e.position) && all.findIndex((o) => o.position === e.position) === i);
      if (fresh.length === 0) return state;
      const seen = new Set(state.seen);
      for (const e of fresh) seen.add(e.position);
      const last = fresh[fresh.length - 1]!.position;
      if (state.paused) return { ...state, held: [...state.held, ...fresh], seen, last };
      return { ...state, shown: newestFirst(fresh, state.shown), seen, last, unannounced: state.unannounced + fresh.length };
    }
    case "pause":
      return { ...state, paused: true };
    case "resume":
      return {
        ...state,
        paused: false,
        held: [],
        shown: newestFirst(state.held, state.shown),
        unannounced: state.unannounced + state.held.length,
      };
    case "clear":
      return { ...state, shown: [], held: [], unannounced: 0 };
    case "restart":
      return { ...state, last: null };
    case "announced":
      return { ...state, unannounced: 0 };
  }
}

/** `older` (oldest first) put on top of `shown` (newest first), capped. */
function newestFirst(older: AuditEvent[], shown: AuditEvent[]): AuditEvent[] {
  return [...older].reverse().concat(shown).slice(0, TAIL_LIMIT);
}
