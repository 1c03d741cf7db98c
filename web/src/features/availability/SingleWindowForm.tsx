import type { Schemas } from "@/shared/api/client";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { openWindow } from "./api";
import { explained, windowInstants } from "./logic";

/** One window on one date, times in the doctor's zone. */
export function SingleWindowForm({
  doctorId,
  zone,
  today,
  onOpened,
}: {
  doctorId: string;
  zone: string;
  today: string;
  onOpened: (opened: Schemas["OpenedWindows"]) => void;
}) {
  const form = useForm({ date: today, start: "09:00", end: "12:00" });
  const save = form.submit(async (v) => {
    const window = windowInstants(v.date, v.start, v.end, zone);
    try {
      onOpened(await openWindow(doctorId, window));
    } catch (e) {
      throw explained(e);
    }
  });
  return (
    <form class="card av-form" onSubmit={save} aria-labelledby={`${form.id}-title`}>
      <h3 id={`${form.id}-title`}>One window</h3>
      <p class="hint">
        A single stretch of time on one day, in {zone}. An end of 00:00 means midnight at the end of the day.
      </p>
      <Field form={form} name="date" label="Date" type="date" required min={today} />
      <div class="av-times">
        <Field form={form} name="start" label="From" type="time" required step="300" />
        <Field form={form} name="end" label="To" type="time" required step="300" />
      </div>
      <FormErrors form={form} />
      <div>
        <Submit form={form}>Add window</Submit>
      </div>
    </form>
  );
}
