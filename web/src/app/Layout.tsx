import type { ComponentChildren } from "preact";
import { useLocation } from "preact-iso";
import { NotificationBadge } from "@/features/notifications";
import { api } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { signOut, type Role } from "@/shared/auth/session";
import { useLiveStatus } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";

const nav: Record<Role, { href: string; label: string }[]> = {
  patient: [
    { href: paths.appointments, label: "My appointments" },
    { href: paths.doctors, label: "Find a doctor" },
  ],
  doctor: [
    { href: paths.dashboard, label: "Dashboard" },
    { href: paths.availability, label: "Availability" },
  ],
  auditor: [
    { href: paths.audit, label: "Event log" },
    { href: paths.accessLog, label: "Access log" },
  ],
  admin: [
    { href: paths.audit, label: "Event log" },
    { href: paths.accessLog, label: "Access log" },
    { href: paths.doctors, label: "Doctors" },
  ],
};

/** Header with the role's navigation, the live status and the notifications badge. */
export function Layout({ children }: { children: ComponentChildren }) {
  const session = useSession();
  const { path, route } = useLocation();
  const status = useLiveStatus();
  const links = session ? nav[session.user.role] : [];
  async function leave() {
    await api.POST("/api/v1/auth/logout").catch(() => undefined);
    signOut();
    route(paths.signIn);
  }
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="app-header">
        <a class="brand" href={paths.home}>
          <img src="/favicon.svg" alt="" width={28} height={28} /> Telemed
        </a>
        {session && (
          <nav aria-label="Main">
            <ul>
              {links.map((l) => (
                <li key={l.href}>
                  <a href={l.href} aria-current={path === l.href ? "page" : undefined}>
                    {l.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <div class="header-tools">
          {session ? (
            <>
              <span class={`live-status ${status}`} role="status" title={`Live updates: ${status}`}>
                <span class="dot" aria-hidden="true" />
                <span class="visually-hidden">Live updates: </span>
                {status === "connected" ? "Live" : status === "connecting" ? "Connecting…" : "Offline"}
              </span>
              <NotificationBadge />
              <a href={paths.profile} aria-current={path === paths.profile ? "page" : undefined}>
                {session.user.name}
              </a>
              <button type="button" class="button link" onClick={leave}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <a href={paths.signIn}>Sign in</a>
              <a href={paths.signUp}>Sign up</a>
            </>
          )}
          <a href={paths.docs}>API</a>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
