import { useState } from "preact/hooks";
import { paths } from "@/shared/paths";
import { NonexistentLocalTime, addDays, formatDay, formatTimeRange, localDate, localTime, zonedToInstant } from "@/shared/time/zone";
import { ProblemError } from "@/shared/api/problem";
import { Dialog } from "@/shared/ui/Dialog";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { Empty, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { addTimeOff, cancelAppointment, listTimeOff, removeTimeOff, type TimeOff } from "./api";

type Appointment = TimeOff["conflicting_appointments"][number];

/** An instant from a local date and time in `zone`, or a 422 naming `field`. */
function instant(date: string, time: string, zone: string, field: string): string {
  try {
    return zonedToInstant(date, time, zone).toISOString();
  } catch (e) {
    if (!(e instanceof NonexistentLocalTime)) throw e;
    throw new ProblemError({ status: 422, title: "Check the times", errors: [{ field, message: `${time} does not exist on ${date} in ${zone}` }] });
  }
}

/** The doctor's time off: add a span, see the appointments inside each, remove it. */
export function TimeOffSection({ zone, today, announce }: { zone: string; today: string; announce: (message: string) => void }) {
  const list = useResource(() => listTimeOff(), []);
  const [cancelling, setCancelling] = useState<Appointment | null>(null);
  const form = useForm({ from_date: today, from_time: "00:00", to_date: addDays(today, 1), to_time: "00:00", note: "" });
  const save = form.submit(async (v) => {
    const start = instant(v.from_date, v.from_time, zone, "start");
    const end = instant(v.to_date, v.to_time, zone, "end");
    const added = await addTimeOff({ start, end, note: v.note.trim() || undefined });
    const n = added.conflicting_appointments.length;
    announce(`Time off added${n ? `; ${n} ${n === 1 ? "appointment falls" : "appointments fall"} inside it` : ""}.`);
    void list.reload();
  });
  const remove = async (t: TimeOff) => {
    await removeTimeOff(t.id);
    announce("Time off removed; that time can be booked again.");
    void list.reload();
  };
  return (
    <section class="av-windows" aria-labelledby="av-timeoff-title">
      <h2 id="av-timeoff-title">Time off</h2>
      <form class="card av-form" onSubmit={save} aria-labelledby={`${form.id}-title`}>
        <h3 id={`${form.id}-title`}>Add time off</h3>
        <p class="hint">Nobody can book you then. Appointments already inside it stay booked and are listed below, to reschedule or cancel.</p>
        <div class="av-times av-dates">
          <Field form={form} name="from_date" serverName="start" label="From date" type="date" required min={today} />
          <Field form={form} name="from_time" serverName="start_time" label="From time" type="time" required step="300" />
          <Field form={form} name="to_date" serverName="end" label="To date" type="date" required min={today} />
          <Field form={form} name="to_time" serverName="end_time" label="To time" type="time" required step="300" />
        </div>
        <Field form={form} name="note" label="Note" schema="TimeOffRequest" hint="For example: Conference. Only you see it." />
        <FormErrors form={form} />
        <div>
          <Submit form={form}>Add time off</Submit>
        </div>
      </form>
      <Loaded resource={list} what="Loading your time off">
        {(answer) =>
          answer.time_off.length === 0 ? (
            <Empty>No time off planned.</Empty>
          ) : (
            <ul class="av-days" aria-label="Planned time off">
              {answer.time_off.map((t) => (
                <TimeOffItem key={t.id} item={t} zone={zone} onRemove={() => remove(t)} onCancel={setCancelling} />
              ))}
            </ul>
          )
        }
      </Loaded>
      {cancelling && (
        <CancelDialog
          appointment={cancelling}
          zone={zone}
          onClose={() => setCancelling(null)}
          onDone={() => {
            setCancelling(null);
            announce("Appointment cancelled.");
            void list.reload();
          }}
        />
      )}
    </section>
  );
}

/** "Tue 1 Dec, 09:00–12:00 (zone)", or "Tue 1 Dec 00:00 – Wed 2 Dec 00:00 (zone)". */
function span(start: string, end: string, zone: string): string {
  const first = localDate(start, zone);
  const last = localDate(end, zone);
  if (first === last) return `${formatDay(first)}, ${formatTimeRange(start, end, zone)}`;
  return `${formatDay(first)} ${localTime(start, zone)} – ${formatDay(last)} ${localTime(end, zone)} (${zone})`;
}

function TimeOffItem({ item, zone, onRemove, onCancel }: { item: TimeOff; zone: string; onRemove: () => Promise<void>; onCancel: (a: Appointment) => void }) {
  const [busy, setBusy] = useState(false);
  const label = span(item.start, item.end, zone);
  const conflicts = item.conflicting_appointments;
  return (
    <li class="av-day av-timeoff">
      <h3 class="av-day-title">{label}</h3>
      <div>
        {item.note && <p class="av-none">{item.note}</p>}
        {conflicts.length > 0 ? (
          <div class="av-refusal">
            <p>
              <strong>
                {conflicts.length} {conflicts.length === 1 ? "appointment falls" : "appointments fall"} inside this time off
              </strong>
            </p>
            <ul class="av-day-windows" aria-label={`Appointments inside time off ${label}`}>
              {conflicts.map((a) => (
                <li key={a.id} class="av-window row spread">
                  <span>
                    {formatDay(localDate(a.start, zone))}, {formatTimeRange(a.start, a.end, zone)} ({a.status})
                  </span>
                  <span class="row">
                    <a class="button secondary" href={paths.reschedule(a.id)}>
                      Reschedule
                    </a>
                    <button type="button" class="button secondary" onClick={() => onCancel(a)}>
                      Cancel appointment
                    </button>
                  </span>
                </li>
              ))}
            </ul>
          </div>
        ) : (
          <p class="av-none">No appointments inside it.</p>
        )}
        <button
          type="button"
          class="button link"
          aria-label={`Remove time off ${label}`}
          disabled={busy}
          onClick={() => {
            setBusy(true);
            void onRemove().finally(() => setBusy(false));
          }}
        >
          Remove
        </button>
      </div>
    </li>
  );
}

function CancelDialog({ appointment, zone, onClose, onDone }: { appointment: Appointment; zone: string; onClose: () => void; onDone: () => void }) {
  const form = useForm({ reason: "I am not available then." });
  const save = form.submit(async (v) => {
    await cancelAppointment(appointment.id, v.reason.trim());
    onDone();
  });
  return (
    <Dialog labelledBy={`${form.id}-title`} onClose={onClose}>
      <form onSubmit={save}>
        <h2 id={`${form.id}-title`}>Cancel appointment</h2>
        <p>
          {formatDay(localDate(appointment.start, zone))}, {formatTimeRange(appointment.start, appointment.end, zone)}
        </p>
        <Field form={form} name="reason" label="Reason" schema="CancelRequest" multiline hint="The patient sees this." />
        <FormErrors form={form} />
        <div class="row">
          <Submit form={form}>Cancel this appointment</Submit>
          <button type="button" class="button secondary" onClick={onClose}>
            Keep it
          </button>
        </div>
      </form>
    </Dialog>
  );
}
