import { describe, expect, it } from "vitest";
import { check } from "./validate";

describe("check", () => {
  it("requires a required value, ignoring white space", () => {
    expect(check("  ", { required: true })).toBe("is required");
    expect(check("", {})).toBeUndefined();
  });

  it("counts characters, not UTF-16 units", () => {
    expect(check("😀😀", { maxLength: 2 })).toBeUndefined();
    expect(check("😀😀😀", { maxLength: 2 })).toBe("must be at most 2 characters");
    expect(check("short", { minLength: 10 })).toBe("must be at least 10 characters");
  });

  it("matches a pattern against the whole value", () => {
    expect(check("09:30", { pattern: "[0-2][0-9]:[0-5][0-9]" })).toBeUndefined();
    expect(check("9:30 am", { pattern: "[0-2][0-9]:[0-5][0-9]" })).toBe("has the wrong format");
  });

  it("bounds numbers", () => {
    expect(check("3", { min: 5 })).toBe("must be at least 5");
    expect(check("300", { max: 240 })).toBe("must be at most 240");
  });
});
