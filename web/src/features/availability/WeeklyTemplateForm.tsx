import { useState } from "preact/hooks";
import type { Schemas } from "@/shared/api/client";
import { addDays } from "@/shared/time/zone";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { openWeekly } from "./api";
import { explained, fillWorkWeek, nextWeekday, WEEKDAYS, weeklyBody, type Weekday, type WeeklyRow } from "./logic";

let nextKey = 1;
const newRow = (weekday: Weekday = "mon", start = "09:00", end = "12:00"): WeeklyRow => ({ key: nextKey++, weekday, start, end });

/** A weekly template (rows of weekday + times) applied over a range of dates. */
export function WeeklyTemplateForm({
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
  const form = useForm({ from: today, to: addDays(today, 27) });
  const [rows, setRows] = useState<WeeklyRow[]>(() => [newRow()]);
  const update = (key: number, change: Partial<WeeklyRow>) => setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...change } : r)));
  const save = form.submit(async (v) => {
    try {
      onOpened(await openWeekly(doctorId, weeklyBody(rows, v.from, v.to)));
    } catch (e) {
      throw explained(e);
    }
  });
  form.shown.add("weekly");
  const rulesError = form.error?.field("weekly");
  const id = form.id;
  return (
    <form class="card av-form" onSubmit={save} aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Weekly template</h3>
      <p class="hint">
        The same hours every week between two dates, in {zone}. An end of 00:00 means midnight at the end of the day.
      </p>
      <fieldset aria-describedby={rulesError ? `${id}-weekly-error` : undefined}>
        <legend>Weekly hours</legend>
        <ol class="av-rules">
          {rows.map((row, i) => {
            const n = i + 1;
            const label = `${WEEKDAYS.find((d) => d.value === row.weekday)!.label} ${row.start}–${row.end}`;
            const err = (f: string) => {
              form.shown.add(`weekly[${i}].${f}`);
              return form.error?.field(`weekly[${i}].${f}`);
            };
            const errors = { weekday: err("weekday"), start: err("start"), end: err("end") };
            const ctl = (f: keyof typeof errors) => ({
              id: `${id}-w${row.key}-${f}`,
              "aria-invalid": errors[f] ? true : undefined,
              "aria-describedby": errors[f] ? `${id}-w${row.key}-${f}-error` : undefined,
            });
            return (
              <li key={row.key} class="av-rule">
                <div class="row spread av-rule-head">
                  <span class="small muted">Rule {n}</span>
                  <button
                    type="button"
                    class="button link"
                    disabled={rows.length === 1}
                    aria-label={`Remove rule ${n}: ${label}`}
                    onClick={() => setRows((rs) => rs.filter((r) => r.key !== row.key))}
                  >
                    Remove
                  </button>
                </div>
                <div class={`field${errors.weekday ? " invalid" : ""}`}>
                  <label for={`${id}-w${row.key}-weekday`}>
                    Day<span class="visually-hidden"> of rule {n}</span>
                  </label>
                  <select {...ctl("weekday")} value={row.weekday} onChange={(e) => update(row.key, { weekday: e.currentTarget.value as Weekday })}>
                    {WEEKDAYS.map((d) => (
                      <option key={d.value} value={d.value}>
                        {d.label}
                      </option>
                    ))}
                  </select>
                </div>
                <div class={`field${errors.start ? " invalid" : ""}`}>
                  <label for={`${id}-w${row.key}-start`}>
                    From<span class="visually-hidden"> (rule {n})</span>
                  </label>
                  <input type="time" required step="300" {...ctl("start")} value={row.start} onInput={(e) => update(row.key, { start: e.currentTarget.value })} />
                </div>
                <div class={`field${errors.end ? " invalid" : ""}`}>
                  <label for={`${id}-w${row.key}-end`}>
                    To<span class="visually-hidden"> (rule {n})</span>
                  </label>
                  <input type="time" required step="300" {...ctl("end")} value={row.end} onInput={(e) => update(row.key, { end: e.currentTarget.value })} />
                </div>
                {(["weekday", "start", "end"] as const).map(
                  (f) =>
                    errors[f] && (
                      <p key={f} class="field-error av-rule-error" id={`${id}-w${row.key}-${f}-error`}>
                        {f === "weekday" ? "Day" : f === "start" ? "From" : "To"}: {errors[f]}
                      </p>
                    ),
                )}
              </li>
            );
          })}
        </ol>
        {rulesError && (
          <p class="field-error" id={`${id}-weekly-error`}>
            {rulesError}
          </p>
        )}
        <div class="row">
          <button type="button" class="button secondary" onClick={() => setRows((rs) => [...rs, newRow(rs.at(-1) ? nextWeekday(rs.at(-1)!.weekday) : "mon", rs.at(-1)?.start, rs.at(-1)?.end)])}>
            Add a day
          </button>
          <button type="button" class="button secondary" onClick={() => setRows((rs) => fillWorkWeek(rs[0] ?? newRow(), () => nextKey++))}>
            Same hours Monday to Friday
          </button>
        </div>
      </fieldset>
      <div class="av-times av-dates">
        <Field form={form} name="from" label="First date" type="date" required min={today} />
        <Field form={form} name="to" label="Last date" type="date" required min={form.values.from} />
      </div>
      <FormErrors form={form} />
      <div>
        <Submit form={form}>Add weekly windows</Submit>
      </div>
    </form>
  );
}
