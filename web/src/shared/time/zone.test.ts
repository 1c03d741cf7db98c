import { describe, expect, it } from "vitest";
import {
  NonexistentLocalTime,
  addDays,
  formatInstant,
  formatTimeRange,
  localDate,
  localTime,
  offsetMinutes,
  zonedToInstant,
} from "./zone";

describe("time zones", () => {
  it("renders an instant in the viewer's zone with the zone named", () => {
    expect(formatInstant("2026-12-07T04:00:00Z", "Asia/Kolkata")).toBe("Mon, 7 Dec 2026, 09:30 (Asia/Kolkata)");
  });

  it("knows half-hour and negative offsets", () => {
    expect(offsetMinutes(new Date("2026-12-07T00:00:00Z"), "Asia/Kolkata")).toBe(330);
    expect(offsetMinutes(new Date("2026-12-07T00:00:00Z"), "America/New_York")).toBe(-300);
    expect(offsetMinutes(new Date("2026-07-07T00:00:00Z"), "America/New_York")).toBe(-240);
  });

  it("gives the local date, which may differ from the UTC date", () => {
    expect(localDate("2026-12-07T23:30:00Z", "Asia/Kolkata")).toBe("2026-12-08");
    expect(localDate("2026-12-07T03:30:00Z", "America/New_York")).toBe("2026-12-06");
  });

  it("turns a wall-clock time into the instant", () => {
    expect(zonedToInstant("2026-12-07", "09:00", "America/New_York").toISOString()).toBe("2026-12-07T14:00:00.000Z");
    expect(zonedToInstant("2026-12-07", "09:00", "Asia/Kolkata").toISOString()).toBe("2026-12-07T03:30:00.000Z");
  });

  it("refuses a time in a DST gap", () => {
    expect(() => zonedToInstant("2026-03-08", "02:30", "America/New_York")).toThrow(NonexistentLocalTime);
  });

  it("takes the earlier instant in a DST overlap", () => {
    expect(zonedToInstant("2026-11-01", "01:30", "America/New_York").toISOString()).toBe("2026-11-01T05:30:00.000Z");
  });

  it("renders a range with the zone", () => {
    expect(formatTimeRange("2026-12-07T14:00:00Z", "2026-12-07T14:30:00Z", "America/New_York")).toBe(
      "09:00–09:30 (America/New_York)",
    );
    expect(localTime("2026-12-07T14:00:00Z", "UTC")).toBe("14:00");
  });

  it("adds days across month ends", () => {
    expect(addDays("2026-12-30", 3)).toBe("2027-01-02");
  });
});
