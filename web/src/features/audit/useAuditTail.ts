import { useEffect, useReducer, useRef, useState } from "preact/hooks";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { useLiveEvent, useLiveStatus } from "@/shared/live/hooks";
import { live } from "@/shared/live/live";
import { fetchEvents } from "./api";
import { countText, matchesFilters, type AuditEvent, type EventFilters } from "./model";
import { emptyTail, tailReducer, type TailState } from "./tail";

/** Pages read at most to fill a gap after a reconnection. */
const CATCH_UP_PAGES = 5;
const CATCH_UP_PAGE_SIZE = 200;
/** Announcements are grouped over this long, so a burst is one message. */
const ANNOUNCE_EVERY_MS = 1500;

export interface AuditTail {
  state: TailState;
  following: boolean;
  /** True once the server acknowledged the `audit` subscription. */
  subscribed: boolean;
  error: ProblemError | undefined;
  /** The polite live region's text ("3 new events"). */
  announcement: string;
  setFollowing: (on: boolean) => void;
  pause: () => void;
  resume: () => void;
  clear: () => void;
}

/**
 * The live audit tail: while following, subscribes to the `audit` topic (again after each
 * reconnection, reading what was missed meanwhile), unsubscribes when turned off or unmounted,
 * and keeps the `audit:event`s that match `filters`.
 */
export function useAuditTail(filters: EventFilters): AuditTail {
  const [state, dispatch] = useReducer(tailReducer, emptyTail);
  const [following, setFollowing] = useState(false);
  const [subscribed, setSubscribed] = useState(false);
  const [error, setError] = useState<ProblemError>();
  const [announcement, setAnnouncement] = useState("");
  const status = useLiveStatus();
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const lastRef = useRef<string | null>(null);
  lastRef.current = state.last;

  useLiveEvent("audit:event", (event: AuditEvent) => {
    if (following && matchesFilters(event, filtersRef.current)) dispatch({ type: "receive", events: [event] });
  });

  // A new filter is a new tail.
  useEffect(() => dispatch({ type: "clear" }), [filters.aggregate_type, filters.aggregate_id]);

  const connected = status === "connected";
  useEffect(() => {
    if (!following || !connected) return;
    let active = true;
    let joined = false;
    setError(undefined);
    void (async () => {
      try {
        await live.request("subscribe", { topic: "audit" });
        joined = true;
        if (!active) return void unsubscribe();
        setSubscribed(true);
        await catchUp(lastRef.current, filtersRef.current, (events) => active && dispatch({ type: "receive", events }));
      } catch (e) {
        if (!active) return;
        setError(toProblem(e));
        if (!joined) setFollowing(false);
      }
    })();
    return () => {
      active = false;
      setSubscribed(false);
      // A dropped connection has no subscription left; a live one is told to stop.
      if (joined && live.status === "connected") unsubscribe();
    };
  }, [following, connected]);

  // Group announcements: "3 new events" at most every ANNOUNCE_EVERY_MS.
  const unannouncedRef = useRef(0);
  unannouncedRef.current = state.unannounced;
  useEffect(() => {
    if (state.unannounced === 0) return;
    const timer = setTimeout(() => {
      say(countText(unannouncedRef.current));
      dispatch({ type: "announced" });
    }, ANNOUNCE_EVERY_MS);
    return () => clearTimeout(timer);
  }, [state.unannounced > 0]);

  /** Sets the live region's text; a repeated text gets a trailing space so it is read again. */
  function say(text: string) {
    setAnnouncement((old) => (old === text ? `${text}\u00a0` : text));
  }

  return {
    state,
    following,
    subscribed,
    error,
    announcement,
    setFollowing: (on) => {
      // Turning it on starts from now: only a reconnection reads what was missed.
      if (on) dispatch({ type: "restart" });
      setFollowing(on);
      say(on ? "Following live events" : "Stopped following live events");
    },
    pause: () => {
      dispatch({ type: "pause" });
      say("Live events paused");
    },
    resume: () => {
      dispatch({ type: "resume" });
      if (state.held.length === 0) say("Live events resumed");
    },
    clear: () => dispatch({ type: "clear" }),
  };
}

function unsubscribe() {
  live.request("unsubscribe", { topic: "audit" }).catch(() => undefined);
}

/** After a reconnection, reads the events committed since the last one received. */
async function catchUp(after: string | null, filters: EventFilters, receive: (events: AuditEvent[]) => void) {
  if (!after) return;
  let cursor = after;
  for (let i = 0; i < CATCH_UP_PAGES; i++) {
    const page = await fetchEvents(filters, cursor, CATCH_UP_PAGE_SIZE);
    if (page.items.length) receive(page.items);
    if (page.items.length < CATCH_UP_PAGE_SIZE) return;
    cursor = page.next;
  }
}
