import { formatInstant, formatTimeRange, localDate } from "../time/zone";

/** An instant, rendered in `zone` with the zone named, in a <time> element. */
export function Instant({ at, zone }: { at: string; zone: string }) {
  return <time dateTime={at}>{formatInstant(at, zone)}</time>;
}

/** A consultation's time: its date, start–end and zone. */
export function TimeRange({ start, end, zone }: { start: string; end: string; zone: string }) {
  const date = new Intl.DateTimeFormat("en-GB", { timeZone: zone, weekday: "short", day: "numeric", month: "short", year: "numeric" }).format(new Date(start));
  return (
    <time dateTime={start} data-local-date={localDate(start, zone)}>
      {date}, {formatTimeRange(start, end, zone)}
    </time>
  );
}
