import { describe, expect, it } from "vitest";
import { callReducer, formatClock, outcomeOf, personName, type CallPhase } from "./callState";

const idle: CallPhase = { kind: "idle" };

describe("callReducer", () => {
  it("caller: outgoing, answered, connected, ended", () => {
    let p = callReducer(idle, { type: "starting" });
    p = callReducer(p, { type: "outgoing", callId: "c" });
    expect(p.kind).toBe("outgoing");
    p = callReducer(p, { type: "answered", callId: "c", at: 10, here: false });
    expect(p).toEqual({ kind: "connecting", callId: "c", answeredAt: 10 });
    p = callReducer(p, { type: "connected", callId: "c", at: 12 });
    expect(p).toEqual({ kind: "active", callId: "c", answeredAt: 10 });
    p = callReducer(p, { type: "disconnected", callId: "c" });
    expect(p.kind).toBe("connecting");
    p = callReducer(p, { type: "connected", callId: "c", at: 20 });
    expect(p).toEqual({ kind: "active", callId: "c", answeredAt: 10 });
    p = callReducer(p, { type: "ended", callId: "c", reason: "user_hangup" });
    expect(p).toEqual({ kind: "ended", callId: "c", outcome: "ended", reason: "user_hangup" });
    // a second call:ended (another device) changes nothing
    expect(callReducer(p, { type: "ended", callId: "c", reason: "rejected" })).toBe(p);
  });

  it("callee: incoming, answered here; a ring again is ignored", () => {
    let p = callReducer(idle, { type: "incoming", callId: "c" });
    expect(callReducer(p, { type: "incoming", callId: "c" })).toBe(p);
    p = callReducer(p, { type: "starting", callId: "c" });
    p = callReducer(p, { type: "answered", callId: "c", at: 5, here: true });
    expect(p.kind).toBe("connecting");
    p = callReducer(p, { type: "connected", callId: "c", at: 6 });
    expect(p.kind).toBe("active");
    expect(callReducer(p, { type: "incoming", callId: "other" })).toBe(p);
  });

  it("callee: answered on another device", () => {
    const p = callReducer({ kind: "incoming", callId: "c" }, { type: "answered", callId: "c", at: 1, here: false });
    expect(p).toMatchObject({ kind: "ended", outcome: "elsewhere" });
  });

  it("ignores events of other calls", () => {
    const p: CallPhase = { kind: "outgoing", callId: "c" };
    expect(callReducer(p, { type: "ended", callId: "x", reason: "user_hangup" })).toBe(p);
    expect(callReducer(p, { type: "answered", callId: "x", at: 1, here: false })).toBe(p);
  });

  it("media flowing before call:answered counts as active", () => {
    const p = callReducer({ kind: "outgoing", callId: "c" }, { type: "connected", callId: "c", at: 3 });
    expect(p).toEqual({ kind: "active", callId: "c", answeredAt: 3 });
  });

  it("names outcomes", () => {
    expect(outcomeOf("invite_timeout")).toBe("missed");
    expect(outcomeOf("rejected")).toBe("declined");
    expect(outcomeOf("ice_failed")).toBe("failed");
    expect(outcomeOf("user_hangup")).toBe("ended");
  });

  it("formats durations and names", () => {
    expect(formatClock(0)).toBe("00:00");
    expect(formatClock(125)).toBe("02:05");
    expect(formatClock(3725)).toBe("1:02:05");
    expect(personName("Grey", true)).toBe("Dr Grey");
    expect(personName("Dr. Grey", true)).toBe("Dr. Grey");
    expect(personName("Ada", false)).toBe("Ada");
  });
});

describe("callReducer: shown phases", () => {
  it("a call going on elsewhere ends like any other", () => {
    const shown = callReducer(idle, { type: "show", phase: { kind: "ended", callId: "c", outcome: "elsewhere", reason: "answered_elsewhere" } });
    expect(callReducer(shown, { type: "ended", callId: "c", reason: "user_hangup" })).toMatchObject({ outcome: "ended" });
  });
});

describe("logStatusLabel", () => {
  it("names declined calls", async () => {
    const { logStatusLabel } = await import("./callState");
    expect(logStatusLabel("rejected")).toBe("declined");
    expect(logStatusLabel("ended", "declined")).toBe("declined");
    expect(logStatusLabel("ended", "user_hangup")).toBe("ended");
    expect(logStatusLabel("missed", "invite_timeout")).toBe("missed");
  });
});
