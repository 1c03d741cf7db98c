/** The inbox's pure logic: live events as items, merging pages, links. */
import type { Schemas } from "@/shared/api/client";
import { paths } from "@/shared/paths";

export type Item = Schemas["NotificationView"];

/** The `notification` live event's data. */
export interface LiveNotification {
  id: string;
  kind: string;
  title: string;
  body: string;
  appointment_id?: string | null;
  at: string;
}

/** A live event as an (unread) inbox item; null if it is not a notification. */
export function fromLive(data: unknown): Item | null {
  const n = data as Partial<LiveNotification> | null;
  if (!n || typeof n.id !== "string" || typeof n.title !== "string") return null;
  return {
    id: n.id,
    kind: n.kind ?? "",
    title: n.title,
    body: n.body ?? "",
    appointment_id: n.appointment_id ?? null,
    at: n.at ?? new Date().toISOString(),
    read: false,
  };
}

/** `items` plus `more` without repeating an id, newest first. */
export function mergeItems(items: readonly Item[], more: readonly Item[]): Item[] {
  const seen = new Set<string>();
  const out: Item[] = [];
  for (const item of [...items, ...more]) {
    if (seen.has(item.id)) continue;
    seen.add(item.id);
    out.push(item);
  }
  return out.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
}

/** The items with `id` (or every one, without `id`) marked read. */
export function markRead(items: readonly Item[], id?: string): Item[] {
  return items.map((i) => (id === undefined || i.id === id ? (i.read ? i : { ...i, read: true }) : i));
}

/** Where a notification leads: the conversation for a message, else the role's appointments. */
export function linkFor(item: Pick<Item, "kind" | "appointment_id">, role: string): { href: string; label: string } | null {
  if (!item.appointment_id) return null;
  if (item.kind === "message") return { href: paths.room(item.appointment_id), label: "Open the conversation" };
  if (role === "doctor") return { href: paths.dashboard, label: "Open your dashboard" };
  if (role === "patient") return { href: paths.appointments, label: "See your appointments" };
  return null;
}
