/*
 * Telemed's service worker: shows Web Push notifications and opens the inbox when one is
 * clicked. Push payloads are `{id, kind, title: "Telemed", body, appointment_id}` and carry no
 * health information. No fetch handler: the app is never served from a cache.
 */
const INBOX = "/notifications";

self.addEventListener("install", () => {
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("push", (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch {
      data = { body: event.data.text() };
    }
  }
  const title = typeof data.title === "string" && data.title ? data.title : "Telemed";
  const body = typeof data.body === "string" && data.body ? data.body : "You have a new notification.";
  event.waitUntil(
    self.registration.showNotification(title, {
      body,
      icon: "/favicon.svg",
      badge: "/favicon.svg",
      // One notification per inbox item, even if a push is delivered twice.
      tag: typeof data.id === "string" ? data.id : undefined,
      data: { url: INBOX, id: data.id, appointment_id: data.appointment_id },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openInbox());
});

async function openInbox() {
  const url = new URL(INBOX, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const mine = windows.filter((c) => new URL(c.url).origin === self.location.origin);
  const already = mine.find((c) => new URL(c.url).pathname === INBOX);
  if (already) return already.focus();
  const tab = mine.find((c) => c.focused) ?? mine[0];
  if (tab) {
    // The app routes itself (see NotificationBadge), keeping the tab's state and session.
    tab.postMessage({ type: "telemed:open", url: INBOX });
    return tab.focus();
  }
  return self.clients.openWindow(url);
}
