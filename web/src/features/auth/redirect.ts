/** Where to go after signing in or up. */
import type { Role } from "@/shared/auth/session";
import { homeOf, paths } from "@/shared/paths";

/**
 * `next` if it is a path on this site (not another origin, not a protocol-relative or
 * backslash trick, not the sign-in or sign-up screens themselves); otherwise null.
 */
export function safeNext(next: string | null | undefined, origin: string): string | null {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return null;
  // Control characters are dropped by URL parsing and could hide a second slash.
  if ([...next].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return null;
  let url: URL;
  try {
    url = new URL(next, origin);
  } catch {
    return null;
  }
  if (url.origin !== new URL(origin).origin) return null;
  if (url.pathname === paths.signIn || url.pathname === paths.signUp) return null;
  return `${url.pathname}${url.search}${url.hash}`;
}

/** The screen to open after signing in: a safe `next`, else the role's home. */
export function afterSignIn(role: Role | string, next: string | null | undefined, origin: string): string {
  return safeNext(next, origin) ?? homeOf(role);
}
