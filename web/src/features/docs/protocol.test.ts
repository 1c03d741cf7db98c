import { describe, expect, it } from "vitest";
import { clientEvents, serverEvents, topics, transports } from "./protocol";

describe("the live protocol's description", () => {
  it("names each event once per direction, with its data and purpose", () => {
    for (const rows of [clientEvents, serverEvents]) {
      const names = rows.map((r) => r.name);
      expect(new Set(names).size).toBe(names.length);
      for (const r of rows) {
        expect(r.name).toMatch(/^[a-z]+(:[a-z_]+)?$/);
        expect(r.data && r.answer && r.purpose).toBeTruthy();
      }
    }
  });

  it("covers the contract's events and the waiting room", () => {
    const client = clientEvents.map((r) => r.name);
    const server = serverEvents.map((r) => r.name);
    for (const n of ["resume", "subscribe", "unsubscribe", "chat:send", "call:hangup", "waiting:checkin", "waiting:leave", "waiting:list"]) {
      expect(client).toContain(n);
    }
    for (const n of ["appointment:updated", "availability:updated", "notification", "audit:event", "error", "waiting:joined", "waiting:left", "doctor:status"]) {
      expect(server).toContain(n);
    }
  });

  it("describes both transports and the audit topic", () => {
    expect(transports.map((t) => t.name)).toEqual(["WebSocket", "Socket.IO (v4)"]);
    expect(topics.map((t) => t.topic)).toContain("audit");
  });
});
