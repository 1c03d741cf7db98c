import { useRef, useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";

/** The secret iCal feed link, to copy into a calendar app. */
export function CalendarFeed() {
  const feed = useResource(async () => must(await api.GET("/api/v1/me/calendar-feed")).url, []);
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState("");

  async function copy(url: string) {
    try {
      await navigator.clipboard.writeText(url);
      setCopied("Link copied. Paste it into your calendar app.");
    } catch {
      input.current?.focus();
      input.current?.select();
      setCopied("The link is selected: press Ctrl+C (or ⌘+C) to copy it.");
    }
  }

  return (
    <section aria-labelledby="calendar-feed" class="card appointments-feed">
      <h2 id="calendar-feed">Calendar feed</h2>
      <p class="muted">
        Add your appointments to Google Calendar, Apple Calendar or Outlook: subscribe to this link (“From URL” or “New calendar
        subscription”). It updates by itself when appointments change. It shows times only, no health details. Keep it
        private: anyone with the link can see when your appointments are.
      </p>
      <Loaded resource={feed} what="Loading your calendar link">
        {(url) => (
          <div class="appointments-feed-row">
            <label for="calendar-feed-url" class="visually-hidden">
              Calendar feed link
            </label>
            <input
              id="calendar-feed-url"
              ref={input}
              type="url"
              readOnly
              value={url}
              onFocus={(e) => e.currentTarget.select()}
            />
            <button type="button" class="button secondary" onClick={() => copy(url)}>
              Copy link
            </button>
          </div>
        )}
      </Loaded>
      <p role="status" class="small appointments-feed-status">
        {copied}
      </p>
    </section>
  );
}
