import { describe, expect, it, vi } from "vitest";

// SlotWeek's module builds the API client, which reads `location` when loaded.
vi.hoisted(() => {
  (globalThis as { location?: unknown }).location ??= new URL("http://localhost/");
});

import { groupByDay, slotLabel, startOfLocalDay, weekAt, weekBounds, weekLabel, weekOffsetOf } from "./SlotWeek";

const slot = (start: string, end: string) => ({ start, end });

describe("week navigation", () => {
  it("a week is seven local days starting on today", () => {
    const week = weekAt("2026-12-01", 0);
    expect(week.days).toEqual([
      "2026-12-01",
      "2026-12-02",
      "2026-12-03",
      "2026-12-04",
      "2026-12-05",
      "2026-12-06",
      "2026-12-07",
    ]);
    expect(weekLabel(week)).toBe("Tue 1 Dec – Mon 7 Dec");
  });

  it("the next and previous weeks move by seven days, across months and years", () => {
    expect(weekAt("2026-12-29", 1).first).toBe("2027-01-05");
    expect(weekAt("2026-12-29", 1).last).toBe("2027-01-11");
    expect(weekAt("2027-01-05", -1).first).toBe("2026-12-29");
  });

  it("finds the week offset holding a later date", () => {
    expect(weekOffsetOf("2026-12-01", "2026-12-01")).toBe(0);
    expect(weekOffsetOf("2026-12-01", "2026-12-07")).toBe(0);
    expect(weekOffsetOf("2026-12-01", "2026-12-08")).toBe(1);
    expect(weekOffsetOf("2026-12-01", "2027-01-20")).toBe(7);
  });

  it("bounds a week by the viewer's local midnights", () => {
    expect(weekBounds(weekAt("2026-12-01", 0), "Asia/Kolkata")).toEqual({
      from: "2026-11-30T18:30:00.000Z",
      to: "2026-12-07T18:30:00.000Z",
    });
  });

  it("a day whose midnight is skipped by DST starts at the end of the gap", () => {
    // Chile moves its clocks from 00:00 to 01:00 on 6 Sep 2026.
    expect(startOfLocalDay("2026-09-06", "America/Santiago").toISOString()).toBe("2026-09-06T04:00:00.000Z");
  });
});

describe("grouping slots by the viewer's local day", () => {
  const week = weekAt("2026-12-01", 0);

  it("puts each slot under its local start date and keeps every day", () => {
    const days = groupByDay(
      [
        slot("2026-12-04T20:30:00Z", "2026-12-04T21:00:00Z"), // Sat 5 Dec 02:00 in Kolkata
        slot("2026-12-02T14:00:00Z", "2026-12-02T14:30:00Z"), // Wed 2 Dec 19:30
        slot("2026-12-02T14:30:00Z", "2026-12-02T15:00:00Z"),
      ],
      week,
      "Asia/Kolkata",
    );
    expect(days.map((d) => [d.date, d.slots.length])).toEqual([
      ["2026-12-01", 0],
      ["2026-12-02", 2],
      ["2026-12-03", 0],
      ["2026-12-04", 0],
      ["2026-12-05", 1],
      ["2026-12-06", 0],
      ["2026-12-07", 0],
    ]);
    expect(days[1]!.slots[0]!.start).toBe("2026-12-02T14:00:00Z");
  });

  it("the same slots fall on other days in another zone", () => {
    const days = groupByDay([slot("2026-12-04T20:30:00Z", "2026-12-04T21:00:00Z")], week, "America/New_York");
    expect(days.find((d) => d.slots.length)?.date).toBe("2026-12-04");
  });

  it("ignores slots outside the week", () => {
    const days = groupByDay([slot("2026-12-09T10:00:00Z", "2026-12-09T10:30:00Z")], week, "UTC");
    expect(days.every((d) => d.slots.length === 0)).toBe(true);
  });

  it("names a slot with its day, times and zone", () => {
    expect(slotLabel(slot("2026-12-02T14:00:00Z", "2026-12-02T14:30:00Z"), "Asia/Kolkata")).toBe(
      "Wed 2 Dec, 19:30–20:00 (Asia/Kolkata)",
    );
  });
});
