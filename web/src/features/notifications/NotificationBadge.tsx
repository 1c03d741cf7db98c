import { useEffect } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { useLiveEvent, useLiveStatus } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";
import { unread, useUnread } from "./store";
import "./notifications.css";

/** Loads the unread count from the server into the store. */
async function loadCount() {
  try {
    const page = must(await api.GET("/api/v1/notifications", { params: { query: { limit: 1 } } }));
    unread.set(page.unread_count);
  } catch {
    // The badge stays as it was; the inbox shows errors.
  }
}

/** The header's link to the inbox with the unread count, kept current by live events. */
export function NotificationBadge() {
  const session = useSession();
  const status = useLiveStatus();
  const count = useUnread();
  const { path, route } = useLocation();
  const userId = session?.user.id;

  // A new user (or none): forget the old count and load theirs.
  useEffect(() => {
    unread.reset();
    if (userId) void loadCount();
  }, [userId]);
  // After a reconnection, events may have been missed: ask again.
  useEffect(() => {
    if (userId && status === "connected") void loadCount();
  }, [status]);

  useLiveEvent("notification", (data: { id?: string } | null) => {
    if (userId && data?.id) unread.arrived(data.id);
  });

  // A click on a push notification asks an open tab to show the inbox (see public/sw.js).
  useEffect(() => {
    if (!("serviceWorker" in navigator)) return;
    const onMessage = (e: MessageEvent) => {
      const msg = e.data as { type?: string; url?: string } | null;
      if (msg?.type === "telemed:open" && typeof msg.url === "string" && msg.url.startsWith("/") && !msg.url.startsWith("//")) route(msg.url);
    };
    navigator.serviceWorker.addEventListener("message", onMessage);
    return () => navigator.serviceWorker.removeEventListener("message", onMessage);
  }, []);

  if (!session) return null;
  const label = count === null ? "Notifications" : `Notifications, ${count} unread`;
  return (
    <a
      href={paths.notifications}
      class="notif-badge"
      aria-label={label}
      title={label}
      aria-current={path === paths.notifications ? "page" : undefined}
    >
      <svg class="notif-bell" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">
        <path
          fill="currentColor"
          d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
        />
      </svg>
      {count !== null && count > 0 && (
        <span class="badge count notif-count" aria-hidden="true">
          {count > 99 ? "99+" : count}
        </span>
      )}
    </a>
  );
}
