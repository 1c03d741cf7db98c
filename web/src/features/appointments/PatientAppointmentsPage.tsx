import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { useLiveEvent } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";
import { formatInstant } from "@/shared/time/zone";
import { Page } from "@/shared/ui/Page";
import { Empty, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { AppointmentItem } from "./AppointmentItem";
import { CalendarFeed } from "./CalendarFeed";
import { CancelDialog } from "./CancelDialog";
import { MyWaitlist } from "./MyWaitlist";
import { useDoctorNames } from "./doctorNames";
import { applyUpdate, describeChange, find, type Appointment, type Lists } from "./model";
import "./appointments.css";

/** The patient's upcoming and past appointments, kept live, and their calendar feed. */
export function PatientAppointmentsPage() {
  const session = useSession();
  const zone = session?.user.timezone ?? "UTC";
  const { query, route } = useLocation();
  const lists = useResource<Lists>(async () => {
    const d = must(await api.GET("/api/v1/dashboard/patient"));
    return { upcoming: d.upcoming, past: d.past };
  }, []);
  const all = lists.data ? [...lists.data.upcoming, ...lists.data.past] : [];
  const doctorOf = useDoctorNames(all.map((a) => a.doctor_id));
  const [news, setNews] = useState("");
  const [cancelling, setCancelling] = useState<Appointment>();

  const list = (appointments: Appointment[]) => (
    <ul class="list appointments-list">
      {appointments.map((a) => (
        <AppointmentItem
          key={a.id}
          appointment={a}
          doctor={doctorOf(a.doctor_id)}
          zone={zone}
          onCancel={setCancelling}
          onChanged={changed}
        />
      ))}
    </ul>
  );

  function changed(a: Appointment, message: string) {
    lists.set((l) => (l ? applyUpdate(l, a) : l));
    setNews(message);
    // Newer news replaces the "booked" / "moved" notice.
    if (query.booked || query.rescheduled) route(paths.appointments, true);
  }

  useLiveEvent("appointment:updated", (data: { appointment?: Appointment; event_type?: string }) => {
    const a = data?.appointment;
    if (!a || (session && a.patient_id !== session.user.id)) return;
    if (!lists.data) return void lists.reload();
    const before = find(lists.data, a.id);
    if (before && before.updated_at === a.updated_at && before.status === a.status) return;
    changed(a, describeChange(data.event_type ?? "", a, before, doctorOf(a.doctor_id), zone));
  });

  const notice = confirmation(query, lists.data, doctorOf, zone);

  return (
    <Page
      title="My appointments"
      actions={
        <a class="button primary" href={paths.doctors}>
          Find a doctor
        </a>
      }
    >
      {notice && (
        <div class="notice row spread" role="status">
          <p class="appointments-notice-text">{notice}</p>
          <button type="button" class="button link" onClick={() => route(paths.appointments, true)}>
            Dismiss
          </button>
        </div>
      )}
      <div role="status" aria-live="polite" class="appointments-news">
        {news && <p class="notice">{news}</p>}
      </div>
      <MyWaitlist
        zone={zone}
        onBooked={(id) => {
          void lists.reload();
          route(`${paths.appointments}?booked=${id}`, true);
        }}
      />
      <Loaded resource={lists} what="Loading your appointments">
        {(l) => (
          <>
            <section aria-labelledby="upcoming">
              <h2 id="upcoming">Upcoming</h2>
              {l.upcoming.length === 0 ? (
                <Empty>
                  No upcoming appointments. <a href={paths.doctors}>Find a doctor</a> to book one.
                </Empty>
              ) : (
                list(l.upcoming)
              )}
            </section>
            <section aria-labelledby="past">
              <h2 id="past">Past and cancelled</h2>
              {l.past.length === 0 ? <Empty>No past appointments yet.</Empty> : list(l.past)}
            </section>
          </>
        )}
      </Loaded>
      <CalendarFeed />
      {cancelling && (
        <CancelDialog
          key={cancelling.id}
          appointment={cancelling}
          doctor={doctorOf(cancelling.doctor_id)}
          zone={zone}
          onClose={() => setCancelling(undefined)}
          onCancelled={(a) => {
            setCancelling(undefined);
            changed(a, `You cancelled your appointment with ${doctorOf(a.doctor_id)} on ${formatInstant(a.start, zone)}.`);
          }}
        />
      )}
    </Page>
  );
}

/** The notice after booking (`?booked=id`) or rescheduling (`?rescheduled=id`). */
function confirmation(
  query: Record<string, string>,
  lists: Lists | undefined,
  doctorOf: (id: string) => string,
  zone: string,
): string | undefined {
  const id = query.booked ?? query.rescheduled;
  if (!id) return undefined;
  const a = lists && find(lists, id);
  const doctor = a ? doctorOf(a.doctor_id) : "your doctor";
  const when = a ? ` for ${formatInstant(a.start, zone)}` : "";
  return query.booked
    ? `Your request${when} has been sent to ${doctor}. You will be notified when ${doctor} confirms it.`
    : `Your appointment has been moved${when.replace(" for", " to")}. ${doctor} will be asked to confirm the new time.`;
}
