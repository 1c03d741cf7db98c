/**
 * Pure availability logic: weekly rows to the request body, wall-clock windows to instants,
 * windows grouped by the doctor's local date, and the server's conflicts in plain words.
 */
import { ProblemError, type Problem } from "@/shared/api/problem";
import { addDays, localDate, NonexistentLocalTime, zonedToInstant } from "@/shared/time/zone";

export type Weekday = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";

/** The weekdays, Monday first, with their names. */
export const WEEKDAYS: readonly { value: Weekday; label: string }[] = [
  { value: "mon", label: "Monday" },
  { value: "tue", label: "Tuesday" },
  { value: "wed", label: "Wednesday" },
  { value: "thu", label: "Thursday" },
  { value: "fri", label: "Friday" },
  { value: "sat", label: "Saturday" },
  { value: "sun", label: "Sunday" },
];

/** One row of the weekly template form. */
export interface WeeklyRow {
  /** Stable key for the list (rows are added and removed). */
  key: number;
  weekday: Weekday;
  start: string;
  end: string;
}

/** The body of a weekly template request. */
export interface WeeklyBody {
  weekly: { weekday: Weekday; start: string; end: string }[];
  from: string;
  to: string;
}

/** An end time of "00:00" means midnight at the end of the day ("24:00" for the server). */
export function endOfDay(time: string): string {
  return time === "00:00" ? "24:00" : time;
}

/** The weekly template request: every row in order (so the server's `weekly[i]` errors match rows). */
export function weeklyBody(rows: readonly WeeklyRow[], from: string, to: string): WeeklyBody {
  return {
    weekly: rows.map((r) => ({ weekday: r.weekday, start: r.start, end: endOfDay(r.end) })),
    from,
    to,
  };
}

/** A window as the server answers it. */
export interface Window {
  id: string;
  start: string;
  end: string;
}

/**
 * The instants of a window on `date` from `start` to `end` (HH:MM, doctor's zone); an end of
 * 00:00 is midnight at the end of that day. A time lost to a daylight-saving change is
 * reported against its field, as the server reports its own errors.
 */
export function windowInstants(date: string, start: string, end: string, zone: string): { start: string; end: string } {
  const errors: { field: string; message: string }[] = [];
  const at = (day: string, time: string, field: string) => {
    try {
      return zonedToInstant(day, time, zone).toISOString();
    } catch (e) {
      if (!(e instanceof NonexistentLocalTime)) throw e;
      errors.push({ field, message: `${time} does not exist on ${date} in ${zone} (the clocks skip it); choose another time` });
      return "";
    }
  };
  const s = at(date, start, "start");
  const e = end === "00:00" || end === "24:00" ? at(addDays(date, 1), "00:00", "end") : at(date, end, "end");
  if (!errors.length && e <= s) errors.push({ field: "end", message: "End must be after the start (00:00 means midnight at the end of the day)" });
  if (errors.length) {
    throw new ProblemError({ status: 422, title: "Check the times", errors });
  }
  return { start: s, end: e };
}

/** One local day and its windows. */
export interface DayWindows {
  date: string;
  windows: Window[];
}

/** Every local date from `from` to `to` (inclusive), each with the windows starting on it, by start. */
export function groupByLocalDate(windows: readonly Window[], zone: string, from: string, to: string): DayWindows[] {
  const days: DayWindows[] = [];
  const index = new Map<string, DayWindows>();
  for (let d = from; d <= to; d = addDays(d, 1)) {
    const day = { date: d, windows: [] };
    days.push(day);
    index.set(d, day);
  }
  const sorted = [...windows].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  for (const w of sorted) index.get(localDate(w.start, zone))?.windows.push(w);
  return days;
}

/** The Monday of `date`'s week (YYYY-MM-DD). */
export function mondayOf(date: string): string {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday
  return addDays(date, -((weekday + 6) % 7));
}

/** The weekday of a local date. */
export function weekdayOf(date: string): Weekday {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  return WEEKDAYS[(new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7]!.value;
}

/** A window's length in minutes. */
export function windowMinutes(w: { start: string; end: string }): number {
  return Math.round((Date.parse(w.end) - Date.parse(w.start)) / 60_000);
}

/** The server's 409 codes in plain words, with what to do about them. */
export function explainConflict(problem: Problem): { title: string; detail: string } | undefined {
  if (problem.status !== 409) return undefined;
  const code = problem.code ?? problem.type?.split("/").pop();
  switch (code) {
    case "would_drop_appointment":
      return {
        title: "A booked appointment is in the way",
        detail:
          "This change would leave a booked appointment outside your availability. Keep the window around it, or cancel or reschedule that appointment first.",
      };
    case "window_has_appointment":
      return {
        title: "This window holds a booked appointment",
        detail: "It cannot be deleted while an appointment is booked in it. Cancel or reschedule that appointment first.",
      };
    case "window_overlap":
      return {
        title: "Overlaps another window",
        detail: "These times overlap a window you already have. Choose other times, or edit the existing window instead.",
      };
    default:
      return { title: problem.title ?? "Conflict", detail: problem.detail ?? "The change conflicts with your calendar." };
  }
}

/** A thrown error with a 409 explained; other errors unchanged. */
export function explained(error: unknown): unknown {
  if (!(error instanceof ProblemError)) return error;
  const plain = explainConflict(error.problem);
  return plain ? new ProblemError({ ...error.problem, ...plain, errors: [] }) : error;
}

/** The day after `day` (Sunday wraps to Monday). */
export function nextWeekday(day: Weekday): Weekday {
  const i = WEEKDAYS.findIndex((d) => d.value === day);
  return WEEKDAYS[(i + 1) % 7]!.value;
}

/** Rows for Monday to Friday with `like`'s hours. */
export function fillWorkWeek(like: Pick<WeeklyRow, "start" | "end">, key: () => number): WeeklyRow[] {
  return WEEKDAYS.slice(0, 5).map((d) => ({ key: key(), weekday: d.value, start: like.start, end: like.end }));
}
