/** Pure dashboard logic: what is new, what each appointment allows, and minutes in words. */
import { formatDay, formatDuration, localDate, localTime } from "@/shared/time/zone";

/** The fields of an appointment the dashboard decides on. */
export interface Appt {
  id: string;
  start: string;
  end: string;
  status: string;
}

/** Requests in `next` whose ids were not known; none on the first load (`known` null). */
export function newRequests<T extends { id: string }>(known: ReadonlySet<string> | null, next: readonly T[]): T[] {
  return known ? next.filter((a) => !known.has(a.id)) : [];
}

/** "Mon 7 Dec 09:30": an appointment's start for names and announcements (zone named elsewhere). */
export function shortWhen(start: string, zone: string): string {
  return `${formatDay(localDate(start, zone))} ${localTime(start, zone)}`;
}

/** What the doctor may do with an appointment at `now`. */
export function actionsFor(a: Appt, now: number): { room: boolean; reschedule: boolean; finish: boolean } {
  const started = Date.parse(a.start) <= now;
  const over = Date.parse(a.end) <= now;
  const open = a.status === "pending" || a.status === "confirmed" || a.status === "rescheduled";
  return {
    room: a.status === "confirmed" && !over,
    reschedule: open && !started,
    finish: a.status === "confirmed" && started,
  };
}

/** A status in words, from the doctor's side (`awaitingBy`: who must confirm next). */
export function statusLabel(status: string, awaitingBy?: string | null): string {
  switch (status) {
    case "pending":
    case "rescheduled": {
      const what = status === "pending" ? "Requested" : "Rescheduled";
      return awaitingBy === "patient" ? `${what}, awaiting the patient` : `${what}, awaiting your confirmation`;
    }
    case "confirmed":
      return "Confirmed";
    case "cancelled":
      return "Cancelled";
    case "completed":
      return "Completed";
    case "no_show":
      return "No-show";
    default:
      return status;
  }
}

/** One day's load as the dashboard sends it. */
export interface DayLoad {
  date: string;
  free_minutes: number;
  booked_minutes: number;
}

/** "2 h 30 min free, 30 min booked" or "No availability". */
export function loadText(day: DayLoad): string {
  if (day.free_minutes <= 0 && day.booked_minutes <= 0) return "No availability";
  return `${formatDuration(day.free_minutes)} free, ${formatDuration(day.booked_minutes)} booked`;
}

/** The booked share of a day's open time, 0–100 (rounded). */
export function bookedPercent(day: DayLoad): number {
  const total = day.free_minutes + day.booked_minutes;
  return total > 0 ? Math.round((day.booked_minutes * 100) / total) : 0;
}

/** The widths of a day's bar, relative to the busiest day of the week (0–100). */
export function barWidths(day: DayLoad, week: readonly DayLoad[]): { booked: number; free: number } {
  const most = Math.max(0, ...week.map((d) => d.free_minutes + d.booked_minutes));
  if (most === 0) return { booked: 0, free: 0 };
  return { booked: (day.booked_minutes * 100) / most, free: (day.free_minutes * 100) / most };
}

/** The week's totals. */
export function weekTotals(week: readonly DayLoad[]): { free: number; booked: number } {
  return week.reduce((t, d) => ({ free: t.free + d.free_minutes, booked: t.booked + d.booked_minutes }), { free: 0, booked: 0 });
}

/** "New request from Ada for Mon 7 Dec 09:30 (Europe/Berlin)". */
export function requestAnnouncement(a: Appt, name: string, zone: string): string {
  const what = a.status === "rescheduled" ? "Reschedule request" : "New request";
  return `${what} from ${name} for ${shortWhen(a.start, zone)} (${zone})`;
}
