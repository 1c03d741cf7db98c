import { describe, expect, it } from "vitest";
import { ResumeState } from "./resume";

describe("ResumeState", () => {
  it("has no token before any event", () => {
    expect(new ResumeState().after).toBeNull();
  });

  it("remembers the last position of live events", () => {
    const s = new ResumeState();
    expect(s.receive("appointment:updated", "p1")).toBe(true);
    expect(s.receive("appointment:updated", "p2")).toBe(true);
    expect(s.after).toBe("p2");
  });

  it("drops an event it already delivered, but not another event of the same position", () => {
    const s = new ResumeState();
    expect(s.receive("appointment:updated", "p1")).toBe(true);
    expect(s.receive("notification", "p1")).toBe(true);
    expect(s.receive("appointment:updated", "p1")).toBe(false);
    expect(s.receive("notification", "p1")).toBe(false);
  });

  it("delivers ephemeral events (no position) every time", () => {
    const s = new ResumeState();
    expect(s.receive("chat:typing", undefined)).toBe(true);
    expect(s.receive("chat:typing", undefined)).toBe(true);
    expect(s.after).toBeNull();
  });

  it("freezes the token while a resume is in flight", () => {
    const s = new ResumeState();
    s.receive("chat:message", "p1");
    s.startResume();
    s.receive("chat:message", "p9"); // a live event overtaking the replay
    s.receive("chat:message", "p2"); // the replay
    expect(s.after).toBe("p1");
    s.finishResume();
    expect(s.after).toBe("p2");
  });

  it("resumes again from the old token when the connection drops mid-replay", () => {
    const s = new ResumeState();
    s.receive("chat:message", "p1");
    s.startResume();
    s.receive("chat:message", "p2");
    s.abortResume();
    expect(s.after).toBe("p1");
    // the replay is sent again: p2 is a duplicate, p3 is new
    s.startResume();
    expect(s.receive("chat:message", "p2")).toBe(false);
    expect(s.receive("chat:message", "p3")).toBe(true);
    s.finishResume();
    expect(s.after).toBe("p3");
  });

  it("forgets the oldest keys past its memory", () => {
    const s = new ResumeState(2);
    s.receive("e", "p1");
    s.receive("e", "p2");
    s.receive("e", "p3");
    expect(s.receive("e", "p1")).toBe(true);
    expect(s.receive("e", "p3")).toBe(false);
  });
});
