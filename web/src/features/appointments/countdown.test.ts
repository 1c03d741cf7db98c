import { describe, expect, it } from "vitest";
import { remaining } from "./countdown";

describe("remaining", () => {
  const now = Date.parse("2027-06-01T09:00:00Z");

  it("shows minutes and seconds left", () => {
    expect(remaining("2027-06-01T09:04:07Z", now)).toBe("4:07");
    expect(remaining("2027-06-01T09:00:01Z", now)).toBe("0:01");
  });

  it("is undefined once the offer has lapsed or the time is unreadable", () => {
    expect(remaining("2027-06-01T09:00:00Z", now)).toBeUndefined();
    expect(remaining("2027-06-01T08:59:00Z", now)).toBeUndefined();
    expect(remaining("soon", now)).toBeUndefined();
  });
});
