/**
 * Web Push on this device: the service worker at /sw.js, the browser's subscription with the
 * server's VAPID key, and the server's record of it (its id is kept in localStorage).
 */
import { api, must } from "@/shared/api/client";
import { base64UrlToBytes, sameBytes } from "./keys";

/** Whether this browser can do Web Push at all. */
export function pushSupported(): boolean {
  return typeof navigator !== "undefined" && "serviceWorker" in navigator && typeof window !== "undefined" && "PushManager" in window && "Notification" in window;
}

/** The browser's permission for notifications. */
export function permission(): NotificationPermission {
  return "Notification" in window ? Notification.permission : "denied";
}

interface Stored {
  id: string;
  endpoint: string;
}

const storageKey = (userId: string) => `telemed.push.${userId}`;

function load(userId: string): Stored | null {
  try {
    const raw = localStorage.getItem(storageKey(userId));
    return raw ? (JSON.parse(raw) as Stored) : null;
  } catch {
    return null;
  }
}

async function browserSubscription(): Promise<PushSubscription | null> {
  const reg = await navigator.serviceWorker.getRegistration("/");
  return (await reg?.pushManager.getSubscription()) ?? null;
}

/** Whether this user's push subscription on this device is recorded and still alive. */
export async function isSubscribed(userId: string): Promise<boolean> {
  const stored = load(userId);
  if (!stored) return false;
  const sub = await browserSubscription();
  return sub?.endpoint === stored.endpoint;
}

/** Thrown when the person (or the browser) refuses notifications. */
export class PermissionRefused extends Error {
  constructor(readonly state: NotificationPermission) {
    super(state === "denied" ? "Notifications are blocked for this site" : "Permission was not given");
  }
}

/** Asks for permission, subscribes with the server's key and records the subscription. */
export async function enablePush(userId: string, publicKey: string): Promise<void> {
  const granted = await Notification.requestPermission();
  if (granted !== "granted") throw new PermissionRefused(granted);
  const key = base64UrlToBytes(publicKey);
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameBytes(sub.options.applicationServerKey, key)) {
    // The server's key changed: the old subscription cannot carry its messages.
    await sub.unsubscribe();
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = sub.toJSON();
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) throw new Error("The browser gave an incomplete subscription");
  const created = must(
    await api.POST("/api/v1/notifications/push-subscriptions", {
      body: { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } },
    }),
  );
  localStorage.setItem(storageKey(userId), JSON.stringify({ id: created.id, endpoint: json.endpoint } satisfies Stored));
}

/** Removes the server's record (if any) and the browser's subscription. */
export async function disablePush(userId: string): Promise<void> {
  const stored = load(userId);
  if (stored) {
    const res = await api.DELETE("/api/v1/notifications/push-subscriptions/{id}", { params: { path: { id: stored.id } } });
    if (!res.response.ok && res.response.status !== 404) must(res);
    localStorage.removeItem(storageKey(userId));
  }
  await (await browserSubscription())?.unsubscribe();
}
