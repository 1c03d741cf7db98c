import { useState } from "preact/hooks";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { useLiveEvent } from "@/shared/live/hooks";
import { addDays, formatDay, formatDuration, formatTimeRange, localDate } from "@/shared/time/zone";
import { Empty, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { listWindows } from "./api";
import { useDebounced } from "@/shared/ui/useDebounced";
import { DeleteWindowDialog } from "./DeleteWindowDialog";
import { EditWindowDialog } from "./EditWindowDialog";
import { groupByLocalDate, mondayOf, windowMinutes, type Window } from "./logic";

type Dialog = { kind: "edit" | "delete"; window: Window } | null;

/** The doctor's windows, one week at a time, grouped by local date; edit and delete each. */
export function WindowList({
  doctorId,
  zone,
  today,
  version,
  announce,
}: {
  doctorId: string;
  zone: string;
  today: string;
  /** Changes when windows were added elsewhere on the page. */
  version: number;
  announce: (message: string) => void;
}) {
  const [week, setWeek] = useState(() => mondayOf(today));
  const to = addDays(week, 6);
  // `to` is exclusive: up to the next Monday. Windows overlapping the range from the day before
  // are left out by the grouping (it files a window under the date it starts on).
  const list = useResource(() => listWindows(doctorId, week, addDays(week, 7)), [doctorId, week, version]);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [refusals, setRefusals] = useState<Record<string, ProblemError>>({});
  const refuse = (id: string, e: unknown) => setRefusals((r) => ({ ...r, [id]: toProblem(e) }));
  const clear = (id: string) =>
    setRefusals((r) => {
      const rest = { ...r };
      delete rest[id];
      return rest;
    });

  const reloadSoon = useDebounced(() => void list.reload(), 400);
  useLiveEvent("availability:updated", (data: { doctor_id?: string }) => {
    if (data?.doctor_id === doctorId) reloadSoon();
  });

  const label = (w: Window) => `${formatDay(localDate(w.start, zone))}, ${formatTimeRange(w.start, w.end, zone)}`;
  const range = `${formatDay(week)} – ${formatDay(to)} ${to.slice(0, 4)}`;

  return (
    <section class="av-windows" aria-labelledby="av-windows-title">
      <div class="row spread">
        <h2 id="av-windows-title">Your windows</h2>
        <nav class="row av-weeknav" aria-label="Week">
          <button type="button" class="button secondary" onClick={() => setWeek(addDays(week, -7))}>
            <span aria-hidden="true">←</span> Previous week
          </button>
          <button type="button" class="button secondary" disabled={week === mondayOf(today)} onClick={() => setWeek(mondayOf(today))}>
            This week
          </button>
          <button type="button" class="button secondary" onClick={() => setWeek(addDays(week, 7))}>
            Next week <span aria-hidden="true">→</span>
          </button>
        </nav>
      </div>
      <p class="av-range" aria-live="polite">
        <strong>{range}</strong> <span class="muted">({zone})</span>
      </p>
      <Loaded resource={list} what="Loading your windows">
        {(data) => {
          const days = groupByLocalDate(data.windows, zone, week, to);
          const total = data.windows.reduce((n, w) => n + windowMinutes(w), 0);
          return (
            <>
              {data.windows.length === 0 ? (
                <Empty>No windows this week. Add one above, or go to another week.</Empty>
              ) : (
                <p class="muted small">
                  {data.windows.length} {data.windows.length === 1 ? "window" : "windows"}, {formatDuration(total)} open this week.
                </p>
              )}
              <ul class="av-days">
                {days.map((day) => (
                  <li key={day.date} class={`av-day${day.date === today ? " av-today" : ""}`}>
                    <h3 class="av-day-title">
                      {formatDay(day.date)}
                      {day.date === today && <span class="badge">Today</span>}
                    </h3>
                    {day.windows.length === 0 ? (
                      <p class="muted small av-none">No windows</p>
                    ) : (
                      <ul class="av-day-windows">
                        {day.windows.map((w) => {
                          const refusal = refusals[w.id];
                          const name = label(w);
                          return (
                            <li key={w.id} class="av-window">
                              <div class="row spread">
                                <span>
                                  <time dateTime={w.start}>{formatTimeRange(w.start, w.end, zone)}</time>{" "}
                                  <span class="muted small">· {formatDuration(windowMinutes(w))}</span>
                                </span>
                                <span class="row">
                                  <button
                                    type="button"
                                    class="button secondary"
                                    aria-label={`Edit window ${name}`}
                                    onClick={() => setDialog({ kind: "edit", window: w })}
                                  >
                                    Edit
                                  </button>
                                  <button
                                    type="button"
                                    class="button danger"
                                    aria-label={`Delete window ${name}`}
                                    onClick={() => setDialog({ kind: "delete", window: w })}
                                  >
                                    Delete
                                  </button>
                                </span>
                              </div>
                              {refusal && (
                                <div class="av-refusal" role="alert">
                                  <p>
                                    <strong>{refusal.problem.title ?? "Not changed"}</strong>
                                    {refusal.problem.detail ? `: ${refusal.problem.detail}` : ""}
                                  </p>
                                  <button type="button" class="button link" onClick={() => clear(w.id)} aria-label={`Dismiss the message about ${name}`}>
                                    Dismiss
                                  </button>
                                </div>
                              )}
                            </li>
                          );
                        })}
                      </ul>
                    )}
                  </li>
                ))}
              </ul>
            </>
          );
        }}
      </Loaded>
      {dialog?.kind === "edit" && (
        <EditWindowDialog
          doctorId={doctorId}
          zone={zone}
          window={dialog.window}
          onConflict={(e) => refuse(dialog.window.id, e)}
          onSaved={(w) => {
            clear(w.id);
            setDialog(null);
            announce(`Window changed to ${label(w)}.`);
            void list.reload();
          }}
          onClose={() => setDialog(null)}
        />
      )}
      {dialog?.kind === "delete" && (
        <DeleteWindowDialog
          doctorId={doctorId}
          window={dialog.window}
          label={label(dialog.window)}
          onDeleted={() => {
            const gone = dialog.window;
            clear(gone.id);
            setDialog(null);
            announce(`Window ${label(gone)} deleted.`);
            void list.reload();
          }}
          onRefused={(e) => {
            refuse(dialog.window.id, e);
            setDialog(null);
          }}
          onClose={() => setDialog(null)}
        />
      )}
    </section>
  );
}
