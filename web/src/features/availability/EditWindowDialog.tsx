import { formatDay, formatTimeRange, localDate, localTime } from "@/shared/time/zone";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { changeWindow } from "./api";
import { explained, windowInstants, type Window } from "./logic";
import { Dialog } from "@/shared/ui/Dialog";

/** Changes a window's start and end on its own day. */
export function EditWindowDialog({
  doctorId,
  zone,
  window,
  onSaved,
  onConflict,
  onClose,
}: {
  doctorId: string;
  zone: string;
  window: Window;
  onSaved: (w: Window) => void;
  /** A refusal, to show next to the window as well. */
  onConflict: (error: unknown) => void;
  onClose: () => void;
}) {
  const date = localDate(window.start, zone);
  const form = useForm({ start: localTime(window.start, zone), end: localTime(window.end, zone) });
  const save = form.submit(async (v) => {
    const times = windowInstants(date, v.start, v.end, zone);
    try {
      onSaved(await changeWindow(doctorId, window.id, times));
    } catch (e) {
      const plain = explained(e);
      onConflict(plain);
      throw plain;
    }
  });
  return (
    <Dialog labelledBy={`${form.id}-title`} onClose={onClose}>
      <form onSubmit={save}>
        <h2 id={`${form.id}-title`}>Edit window on {formatDay(date)}</h2>
        <p>
          Now: <time dateTime={window.start}>{formatTimeRange(window.start, window.end, zone)}</time>
        </p>
        <p class="hint">
          Times in {zone}. A window stays on its day; to move it to another day, delete it and add a new one.
        </p>
        <div class="av-times">
          <Field form={form} name="start" label="From" type="time" required step="300" />
          <Field form={form} name="end" label="To" type="time" required step="300" />
        </div>
        <FormErrors form={form} />
        <div class="row">
          <Submit form={form}>Save changes</Submit>
          <button type="button" class="button secondary" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
