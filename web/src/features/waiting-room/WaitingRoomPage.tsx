import { useEffect, useRef, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { api, must, type Schemas } from "@/shared/api/client";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { useSession } from "@/shared/auth/hooks";
import { live } from "@/shared/live/live";
import { useLiveEvent, useLiveStatus } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";
import { TimeRange } from "@/shared/ui/Instant";
import { Page } from "@/shared/ui/Page";
import { ErrorState, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { PreCallCheck } from "./PreCallCheck";
import { doctorTitle } from "@/shared/people";
import { elapsedClock, presenceOf, presenceText, type DoctorPresence } from "./waiting";
import "./waiting-room.css";

type Appointment = Schemas["AppointmentView"];

type CheckIn =
  | { kind: "out" }
  | { kind: "checking" }
  | { kind: "in"; checkedInAt: string; presence: DoctorPresence }
  | { kind: "unavailable"; error: ProblemError };

/** The patient's waiting room: a pre-call check, then check in and wait for the doctor's call. */
export function WaitingRoomPage() {
  const { params } = useRoute();
  const id = params.id ?? "";
  const room = useResource(async () => {
    const appointment = must(await api.GET("/api/v1/appointments/{id}", { params: { path: { id } } }));
    let name = "Your doctor";
    try {
      name = doctorTitle(must(await api.GET("/api/v1/doctors/{doctor_id}", { params: { path: { doctor_id: appointment.doctor_id } } })).name);
    } catch {
      // keep the generic name
    }
    return { appointment, doctor: name };
  }, [id]);
  useLiveEvent("appointment:updated", (d: { appointment: Appointment }) => {
    if (d.appointment?.id === id) room.set((old) => (old ? { ...old, appointment: d.appointment } : old));
  });
  return (
    <Page title="Waiting room">
      <Loaded resource={room} what="Loading your appointment">
        {({ appointment, doctor }) => <WaitingRoom appointment={appointment} doctor={doctor} />}
      </Loaded>
    </Page>
  );
}

function WaitingRoom({ appointment, doctor }: { appointment: Appointment; doctor: string }) {
  const session = useSession();
  const zone = session?.user.timezone ?? "UTC";
  const { route } = useLocation();
  const liveStatus = useLiveStatus();
  const [state, setState] = useState<CheckIn>({ kind: "out" });
  const [now, setNow] = useState(Date.now());
  const stateRef = useRef(state);
  stateRef.current = state;
  const goingToCall = useRef(false);
  const wasConnected = useRef(liveStatus === "connected");

  const checkIn = async () => {
    setState({ kind: "checking" });
    try {
      const ack = await live.request<{ checked_in_at: string; doctor_status: string }>("waiting:checkin", { appointment_id: appointment.id });
      setState({ kind: "in", checkedInAt: ack.checked_in_at ?? new Date().toISOString(), presence: presenceOf(ack.doctor_status) });
    } catch (e) {
      setState({ kind: "unavailable", error: toProblem(e) });
    }
  };

  const leave = async () => {
    setState({ kind: "out" });
    await live.request("waiting:leave", { appointment_id: appointment.id }).catch(() => undefined);
  };

  // The server drops presence with the last connection: check in again after a reconnect.
  useEffect(() => {
    const connected = liveStatus === "connected";
    if (connected && !wasConnected.current && stateRef.current.kind === "in") void checkIn();
    wasConnected.current = connected;
  }, [liveStatus]);

  // Leaving the page leaves the waiting room (unless the doctor's call takes the patient to the room).
  useEffect(
    () => () => {
      if (stateRef.current.kind === "in" && !goingToCall.current) live.send("waiting:leave", { appointment_id: appointment.id });
    },
    [],
  );

  useEffect(() => {
    if (state.kind !== "in") return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [state.kind]);

  useLiveEvent("doctor:status", (d: { doctor_id: string; status: string }) => {
    if (d.doctor_id !== appointment.doctor_id) return;
    setState((s) => (s.kind === "in" ? { ...s, presence: presenceOf(d.status) } : s));
  });
  useLiveEvent("call:ringing", (d: { call_id: string; appointment_id: string }) => {
    if (d.appointment_id !== appointment.id) return;
    goingToCall.current = true;
    route(`${paths.room(appointment.id)}?call=${encodeURIComponent(d.call_id)}`);
  });
  useLiveEvent("waiting:left", (d: { appointment_id: string; reason?: string }) => {
    // The server may remove us (e.g. the appointment changed): show it.
    if (d.appointment_id === appointment.id && stateRef.current.kind === "in") setState({ kind: "out" });
  });

  const status = appointment.status;
  const closed = status === "cancelled" || status === "completed" || status === "no_show";
  return (
    <>
      <p class="wr-summary">
        Consultation with <strong>{doctor}</strong>, <TimeRange start={appointment.start} end={appointment.end} zone={zone} />{" "}
        <span class={`badge ${status}`}>{status.replace(/_/g, " ")}</span>
      </p>
      {closed ? (
        <div class="notice warn">
          <p>This appointment is {status.replace(/_/g, " ")}: there is nothing to wait for.</p>
          <a href={paths.appointments}>Back to my appointments</a>
        </div>
      ) : (
        <section class="card wr-checkin" aria-labelledby="wr-checkin-title">
          <h2 id="wr-checkin-title">Check in</h2>
          {status !== "confirmed" && <p class="notice small">{doctor} has not confirmed this appointment yet.</p>}
          <div class={state.kind === "in" ? "wr-waiting" : undefined}>
            {/* Only the check-in and the doctor's status are announced, not the ticking clock. */}
            <p role="status" aria-live="polite" class={state.kind === "in" ? "wr-waiting-title" : undefined}>
              {state.kind === "in" && (
                <>
                  <span class={`wr-dot ${state.presence}`} aria-hidden="true" /> You are checked in. {presenceText(doctor, state.presence)}.
                </>
              )}
              {state.kind === "checking" && "Checking in…"}
            </p>
            {state.kind === "in" && (
              <p class="muted">
                You have waited <span class="wr-clock">{elapsedClock(state.checkedInAt, now)}</span>. {doctor} will start the video call; this page opens
                the consultation room when it rings. Keep it open.
              </p>
            )}
          </div>
          {state.kind === "unavailable" && (
            <>
              <p class="wr-unavailable">
                <strong>Waiting room unavailable.</strong> You can still go to the consultation room: {doctor} can call you there.
              </p>
              <ErrorState error={state.error} retry={checkIn} />
            </>
          )}
          <div class="row">
            {state.kind === "in" ? (
              <button type="button" class="button secondary" onClick={leave}>
                Leave the waiting room
              </button>
            ) : (
              state.kind !== "unavailable" && (
                <button type="button" class="button primary" onClick={checkIn} disabled={state.kind === "checking" || liveStatus !== "connected"}>
                  Check in
                </button>
              )
            )}
            <a class="button link" href={paths.room(appointment.id)}>
              Open the consultation room (chat)
            </a>
          </div>
          {state.kind === "out" && liveStatus !== "connected" && <p class="hint">Connecting to live updates… Check in is possible once connected.</p>}
        </section>
      )}
      <PreCallCheck />
    </>
  );
}
