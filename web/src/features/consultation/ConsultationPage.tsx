import { useRoute } from "preact-iso";
import { api, must, type Schemas } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { useLiveEvent } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";
import { TimeRange } from "@/shared/ui/Instant";
import { Page } from "@/shared/ui/Page";
import { Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { CallLog } from "./CallLog";
import { CallPanel } from "./CallPanel";
import { personName } from "./callState";
import { Chat } from "./Chat";
import { useCall } from "./useCall";
import "./consultation.css";

type Appointment = Schemas["AppointmentView"];

/** The other participant's display name ("Dr Grey" for a doctor). */
async function otherName(appointment: Appointment, iAmDoctor: boolean): Promise<string> {
  try {
    if (iAmDoctor) {
      const p = must(await api.GET("/api/v1/patients/{patient_id}", { params: { path: { patient_id: appointment.patient_id } } }));
      return personName(p.name, false);
    }
    const d = must(await api.GET("/api/v1/doctors/{doctor_id}", { params: { path: { doctor_id: appointment.doctor_id } } }));
    return personName(d.name, true);
  } catch {
    return iAmDoctor ? "Your patient" : "Your doctor";
  }
}

/** The consultation room of one appointment: the video call, its log and the chat. */
export function ConsultationPage() {
  const { params, query } = useRoute();
  const id = params.id ?? "";
  const session = useSession();
  const me = session?.user.id ?? "";
  const zone = session?.user.timezone ?? "UTC";
  const iAmDoctor = session?.user.role === "doctor";
  const room = useResource(async () => {
    const appointment = must(await api.GET("/api/v1/appointments/{id}", { params: { path: { id } } }));
    return { appointment, other: await otherName(appointment, iAmDoctor) };
  }, [id, iAmDoctor]);
  useLiveEvent("appointment:updated", (d: { appointment: Appointment }) => {
    if (d.appointment?.id === id) room.set((old) => (old ? { ...old, appointment: d.appointment } : old));
  });

  const title = room.data ? `Consultation with ${room.data.other}` : "Consultation";
  return (
    <Page
      title={title}
      actions={
        <a class="button secondary" href={iAmDoctor ? paths.dashboard : paths.appointments}>
          {iAmDoctor ? "Back to dashboard" : "My appointments"}
        </a>
      }
    >
      <Loaded resource={room} what="Loading the consultation">
        {({ appointment, other }) => <Room appointment={appointment} other={other} me={me} zone={zone} iAmDoctor={iAmDoctor} initialCall={query.call} />}
      </Loaded>
    </Page>
  );
}

function Room({ appointment, other, me, zone, iAmDoctor, initialCall }: { appointment: Appointment; other: string; me: string; zone: string; iAmDoctor: boolean; initialCall: string | undefined }) {
  const call = useCall(appointment.id, me, initialCall);
  const cancelled = appointment.status === "cancelled";
  const callable = appointment.status === "confirmed";
  return (
    <>
      <p class="cr-summary">
        <TimeRange start={appointment.start} end={appointment.end} zone={zone} /> <span class={`badge ${appointment.status}`}>{appointment.status.replace(/_/g, " ")}</span>
      </p>
      {!callable && !cancelled && (
        <p class="notice small">Video calls are possible once the appointment is confirmed (it is {appointment.status.replace(/_/g, " ")}).</p>
      )}
      {cancelled && <p class="notice warn">This appointment was cancelled.</p>}
      <div class="cr-layout">
        <div class="cr-area-call">
          <CallPanel call={call} other={other} canStart={iAmDoctor} closed={!callable} appointmentId={appointment.id} />
        </div>
        <div class="cr-area-chat">
          <Chat appointmentId={appointment.id} me={me} other={other} zone={zone} closedByStatus={cancelled} />
        </div>
        <div class="cr-area-log">
          <CallLog calls={call.log} error={call.logError} retry={call.reloadLog} zone={zone} me={me} other={other} />
        </div>
      </div>
    </>
  );
}
