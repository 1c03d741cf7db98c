import { useState } from "preact/hooks";
import type { Schemas } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { paths } from "@/shared/paths";
import { formatDay, formatTimeRange, localDate } from "@/shared/time/zone";
import { Page } from "@/shared/ui/Page";
import { Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { loadDoctor } from "./api";
import { SingleWindowForm } from "./SingleWindowForm";
import { SlotPolicyForm } from "./SlotPolicyForm";
import { TimeOffSection } from "./TimeOffSection";
import { WeeklyTemplateForm } from "./WeeklyTemplateForm";
import { WindowList } from "./WindowList";
import "./availability.css";

/**
 * The doctor's availability: add single windows or a weekly template, then edit and delete
 * windows; buffers and slot length; time off.
 */
export function AvailabilityPage() {
  const session = useSession();
  const doctorId = session?.user.id ?? "";
  const doctor = useResource(() => loadDoctor(doctorId), [doctorId]);
  return (
    <Page title="Availability">
      <Loaded resource={doctor} what="Loading your profile">
        {(d) => <Editor doctor={d} />}
      </Loaded>
    </Page>
  );
}

function Editor({ doctor }: { doctor: Schemas["DoctorView"] }) {
  const { id: doctorId, timezone: zone } = doctor;
  const today = localDate(new Date(), zone);
  const [version, setVersion] = useState(0);
  const [message, setMessage] = useState("");
  const [result, setResult] = useState<{ opened: Schemas["OpenedWindows"]; kind: "single" | "weekly" } | null>(null);
  const opened = (kind: "single" | "weekly") => (answer: Schemas["OpenedWindows"]) => {
    setResult({ opened: answer, kind });
    setVersion((v) => v + 1);
    const n = answer.windows.length;
    setMessage(`${n} ${n === 1 ? "window" : "windows"} added${answer.skipped.length ? `, ${answer.skipped.length} skipped` : ""}.`);
  };
  return (
    <>
      <p class="notice av-zone">
        All times on this page are in your time zone, <strong>{zone}</strong>. <a href={paths.profile}>Change it in your profile</a>.
      </p>
      <p class="visually-hidden" role="status" aria-live="polite">
        {message}
      </p>
      <section aria-labelledby="av-add-title">
        <h2 id="av-add-title">Add availability</h2>
        <div class="av-forms">
          <SingleWindowForm doctorId={doctorId} zone={zone} today={today} onOpened={opened("single")} />
          <WeeklyTemplateForm doctorId={doctorId} zone={zone} today={today} onOpened={opened("weekly")} />
        </div>
        {result && <Opened opened={result.opened} zone={zone} onDismiss={() => setResult(null)} />}
      </section>
      <WindowList doctorId={doctorId} zone={zone} today={today} version={version} announce={setMessage} />
      <div class="av-windows">
        <SlotPolicyForm doctor={doctor} announce={setMessage} />
      </div>
      <TimeOffSection zone={zone} today={today} announce={setMessage} />
    </>
  );
}

/** What the last request added, and the template days it skipped. */
function Opened({ opened, zone, onDismiss }: { opened: Schemas["OpenedWindows"]; zone: string; onDismiss: () => void }) {
  const n = opened.windows.length;
  const first = opened.windows[0];
  const last = opened.windows.at(-1);
  return (
    <div class={`notice${opened.skipped.length ? " warn" : ""} av-opened`}>
      <p>
        <strong>
          Added {n} {n === 1 ? "window" : "windows"}
        </strong>
        {first && last && n > 1 && (
          <>
            , from {formatDay(localDate(first.start, zone))} to {formatDay(localDate(last.start, zone))} {localDate(last.start, zone).slice(0, 4)}
          </>
        )}
        {first && n === 1 && <>: {formatDay(localDate(first.start, zone))}, {formatTimeRange(first.start, first.end, zone)}</>}.
      </p>
      {opened.skipped.length > 0 && (
        <>
          <p>These days were skipped:</p>
          <ul>
            {opened.skipped.map((s) => (
              <li key={`${s.date}-${s.weekday}`}>
                {formatDay(s.date)} {s.date.slice(0, 4)}: {s.reason}
              </li>
            ))}
          </ul>
        </>
      )}
      <button type="button" class="button link" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
