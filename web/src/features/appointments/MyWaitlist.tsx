import { useEffect, useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import { toProblem } from "@/shared/api/problem";
import { useLiveEvent } from "@/shared/live/hooks";
import { formatInstant } from "@/shared/time/zone";
import { ErrorState } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { remaining } from "./countdown";

type Entry = Schemas["EntryView"];
type Offer = Schemas["OfferView"];

/** The patient's waitlist entries and open offers, with accept / decline and the countdown. */
export function MyWaitlist({ zone, onBooked }: { zone: string; onBooked: (appointmentId: string) => void }) {
  const entries = useResource(async () => must(await api.GET("/api/v1/me/waitlist")).entries, []);
  const [now, setNow] = useState(Date.now());
  const [news, setNews] = useState("");
  const [busy, setBusy] = useState<string>();
  const offered = entries.data?.some((e) => e.offer) ?? false;

  useEffect(() => {
    if (!offered) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [offered]);

  useLiveEvent("notification", (data: { kind?: string }) => {
    if (data?.kind === "waitlist_offer") void entries.reload();
  });

  if (entries.error) return <ErrorState error={entries.error} retry={entries.reload} />;
  const list = entries.data ?? [];
  if (list.length === 0 && !news) return null;

  async function answer(entry: Entry, offer: Offer, action: "accept" | "decline") {
    setBusy(offer.id);
    try {
      if (action === "accept") {
        const a = must(await api.POST("/api/v1/waitlist/offers/{id}/accept", { params: { path: { id: offer.id } } }));
        setNews(`Booked: ${entry.doctor_name} on ${formatInstant(offer.start, zone)}.`);
        onBooked(a.id);
      } else {
        must(await api.POST("/api/v1/waitlist/offers/{id}/decline", { params: { path: { id: offer.id } } }));
        setNews("Offer declined. You stay on the waitlist for other times.");
      }
    } catch (e) {
      setNews(toProblem(e).message);
    } finally {
      setBusy(undefined);
      await entries.reload();
    }
  }

  async function leave(entry: Entry) {
    setBusy(entry.id);
    try {
      must(await api.DELETE("/api/v1/me/waitlist/{id}", { params: { path: { id: entry.id } } }));
      setNews(`You left ${entry.doctor_name}'s waitlist.`);
    } catch (e) {
      setNews(toProblem(e).message);
    } finally {
      setBusy(undefined);
      await entries.reload();
    }
  }

  return (
    <section aria-labelledby="waitlist" class="waitlist">
      <h2 id="waitlist">Waitlist</h2>
      <div role="status" aria-live="polite">
        {news && <p class="notice">{news}</p>}
      </div>
      <ul class="list">
        {list.map((entry) => {
          const offer = entry.offer ?? undefined;
          const left = offer && remaining(offer.expires_at, now);
          return (
            <li key={entry.id} class="card waitlist-entry">
              <p>
                <strong>{entry.doctor_name}</strong>, {entry.duration_minutes} minutes, between {entry.from} and{" "}
                {entry.to}
              </p>
              {offer && left ? (
                <div class="waitlist-offer">
                  <p>
                    A time freed up: <strong>{formatInstant(offer.start, zone)}</strong>. It is held for you for{" "}
                    <span aria-label="time left">{left}</span>.
                  </p>
                  <div class="row">
                    <button
                      type="button"
                      class="button primary"
                      disabled={busy === offer.id}
                      onClick={() => answer(entry, offer, "accept")}
                    >
                      Accept
                    </button>
                    <button
                      type="button"
                      class="button secondary"
                      disabled={busy === offer.id}
                      onClick={() => answer(entry, offer, "decline")}
                    >
                      Decline
                    </button>
                  </div>
                </div>
              ) : (
                <p class="muted">Waiting for a time to free up.</p>
              )}
              <button type="button" class="button link" disabled={busy === entry.id} onClick={() => leave(entry)}>
                Leave the waitlist
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
