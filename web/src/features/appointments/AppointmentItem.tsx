import { useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { paths } from "@/shared/paths";
import { formatInstant } from "@/shared/time/zone";
import { TimeRange } from "@/shared/ui/Instant";
import { awaitsPatient, isOpen, statusDetail, statusLabel, type Appointment } from "./model";

interface Props {
  appointment: Appointment;
  doctor: string;
  zone: string;
  /** Opens the cancel dialog. */
  onCancel: (a: Appointment) => void;
  /** The appointment changed by an action here. */
  onChanged: (a: Appointment, message: string) => void;
}

/** One appointment: who, when (viewer's zone), status, reason, and what the patient can do. */
export function AppointmentItem({ appointment: a, doctor, zone, onCancel, onChanged }: Props) {
  const [accepting, setAccepting] = useState(false);
  const [error, setError] = useState<ProblemError>();
  const headingId = `appointment-${a.id}`;
  const when = formatInstant(a.start, zone);
  const about = `with ${doctor} on ${when}`;
  const open = isOpen(a);
  const detail = statusDetail(a, doctor);

  async function accept() {
    setAccepting(true);
    setError(undefined);
    try {
      const done = must(await api.POST("/api/v1/appointments/{id}/confirm", { params: { path: { id: a.id } } }));
      onChanged(done, `You accepted the new time with ${doctor}: ${formatInstant(done.start, zone)}.`);
    } catch (e) {
      setError(toProblem(e));
    } finally {
      setAccepting(false);
    }
  }

  return (
    <li class={`appointments-item status-${a.status}`}>
      <article aria-labelledby={headingId}>
        <div class="row spread">
          <h3 id={headingId}>{doctor}</h3>
          <span class={`badge ${a.status}`}>{statusLabel(a.status)}</span>
        </div>
        <p class="appointments-when">
          <TimeRange start={a.start} end={a.end} zone={zone} />
        </p>
        {a.rescheduled_from && open && (
          <p class="small muted">
            Previously: <TimeRange start={a.rescheduled_from.start} end={a.rescheduled_from.end} zone={zone} />
          </p>
        )}
        {detail && <p class="small">{detail}</p>}
        <p class="small">
          <span class="muted">Reason: </span>
          {a.reason}
        </p>
        {a.cancellation && (
          <p class="small appointments-cancellation">
            Cancelled by {a.cancellation.by === a.patient_id ? "you" : doctor} on{" "}
            <time dateTime={a.cancellation.at}>{formatInstant(a.cancellation.at, zone)}</time>
            {a.cancellation.reason && <>: “{a.cancellation.reason}”</>}
          </p>
        )}
        {error && (
          <p class="field-error" role="alert">
            {error.problem.title ?? "Could not accept"}
            {error.problem.detail ? `: ${error.problem.detail}` : ""}
          </p>
        )}
        {open ? (
          <div class="appointments-actions">
            {awaitsPatient(a) && (
              <button
                type="button"
                class="button primary"
                disabled={accepting}
                aria-busy={accepting}
                aria-label={`Accept new time ${about}`}
                onClick={accept}
              >
                {accepting ? "Accepting…" : "Accept new time"}
              </button>
            )}
            {a.status === "confirmed" && (
              <>
                <a class="button primary" href={paths.waitingRoom(a.id)} aria-label={`Check in ${about}`}>
                  Check in
                </a>
                <a class="button secondary" href={paths.room(a.id)} aria-label={`Open consultation room ${about}`}>
                  Open consultation room
                </a>
              </>
            )}
            <a class="button secondary" href={paths.reschedule(a.id)} aria-label={`Reschedule appointment ${about}`}>
              Reschedule
            </a>
            <button type="button" class="button danger" aria-label={`Cancel appointment ${about}`} onClick={() => onCancel(a)}>
              Cancel
            </button>
          </div>
        ) : (
          <div class="appointments-actions">
            <a class="button link" href={paths.doctor(a.doctor_id)} aria-label={`Book again with ${doctor}`}>
              Book again
            </a>
          </div>
        )}
      </article>
    </li>
  );
}
