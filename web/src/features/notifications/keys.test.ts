import { describe, expect, it } from "vitest";
import { base64UrlToBytes, sameBytes } from "./keys";

describe("base64UrlToBytes", () => {
  it("decodes base64url without padding", () => {
    // "\xfb\xff\xbf" is "-_-_" in base64url ("+/+/" in base64).
    expect([...base64UrlToBytes("-_-_")]).toEqual([0xfb, 0xff, 0xbf]);
    expect([...base64UrlToBytes("AQID")]).toEqual([1, 2, 3]);
    expect([...base64UrlToBytes("AQ")]).toEqual([1]);
    expect([...base64UrlToBytes("AQ==")]).toEqual([1]);
  });

  it("decodes a 65-byte VAPID public key", () => {
    const key = "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U";
    const bytes = base64UrlToBytes(key);
    expect(bytes.length).toBe(65);
    expect(bytes[0]).toBe(4);
  });

  it("refuses what is not base64url", () => {
    expect(() => base64UrlToBytes("a+b/")).toThrow();
    expect(() => base64UrlToBytes("abcde")).toThrow();
  });
});

describe("sameBytes", () => {
  it("compares buffers and arrays", () => {
    const a = new Uint8Array([1, 2, 3]);
    expect(sameBytes(a.buffer, new Uint8Array([1, 2, 3]))).toBe(true);
    expect(sameBytes(new Uint8Array([1, 2]), a)).toBe(false);
    expect(sameBytes(null, a)).toBe(false);
  });
});
