import type { Schemas } from "@/shared/api/client";
import { ProblemError } from "@/shared/api/problem";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { setSlotPolicy } from "./api";

/** A whole number of minutes, or a 422 naming `field`; blank is `null` where allowed. */
function minutes(raw: string, field: string, blank: number | null): number | null {
  const text = raw.trim();
  if (text === "") return blank;
  if (!/^\d+$/.test(text)) {
    throw new ProblemError({ status: 422, title: "Please correct the highlighted fields", errors: [{ field, message: "Enter a whole number of minutes" }] });
  }
  return Number(text);
}

/** Buffers before and after each appointment, and the interval slots start on. */
export function SlotPolicyForm({ doctor, announce }: { doctor: Schemas["DoctorView"]; announce: (message: string) => void }) {
  const form = useForm({
    buffer_before_minutes: String(doctor.buffer_before_minutes),
    buffer_after_minutes: String(doctor.buffer_after_minutes),
    slot_interval_minutes: doctor.slot_interval_minutes == null ? "" : String(doctor.slot_interval_minutes),
  });
  const save = form.submit(async (v) => {
    const saved = await setSlotPolicy({
      buffer_before_minutes: minutes(v.buffer_before_minutes, "buffer_before_minutes", 0) ?? 0,
      buffer_after_minutes: minutes(v.buffer_after_minutes, "buffer_after_minutes", 0) ?? 0,
      slot_interval_minutes: minutes(v.slot_interval_minutes, "slot_interval_minutes", null),
    });
    const step = saved.slot_interval_minutes == null ? "back to back" : `every ${saved.slot_interval_minutes} minutes`;
    announce(`Saved: ${saved.buffer_before_minutes} minutes before, ${saved.buffer_after_minutes} after; slots ${step}.`);
  });
  return (
    <section aria-labelledby={`${form.id}-title`}>
      <form class="card av-form" onSubmit={save} aria-labelledby={`${form.id}-title`}>
        <h2 id={`${form.id}-title`}>Buffers and slot length</h2>
        <p class="hint">Patients can only book times that keep these gaps around your other appointments.</p>
        <div class="av-times">
          <Field form={form} name="buffer_before_minutes" label="Minutes free before each appointment" schema="SlotPolicyRequest" type="number" inputMode="numeric" />
          <Field form={form} name="buffer_after_minutes" label="Minutes free after each appointment" schema="SlotPolicyRequest" type="number" inputMode="numeric" />
          <Field
            form={form}
            name="slot_interval_minutes"
            label="Slots start every (minutes)"
            schema="SlotPolicyRequest"
            type="number"
            inputMode="numeric"
            required={false}
            hint="Counted from the start of each window. Leave empty for back-to-back slots."
          />
        </div>
        <FormErrors form={form} />
        <div>
          <Submit form={form}>Save buffers and slot length</Submit>
        </div>
      </form>
    </section>
  );
}
