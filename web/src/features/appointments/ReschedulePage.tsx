import { useEffect, useRef, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { paths } from "@/shared/paths";
import { TimeRange } from "@/shared/ui/Instant";
import { Page } from "@/shared/ui/Page";
import { SlotWeek, slotLabel, type Slot } from "@/shared/ui/SlotWeek";
import { Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { useDoctorNames } from "./doctorNames";
import { isOpen, statusLabel } from "./model";
import { RescheduleDialog } from "./RescheduleDialog";
import "./appointments.css";

/** Moves an appointment to another free time of its doctor (patients and doctors). */
export function ReschedulePage() {
  const { params } = useRoute();
  const id = params.id ?? "";
  const { route } = useLocation();
  const session = useSession();
  const zone = session?.user.timezone ?? "UTC";
  const isDoctor = session?.user.role === "doctor";
  const back = isDoctor ? paths.dashboard : paths.appointments;
  const backLabel = isDoctor ? "Back to the dashboard" : "Back to my appointments";
  const appointment = useResource(
    async () => must(await api.GET("/api/v1/appointments/{id}", { params: { path: { id } } })),
    [id],
  );
  const doctorOf = useDoctorNames(appointment.data ? [appointment.data.doctor_id] : []);
  const [chosen, setChosen] = useState<Slot>();
  const [taken, setTaken] = useState<string>();
  const [reloads, setReloads] = useState(0);
  const takenNotice = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (taken) takenNotice.current?.focus();
  }, [taken]);

  return (
    <Page title="Reschedule appointment" actions={<a href={back}>{backLabel}</a>}>
      <Loaded resource={appointment} what="Loading the appointment">
        {(a) => {
          const doctor = isDoctor ? "you" : doctorOf(a.doctor_id);
          const other = isDoctor ? "The patient" : doctorOf(a.doctor_id);
          return (
            <>
              <section class="card appointments-current" aria-labelledby="current-time">
                <h2 id="current-time">Current time</h2>
                <p class="appointments-when">
                  <TimeRange start={a.start} end={a.end} zone={zone} />
                </p>
                <p class="small">
                  {isDoctor ? "Your appointment" : `With ${doctor}`} · <span class={`badge ${a.status}`}>{statusLabel(a.status)}</span>
                </p>
                <p class="small">
                  <span class="muted">Reason: </span>
                  {a.reason}
                </p>
              </section>
              {!isOpen(a) ? (
                <p class="notice warn" role="alert">
                  This appointment is {statusLabel(a.status).toLowerCase()} and can no longer be moved.{" "}
                  <a href={back}>{backLabel}</a>
                </p>
              ) : (
                <section aria-labelledby="new-time">
                  <h2 id="new-time">Choose a new time</h2>
                  <p class="muted">
                    {isDoctor ? "Your free times" : `Free times of ${doctor}`}, shown in your time zone, {zone}.
                  </p>
                  <div role="alert">
                    {taken && (
                      <p class="notice warn" tabIndex={-1} ref={takenNotice}>
                        Sorry, {taken} was just taken. The free times below are up to date: please choose another.
                      </p>
                    )}
                  </div>
                  <SlotWeek
                    doctorId={a.doctor_id}
                    zone={zone}
                    action="Choose"
                    chosen={chosen?.start}
                    reloadKey={reloads}
                    onChoose={(slot) => {
                      setTaken(undefined);
                      setChosen(slot);
                    }}
                  />
                  {chosen && (
                    <RescheduleDialog
                      key={chosen.start}
                      appointment={a}
                      slot={chosen}
                      zone={zone}
                      other={other}
                      onClose={() => setChosen(undefined)}
                      onMoved={(moved) => route(`${back}?rescheduled=${moved.id}`)}
                      onTaken={() => {
                        setTaken(slotLabel(chosen, zone));
                        setChosen(undefined);
                        setReloads((n) => n + 1);
                      }}
                    />
                  )}
                </section>
              )}
            </>
          );
        }}
      </Loaded>
    </Page>
  );
}
