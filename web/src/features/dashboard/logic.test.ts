import { describe, expect, it } from "vitest";
import { actionsFor, barWidths, bookedPercent, loadText, newRequests, requestAnnouncement, shortWhen, statusLabel, weekTotals } from "./logic";

const appt = (status: string, start: string, end: string) => ({ id: "a1", status, start, end });
const at = (iso: string) => Date.parse(iso);

describe("new requests", () => {
  it("announces nothing on the first load", () => {
    expect(newRequests(null, [{ id: "a" }])).toEqual([]);
  });

  it("finds the requests not seen before", () => {
    expect(newRequests(new Set(["a"]), [{ id: "a" }, { id: "b" }])).toEqual([{ id: "b" }]);
  });

  it("words a request with the patient's name, the local time and the zone", () => {
    const a = appt("pending", "2026-12-07T08:30:00Z", "2026-12-07T09:00:00Z");
    expect(requestAnnouncement(a, "Ada", "Europe/Berlin")).toBe("New request from Ada for Mon 7 Dec 09:30 (Europe/Berlin)");
    expect(requestAnnouncement({ ...a, status: "rescheduled" }, "Ada", "UTC")).toBe("Reschedule request from Ada for Mon 7 Dec 08:30 (UTC)");
    expect(shortWhen(a.start, "Asia/Kolkata")).toBe("Mon 7 Dec 14:00");
  });
});

describe("actions", () => {
  const a = appt("confirmed", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z");

  it("offers the room and rescheduling before a confirmed appointment starts", () => {
    expect(actionsFor(a, at("2026-12-07T08:00:00Z"))).toEqual({ room: true, reschedule: true, finish: false });
  });

  it("offers completed / no-show once it has started, and the room until it ends", () => {
    expect(actionsFor(a, at("2026-12-07T09:10:00Z"))).toEqual({ room: true, reschedule: false, finish: true });
    expect(actionsFor(a, at("2026-12-07T10:00:00Z"))).toEqual({ room: false, reschedule: false, finish: true });
  });

  it("offers no room for a request, and nothing for a finished appointment", () => {
    expect(actionsFor({ ...a, status: "pending" }, at("2026-12-07T08:00:00Z"))).toEqual({ room: false, reschedule: true, finish: false });
    expect(actionsFor({ ...a, status: "completed" }, at("2026-12-07T10:00:00Z"))).toEqual({ room: false, reschedule: false, finish: false });
  });

  it("names statuses in words", () => {
    expect(statusLabel("no_show")).toBe("No-show");
    expect(statusLabel("pending", "doctor")).toBe("Requested, awaiting your confirmation");
    expect(statusLabel("rescheduled", "patient")).toBe("Rescheduled, awaiting the patient");
  });
});

describe("minutes", () => {
  const day = (free: number, booked: number) => ({ date: "2026-12-07", free_minutes: free, booked_minutes: booked });

  it("describes a day's load in hours and minutes", () => {
    expect(loadText(day(150, 30))).toBe("2 h 30 min free, 30 min booked");
    expect(loadText(day(45, 0))).toBe("45 min free, 0 min booked");
    expect(loadText(day(0, 0))).toBe("No availability");
  });

  it("gives the booked share of the open time", () => {
    expect(bookedPercent(day(90, 30))).toBe(25);
    expect(bookedPercent(day(0, 0))).toBe(0);
  });

  it("scales bars to the busiest day", () => {
    const week = [day(60, 60), day(30, 0), day(0, 0)];
    expect(barWidths(week[0]!, week)).toEqual({ booked: 50, free: 50 });
    expect(barWidths(week[1]!, week)).toEqual({ booked: 0, free: 25 });
    expect(barWidths(week[2]!, [day(0, 0)])).toEqual({ booked: 0, free: 0 });
  });

  it("adds up the week", () => {
    expect(weekTotals([day(60, 30), day(15, 0)])).toEqual({ free: 75, booked: 30 });
  });
});
