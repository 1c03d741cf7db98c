import { describe, expect, it } from "vitest";
import { excerpt, keepIdempotencyKey, languageName, newIdempotencyKey, searchQuery, specialtiesOf } from "./doctorText";
import { doctorTitle } from "@/shared/people";

describe("doctor texts", () => {
  it("titles a doctor once", () => {
    expect(doctorTitle("Dr. Meredith Grey")).toBe("Dr. Meredith Grey");
    expect(doctorTitle("dr House")).toBe("dr House");
    expect(doctorTitle("Drew Barry")).toBe("Dr Drew Barry");
    expect(doctorTitle(" Ada Lovelace ")).toBe("Dr Ada Lovelace");
  });

  it("names languages in English and keeps unknown tags", () => {
    expect(languageName("en")).toBe("English");
    expect(languageName("es")).toBe("Spanish");
    expect(languageName("not a tag!")).toBe("not a tag!");
  });

  it("cuts a long bio at a word", () => {
    expect(excerpt("Short bio.")).toBe("Short bio.");
    expect(excerpt("one two three four five six", 12)).toBe("one two…");
    expect(excerpt("a   spaced\n\ntext")).toBe("a spaced text");
  });

  it("builds the search's query string without empty fields", () => {
    expect(searchQuery({ specialty: " Cardiology ", q: "" })).toBe("?specialty=Cardiology");
    expect(searchQuery({ specialty: "", q: "grey & co" })).toBe("?q=grey+%26+co");
    expect(searchQuery({})).toBe("");
  });

  it("lists each specialty once", () => {
    expect(specialtiesOf([{ specialties: ["Cardiology", "GP"] }, { specialties: ["cardiology", "Dermatology"] }])).toEqual([
      "Cardiology",
      "Dermatology",
      "GP",
    ]);
  });

  it("keeps the idempotency key only when the outcome is unknown", () => {
    expect(keepIdempotencyKey(0)).toBe(true);
    expect(keepIdempotencyKey(503)).toBe(true);
    expect(keepIdempotencyKey(409)).toBe(false);
    expect(keepIdempotencyKey(422)).toBe(false);
  });

  it("makes UUID keys", () => {
    expect(newIdempotencyKey()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
