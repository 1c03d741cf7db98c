/**
 * A doctor's free slots, one week at a time, grouped by the viewer's local day, with previous
 * and next week buttons. Used by booking (features/doctors) and rescheduling
 * (features/appointments). It follows the doctor's availability live: it subscribes to
 * `doctor:{id}:availability` while shown and reloads on `availability:updated`.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, must, type Schemas } from "../api/client";
import { useLiveEvent, useLiveStatus } from "../live/hooks";
import { live } from "../live/live";
import { addDays, formatDay, localDate, localTime, NonexistentLocalTime, zonedToInstant } from "../time/zone";
import { ErrorState, Loading } from "./states";
import { useResource } from "./useResource";
import "./SlotWeek.css";

export type Slot = Schemas["Slot"];

/** How many weeks ahead the picker goes (the server books up to about six months ahead). */
export const MAX_WEEK = 26;

/** A week of local days: `first` to `last` inclusive (YYYY-MM-DD). */
export interface Week {
  first: string;
  last: string;
  days: string[];
}

/** The `offset`-th week of seven days starting on `today` (offset 0 is today's week). */
export function weekAt(today: string, offset: number): Week {
  const first = addDays(today, 7 * offset);
  const days = Array.from({ length: 7 }, (_, i) => addDays(first, i));
  return { first, last: days[6]!, days };
}

/** The week offset (from `today`) of the week holding `date`. */
export function weekOffsetOf(today: string, date: string): number {
  const [a, b] = [today, date].map((d) => Date.UTC(+d.slice(0, 4), +d.slice(5, 7) - 1, +d.slice(8, 10)));
  return Math.max(0, Math.floor((b! - a!) / (7 * 86_400_000)));
}

/** The first instant of a local day (midnight, or the end of a DST gap at midnight). */
export function startOfLocalDay(date: string, zone: string): Date {
  for (const time of ["00:00", "00:30", "01:00", "02:00"]) {
    try {
      return zonedToInstant(date, time, zone);
    } catch (e) {
      if (!(e instanceof NonexistentLocalTime)) throw e;
    }
  }
  throw new NonexistentLocalTime(`${date} has no start in ${zone}`);
}

/** The instants bounding a week in `zone`, as the API's `from` and `to`. */
export function weekBounds(week: Week, zone: string): { from: string; to: string } {
  return {
    from: startOfLocalDay(week.first, zone).toISOString(),
    to: startOfLocalDay(addDays(week.last, 1), zone).toISOString(),
  };
}

/** One local day of the week and its slots, in start order. */
export interface Day {
  date: string;
  slots: Slot[];
}

/** Slots grouped by their local start date in `zone`, one entry for every day of `week`. */
export function groupByDay(slots: readonly Slot[], week: Week, zone: string): Day[] {
  const byDate = new Map<string, Slot[]>(week.days.map((d) => [d, []]));
  for (const slot of [...slots].sort((a, b) => Date.parse(a.start) - Date.parse(b.start))) {
    byDate.get(localDate(slot.start, zone))?.push(slot);
  }
  return week.days.map((date) => ({ date, slots: byDate.get(date)! }));
}

/** "Tue 1 Dec – Mon 7 Dec". */
export function weekLabel(week: Week): string {
  return `${formatDay(week.first)} – ${formatDay(week.last)}`;
}

/** "Wed 2 Dec, 19:30–20:00 (Asia/Kolkata)": a slot for people, with its zone. */
export function slotLabel(slot: Slot, zone: string): string {
  return `${formatDay(localDate(slot.start, zone))}, ${localTime(slot.start, zone)}–${localTime(slot.end, zone)} (${zone})`;
}

async function loadSlots(doctorId: string, from: string, to: string, zone: string, duration: number): Promise<Slot[]> {
  const answer = must(
    await api.GET("/api/v1/doctors/{doctor_id}/availability", {
      params: { path: { doctor_id: doctorId }, query: { from, to, tz: zone, duration } },
    }),
  );
  return answer.slots;
}

interface SlotWeekProps {
  doctorId: string;
  /** The viewer's zone: days and times are shown in it. */
  zone: string;
  /** Slot length in minutes. */
  duration?: number;
  /** Called when a slot is chosen; without it, slots are shown as text only. */
  onChoose?: (slot: Slot) => void;
  /** The verb of each slot's button ("Book", "Choose"). */
  action?: string;
  /** The start of the slot currently chosen, marked as pressed. */
  chosen?: string;
  /** Change it to reload the slots (after a 409 slot_unavailable). */
  reloadKey?: unknown;
}

