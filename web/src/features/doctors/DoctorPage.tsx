import { useEffect, useRef, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import { paths } from "@/shared/paths";
import { Page } from "@/shared/ui/Page";
import { SlotWeek, slotLabel, type Slot } from "@/shared/ui/SlotWeek";
import { ErrorState, Loading } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { BookingDialog } from "./BookingDialog";
import { JoinWaitlist } from "./JoinWaitlist";
import { languageName } from "./doctorText";
import { doctorTitle } from "@/shared/people";
import "./doctors.css";

/** A doctor's profile and a week of their free times in the viewer's zone; a patient books one. */
export function DoctorPage() {
  const { params } = useRoute();
  const id = params.id ?? "";
  const session = useSession();
  const { route } = useLocation();
  const zone = session?.user.timezone ?? "UTC";
  const canBook = session?.user.role === "patient";
  const doctor = useResource(
    async () => must(await api.GET("/api/v1/doctors/{doctor_id}", { params: { path: { doctor_id: id } } })),
    [id],
  );
  const [chosen, setChosen] = useState<Slot>();
  const [taken, setTaken] = useState<string>();
  const [reloads, setReloads] = useState(0);
  const takenNotice = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (taken) takenNotice.current?.focus();
  }, [taken]);

  if (doctor.error) {
    return (
      <Page title="Doctor">
        <ErrorState error={doctor.error} retry={doctor.error.problem.status === 404 ? undefined : doctor.reload} />
        <p class="doctors-back">
          <a href={paths.doctors}>Back to the doctor search</a>
        </p>
      </Page>
    );
  }
  if (!doctor.data) {
    return (
      <Page title="Doctor">
        <Loading what="Loading the doctor's profile" />
      </Page>
    );
  }
  const d = doctor.data;
  const title = doctorTitle(d.name);

  return (
    <Page title={d.name} actions={<a href={paths.doctors}>Back to the search</a>}>
      <section class="card doctors-profile" aria-label="Profile">
        {d.specialties.length > 0 && (
          <ul class="doctors-tags" aria-label="Specialties">
            {d.specialties.map((s) => (
              <li key={s} class="badge">
                {s}
              </li>
            ))}
          </ul>
        )}
        {d.bio && <p>{d.bio}</p>}
        <dl class="doctors-facts">
          {d.languages.length > 0 && (
            <div>
              <dt>Speaks</dt>
              <dd>{d.languages.map(languageName).join(", ")}</dd>
            </div>
          )}
          <div>
            <dt>Works in the time zone</dt>
            <dd>{d.timezone}</dd>
          </div>
        </dl>
      </section>

      <section aria-labelledby="free-times">
        <h2 id="free-times">Free times with {title}</h2>
        <p class="muted">
          {canBook
            ? `Choose a time to request a 30-minute consultation. ${title} confirms it; you are notified.`
            : "Only patients can book. These are the free 30-minute times."}{" "}
          Times are shown in your time zone, {zone}.
        </p>
        <div role="alert">
          {taken && (
            <p class="notice warn" tabIndex={-1} ref={takenNotice}>
              Sorry, {taken} was just taken by someone else. The free times below are up to date: please choose another.
            </p>
          )}
        </div>
        <SlotWeek
          doctorId={d.id}
          zone={zone}
          action="Book"
          chosen={chosen?.start}
          reloadKey={reloads}
          onChoose={
            canBook
              ? (slot) => {
                  setTaken(undefined);
                  setChosen(slot);
                }
              : undefined
          }
        />
      </section>

      {canBook && <JoinWaitlist doctorId={d.id} title={title} />}

      {chosen && (
        <BookingDialog
          key={chosen.start}
          doctor={d}
          slot={chosen}
          zone={zone}
          onClose={() => setChosen(undefined)}
          onBooked={(a) => route(`${paths.appointments}?booked=${a.id}`)}
          onTaken={() => {
            setTaken(slotLabel(chosen, zone));
            setChosen(undefined);
            setReloads((n) => n + 1);
          }}
        />
      )}
    </Page>
  );
}
