import { describe, expect, it } from "vitest";
import { joinLines, orNull, parseLines, placeConflict } from "./lists";

describe("parseLines", () => {
  it("keeps trimmed, non-empty lines in order", () => {
    expect(parseLines("  Asthma \n\n Penicillin\r\nHay fever  \n  ")).toEqual(["Asthma", "Penicillin", "Hay fever"]);
    expect(parseLines("")).toEqual([]);
  });

  it("round-trips with joinLines", () => {
    const items = ["Cardiology", "General practice"];
    expect(parseLines(joinLines(items))).toEqual(items);
    expect(joinLines(undefined)).toBe("");
  });
});

describe("orNull", () => {
  it("turns blanks into null", () => {
    expect(orNull("   ")).toBeNull();
    expect(orNull(" +33 6 12 ")).toBe("+33 6 12");
  });
});

describe("placeConflict", () => {
  it("puts a time zone conflict next to the field", () => {
    const p = placeConflict({ status: 409, code: "timezone_change_with_availability", detail: "close your windows first", errors: [] });
    expect(p.errors).toEqual([{ field: "timezone", message: "close your windows first" }]);
  });

  it("leaves other problems alone", () => {
    const p = { status: 422, code: "validation_failed", errors: [{ field: "bio", message: "too long" }] };
    expect(placeConflict(p)).toBe(p);
  });
});
