/**
 * The audit screens' pure logic: filters in the address bar, who acted, exact instants.
 * No DOM and no API here, so it is unit-tested in node.
 */
import type { Schemas } from "@/shared/api/client";

export type AuditEvent = Schemas["StoredEvent"];
export type AccessEntry = Schemas["AccessEntry"];

/** Rows per page of both logs. */
export const PAGE_SIZE = 50;

/**
 * The aggregate types the server writes (the domain crate's `AGGREGATE_TYPE`s), with a label
 * for people. Types seen in loaded events but missing here are added to the select too.
 */
export const AGGREGATE_TYPES: readonly { value: string; label: string }[] = [
  { value: "appointment", label: "Appointment" },
  { value: "call", label: "Call" },
  { value: "chat_message", label: "Chat message" },
  { value: "chat_read", label: "Chat read receipt" },
  { value: "doctor", label: "Doctor" },
  { value: "doctor_day", label: "Doctor's day (availability)" },
  { value: "patient", label: "Patient" },
  { value: "staff", label: "Staff member" },
];

/** The select's options: "All types", the known types, then any other type seen. */
export function aggregateTypeOptions(seen: Iterable<string> = []): { value: string; label: string }[] {
  const known = new Set(AGGREGATE_TYPES.map((t) => t.value));
  const extra = [...new Set(seen)].filter((t) => t && !known.has(t)).sort();
  return [
    { value: "", label: "All types" },
    ...AGGREGATE_TYPES.map((t) => ({ value: t.value, label: `${t.label} (${t.value})` })),
    ...extra.map((t) => ({ value: t, label: t })),
  ];
}

/** A label for an aggregate type ("Appointment"), or the raw type when unknown. */
export function aggregateLabel(type: string): string {
  return AGGREGATE_TYPES.find((t) => t.value === type)?.label ?? type;
}

/** Filters of the event log, as in `/audit?aggregate_type=&aggregate_id=`. */
export interface EventFilters {
  aggregate_type: string;
  aggregate_id: string;
}

/** Filters of the access log, as in `/audit/access?patient_id=`. */
export interface AccessFilters {
  patient_id: string;
}

/** The event log's filters read from the address bar's query (trimmed, missing = ""). */
export function eventFiltersOf(query: Record<string, string | undefined>): EventFilters {
  return { aggregate_type: (query.aggregate_type ?? "").trim(), aggregate_id: (query.aggregate_id ?? "").trim() };
}

/** The access log's filters read from the address bar's query. */
export function accessFiltersOf(query: Record<string, string | undefined>): AccessFilters {
  return { patient_id: (query.patient_id ?? "").trim() };
}

/** `path` with the non-empty filters as its query string, in a stable order. */
export function withQuery(path: string, filters: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    const v = value.trim();
    if (v) params.set(key, v);
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** The non-empty filters only (the API's query parameters). */
export function presentFilters<F extends object>(filters: F): Partial<F> {
  const out: Partial<F> = {};
  for (const [key, value] of Object.entries(filters) as [keyof F & string, unknown][]) {
    if (typeof value === "string" && value.trim()) out[key] = value.trim() as F[keyof F & string];
  }
  return out;
}

/** Whether a live event belongs in a view with these filters. */
export function matchesFilters(event: Pick<AuditEvent, "aggregate_type" | "aggregate_id">, filters: EventFilters): boolean {
  if (filters.aggregate_type && event.aggregate_type !== filters.aggregate_type) return false;
  if (filters.aggregate_id && event.aggregate_id !== filters.aggregate_id) return false;
  return true;
}

/** Who caused an event, from its metadata (`actor_id`, `actor_role`, `command`, `request_id`). */
export interface Actor {
  id: string | null;
  role: string | null;
  command: string | null;
  requestId: string | null;
}

/** The actor of an event's metadata; fields missing or not strings become null. */
export function actorOf(metadata: unknown): Actor {
  const m = (typeof metadata === "object" && metadata !== null ? metadata : {}) as Record<string, unknown>;
  const text = (key: string) => (typeof m[key] === "string" && m[key] ? (m[key] as string) : null);
  return { id: text("actor_id"), role: text("actor_role"), command: text("command"), requestId: text("request_id") };
}

/** Pretty JSON for people (2 spaces); `undefined` shows as "null". */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

const precise = new Map<string, Intl.DateTimeFormat>();

/** "Tue, 1 Dec 2026, 20:08:10 (Asia/Kolkata)": an instant to the second, with its zone. */
export function formatPrecise(instant: string | Date, timeZone: string): string {
  let f = precise.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    precise.set(timeZone, f);
  }
  return `${f.format(new Date(instant))} (${timeZone})`;
}

/** "1 new event" / "3 new events". */
export function countText(n: number, what = "event"): string {
  return `${n} new ${what}${n === 1 ? "" : "s"}`;
}
