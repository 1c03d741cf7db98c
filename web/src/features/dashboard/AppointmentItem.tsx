import { useState } from "preact/hooks";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { paths } from "@/shared/paths";
import { formatDay, formatTimeRange, localDate } from "@/shared/time/zone";
import { TimeRange } from "@/shared/ui/Instant";
import { complete, confirm, noShow, type Appointment } from "./api";
import { actionsFor, shortWhen, statusLabel } from "./logic";

/** One appointment in a dashboard list, with the actions its state allows. */
export function AppointmentItem({
  appointment: a,
  name,
  zone,
  now,
  request,
  onDecline,
  onChanged,
}: {
  appointment: Appointment;
  /** The patient's name, once loaded. */
  name: string | undefined;
  zone: string;
  now: number;
  /** In the requests list: Confirm and Decline instead of the other actions. */
  request?: boolean;
  onDecline?: (who: string) => void;
  /** After a change: what to announce. */
  onChanged: (message: string) => void;
}) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<ProblemError>();
  const who = `${name ?? "patient"}, ${shortWhen(a.start, zone)}`;
  const can = actionsFor(a, now);
  async function run(action: string, fn: () => Promise<unknown>, done: string) {
    setBusy(action);
    setError(undefined);
    try {
      await fn();
      onChanged(done);
    } catch (e) {
      setError(toProblem(e));
    } finally {
      setBusy(null);
    }
  }
  const headingId = `appt-${request ? "req" : "list"}-${a.id}`;
  return (
    <li class="dash-appt" aria-labelledby={headingId}>
      <div class="row spread">
        <h3 id={headingId} class="dash-appt-title">
          {name ?? <span class="muted">Loading name…</span>}
        </h3>
        <span class={`badge ${a.status}`}>{statusLabel(a.status, a.awaiting_confirmation_by)}</span>
      </div>
      <p class="dash-when">
        <TimeRange start={a.start} end={a.end} zone={zone} />
      </p>
      {a.rescheduled_from && (
        <p class="small muted">
          Moved from <TimeRange start={a.rescheduled_from.start} end={a.rescheduled_from.end} zone={zone} />
        </p>
      )}
      {a.reason && (
        <p class="dash-reason">
          <span class="muted">Reason: </span>
          {a.reason}
        </p>
      )}
      {request ? (
        <div class="row dash-actions">
          <button
            type="button"
            class="button primary"
            disabled={busy !== null}
            aria-busy={busy === "confirm"}
            aria-label={`Confirm appointment with ${who}`}
            onClick={() => run("confirm", () => confirm(a.id), `Confirmed the appointment with ${who} (${zone}).`)}
          >
            {busy === "confirm" ? "Confirming…" : "Confirm"}
          </button>
          <button
            type="button"
            class="button danger"
            disabled={busy !== null}
            aria-label={`Decline request from ${who}`}
            onClick={() => onDecline?.(`${name ?? "Patient"}, ${formatDay(localDate(a.start, zone))}, ${formatTimeRange(a.start, a.end, zone)}`)}
          >
            Decline
          </button>
        </div>
      ) : (
        (can.room || can.reschedule || can.finish) && (
          <div class="row dash-actions">
            {can.room && (
              <a class="button primary" href={paths.room(a.id)} aria-label={`Open consultation room with ${who}`}>
                Open consultation room
              </a>
            )}
            {can.reschedule && (
              <a class="button secondary" href={paths.reschedule(a.id)} aria-label={`Reschedule appointment with ${who}`}>
                Reschedule
              </a>
            )}
            {can.finish && (
              <>
                <button
                  type="button"
                  class="button secondary"
                  disabled={busy !== null}
                  aria-busy={busy === "complete"}
                  aria-label={`Mark completed: appointment with ${who}`}
                  onClick={() => run("complete", () => complete(a.id), `Marked the appointment with ${who} completed.`)}
                >
                  {busy === "complete" ? "Saving…" : "Mark completed"}
                </button>
                <button
                  type="button"
                  class="button danger"
                  disabled={busy !== null}
                  aria-busy={busy === "no-show"}
                  aria-label={`Mark no-show: appointment with ${who}`}
                  onClick={() => run("no-show", () => noShow(a.id), `Marked ${who} as a no-show.`)}
                >
                  {busy === "no-show" ? "Saving…" : "Mark no-show"}
                </button>
              </>
            )}
          </div>
        )
      )}
      {error && (
        <p class="field-error" role="alert">
          {error.problem.title ?? "Could not save"}
          {error.problem.detail ? `: ${error.problem.detail}` : ""}
        </p>
      )}
    </li>
  );
}
