import { Cell } from "./Cell";
import { useLocation } from "preact-iso";
import type { ProblemError } from "@/shared/api/problem";
import { useSession } from "@/shared/auth/hooks";
import { paths } from "@/shared/paths";
import { Page } from "@/shared/ui/Page";
import { Empty, ErrorState, Loading } from "@/shared/ui/states";
import { fetchAccess } from "./api";
import { FilterForm, type FilterField } from "./FilterForm";
import { accessFiltersOf, formatPrecise, withQuery, type AccessEntry } from "./model";
import { usePagedLog, type PagedLog } from "./usePagedLog";
import "./audit.css";

const FIELDS: readonly FilterField[] = [
  { name: "patient_id", label: "Patient id", hint: "A patient's id (UUID): shows only reads of their data." },
];

const RESOURCES: Record<string, string> = {
  patient_profile: "Patient profile",
  appointment: "Appointment",
  appointment_history: "Appointment history",
  messages: "Messages",
  appointments: "Appointment search (refused)",
  export: "Export of an appointment",
};

/** Reads whose `resource_id` is an appointment's id (linked to its history). */
const APPOINTMENT_READS = new Set(["appointment", "appointment_history", "messages", "export"]);

/** The access log: who read which patient's data, when, and whether it was allowed. */
export function AccessLogPage() {
  const session = useSession();
  const zone = session?.user.timezone ?? "UTC";
  const { query, route, url } = useLocation();
  const filters = accessFiltersOf(query);
  const key = withQuery(paths.accessLog, { ...filters });
  const log = usePagedLog((after) => fetchAccess(filters, after), key);
  const fieldError = log.error?.field("patient_id") ? log.error : undefined;

  function apply(values: Record<string, string>) {
    const next = withQuery(paths.accessLog, { patient_id: values.patient_id ?? "" });
    if (next === url) void log.reload();
    else route(next);
  }

  return (
    <Page title="Access log">
      <p class="muted">
        Every read of a patient's data by someone other than the patient, oldest first. Times are in your zone ({zone}).
      </p>
      <FilterForm key={key} label="Filter reads" fields={FIELDS} initial={{ ...filters }} error={fieldError} onApply={apply} />
      {filters.patient_id && !fieldError && (
        <p class="audit-summary">
          Showing only reads of patient <code>{filters.patient_id}</code>.{" "}
          <a href={withQuery(paths.audit, { aggregate_type: "patient", aggregate_id: filters.patient_id })}>Their event history</a> ·{" "}
          <a href={paths.accessLog}>Show all reads</a>
        </p>
      )}
      <section class="audit-section" aria-labelledby="access-reads">
        <h2 id="access-reads">Reads</h2>
        <Reads log={log} zone={zone} fieldError={fieldError} />
      </section>
    </Page>
  );
}

function Reads({ log, zone, fieldError }: { log: PagedLog<AccessEntry>; zone: string; fieldError: ProblemError | undefined }) {
  if (fieldError) return <Empty>Fix the filter above to see reads.</Empty>;
  if (log.error) return <ErrorState error={log.error} retry={log.reload} />;
  if (!log.items) return <Loading what="Loading the access log" />;
  const more = (
    <div class="audit-more">
      {log.items.length > 0 && (
        <p class="muted small" role="status">
          {log.items.length} read{log.items.length === 1 ? "" : "s"} shown{log.hasMore ? "" : ", up to the latest"}.
        </p>
      )}
      <button type="button" class="button secondary" onClick={() => void log.loadMore()} disabled={log.loading} aria-busy={log.loading}>
        {log.loading ? "Loading…" : log.hasMore ? "Load more reads" : "Check for newer reads"}
      </button>
      {log.moreError && <ErrorState error={log.moreError} retry={() => void log.loadMore()} />}
    </div>
  );
  if (log.items.length === 0) {
    return (
      <>
        <Empty>No reads recorded{fieldError ? "" : " for these filters"} yet.</Empty>
        {more}
      </>
    );
  }
  return (
    <>
      <div class="table-wrap">
        <table class="stack-table audit-table">
          <caption class="visually-hidden">Reads of patient data, oldest first</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Patient</th>
              <th scope="col">What</th>
              <th scope="col">Outcome</th>
              <th scope="col">Request</th>
            </tr>
          </thead>
          <tbody>
            {log.items.map((e) => (
              <AccessRow key={e.id} entry={e} zone={zone} />
            ))}
          </tbody>
        </table>
      </div>
      {more}
    </>
  );
}

function AccessRow({ entry: e, zone }: { entry: AccessEntry; zone: string }) {
  const resource = RESOURCES[e.resource] ?? e.resource;
  const isAppointment = APPOINTMENT_READS.has(e.resource);
  return (
    <tr>
      <Cell label="Entry">{e.id}</Cell>
      <Cell label="When">
        <time dateTime={e.at}>{formatPrecise(e.at, zone)}</time>
      </Cell>
      <Cell label="Who">
        <span>{e.actor_role}</span>
        <code class="audit-id">{e.actor_id}</code>
      </Cell>
      <Cell label="Patient">
        <a href={withQuery(paths.accessLog, { patient_id: e.patient_id })} aria-label={`Reads of patient ${e.patient_id}`}>
          <code class="audit-id">{e.patient_id}</code>
        </a>
      </Cell>
      <Cell label="What">
        <span>{resource}</span>
        {isAppointment ? (
          <a
            class="audit-id"
            href={withQuery(paths.audit, { aggregate_type: "appointment", aggregate_id: e.resource_id })}
            aria-label={`History of appointment ${e.resource_id}`}
          >
            <code>{e.resource_id}</code>
          </a>
        ) : (
          e.resource_id !== e.patient_id && <code class="audit-id">{e.resource_id}</code>
        )}
      </Cell>
      <Cell label="Outcome">
        <span class={`badge audit-badge-${e.outcome}`}>{e.outcome}</span>
      </Cell>
      <Cell label="Request">
        <code class="audit-id small">{e.request_id}</code>
      </Cell>
    </tr>
  );
}
