/** The availability feature's calls to the API. */
import { api, must, type Schemas } from "@/shared/api/client";
import type { Window, WeeklyBody } from "./logic";

/** The answer of the windows list. */
export type WindowList = Schemas["WindowList"];

/**
 * A doctor's windows from local date `from` (inclusive) to `to` (exclusive), in the doctor's
 * zone; windows overlapping the range, by start.
 */
export async function listWindows(doctorId: string, from: string, to: string): Promise<WindowList> {
  return must(
    await api.GET("/api/v1/doctors/{doctor_id}/availability/windows", {
      params: { path: { doctor_id: doctorId }, query: { from, to } },
    }),
  );
}

/** The doctor's profile (for the zone the availability is kept in). */
export async function loadDoctor(doctorId: string): Promise<Schemas["DoctorView"]> {
  return must(await api.GET("/api/v1/doctors/{doctor_id}", { params: { path: { doctor_id: doctorId } } }));
}

/** Opens one window. */
export async function openWindow(doctorId: string, window: { start: string; end: string }): Promise<Schemas["OpenedWindows"]> {
  return must(await api.POST("/api/v1/doctors/{doctor_id}/availability", { params: { path: { doctor_id: doctorId } }, body: window }));
}

/** Opens the windows of a weekly template. */
export async function openWeekly(doctorId: string, body: WeeklyBody): Promise<Schemas["OpenedWindows"]> {
  return must(await api.POST("/api/v1/doctors/{doctor_id}/availability", { params: { path: { doctor_id: doctorId } }, body }));
}

/** Moves or resizes a window within its day. */
export async function changeWindow(doctorId: string, windowId: string, window: { start: string; end: string }): Promise<Window> {
  return must(
    await api.PUT("/api/v1/doctors/{doctor_id}/availability/{window_id}", {
      params: { path: { doctor_id: doctorId, window_id: windowId } },
      body: window,
    }),
  );
}

/** Removes a window that holds no appointment. */
export async function removeWindow(doctorId: string, windowId: string): Promise<void> {
  must(
    await api.DELETE("/api/v1/doctors/{doctor_id}/availability/{window_id}", {
      params: { path: { doctor_id: doctorId, window_id: windowId } },
    }),
  );
}

/** The doctor's buffers and slot interval (`slot_interval_minutes: null`: back to back). */
export type SlotPolicy = Schemas["SlotPolicyRequest"];

/** Sets the signed-in doctor's buffers and slot interval; answers their public profile. */
export async function setSlotPolicy(body: SlotPolicy): Promise<Schemas["DoctorView"]> {
  return must(await api.PUT("/api/v1/doctors/me/scheduling", { body }));
}

/** A time off with the open appointments inside it. */
export type TimeOff = Schemas["TimeOffView"];

/** The signed-in doctor's time off that has not ended. */
export async function listTimeOff(): Promise<Schemas["TimeOffList"]> {
  return must(await api.GET("/api/v1/doctors/me/time-off"));
}

/** Blocks time off. */
export async function addTimeOff(body: Schemas["TimeOffRequest"]): Promise<TimeOff> {
  return must(await api.POST("/api/v1/doctors/me/time-off", { body }));
}

/** Lifts time off: its time is bookable again. */
export async function removeTimeOff(id: string): Promise<void> {
  must(await api.DELETE("/api/v1/doctors/me/time-off/{time_off_id}", { params: { path: { time_off_id: id } } }));
}

/** Cancels an appointment that falls in time off, with a reason the patient sees. */
export async function cancelAppointment(id: string, reason: string): Promise<void> {
  must(await api.POST("/api/v1/appointments/{id}/cancel", { params: { path: { id } }, body: { reason } }));
}
