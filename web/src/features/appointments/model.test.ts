import { describe, expect, it } from "vitest";
import { applyUpdate, awaitsPatient, describeChange, statusDetail, type Appointment, type Lists } from "./model";

const PATIENT = "11111111-1111-4111-8111-111111111111";
const DOCTOR = "22222222-2222-4222-8222-222222222222";
const NOW = Date.parse("2026-12-01T12:00:00Z");

function appt(id: string, start: string, status: Appointment["status"] = "pending", more: Partial<Appointment> = {}): Appointment {
  const end = new Date(Date.parse(start) + 30 * 60_000).toISOString();
  return {
    id,
    doctor_id: DOCTOR,
    patient_id: PATIENT,
    start,
    end,
    status,
    reason: "cough",
    created_at: "2026-11-30T10:00:00Z",
    updated_at: "2026-11-30T10:00:00Z",
    position: "1-1",
    ...more,
  };
}

const ids = (l: Lists) => ({ upcoming: l.upcoming.map((a) => a.id), past: l.past.map((a) => a.id) });

describe("live updates of the patient's lists", () => {
  const lists: Lists = {
    upcoming: [appt("a", "2026-12-02T10:00:00Z"), appt("b", "2026-12-05T10:00:00Z")],
    past: [appt("z", "2026-11-20T10:00:00Z", "completed")],
  };

  it("replaces an appointment in place", () => {
    const next = applyUpdate(lists, appt("a", "2026-12-02T10:00:00Z", "confirmed", { updated_at: "2026-12-01T11:00:00Z" }), NOW);
    expect(ids(next)).toEqual({ upcoming: ["a", "b"], past: ["z"] });
    expect(next.upcoming[0]!.status).toBe("confirmed");
  });

  it("keeps upcoming in start order after a reschedule", () => {
    const next = applyUpdate(lists, appt("a", "2026-12-09T10:00:00Z", "rescheduled", { updated_at: "2026-12-01T11:00:00Z" }), NOW);
    expect(ids(next).upcoming).toEqual(["b", "a"]);
  });

  it("moves a cancelled appointment to past, latest first", () => {
    const next = applyUpdate(lists, appt("b", "2026-12-05T10:00:00Z", "cancelled", { updated_at: "2026-12-01T11:00:00Z" }), NOW);
    expect(ids(next)).toEqual({ upcoming: ["a"], past: ["b", "z"] });
  });

  it("adds an appointment booked elsewhere", () => {
    const next = applyUpdate(lists, appt("c", "2026-12-03T10:00:00Z"), NOW);
    expect(ids(next).upcoming).toEqual(["a", "c", "b"]);
  });

  it("ignores an update older than what is shown", () => {
    const shown = applyUpdate(lists, appt("a", "2026-12-02T10:00:00Z", "cancelled", { updated_at: "2026-12-01T11:00:00Z" }), NOW);
    const stale = applyUpdate(shown, appt("a", "2026-12-02T10:00:00Z", "confirmed", { updated_at: "2026-12-01T10:59:00Z" }), NOW);
    expect(stale).toBe(shown);
  });

  it("does not change the lists it was given", () => {
    applyUpdate(lists, appt("b", "2026-12-05T10:00:00Z", "cancelled"), NOW);
    expect(ids(lists)).toEqual({ upcoming: ["a", "b"], past: ["z"] });
  });
});

describe("words for changes", () => {
  const zone = "Asia/Kolkata";
  const start = "2026-12-07T04:00:00Z";

  it("names the doctor who confirmed, with the time in the patient's zone", () => {
    expect(describeChange("AppointmentConfirmed", appt("a", start, "confirmed"), appt("a", start), "Dr Grey", zone)).toBe(
      "Dr Grey confirmed your appointment on Mon, 7 Dec 2026, 09:30 (Asia/Kolkata).",
    );
  });

  it("asks the patient to accept a time the doctor proposed", () => {
    const moved = appt("a", start, "rescheduled", { awaiting_confirmation_by: "patient" });
    expect(awaitsPatient(moved)).toBe(true);
    expect(describeChange("AppointmentRescheduled", moved, undefined, "Dr Grey", zone)).toContain("Please accept the new time");
    expect(statusDetail(moved, "Dr Grey")).toContain("Accept it");
    const confirmed = describeChange("AppointmentConfirmed", appt("a", start, "confirmed"), moved, "Dr Grey", zone);
    expect(confirmed).toBe("You accepted the new time with Dr Grey: Mon, 7 Dec 2026, 09:30 (Asia/Kolkata).");
  });

  it("tells who cancelled and why", () => {
    const byDoctor = appt("a", start, "cancelled", { cancellation: { by: DOCTOR, reason: "ill", at: start } });
    expect(describeChange("AppointmentCancelled", byDoctor, undefined, "Dr Grey", zone)).toBe(
      "Dr Grey cancelled your appointment on Mon, 7 Dec 2026, 09:30 (Asia/Kolkata): “ill”.",
    );
    const byMe = appt("a", start, "cancelled", { cancellation: { by: PATIENT, reason: "better", at: start } });
    expect(describeChange("AppointmentCancelled", byMe, undefined, "Dr Grey", zone)).toMatch(/^You cancelled/);
  });
});
