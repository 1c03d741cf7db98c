/** Appointments as the patient sees them: lists, live updates, and words for each change. */
import type { Schemas } from "@/shared/api/client";
import { formatInstant } from "@/shared/time/zone";

export type Appointment = Schemas["AppointmentView"];

/** The patient's appointments: upcoming (soonest first) and past (latest first). */
export interface Lists {
  upcoming: Appointment[];
  past: Appointment[];
}

const OPEN = new Set(["pending", "confirmed", "rescheduled"]);

/** Whether an appointment can still happen (and be moved or cancelled). */
export function isOpen(a: Pick<Appointment, "status">): boolean {
  return OPEN.has(a.status);
}

/** Whether the patient is asked to accept a time the doctor proposed. */
export function awaitsPatient(a: Pick<Appointment, "status" | "awaiting_confirmation_by">): boolean {
  return a.status === "rescheduled" && a.awaiting_confirmation_by === "patient";
}

/** The appointment with `id`, wherever it is. */
export function find(lists: Lists, id: string): Appointment | undefined {
  return lists.upcoming.find((a) => a.id === id) ?? lists.past.find((a) => a.id === id);
}

/**
 * The lists with `next` in its place: upcoming while open and not over, else past. An update
 * older than what is shown (by `updated_at`) changes nothing.
 */
export function applyUpdate(lists: Lists, next: Appointment, now = Date.now()): Lists {
  const current = find(lists, next.id);
  if (current && Date.parse(current.updated_at) > Date.parse(next.updated_at)) return lists;
  const others = (l: Appointment[]) => l.filter((a) => a.id !== next.id);
  const upcoming = others(lists.upcoming);
  const past = others(lists.past);
  if (isOpen(next) && Date.parse(next.end) > now) upcoming.push(next);
  else past.push(next);
  upcoming.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  past.sort((a, b) => Date.parse(b.start) - Date.parse(a.start));
  return { upcoming, past };
}

/** The status badge's words. */
export function statusLabel(status: string): string {
  switch (status) {
    case "pending":
      return "Requested";
    case "confirmed":
      return "Confirmed";
    case "rescheduled":
      return "New time proposed";
    case "cancelled":
      return "Cancelled";
    case "completed":
      return "Completed";
    case "no_show":
      return "Missed";
    default:
      return status;
  }
}

/** One sentence on where an appointment stands, for the patient. */
export function statusDetail(a: Appointment, doctor: string): string {
  switch (a.status) {
    case "pending":
      return `Waiting for ${doctor} to confirm.`;
    case "rescheduled":
      return awaitsPatient(a)
        ? `${doctor} proposed this new time. Accept it, choose another time, or cancel.`
        : `Waiting for ${doctor} to confirm the new time.`;
    case "confirmed":
      return "Confirmed. Check in to the waiting room a few minutes before the start.";
    case "completed":
      return "This consultation took place.";
    case "no_show":
      return `${doctor} marked this appointment as missed.`;
    default:
      return "";
  }
}

/**
 * What a live change means, in a sentence for the patient ("Dr Grey confirmed your appointment
 * on …"). `before` is the appointment as it was shown.
 */
export function describeChange(
  eventType: string,
  a: Appointment,
  before: Appointment | undefined,
  doctor: string,
  zone: string,
): string {
  const when = formatInstant(a.start, zone);
  switch (eventType) {
    case "AppointmentRequested":
      return `Your request to see ${doctor} on ${when} was sent.`;
    case "AppointmentConfirmed":
      return before && awaitsPatient(before)
        ? `You accepted the new time with ${doctor}: ${when}.`
        : `${doctor} confirmed your appointment on ${when}.`;
    case "AppointmentRescheduled":
      return awaitsPatient(a)
        ? `${doctor} moved your appointment to ${when}. Please accept the new time or choose another.`
        : `Your appointment with ${doctor} was moved to ${when}. Waiting for ${doctor} to confirm.`;
    case "AppointmentCancelled":
      return a.cancellation && a.cancellation.by !== a.patient_id
        ? `${doctor} cancelled your appointment on ${when}${a.cancellation.reason ? `: “${a.cancellation.reason}”` : ""}.`
        : `You cancelled your appointment with ${doctor} on ${when}.`;
    case "AppointmentCompleted":
      return `Your consultation with ${doctor} on ${when} is complete.`;
    case "AppointmentMarkedNoShow":
      return `${doctor} marked your appointment on ${when} as missed.`;
    default:
      return `Your appointment with ${doctor} on ${when} changed.`;
  }
}
