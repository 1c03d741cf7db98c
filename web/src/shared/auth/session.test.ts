import { beforeEach, describe, expect, it, vi } from "vitest";

// The session store keeps its tokens in localStorage: a Map stands in for it.
const storage = new Map<string, string>();
vi.stubGlobal("localStorage", {
  getItem: (k: string) => storage.get(k) ?? null,
  setItem: (k: string, v: string) => void storage.set(k, v),
  removeItem: (k: string) => void storage.delete(k),
});
const session = await import("./session");

const user = { id: "u1", email: "ada@example.org", role: "patient" as const, name: "Ada", timezone: "Asia/Kolkata" };
const answer = (access: string, refresh: string) => ({ user, access_token: access, refresh_token: refresh, expires_in: 900 });
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });

describe("the session", () => {
  beforeEach(() => session.signOut());

  it("stores the tokens and when the access token expires", () => {
    const s = session.signIn(answer("a1", "r1"), 1_000);
    expect(s.expiresAt).toBe(901_000);
    expect(JSON.parse(storage.get("telemed.session") ?? "null").refreshToken).toBe("r1");
  });

  it("asks for a refresh 30 s before the access token expires", () => {
    const s = session.signIn(answer("a1", "r1"), 0);
    expect(session.needsRefresh(s, 869_000)).toBe(false);
    expect(session.needsRefresh(s, 871_000)).toBe(true);
  });

  it("refreshes once for every concurrent caller, with the current refresh token", async () => {
    session.signIn(answer("a1", "r1"));
    const post = vi.fn(async (_token: string) => json(200, answer("a2", "r2")));
    const [first, second] = await Promise.all([session.refresh(post), session.refresh(post)]);
    expect(post).toHaveBeenCalledTimes(1);
    expect(post).toHaveBeenCalledWith("r1");
    expect(first?.accessToken).toBe("a2");
    expect(second?.refreshToken).toBe("r2");
    expect(session.getSession()?.refreshToken).toBe("r2");
  });

  it("ends a revoked session with a message for the sign-in screen", async () => {
    session.signIn(answer("a1", "r1"));
    const result = await session.refresh(async () => json(401, { status: 401, title: "already used" }));
    expect(result).toBeNull();
    expect(session.getSession()).toBeNull();
    expect(session.getEndedReason()).toMatch(/signed out elsewhere/);
    expect(storage.has("telemed.session")).toBe(false);
  });

  it("keeps the session when the refresh fails for another reason (server down)", async () => {
    session.signIn(answer("a1", "r1"));
    const result = await session.refresh(async () => json(503, { status: 503 }));
    expect(result).toBeNull();
    expect(session.getSession()?.refreshToken).toBe("r1");
  });

  it("tells subscribers of sign-in and sign-out", () => {
    const seen: (string | undefined)[] = [];
    const stop = session.subscribe(() => seen.push(session.getSession()?.user.id));
    session.signIn(answer("a1", "r1"));
    session.signOut();
    stop();
    session.signIn(answer("a1", "r1"));
    expect(seen).toEqual(["u1", undefined]);
  });
});
