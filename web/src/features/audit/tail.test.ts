import { describe, expect, it } from "vitest";
import type { AuditEvent } from "./model";
import { emptyTail, TAIL_LIMIT, tailReducer, type TailState } from "./tail";

function ev(position: string): AuditEvent {
  return {
    position,
    aggregate_type: "appointment",
    aggregate_id: "a1",
    sequence: 1,
    event_type: "Requested",
    event_version: "1",
    payload: {},
    metadata: {},
    recorded_at: "2026-12-01T10:00:00Z",
  };
}

const positions = (events: AuditEvent[]) => events.map((e) => e.position);

describe("the live tail", () => {
  it("shows received events newest first and counts them for the announcement", () => {
    const s = tailReducer(emptyTail, { type: "receive", events: [ev("1"), ev("2")] });
    expect(positions(s.shown)).toEqual(["2", "1"]);
    expect(s.unannounced).toBe(2);
    expect(s.last).toBe("2");
  });

  it("takes each event once, even when a catch-up read repeats it", () => {
    let s = tailReducer(emptyTail, { type: "receive", events: [ev("1")] });
    s = tailReducer(s, { type: "receive", events: [ev("1"), ev("2"), ev("2")] });
    expect(positions(s.shown)).toEqual(["2", "1"]);
  });

  it("holds events while paused and shows them in order on resume", () => {
    let s: TailState = tailReducer(emptyTail, { type: "receive", events: [ev("1")] });
    s = tailReducer(s, { type: "announced" });
    s = tailReducer(s, { type: "pause" });
    s = tailReducer(s, { type: "receive", events: [ev("2")] });
    s = tailReducer(s, { type: "receive", events: [ev("3")] });
    expect(positions(s.shown)).toEqual(["1"]);
    expect(positions(s.held)).toEqual(["2", "3"]);
    expect(s.unannounced).toBe(0);
    s = tailReducer(s, { type: "resume" });
    expect(positions(s.shown)).toEqual(["3", "2", "1"]);
    expect(s.held).toEqual([]);
    expect(s.unannounced).toBe(2);
  });

  it("keeps at most TAIL_LIMIT events", () => {
    const many = Array.from({ length: TAIL_LIMIT + 10 }, (_, i) => ev(String(i)));
    const s = tailReducer(emptyTail, { type: "receive", events: many });
    expect(s.shown).toHaveLength(TAIL_LIMIT);
    expect(s.shown[0]!.position).toBe(String(TAIL_LIMIT + 9));
  });

  it("clears the screen but still ignores events already seen", () => {
    let s = tailReducer(emptyTail, { type: "receive", events: [ev("1")] });
    s = tailReducer(s, { type: "clear" });
    expect(s.shown).toEqual([]);
    expect(tailReducer(s, { type: "receive", events: [ev("1")] })).toBe(s);
  });

  it("forgets where to catch up from when following starts again", () => {
    const s = tailReducer(tailReducer(emptyTail, { type: "receive", events: [ev("1")] }), { type: "restart" });
    expect(s.last).toBeNull();
  });
});
