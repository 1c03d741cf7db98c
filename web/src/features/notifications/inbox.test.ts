import { describe, expect, it } from "vitest";
import { fromLive, linkFor, markRead, mergeItems, type Item } from "./inbox";

const item = (id: string, at: string, read = false): Item => ({ id, kind: "message", title: id, body: "", at, read, appointment_id: "ap" });

describe("fromLive", () => {
  it("makes an unread item of the live event", () => {
    expect(fromLive({ id: "n1", kind: "appointment_confirmed", title: "Confirmed", body: "b", at: "2026-01-01T10:00:00Z" })).toEqual({
      id: "n1",
      kind: "appointment_confirmed",
      title: "Confirmed",
      body: "b",
      appointment_id: null,
      at: "2026-01-01T10:00:00Z",
      read: false,
    });
  });

  it("ignores anything else", () => {
    expect(fromLive(null)).toBeNull();
    expect(fromLive({ title: "no id" })).toBeNull();
  });
});

describe("mergeItems", () => {
  it("drops repeated ids and keeps newest first", () => {
    const a = item("a", "2026-01-01T10:00:00Z");
    const b = item("b", "2026-01-02T10:00:00Z");
    const c = item("c", "2026-01-03T10:00:00Z");
    expect(mergeItems([c, a], [a, b]).map((i) => i.id)).toEqual(["c", "b", "a"]);
  });
});

describe("markRead", () => {
  it("marks one or all", () => {
    const items = [item("a", "2026-01-01T10:00:00Z"), item("b", "2026-01-01T09:00:00Z")];
    expect(markRead(items, "b").map((i) => i.read)).toEqual([false, true]);
    expect(markRead(items).every((i) => i.read)).toBe(true);
  });
});

describe("linkFor", () => {
  it("sends messages to the room and changes to the role's list", () => {
    expect(linkFor({ kind: "message", appointment_id: "x" }, "patient")?.href).toBe("/appointments/x/room");
    expect(linkFor({ kind: "appointment_confirmed", appointment_id: "x" }, "patient")?.href).toBe("/appointments");
    expect(linkFor({ kind: "appointment_requested", appointment_id: "x" }, "doctor")?.href).toBe("/dashboard");
    expect(linkFor({ kind: "appointment_requested", appointment_id: null }, "doctor")).toBeNull();
  });
});
