import { useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import { ProblemError, toProblem } from "@/shared/api/problem";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { slotLabel, type Slot } from "@/shared/ui/SlotWeek";
import { Dialog } from "@/shared/ui/Dialog";
import { keepIdempotencyKey, newIdempotencyKey } from "./doctorText";
import { doctorTitle } from "@/shared/people";

type Appointment = Schemas["AppointmentView"];

interface Props {
  doctor: Schemas["DoctorView"];
  slot: Slot;
  zone: string;
  onClose: () => void;
  onBooked: (appointment: Appointment) => void;
  /** The slot was taken meanwhile (409 slot_unavailable). */
  onTaken: () => void;
}

/**
 * Books a slot with a reason. The Idempotency-Key is made when the dialog opens and kept while
 * the outcome is unknown (network error, 5xx), so a double click or a retry books once.
 */
export function BookingDialog({ doctor, slot, zone, onClose, onBooked, onTaken }: Props) {
  const [key, setKey] = useState(newIdempotencyKey);
  const form = useForm({ reason: "" });
  const when = slotLabel(slot, zone);
  const title = doctorTitle(doctor.name);

  async function book({ reason }: { reason: string }) {
    try {
      const appointment = must(
        await api.POST("/api/v1/appointments", {
          params: { header: { "Idempotency-Key": key } },
          body: { doctor_id: doctor.id, start: slot.start, end: slot.end, reason: reason.trim() },
        }),
      );
      onBooked(appointment);
    } catch (e) {
      const problem = toProblem(e);
      if (!keepIdempotencyKey(problem.problem.status)) setKey(newIdempotencyKey());
      if (problem.problem.code === "slot_unavailable") return onTaken();
      if (problem.problem.code === "patient_busy") {
        throw new ProblemError({
          ...problem.problem,
          title: "You already have an appointment at this time",
          detail: "Choose another time, or move or cancel the other appointment first.",
        });
      }
      throw problem;
    }
  }

  return (
    <Dialog labelledBy="booking-title" onClose={onClose}>
      <div class="doctors-booking">
        <h2 id="booking-title">Book an appointment</h2>
        <p>
          With <strong>{title}</strong>
          <br />
          <span class="doctors-booking-when">{when}</span>
        </p>
        <form onSubmit={form.submit(book)}>
          <Field
            form={form}
            name="reason"
            label="Reason for the consultation"
            hint={`${title} reads this before the consultation. A few words are enough.`}
            schema="BookRequest"
            multiline
          />
          <FormErrors form={form} />
          <div class="doctors-dialog-actions">
            <Submit form={form}>Request this time</Submit>
            <button type="button" class="button secondary" onClick={onClose}>
              Back to free times
            </button>
          </div>
        </form>
      </div>
    </Dialog>
  );
}
