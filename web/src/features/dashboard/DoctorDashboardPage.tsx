import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { useSession } from "@/shared/auth/hooks";
import { useLiveEvent } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";
import { browserZone, localDate } from "@/shared/time/zone";
import { Page } from "@/shared/ui/Page";
import { Empty, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { loadDashboard, patientName, type Appointment } from "./api";
import { AppointmentItem } from "./AppointmentItem";
import { DeclineDialog } from "./DeclineDialog";
import { newRequests, requestAnnouncement } from "./logic";
import { useDebounced } from "@/shared/ui/useDebounced";
import { usePatientNames } from "./usePatientNames";
import { WeekLoad } from "./WeekLoad";
import "./dashboard.css";

/** The doctor's dashboard: requests, today, upcoming and the week's load; `aside` is the waiting-room queue. */
export function DoctorDashboardPage({ aside }: { aside?: ComponentChildren }) {
  const session = useSession();
  const zone = session?.user.timezone ?? browserZone();
  const dash = useResource(loadDashboard, []);
  const now = useNow(30_000);
  const [announcement, setAnnouncement] = useState("");
  const [declining, setDeclining] = useState<{ id: string; who: string } | null>(null);
  const known = useRef<Set<string> | null>(null);

  const reloadSoon = useDebounced(() => void dash.reload(), 400);
  useLiveEvent("appointment:updated", reloadSoon);
  useLiveEvent("availability:updated", reloadSoon);

  // Announce requests that arrived since the last load (not those present at the first one).
  useEffect(() => {
    const pending = dash.data?.pending_requests;
    if (!pending) return;
    const fresh = newRequests(known.current, pending);
    known.current = new Set(pending.map((a) => a.id));
    if (!fresh.length) return;
    void Promise.all(
      fresh.map((a) =>
        patientName(a.patient_id)
          .catch(() => "a patient")
          .then((name) => requestAnnouncement(a, name, zone)),
      ),
    ).then((lines) => setAnnouncement(`${lines.join(". ")}.`));
  }, [dash.data]);

  const data = dash.data;
  const names = usePatientNames(data ? [...data.pending_requests, ...data.today, ...data.upcoming].map((a) => a.patient_id) : []);
  const changed = (message: string) => {
    setAnnouncement(message);
    void dash.reload();
  };
  const list = (items: Appointment[], empty: string, request = false) =>
    items.length === 0 ? (
      <Empty>{empty}</Empty>
    ) : (
      <ul class="list">
        {items.map((a) => (
          <AppointmentItem
            key={a.id}
            appointment={a}
            name={names[a.patient_id]}
            zone={zone}
            now={now}
            request={request}
            onDecline={(who) => setDeclining({ id: a.id, who })}
            onChanged={changed}
          />
        ))}
      </ul>
    );

  return (
    <Page title="Dashboard" actions={<a class="button secondary" href={paths.availability}>Edit availability</a>}>
      <p class="muted small dash-zone">
        Times are shown in your time zone, {zone}.
      </p>
      <div class={announcement ? "notice dash-announce" : "dash-announce empty"}>
        <p role="status" aria-live="polite">
          {announcement}
        </p>
        {announcement && (
          <button type="button" class="button link" onClick={() => setAnnouncement("")}>
            Dismiss
          </button>
        )}
      </div>
      <div class={`dash-layout${aside ? "" : " no-aside"}`}>
        {aside && <div class="dash-aside">{aside}</div>}
        <div class="dash-main">
          <Loaded resource={dash} what="Loading your dashboard">
            {(d) => (
              <>
                <section aria-labelledby="dash-requests" class="dash-section">
                  <h2 id="dash-requests">
                    Requests{" "}
                    {d.pending_requests.length > 0 && (
                      <span class="badge pending">
                        {d.pending_requests.length} <span class="visually-hidden">waiting</span>
                      </span>
                    )}
                  </h2>
                  {list(d.pending_requests, "No requests waiting for you.", true)}
                </section>
                <section aria-labelledby="dash-today" class="dash-section">
                  <h2 id="dash-today">Today</h2>
                  {list(d.today, "Nothing booked today.")}
                </section>
                <section aria-labelledby="dash-upcoming" class="dash-section">
                  <h2 id="dash-upcoming">Upcoming</h2>
                  {list(d.upcoming, "Nothing booked after today.")}
                </section>
              </>
            )}
          </Loaded>
        </div>
        {data && (
          <div class="dash-side-load">
            <WeekLoad days={data.availability} today={localDate(new Date(now), zone)} />
          </div>
        )}
      </div>
      {declining && (
        <DeclineDialog
          id={declining.id}
          who={declining.who}
          onClose={() => setDeclining(null)}
          onDone={() => {
            setDeclining(null);
            changed(`Declined the request from ${declining.who}.`);
          }}
        />
      )}
    </Page>
  );
}

/** The current time, refreshed every `ms` (for actions that depend on it). */
function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
