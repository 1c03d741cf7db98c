import { useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { paths } from "@/shared/paths";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";

/** A date `days` after `now` as `YYYY-MM-DD` (UTC), for the date inputs' defaults. */
function dateAfter(now: number, days: number): string {
  return new Date(now + days * 86_400_000).toISOString().slice(0, 10);
}

const LENGTHS = [
  { value: "15", label: "15 minutes" },
  { value: "30", label: "30 minutes" },
  { value: "45", label: "45 minutes" },
  { value: "60", label: "1 hour" },
];

/** "Join the waitlist" on a doctor's page: when no free time suits, wait for one to free up. */
export function JoinWaitlist({ doctorId, title }: { doctorId: string; title: string }) {
  const now = Date.now();
  const form = useForm({ from: dateAfter(now, 1), to: dateAfter(now, 14), duration_minutes: "30" });
  const [joined, setJoined] = useState(false);

  async function join(values: { from: string; to: string; duration_minutes: string }) {
    must(
      await api.POST("/api/v1/doctors/{id}/waitlist", {
        params: { path: { id: doctorId } },
        body: { from: values.from, to: values.to, duration_minutes: Number(values.duration_minutes) },
      }),
    );
    setJoined(true);
  }

  return (
    <section class="card waitlist-join" aria-labelledby="waitlist-join">
      <h2 id="waitlist-join">No time suits you?</h2>
      {joined ? (
        <p role="status" class="notice">
          You are on {title}'s waitlist. When a time in your dates frees up it is held for you and you are
          notified: accept it on <a href={paths.appointments}>your appointments</a>.
        </p>
      ) : (
        <form onSubmit={form.submit(join)}>
          <p class="muted">
            Join {title}'s waitlist: when a time between these dates frees up, the first patient waiting is
            offered it, held for a short while.
          </p>
          <div class="waitlist-fields">
            <Field form={form} name="from" label="From" type="date" schema="JoinRequest" />
            <Field form={form} name="to" label="To" type="date" schema="JoinRequest" />
            <Field form={form} name="duration_minutes" label="Length" options={LENGTHS} />
          </div>
          <FormErrors form={form} />
          <Submit form={form}>Join the waitlist</Submit>
        </form>
      )}
    </section>
  );
}
