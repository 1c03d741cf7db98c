import { useLocation } from "preact-iso";
import { useMemo } from "preact/hooks";
import type { ProblemError } from "@/shared/api/problem";
import { useSession } from "@/shared/auth/hooks";
import { paths } from "@/shared/paths";
import { Page } from "@/shared/ui/Page";
import { Empty, ErrorState, Loading } from "@/shared/ui/states";
import { fetchEvents } from "./api";
import { ChainHeadCard } from "./ChainHead";
import { EventTable } from "./EventTable";
import { FilterForm, type FilterField } from "./FilterForm";
import { aggregateLabel, aggregateTypeOptions, eventFiltersOf, withQuery, type EventFilters } from "./model";
import { useAuditTail } from "./useAuditTail";
import { usePagedLog, type PagedLog } from "./usePagedLog";
import type { AuditEvent } from "./model";
import "./audit.css";

const FILTER_FIELDS = ["aggregate_type", "aggregate_id"];

/** The event log: every stored event, oldest first, filtered and paged, with a live tail. */
export function AuditLogPage() {
  const session = useSession();
  const zone = session?.user.timezone ?? "UTC";
  const { query, route, url } = useLocation();
  const filters = eventFiltersOf(query);
  const key = withQuery(paths.audit, { ...filters });
  const log = usePagedLog((after) => fetchEvents(filters, after), key);
  const tail = useAuditTail(filters);
  const fieldError = fieldProblem(log.error);

  const seenTypes = useMemo(
    () => [...(log.items ?? []), ...tail.state.shown].map((e) => e.aggregate_type).concat(filters.aggregate_type),
    [log.items, tail.state.shown, filters.aggregate_type],
  );
  const fields: FilterField[] = [
    { name: "aggregate_type", label: "Aggregate type", options: aggregateTypeOptions(seenTypes) },
    {
      name: "aggregate_id",
      label: "Aggregate id",
      hint: "An appointment, patient, doctor or call id: shows that one's whole history.",
    },
  ];

  function apply(values: Record<string, string>) {
    const next = withQuery(paths.audit, { aggregate_type: values.aggregate_type ?? "", aggregate_id: values.aggregate_id ?? "" });
    if (next === url) void log.reload();
    else route(next);
  }

  return (
    <Page title="Event log">
      <p class="muted">
        Every change recorded by Telemed, oldest first, with who made it. Times are in your zone ({zone}).
      </p>
      <FilterForm key={key} label="Filter events" fields={fields} initial={{ ...filters }} error={fieldError} onApply={apply} />
      {(filters.aggregate_type || filters.aggregate_id) && <FilterSummary filters={filters} />}

      <ChainHeadCard />

      <LiveTail tail={tail} zone={zone} filtered={Boolean(filters.aggregate_type || filters.aggregate_id)} />

      <section class="audit-section" aria-labelledby="audit-history">
        <h2 id="audit-history">History</h2>
        <History log={log} zone={zone} fieldError={fieldError} />
      </section>
    </Page>
  );
}

/** A load error that names a filter field goes next to that field instead. */
function fieldProblem(error: ProblemError | undefined): ProblemError | undefined {
  return error?.problem.errors?.some((e) => FILTER_FIELDS.includes(e.field)) ? error : undefined;
}

function FilterSummary({ filters }: { filters: EventFilters }) {
  const type = filters.aggregate_type && aggregateLabel(filters.aggregate_type).toLowerCase();
  return (
    <p class="audit-summary">
      {filters.aggregate_id ? (
        <>
          Showing the history of {type || "aggregate"} <code>{filters.aggregate_id}</code>.{" "}
        </>
      ) : (
        `Showing only ${type} events. `
      )}
      <a href={paths.audit}>Show all events</a>
    </p>
  );
}

function History({ log, zone, fieldError }: { log: PagedLog<AuditEvent>; zone: string; fieldError: ProblemError | undefined }) {
  if (log.error && !fieldError) return <ErrorState error={log.error} retry={log.reload} />;
  if (fieldError) return <Empty>Fix the filter above to see events.</Empty>;
  if (!log.items) return <Loading what="Loading events" />;
  if (log.items.length === 0) {
    return (
      <>
        <Empty>No events match these filters yet.</Empty>
        <MoreButton log={log} />
      </>
    );
  }
  return (
    <>
      <EventTable events={log.items} zone={zone} caption="Recorded events, oldest first" />
      <MoreButton log={log} count={log.items.length} />
    </>
  );
}

function MoreButton({ log, count }: { log: PagedLog<AuditEvent>; count?: number }) {
  return (
    <div class="audit-more">
      {count !== undefined && (
        <p class="muted small" role="status">
          {count} event{count === 1 ? "" : "s"} shown{log.hasMore ? "" : ", up to the latest"}.
        </p>
      )}
      <button type="button" class="button secondary" onClick={() => void log.loadMore()} disabled={log.loading} aria-busy={log.loading}>
        {log.loading ? "Loading…" : log.hasMore ? "Load more events" : "Check for newer events"}
      </button>
      {log.moreError && <ErrorState error={log.moreError} retry={() => void log.loadMore()} />}
    </div>
  );
}

function LiveTail({ tail, zone, filtered }: { tail: ReturnType<typeof useAuditTail>; zone: string; filtered: boolean }) {
  const { state } = tail;
  return (
    <section class="audit-section card" aria-labelledby="audit-live">
      <h2 id="audit-live">Live events</h2>
      <div class="audit-tail-controls">
        <label class="checkbox">
          <input type="checkbox" checked={tail.following} onChange={(e) => tail.setFollowing(e.currentTarget.checked)} />
          Follow live events
        </label>
        {tail.following && (
          <>
            {state.paused ? (
              <button type="button" class="button primary" onClick={tail.resume}>
                Resume{state.held.length ? ` (${state.held.length} waiting)` : ""}
              </button>
            ) : (
              <button type="button" class="button secondary" onClick={tail.pause}>
                Pause
              </button>
            )}
            {state.shown.length > 0 && (
              <button type="button" class="button link" onClick={tail.clear}>
                Clear live events
              </button>
            )}
          </>
        )}
      </div>
      <p class="visually-hidden" role="status" aria-live="polite">
        {tail.announcement}
      </p>
      {tail.error && <ErrorState error={tail.error} />}
      {tail.following && !tail.error && (
        <p class="muted small">
          {!tail.subscribed
            ? "Connecting to the live audit feed…"
            : state.paused
              ? "Paused: new events are held until you resume."
              : `Listening${filtered ? " for events matching the filters" : ""}; newest first.`}
        </p>
      )}
      {!tail.following && <p class="muted small">Turn this on to see events as they are recorded, newest first.</p>}
      {tail.following && state.shown.length === 0 && tail.subscribed && <Empty>No new events since you started following.</Empty>}
      {state.shown.length > 0 && <EventTable events={state.shown} zone={zone} caption="Live events, newest first" fresh />}
    </section>
  );
}
