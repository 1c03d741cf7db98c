import { describe, expect, it } from "vitest";
import { doctorTitle } from "./people";

describe("doctorTitle", () => {
  it("adds Dr once", () => {
    expect(doctorTitle("Grey")).toBe("Dr Grey");
    expect(doctorTitle(" Dr. Meredith Grey ")).toBe("Dr. Meredith Grey");
    expect(doctorTitle("Drew Carey")).toBe("Dr Drew Carey");
  });
});
