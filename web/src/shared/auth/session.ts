/**
 * The signed-in session: tokens in localStorage, a single-flight refresh, and a store the
 * screens subscribe to.
 */
export type Role = "patient" | "doctor" | "admin" | "auditor";

export interface SessionUser {
  id: string;
  email: string;
  role: Role;
  name: string;
  timezone: string;
}

export interface Session {
  user: SessionUser;
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds when the access token expires. */
  expiresAt: number;
}

/** The answer of register, login and refresh. */
export interface TokenAnswer {
  user: SessionUser;
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

const KEY = "telemed.session";
type Listener = () => void;

let current: Session | null = load();
let endedReason: string | null = null;
let refreshing: Promise<Session | null> | null = null;
const listeners = new Set<Listener>();

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function notify() {
  for (const l of listeners) l();
}

/** The current session, or null when signed out. */
export function getSession(): Session | null {
  return current;
}

/** Why the last session ended, if it ended by itself (revoked or expired). */
export function getEndedReason(): string | null {
  return endedReason;
}

/** Subscribes to session changes; returns the unsubscribe function. */
export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Stores the tokens of register, login or refresh. */
export function signIn(answer: TokenAnswer, now = Date.now()): Session {
  current = {
    user: answer.user,
    accessToken: answer.access_token,
    refreshToken: answer.refresh_token,
    expiresAt: now + answer.expires_in * 1000,
  };
  endedReason = null;
  localStorage.setItem(KEY, JSON.stringify(current));
  notify();
  return current;
}

/** Replaces the user (after a profile edit). */
export function updateUser(user: SessionUser) {
  if (!current) return;
  current = { ...current, user };
  localStorage.setItem(KEY, JSON.stringify(current));
  notify();
}

/** Forgets the session; `reason` is shown on the sign-in screen. */
export function signOut(reason: string | null = null) {
  current = null;
  endedReason = reason;
  localStorage.removeItem(KEY);
  notify();
}

/** Whether the access token should be refreshed before use. */
export function needsRefresh(session: Session, now = Date.now()): boolean {
  return session.expiresAt - now < 30_000;
}

/**
 * Trades the refresh token for new tokens, once for all concurrent callers. A refused refresh
 * (revoked, reused or expired) ends the session with a message for the sign-in screen.
 */
export function refresh(
  post: (refreshToken: string) => Promise<Response>,
): Promise<Session | null> {
  const session = current;
  if (!session) return Promise.resolve(null);
  refreshing ??= (async () => {
    try {
      const res = await post(session.refreshToken);
      if (res.ok) return signIn((await res.json()) as TokenAnswer);
      if (res.status === 401 || res.status === 422) {
        signOut("Your session has ended (you signed out elsewhere, or it expired). Please sign in again.");
      }
      return null;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}
