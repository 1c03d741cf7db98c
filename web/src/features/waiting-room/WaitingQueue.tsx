import { useEffect, useRef, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { useSession } from "@/shared/auth/hooks";
import { live } from "@/shared/live/live";
import { useLiveEvent, useLiveStatus } from "@/shared/live/hooks";
import { paths } from "@/shared/paths";
import { formatDay, formatTimeRange, localDate, localTime } from "@/shared/time/zone";
import { Empty, Loading } from "@/shared/ui/states";
import { removeEntry, sortQueue, upsertEntry, waitedLabel, type WaitingEntry } from "./waiting";
import "./waiting-room.css";

type State = { kind: "loading" } | { kind: "ready"; entries: WaitingEntry[] } | { kind: "unavailable"; error: ProblemError };

/** The doctor's live queue of checked-in patients (on the dashboard). */
export function WaitingQueue() {
  const session = useSession();
  const zone = session?.user.timezone ?? "UTC";
  const { route } = useLocation();
  const liveStatus = useLiveStatus();
  const [state, setState] = useState<State>({ kind: "loading" });
  const [now, setNow] = useState(Date.now());
  const [announcement, setAnnouncement] = useState("");
  const [starting, setStarting] = useState<string | null>(null);
  const [startError, setStartError] = useState<{ id: string; error: ProblemError } | null>(null);
  const wasConnected = useRef(false);
  const requested = useRef(0);

  const list = async () => {
    const mine = ++requested.current;
    setState((s) => (s.kind === "ready" ? s : { kind: "loading" }));
    try {
      const ack = await live.request<{ entries: WaitingEntry[] }>("waiting:list", {});
      if (mine === requested.current) setState({ kind: "ready", entries: sortQueue(ack.entries ?? []) });
    } catch (e) {
      if (mine === requested.current) setState({ kind: "unavailable", error: toProblem(e) });
    }
  };

  // List on mount once connected, and again after every reconnect (presence is not replayed).
  useEffect(() => {
    const connected = liveStatus === "connected";
    if (connected && !wasConnected.current) void list();
    wasConnected.current = connected;
  }, [liveStatus]);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);

  useLiveEvent("waiting:joined", (entry: WaitingEntry) => {
    setState((s) => (s.kind === "ready" ? { kind: "ready", entries: upsertEntry(s.entries, entry) } : s));
    setNow(Date.now());
    setAnnouncement(`${entry.patient_name} is in the waiting room.`);
  });
  useLiveEvent("waiting:left", (d: { appointment_id: string; patient_id: string; reason?: string }) => {
    setState((s) => {
      if (s.kind !== "ready") return s;
      const gone = s.entries.find((e) => e.appointment_id === d.appointment_id);
      if (gone) setAnnouncement(`${gone.patient_name} left the waiting room.`);
      return { kind: "ready", entries: removeEntry(s.entries, d.appointment_id) };
    });
  });

  const startCall = async (entry: WaitingEntry) => {
    setStarting(entry.appointment_id);
    setStartError(null);
    try {
      const call = must(await api.POST("/api/v1/appointments/{id}/calls", { params: { path: { id: entry.appointment_id } } }));
      route(`${paths.room(entry.appointment_id)}?call=${encodeURIComponent(call.call_id)}`);
    } catch (e) {
      setStartError({ id: entry.appointment_id, error: toProblem(e) });
    } finally {
      setStarting(null);
    }
  };

  return (
    <section class="card wr-queue" aria-labelledby="wr-queue-title">
      <div class="row spread">
        <h2 id="wr-queue-title">Waiting room</h2>
        {state.kind === "ready" && state.entries.length > 0 && <span class="badge count">{state.entries.length}</span>}
      </div>
      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {state.kind === "loading" ? (
        <Loading what={liveStatus === "connected" ? "Loading the waiting room" : "Connecting to the waiting room"} />
      ) : state.kind === "unavailable" ? (
        <div class="state state-error" role="alert">
          <p>
            <strong>Waiting room unavailable</strong>
            {state.error.problem.detail ? `: ${state.error.problem.detail}` : state.error.problem.title ? `: ${state.error.problem.title}` : ""}
          </p>
          <button type="button" class="button secondary" onClick={list} disabled={liveStatus !== "connected"}>
            Try again
          </button>
        </div>
      ) : state.entries.length === 0 ? (
        <Empty>No one is waiting.</Empty>
      ) : (
        <ul class="list wr-queue-list">
          {state.entries.map((e) => {
            const day = localDate(e.start, zone);
            return (
              <li key={e.appointment_id}>
                <h3 class="wr-queue-name">{e.patient_name}</h3>
                <p class="small muted wr-queue-time">
                  <time dateTime={e.start}>
                    {formatDay(day)}, {e.end ? formatTimeRange(e.start, e.end, zone) : `${localTime(e.start, zone)} (${zone})`}
                  </time>
                </p>
                <p class="small">
                  <span class="wr-dot online" aria-hidden="true" /> {waitedLabel(e.checked_in_at, now)}
                </p>
                <button
                  type="button"
                  class="button primary"
                  disabled={starting !== null}
                  aria-busy={starting === e.appointment_id}
                  aria-label={`Start call with ${e.patient_name}`}
                  onClick={() => startCall(e)}
                >
                  {starting === e.appointment_id ? "Starting…" : "Start call"}
                </button>
                {startError?.id === e.appointment_id && (
                  <p class="field-error" role="alert">
                    {startError.error.problem.title ?? "Could not start the call"}
                    {startError.error.problem.detail ? `: ${startError.error.problem.detail}` : ""}
                  </p>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
