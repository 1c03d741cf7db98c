import { api, must } from "@/shared/api/client";
import { toProblem } from "@/shared/api/problem";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { slotLabel, type Slot } from "@/shared/ui/SlotWeek";
import { Dialog } from "@/shared/ui/Dialog";
import type { Appointment } from "./model";

/** Asks why, then moves the appointment to the chosen slot. */
export function RescheduleDialog({
  appointment,
  slot,
  zone,
  other,
  onClose,
  onMoved,
  onTaken,
}: {
  appointment: Appointment;
  slot: Slot;
  zone: string;
  /** Who is asked to confirm the new time ("Dr Grey", "the patient"). */
  other: string;
  onClose: () => void;
  onMoved: (a: Appointment) => void;
  /** The slot was taken meanwhile (409 slot_unavailable). */
  onTaken: () => void;
}) {
  const form = useForm({ reason: "" });
  async function move({ reason }: { reason: string }) {
    try {
      onMoved(
        must(
          await api.POST("/api/v1/appointments/{id}/reschedule", {
            params: { path: { id: appointment.id } },
            body: { start: slot.start, end: slot.end, reason: reason.trim() },
          }),
        ),
      );
    } catch (e) {
      const problem = toProblem(e);
      if (problem.problem.code === "slot_unavailable") return onTaken();
      throw problem;
    }
  }
  return (
    <Dialog labelledBy="reschedule-title" onClose={onClose}>
      <div class="appointments-dialog">
        <h2 id="reschedule-title">Move the appointment?</h2>
        <p>
          New time: <strong>{slotLabel(slot, zone)}</strong>
          <br />
          <span class="small muted">{other} will be asked to confirm it.</span>
        </p>
        <form onSubmit={form.submit(move)}>
          <Field
            form={form}
            name="reason"
            label="Reason for the change"
            hint={`${other} sees this.`}
            schema="RescheduleRequest"
            multiline
          />
          <FormErrors form={form} />
          <div class="appointments-actions">
            <Submit form={form}>Move appointment</Submit>
            <button type="button" class="button secondary" onClick={onClose}>
              Back to free times
            </button>
          </div>
        </form>
      </div>
    </Dialog>
  );
}
