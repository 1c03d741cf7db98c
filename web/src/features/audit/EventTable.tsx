import { Cell } from "./Cell";
import { paths } from "@/shared/paths";
import { actorOf, aggregateLabel, formatPrecise, prettyJson, withQuery, type AuditEvent } from "./model";

/** Events as a table: position, time, aggregate (with a link to its history), actor, data. */
export function EventTable({ events, zone, caption, fresh }: { events: AuditEvent[]; zone: string; caption: string; fresh?: boolean }) {
  return (
    <div class="table-wrap">
      <table class="stack-table audit-table">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Position</th>
            <th scope="col">Recorded</th>
            <th scope="col">Aggregate</th>
            <th scope="col">Seq.</th>
            <th scope="col">Event</th>
            <th scope="col">Actor</th>
            <th scope="col">Data</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <EventRow key={e.position} event={e} zone={zone} fresh={fresh} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function EventRow({ event: e, zone, fresh }: { event: AuditEvent; zone: string; fresh?: boolean }) {
  const actor = actorOf(e.metadata);
  const history = withQuery(paths.audit, { aggregate_type: e.aggregate_type, aggregate_id: e.aggregate_id });
  return (
    <tr class={fresh ? "audit-new" : undefined}>
      <Cell label="Position">
        <code class="audit-position">{e.position}</code>
      </Cell>
      <Cell label="Recorded">
        <time dateTime={e.recorded_at}>{formatPrecise(e.recorded_at, zone)}</time>
      </Cell>
      <Cell label="Aggregate">
        <span>{aggregateLabel(e.aggregate_type)}</span>
        <a class="audit-id" href={history} aria-label={`History of ${aggregateLabel(e.aggregate_type).toLowerCase()} ${e.aggregate_id}`}>
          <code>{e.aggregate_id}</code>
        </a>
      </Cell>
      <Cell label="Sequence">{e.sequence}</Cell>
      <Cell label="Event">
        <strong>{e.event_type}</strong>
        {e.event_version !== "1" && <span class="muted small"> v{e.event_version}</span>}
      </Cell>
      <Cell label="Actor">
        {actor.role || actor.id ? (
          <>
            <span>{actor.role ?? "unknown role"}</span>
            {actor.id && (
              <code class="audit-id" title="Actor id">
                {actor.id}
              </code>
            )}
            {actor.command && <span class="muted small audit-id">{actor.command}</span>}
          </>
        ) : (
          <span class="muted">not recorded</span>
        )}
      </Cell>
      <Cell label="Data">
        <details>
          <summary>
            JSON<span class="visually-hidden"> of {e.event_type} at position {e.position}</span>
          </summary>
          <h3>Payload</h3>
          <pre>{prettyJson(e.payload)}</pre>
          <h3>Metadata</h3>
          <pre>{prettyJson(e.metadata)}</pre>
        </details>
      </Cell>
    </tr>
  );
}
