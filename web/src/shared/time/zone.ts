/**
 * Instants and wall-clock times in IANA zones, with the platform's Intl data only. Instants
 * are always shown with their zone.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function parts(instant: Date, timeZone: string): Record<string, string> {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  const out: Record<string, string> = {};
  for (const p of f.formatToParts(instant)) out[p.type] = p.value;
  return out;
}

/** The zone's offset from UTC at `instant`, in minutes (east positive). */
export function offsetMinutes(instant: Date, timeZone: string): number {
  const p = parts(instant, timeZone);
  const asUtc = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!);
  return Math.round((asUtc - Math.floor(instant.getTime() / 1000) * 1000) / 60_000);
}

/** The local date (YYYY-MM-DD) of `instant` in `timeZone`. */
export function localDate(instant: Date | string, timeZone: string): string {
  const p = parts(new Date(instant), timeZone);
  return `${p.year}-${p.month}-${p.day}`;
}

/** The local time (HH:MM) of `instant` in `timeZone`. */
export function localTime(instant: Date | string, timeZone: string): string {
  const p = parts(new Date(instant), timeZone);
  return `${p.hour}:${p.minute}`;
}

/** Thrown when a wall-clock time does not exist in a zone (a DST gap). */
export class NonexistentLocalTime extends Error {}

/**
 * The instant of a wall-clock `date` (YYYY-MM-DD) and `time` (HH:MM) in `timeZone`. In an
 * overlap (clocks turned back) the earlier instant; in a gap, NonexistentLocalTime.
 */
export function zonedToInstant(date: string, time: string, timeZone: string): Date {
  const [y, mo, d] = date.split("-").map(Number) as [number, number, number];
  const [h, mi] = time.split(":").map(Number) as [number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  const candidates = new Set<number>();
  for (const probe of [wall - 86_400_000, wall, wall + 86_400_000]) {
    candidates.add(wall - offsetMinutes(new Date(probe), timeZone) * 60_000);
  }
  const matches = [...candidates]
    .filter((t) => localDate(new Date(t), timeZone) === date && localTime(new Date(t), timeZone) === time)
    .sort((a, b) => a - b);
  if (matches.length === 0) throw new NonexistentLocalTime(`${date} ${time} does not exist in ${timeZone}`);
  return new Date(matches[0]!);
}

/** "Mon 7 Dec 2026, 09:30 (Asia/Kolkata)": an instant for people, always with its zone. */
export function formatInstant(instant: Date | string, timeZone: string): string {
  const text = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(instant));
  return `${text} (${timeZone})`;
}

/** "09:30–10:00 (Asia/Kolkata)": a range on one day. */
export function formatTimeRange(start: Date | string, end: Date | string, timeZone: string): string {
  return `${localTime(start, timeZone)}–${localTime(end, timeZone)} (${timeZone})`;
}

/** "Mon 7 Dec": a local date's label. */
export function formatDay(date: string): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", weekday: "short", day: "numeric", month: "short" }).format(
    new Date(Date.UTC(y, m - 1, d)),
  );
}

/** `date` plus `days` (YYYY-MM-DD arithmetic, no zone involved). */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** Minutes as "1 h 05 min" / "12 min". */
export function formatDuration(minutes: number): string {
  const m = Math.max(0, Math.floor(minutes));
  return m >= 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min` : `${m} min`;
}

/** The browser's own zone (a default for sign-up). */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
