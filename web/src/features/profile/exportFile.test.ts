import { describe, expect, it } from "vitest";
import { exportFilename } from "./exportFile";

describe("exportFilename", () => {
  it("takes the server's file name", () => {
    expect(exportFilename('attachment; filename="telemed-export-2027-03-14.json"')).toBe("telemed-export-2027-03-14.json");
  });

  it("falls back to a dated name, and never to a path", () => {
    const day = new Date("2027-03-14T12:00:00Z");
    expect(exportFilename(null, day)).toBe("telemed-export-2027-03-14.json");
    expect(exportFilename('attachment; filename="../etc/passwd"', day)).toBe("telemed-export-2027-03-14.json");
  });
});
