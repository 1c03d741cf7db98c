import { describe, expect, it } from "vitest";
import {
  accessFiltersOf,
  actorOf,
  aggregateTypeOptions,
  countText,
  eventFiltersOf,
  formatPrecise,
  matchesFilters,
  presentFilters,
  prettyJson,
  withQuery,
} from "./model";

describe("filters in the address bar", () => {
  it("reads the event filters, trimmed, missing ones empty", () => {
    expect(eventFiltersOf({ aggregate_type: "appointment", aggregate_id: " a1 " })).toEqual({ aggregate_type: "appointment", aggregate_id: "a1" });
    expect(eventFiltersOf({})).toEqual({ aggregate_type: "", aggregate_id: "" });
    expect(accessFiltersOf({ patient_id: "p" })).toEqual({ patient_id: "p" });
  });

  it("writes only the non-empty filters, escaped", () => {
    expect(withQuery("/audit", { aggregate_type: "", aggregate_id: "" })).toBe("/audit");
    expect(withQuery("/audit", { aggregate_type: "doctor_day", aggregate_id: "d:2026-12-01" })).toBe(
      "/audit?aggregate_type=doctor_day&aggregate_id=d%3A2026-12-01",
    );
  });

  it("sends only the filters that are set to the API", () => {
    expect(presentFilters({ aggregate_type: "", aggregate_id: " x " })).toEqual({ aggregate_id: "x" });
  });
});

describe("matching live events", () => {
  const event = { aggregate_type: "appointment", aggregate_id: "a1" };
  it("matches with no filters", () => {
    expect(matchesFilters(event, { aggregate_type: "", aggregate_id: "" })).toBe(true);
  });
  it("matches on type and id", () => {
    expect(matchesFilters(event, { aggregate_type: "appointment", aggregate_id: "a1" })).toBe(true);
    expect(matchesFilters(event, { aggregate_type: "call", aggregate_id: "" })).toBe(false);
    expect(matchesFilters(event, { aggregate_type: "", aggregate_id: "a2" })).toBe(false);
  });
});

describe("the aggregate type select", () => {
  it("starts with all types and adds unknown types seen, once", () => {
    const options = aggregateTypeOptions(["appointment", "refund", "refund", ""]);
    expect(options[0]).toEqual({ value: "", label: "All types" });
    expect(options.filter((o) => o.value === "refund")).toHaveLength(1);
    expect(options.filter((o) => o.value === "appointment")).toHaveLength(1);
  });
});

describe("the actor of an event", () => {
  it("reads the metadata the server records", () => {
    expect(actorOf({ actor_id: "u1", actor_role: "doctor", command: "doctor.register", request_id: "r1" })).toEqual({
      id: "u1",
      role: "doctor",
      command: "doctor.register",
      requestId: "r1",
    });
  });
  it("is empty for metadata that is missing or malformed", () => {
    expect(actorOf(null)).toEqual({ id: null, role: null, command: null, requestId: null });
    expect(actorOf({ actor_id: 42 }).id).toBeNull();
  });
});

describe("text for people", () => {
  it("shows an instant to the second with its zone", () => {
    expect(formatPrecise("2026-12-01T14:38:10.999Z", "Asia/Kolkata")).toMatch(/^Tue,? 1 Dec 2026,? 20:08:10 \(Asia\/Kolkata\)$/);
  });
  it("counts new events", () => {
    expect(countText(1)).toBe("1 new event");
    expect(countText(3)).toBe("3 new events");
  });
  it("pretty-prints JSON", () => {
    expect(prettyJson({ a: 1 })).toBe('{\n  "a": 1\n}');
    expect(prettyJson(undefined)).toBe("null");
  });
});
