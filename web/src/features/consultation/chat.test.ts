import { describe, expect, it } from "vitest";
import { isBefore, lastFromOther, mergeMessages, readReceipt, settlePending, TypingThrottle, unreadCount, type Message } from "./chat";

const msg = (id: string, sender: string, second: number, client?: string): Message => ({
  id,
  appointment_id: "a",
  sender_id: sender,
  content: id,
  sent_at: `2026-12-01T10:00:${String(second).padStart(2, "0")}Z`,
  position: `p${second}`,
  client_msg_id: client ?? null,
});

describe("chat", () => {
  it("merges pages and live messages once each, oldest first", () => {
    const page2 = [msg("m3", "me", 3), msg("m4", "dr", 4)];
    const page1 = [msg("m1", "dr", 1), msg("m2", "me", 2)];
    const live = [msg("m4", "dr", 4), msg("m5", "me", 5)];
    const all = mergeMessages(mergeMessages(page2, page1), live);
    expect(all.map((m) => m.id)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
  });

  it("keeps arrival order for messages of the same instant", () => {
    expect(mergeMessages([msg("b", "x", 1)], [msg("a", "x", 1)]).map((m) => m.id)).toEqual(["b", "a"]);
  });

  it("settles pending messages by client_msg_id", () => {
    const pending = [
      { client_msg_id: "c1", content: "hi", status: "sending" as const },
      { client_msg_id: "c2", content: "yo", status: "failed" as const },
    ];
    expect(settlePending(pending, [msg("m1", "me", 1, "c1")])).toEqual([pending[1]]);
  });

  it("puts the read receipt under my last message the other has read", () => {
    const list = [msg("m1", "me", 1), msg("m2", "me", 2), msg("m3", "dr", 3), msg("m4", "me", 4)];
    expect(readReceipt(list, "me", "m3")).toBe("m2");
    expect(readReceipt(list, "me", "m4")).toBe("m4");
    expect(readReceipt(list, "me", "m1")).toBe("m1");
    expect(readReceipt(list, "me", "unknown")).toBeNull();
    expect(readReceipt(list, "me", undefined)).toBeNull();
    expect(readReceipt([msg("d1", "dr", 1)], "me", "d1")).toBeNull();
  });

  it("counts the other's messages after my read marker", () => {
    const list = [msg("m1", "dr", 1), msg("m2", "me", 2), msg("m3", "dr", 3), msg("m4", "dr", 4)];
    expect(unreadCount(list, "me", "m1")).toBe(2);
    expect(unreadCount(list, "me", "m4")).toBe(0);
    expect(unreadCount(list, "me", null)).toBe(3);
    expect(unreadCount(list, "me", "older", 7)).toBe(7);
    expect(unreadCount(list, "me", null, 5)).toBe(5);
  });

  it("finds the other's newest message and compares markers", () => {
    const list = [msg("m1", "dr", 1), msg("m2", "me", 2)];
    expect(lastFromOther(list, "me")?.id).toBe("m1");
    expect(lastFromOther([], "me")).toBeUndefined();
    expect(isBefore(list, null, "m1")).toBe(true);
    expect(isBefore(list, "m1", "m2")).toBe(true);
    expect(isBefore(list, "m2", "m1")).toBe(false);
    expect(isBefore(list, "m1", "m1")).toBe(false);
  });

  it("announces typing at most every 2 seconds", () => {
    const t = new TypingThrottle(2000);
    expect(t.shouldSend(0)).toBe(true);
    expect(t.shouldSend(500)).toBe(false);
    expect(t.shouldSend(1999)).toBe(false);
    expect(t.shouldSend(2000)).toBe(true);
    t.reset();
    expect(t.shouldSend(2100)).toBe(true);
  });
});
