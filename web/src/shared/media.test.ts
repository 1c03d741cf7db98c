import { describe, expect, it } from "vitest";
import { mediaProblemOf } from "./media";

describe("mediaProblemOf", () => {
  it("tells denied, missing, busy and insecure apart", () => {
    expect(mediaProblemOf({ name: "NotAllowedError" })).toBe("denied");
    expect(mediaProblemOf({ name: "NotFoundError" })).toBe("missing");
    expect(mediaProblemOf({ name: "NotReadableError" })).toBe("busy");
    expect(mediaProblemOf(new TypeError("x"))).toBe("insecure");
    expect(mediaProblemOf(null)).toBe("other");
  });
});
