import { describe, expect, it } from "vitest";
import {
  connectionVerdict,
  elapsedClock,
  levelOf,
  median,
  presenceOf,
  presenceText,
  removeEntry,
  upsertEntry,
  waitedLabel,
  type WaitingEntry,
} from "./waiting";

const entry = (id: string, at: string): WaitingEntry => ({
  appointment_id: id,
  patient_id: `p-${id}`,
  patient_name: id,
  checked_in_at: at,
  start: "2026-12-01T10:00:00Z",
});

describe("waiting room", () => {
  it("keeps the queue longest-waiting first, one entry per appointment", () => {
    let q = upsertEntry([], entry("b", "2026-12-01T09:05:00Z"));
    q = upsertEntry(q, entry("a", "2026-12-01T09:00:00Z"));
    q = upsertEntry(q, entry("b", "2026-12-01T09:10:00Z")); // re-check-in
    expect(q.map((e) => e.appointment_id)).toEqual(["a", "b"]);
    expect(q[1]!.checked_in_at).toBe("2026-12-01T09:10:00Z");
    expect(removeEntry(q, "a").map((e) => e.appointment_id)).toEqual(["b"]);
    expect(removeEntry(q, "zzz")).toHaveLength(2);
  });

  it("says how long someone waited", () => {
    const at = "2026-12-01T09:00:00Z";
    const t = Date.parse(at);
    expect(waitedLabel(at, t + 30_000)).toBe("waiting less than a minute");
    expect(waitedLabel(at, t - 5_000)).toBe("waiting less than a minute");
    expect(waitedLabel(at, t + 4 * 60_000 + 59_000)).toBe("waiting 4 min");
    expect(waitedLabel(at, t + 65 * 60_000)).toBe("waiting 1 h 05 min");
    expect(elapsedClock(at, t + 125_000)).toBe("02:05");
    expect(elapsedClock(t, t + 3_725_000)).toBe("1:02:05");
  });

  it("names the doctor's presence", () => {
    expect(presenceOf("online")).toBe("online");
    expect(presenceOf("in_call")).toBe("in_call");
    expect(presenceOf("in-call")).toBe("in_call");
    expect(presenceOf("busy")).toBe("in_call");
    expect(presenceOf("away")).toBe("away");
    expect(presenceOf(undefined)).toBe("away");
    expect(presenceText("Dr Grey", "in_call")).toBe("Dr Grey is in another call");
  });

  it("judges the connection and the microphone level", () => {
    expect(connectionVerdict(40, true)).toBe("good");
    expect(connectionVerdict(200, true)).toBe("fair");
    expect(connectionVerdict(900, true)).toBe("poor");
    expect(connectionVerdict(40, false)).toBe("offline");
    expect(connectionVerdict(null, true)).toBe("offline");
    expect(median([30, 10, 20])).toBe(20);
    expect(median([10, 20])).toBe(15);
    expect(median([])).toBeNull();
    expect(levelOf(new Uint8Array([128, 128, 128]))).toBe(0);
    expect(levelOf(new Uint8Array([0, 255, 0, 255]))).toBe(1);
    expect(levelOf([])).toBe(0);
  });
});
