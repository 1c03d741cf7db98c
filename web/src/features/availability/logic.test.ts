import { describe, expect, it } from "vitest";
import { ProblemError } from "@/shared/api/problem";
import {
  endOfDay,
  explainConflict,
  explained,
  fillWorkWeek,
  groupByLocalDate,
  mondayOf,
  nextWeekday,
  weekdayOf,
  weeklyBody,
  windowInstants,
  windowMinutes,
} from "./logic";

describe("weekly template", () => {
  it("turns rows into the request body, in row order, with 00:00 as the end of the day", () => {
    const body = weeklyBody(
      [
        { key: 1, weekday: "mon", start: "09:00", end: "12:30" },
        { key: 7, weekday: "sat", start: "18:00", end: "00:00" },
      ],
      "2026-12-01",
      "2026-12-31",
    );
    expect(body).toEqual({
      weekly: [
        { weekday: "mon", start: "09:00", end: "12:30" },
        { weekday: "sat", start: "18:00", end: "24:00" },
      ],
      from: "2026-12-01",
      to: "2026-12-31",
    });
  });

  it("keeps other end times as they are", () => {
    expect(endOfDay("17:00")).toBe("17:00");
  });

  it("fills Monday to Friday with one row's hours", () => {
    let k = 0;
    const rows = fillWorkWeek({ start: "08:00", end: "16:00" }, () => ++k);
    expect(rows.map((r) => r.weekday)).toEqual(["mon", "tue", "wed", "thu", "fri"]);
    expect(new Set(rows.map((r) => r.key)).size).toBe(5);
    expect(rows.every((r) => r.start === "08:00" && r.end === "16:00")).toBe(true);
  });

  it("adds the next day after the last row, wrapping Sunday to Monday", () => {
    expect(nextWeekday("tue")).toBe("wed");
    expect(nextWeekday("sun")).toBe("mon");
  });
});

describe("a single window", () => {
  it("converts wall-clock times in the doctor's zone to UTC instants", () => {
    expect(windowInstants("2026-12-07", "09:00", "12:30", "Europe/Berlin")).toEqual({
      start: "2026-12-07T08:00:00.000Z",
      end: "2026-12-07T11:30:00.000Z",
    });
  });

  it("reads an end of 00:00 as midnight at the end of the day", () => {
    expect(windowInstants("2026-12-07", "20:00", "00:00", "Asia/Kolkata").end).toBe("2026-12-07T18:30:00.000Z");
  });

  it("reports a time skipped by daylight saving against its field", () => {
    try {
      windowInstants("2027-03-14", "02:30", "04:00", "America/New_York");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ProblemError);
      expect((e as ProblemError).field("start")).toMatch(/does not exist/);
    }
  });

  it("refuses an end before the start, next to the end field", () => {
    expect(() => windowInstants("2026-12-07", "12:00", "09:00", "UTC")).toThrow(ProblemError);
    try {
      windowInstants("2026-12-07", "12:00", "09:00", "UTC");
    } catch (e) {
      expect((e as ProblemError).field("end")).toMatch(/after the start/);
    }
  });
});

describe("windows by local date", () => {
  const w = (id: string, start: string, end: string) => ({ id, start, end });

  it("lists every date of the range, with the windows starting on it in start order", () => {
    const days = groupByLocalDate(
      [
        w("b", "2026-12-08T04:00:00Z", "2026-12-08T06:00:00Z"),
        w("a", "2026-12-07T19:00:00Z", "2026-12-07T20:00:00Z"), // 8 Dec 00:30 in Kolkata
        w("c", "2026-12-07T03:30:00Z", "2026-12-07T05:00:00Z"),
      ],
      "Asia/Kolkata",
      "2026-12-07",
      "2026-12-09",
    );
    expect(days.map((d) => [d.date, d.windows.map((x) => x.id)])).toEqual([
      ["2026-12-07", ["c"]],
      ["2026-12-08", ["a", "b"]],
      ["2026-12-09", []],
    ]);
  });

  it("drops windows outside the range", () => {
    const days = groupByLocalDate([w("x", "2026-12-20T10:00:00Z", "2026-12-20T11:00:00Z")], "UTC", "2026-12-07", "2026-12-07");
    expect(days).toEqual([{ date: "2026-12-07", windows: [] }]);
  });

  it("finds the Monday of a week and the weekday of a date", () => {
    expect(mondayOf("2026-12-07")).toBe("2026-12-07");
    expect(mondayOf("2026-12-13")).toBe("2026-12-07");
    expect(mondayOf("2027-01-01")).toBe("2026-12-28");
    expect(weekdayOf("2026-12-13")).toBe("sun");
  });

  it("measures a window in minutes, across a daylight-saving change too", () => {
    expect(windowMinutes(w("x", "2026-12-07T09:00:00Z", "2026-12-07T10:30:00Z"))).toBe(90);
  });
});

describe("conflicts", () => {
  it("explains a window that would strand a booked appointment", () => {
    const plain = explainConflict({ status: 409, code: "would_drop_appointment", title: "Conflict" });
    expect(plain?.title).toMatch(/booked appointment/);
  });

  it("recognises the code from the problem type too", () => {
    expect(explainConflict({ status: 409, type: "https://telemed.dev/problems/window_has_appointment" })?.detail).toMatch(/cannot be deleted/);
  });

  it("leaves other errors alone", () => {
    const invalid = new ProblemError({ status: 422, errors: [{ field: "end", message: "bad" }] });
    expect(explainConflict(invalid.problem)).toBeUndefined();
    expect(explained(invalid)).toBe(invalid);
    const overlap = explained(new ProblemError({ status: 409, code: "window_overlap" })) as ProblemError;
    expect(overlap.problem.title).toBe("Overlaps another window");
  });
});
