import { describe, expect, it } from "vitest";
import { homeOf } from "@/shared/paths";
import { afterSignIn, safeNext } from "./redirect";

const origin = "https://telemed.example";

describe("safeNext", () => {
  it("keeps same-origin paths with their query and hash", () => {
    expect(safeNext("/appointments", origin)).toBe("/appointments");
    expect(safeNext("/doctors/42?from=2026-01-01#slots", origin)).toBe("/doctors/42?from=2026-01-01#slots");
  });

  it("refuses other origins and tricks", () => {
    for (const bad of [
      "https://evil.example/",
      "//evil.example/x",
      "/\\evil.example",
      "javascript:alert(1)",
      "appointments",
      "/\t/evil.example",
      "",
      null,
      undefined,
    ]) {
      expect(safeNext(bad, origin)).toBeNull();
    }
  });

  it("does not send people back to sign-in or sign-up", () => {
    expect(safeNext("/signin?next=/x", origin)).toBeNull();
    expect(safeNext("/signup", origin)).toBeNull();
  });
});

describe("afterSignIn", () => {
  it("falls back to the role's home", () => {
    expect(afterSignIn("patient", null, origin)).toBe("/appointments");
    expect(afterSignIn("doctor", "//evil.example", origin)).toBe("/dashboard");
    expect(afterSignIn("auditor", undefined, origin)).toBe("/audit");
    expect(afterSignIn("doctor", "/availability", origin)).toBe("/availability");
  });

  it("maps every role", () => {
    expect(homeOf("admin")).toBe("/audit");
  });
});
