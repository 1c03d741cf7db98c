import { describe, expect, it } from "vitest";
import { formatOffset, zoneOptions } from "./zones";

describe("zoneOptions", () => {
  const now = new Date("2026-01-15T12:00:00Z");

  it("adds UTC and the current zone, sorted and unique", () => {
    const options = zoneOptions("Asia/Calcutta", ["Europe/Paris", "Asia/Kolkata", "Europe/Paris"], now);
    expect(options.map((o) => o.value)).toEqual(["Asia/Calcutta", "Asia/Kolkata", "Europe/Paris", "UTC"]);
  });

  it("labels each zone with its offset at that instant", () => {
    const [paris] = zoneOptions("Europe/Paris", [], now);
    expect(paris).toEqual({ value: "Europe/Paris", label: "Europe/Paris (UTC+01:00)" });
    const ny = zoneOptions("America/New_York", [], now).find((o) => o.value === "America/New_York");
    expect(ny?.label).toBe("America/New York (UTC−05:00)");
  });

  it("keeps an unknown zone's bare name", () => {
    expect(zoneOptions("Mars/Base", [], now).find((o) => o.value === "Mars/Base")?.label).toBe("Mars/Base");
  });
});

describe("formatOffset", () => {
  it("pads hours and minutes", () => {
    expect(formatOffset(330)).toBe("UTC+05:30");
    expect(formatOffset(0)).toBe("UTC+00:00");
    expect(formatOffset(-570)).toBe("UTC−09:30");
  });
});
