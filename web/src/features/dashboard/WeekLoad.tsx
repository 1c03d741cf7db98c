import { formatDay, formatDuration } from "@/shared/time/zone";
import { barWidths, bookedPercent, loadText, weekTotals, type DayLoad } from "./logic";

/** The next 7 days' free and booked minutes: a table, with bars as a visual aid only. */
export function WeekLoad({ days, today }: { days: readonly DayLoad[]; today: string }) {
  const totals = weekTotals(days);
  return (
    <section class="card dash-load" aria-labelledby="dash-load-title">
      <h2 id="dash-load-title">Next 7 days</h2>
      <p class="small muted">
        {formatDuration(totals.free)} free, {formatDuration(totals.booked)} booked.
      </p>
      <div class="table-wrap">
        <table>
          <caption class="visually-hidden">Free and booked time per day, next 7 days</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Free</th>
              <th scope="col">Booked</th>
            </tr>
          </thead>
          <tbody>
            {days.map((d) => {
              const w = barWidths(d, days);
              const none = d.free_minutes <= 0 && d.booked_minutes <= 0;
              return (
                <tr key={d.date} class={d.date === today ? "dash-today" : undefined}>
                  <th scope="row">
                    {formatDay(d.date)}
                    {d.date === today && <span class="visually-hidden"> (today)</span>}
                    <span class="dash-bar" aria-hidden="true" title={`${loadText(d)} (${bookedPercent(d)}% booked)`}>
                      <span class="dash-bar-booked" ref={(el) => void (el && (el.style.width = `${w.booked}%`))} />
                      <span class="dash-bar-free" ref={(el) => void (el && (el.style.width = `${w.free}%`))} />
                    </span>
                  </th>
                  {none ? (
                    <td colSpan={2} class="muted">
                      No availability
                    </td>
                  ) : (
                    <>
                      <td>{formatDuration(d.free_minutes)}</td>
                      <td>
                        {formatDuration(d.booked_minutes)}
                      </td>
                    </>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p class="small dash-legend" aria-hidden="true">
        <span class="dash-key dash-bar-booked" /> booked <span class="dash-key dash-bar-free" /> free
      </p>
    </section>
  );
}