/** The week-of-slots picker. */
export function SlotWeek({ doctorId, zone, duration = 30, onChoose, action = "Book", chosen, reloadKey }: SlotWeekProps) {
  const today = localDate(new Date(), zone);
  const [offset, setOffset] = useState(0);
  const [announce, setAnnounce] = useState("");
  const week = weekAt(today, offset);
  const key = `${doctorId}|${week.first}|${zone}|${duration}`;
  const slots = useResource(async () => {
    const { from, to } = weekBounds(week, zone);
    return { key, slots: await loadSlots(doctorId, from, to, zone, duration) };
  }, [key, reloadKey]);
  const current = slots.data?.key === key ? slots.data.slots : undefined;
  const empty = current !== undefined && current.length === 0;
  const next = useResource(async () => {
    if (!empty || offset >= MAX_WEEK) return null;
    const from = startOfLocalDay(addDays(week.last, 1), zone);
    const to = new Date(from.getTime() + 56 * 86_400_000);
    const later = await loadSlots(doctorId, from.toISOString(), to.toISOString(), zone, duration);
    return later[0] ?? null;
  }, [key, empty]);

  useAvailabilityFeed(doctorId, () => {
    void slots.reload();
    setAnnounce("Free times updated.");
  });

  const days = current && groupByDay(current, week, zone);
  const nextSlot = next.data;
  return (
    <div class="slot-week">
      <div class="row spread slot-week-nav">
        <p class="slot-week-range">
          <strong>{weekLabel(week)}</strong>
          <br />
          <span class="muted small">Times in {zone}</span>
        </p>
        <div class="slot-week-buttons">
          <button type="button" class="button secondary" disabled={offset === 0} onClick={() => setOffset(offset - 1)}>
            <span aria-hidden="true">←</span> Previous week
          </button>
          <button type="button" class="button secondary" disabled={offset >= MAX_WEEK} onClick={() => setOffset(offset + 1)}>
            Next week <span aria-hidden="true">→</span>
          </button>
        </div>
      </div>
      <p class="visually-hidden" role="status" aria-live="polite">
        {announce}
      </p>
      {slots.error ? (
        <ErrorState error={slots.error} retry={slots.reload} />
      ) : !days ? (
        <Loading what="Loading free times" />
      ) : empty ? (
        <div class="state state-empty-week">
          <p class="state-empty">No free times between {weekLabel(week)}.</p>
          {nextSlot && (
            <button
              type="button"
              class="button secondary"
              onClick={() => setOffset(weekOffsetOf(today, localDate(nextSlot.start, zone)))}
            >
              Go to the next free time: {formatDay(localDate(nextSlot.start, zone))}
            </button>
          )}
          {next.data === null && <p class="muted small">No free times in the following eight weeks either.</p>}
        </div>
      ) : (
        <ul class="slot-days" aria-label={`Free times, ${weekLabel(week)}`}>
          {days.map((day) => (
            <li key={day.date} class="slot-day">
              <h3>{formatDay(day.date)}</h3>
              {day.slots.length === 0 ? (
                <p class="muted small">No free times</p>
              ) : (
                <ul class="slot-list">
                  {day.slots.map((slot) => (
                    <li key={slot.start}>
                      {onChoose ? (
                        <button
                          type="button"
                          class="button slot"
                          aria-pressed={chosen === slot.start}
                          aria-label={`${action} ${slotLabel(slot, zone)}`}
                          onClick={() => onChoose(slot)}
                        >
                          {localTime(slot.start, zone)}
                        </button>
                      ) : (
                        <span class="slot">{localTime(slot.start, zone)}</span>
                      )}
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Subscribes to a doctor's availability while mounted (again after each reconnection). */
function useAvailabilityFeed(doctorId: string, onUpdate: () => void) {
  const status = useLiveStatus();
  const connected = status === "connected";
  const connections = useRef(0);
  const update = useRef(onUpdate);
  update.current = onUpdate;
  useEffect(() => {
    if (!connected) return;
    const topic = `doctor:${doctorId}:availability`;
    // After a reconnection, changes may have been missed: read the slots again.
    if (connections.current++ > 0) update.current();
    live.request("subscribe", { topic }).catch(() => undefined);
    return () => void live.request("unsubscribe", { topic }).catch(() => undefined);
  }, [doctorId, connected]);
  useLiveEvent("availability:updated", (data: { doctor_id?: string }) => {
    if (data?.doctor_id === doctorId) update.current();
  });
}
