import type { Schemas } from "@/shared/api/client";
import type { ProblemError } from "@/shared/api/problem";
import { Instant } from "@/shared/ui/Instant";
import { Empty, ErrorState, Loading } from "@/shared/ui/states";
import { formatClock, logStatusLabel } from "./callState";

type CallView = Schemas["CallView"];

/** The appointment's calls, newest first. */
export function CallLog({ calls, error, retry, zone, me, other }: { calls: CallView[] | undefined; error: ProblemError | undefined; retry: () => void; zone: string; me: string; other: string }) {
  return (
    <section class="card cr-log-card" aria-labelledby="cr-log-title">
      <h2 id="cr-log-title">Call log</h2>
      {error ? (
        <ErrorState error={error} retry={retry} />
      ) : !calls ? (
        <Loading what="Loading the call log" />
      ) : calls.length === 0 ? (
        <Empty>No calls yet.</Empty>
      ) : (
        <div class="table-wrap" tabIndex={0} role="region" aria-labelledby="cr-log-title">
          <table>
            <caption class="visually-hidden">Calls of this appointment</caption>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Caller</th>
                <th scope="col">Status</th>
                <th scope="col">Duration</th>
              </tr>
            </thead>
            <tbody>
              {[...calls].reverse().map((c) => {
                const label = logStatusLabel(c.status, c.end_reason);
                return (
                  <tr key={c.call_id}>
                    <td>
                      <Instant at={c.started_at} zone={zone} />
                    </td>
                    <td>{c.caller_id === me ? "You" : other}</td>
                    <td>
                      <span class={`badge ${label === "declined" ? "rejected" : c.status}`}>{label}</span>
                      {c.end_reason && c.status === "ended" && label === "ended" && c.end_reason !== "user_hangup" && (
                        <span class="muted small"> ({c.end_reason.replace(/_/g, " ")})</span>
                      )}
                    </td>
                    <td>{c.duration_seconds != null ? formatClock(c.duration_seconds) : "—"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
