import { api, must } from "@/shared/api/client";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { TimeRange } from "@/shared/ui/Instant";
import { Dialog } from "@/shared/ui/Dialog";
import type { Appointment } from "./model";

/** Asks why, then cancels the appointment. */
export function CancelDialog({
  appointment,
  doctor,
  zone,
  onClose,
  onCancelled,
}: {
  appointment: Appointment;
  doctor: string;
  zone: string;
  onClose: () => void;
  onCancelled: (a: Appointment) => void;
}) {
  const form = useForm({ reason: "" });
  async function cancel({ reason }: { reason: string }) {
    const done = must(
      await api.POST("/api/v1/appointments/{id}/cancel", {
        params: { path: { id: appointment.id } },
        body: { reason: reason.trim() },
      }),
    );
    onCancelled(done);
  }
  return (
    <Dialog labelledBy="cancel-title" onClose={onClose}>
      <div class="appointments-dialog">
        <h2 id="cancel-title">Cancel this appointment?</h2>
        <p>
          With <strong>{doctor}</strong>
          <br />
          <TimeRange start={appointment.start} end={appointment.end} zone={zone} />
        </p>
        <form onSubmit={form.submit(cancel)}>
          <Field
            form={form}
            name="reason"
            label="Reason for cancelling"
            hint={`${doctor} sees this. The time becomes free for other patients.`}
            schema="CancelRequest"
            multiline
          />
          <FormErrors form={form} />
          <div class="appointments-actions">
            <Submit form={form}>Confirm cancellation</Submit>
            <button type="button" class="button secondary" onClick={onClose}>
              Keep appointment
            </button>
          </div>
        </form>
      </div>
    </Dialog>
  );
}
