import { useEffect, useState } from "preact/hooks";
import { getSession, subscribe, type Session } from "./session";

/** The current session, re-rendering on sign-in and sign-out. */
export function useSession(): Session | null {
  const [session, setSession] = useState(getSession());
  useEffect(() => subscribe(() => setSession(getSession())), []);
  return session;
}
