import { describe, expect, it } from "vitest";
import { UnreadStore } from "./store";

describe("UnreadStore", () => {
  it("counts each live arrival once, after the first load", () => {
    const s = new UnreadStore();
    s.arrived("a");
    expect(s.get()).toBeNull();
    s.set(2);
    s.arrived("b");
    s.arrived("b");
    expect(s.get()).toBe(3);
  });

  it("never goes below zero and tells its listeners", () => {
    const s = new UnreadStore();
    const seen: (number | null)[] = [];
    s.subscribe((c) => seen.push(c));
    s.set(1);
    s.read();
    s.read();
    s.reset();
    expect(seen).toEqual([1, 0, null]);
  });
});
