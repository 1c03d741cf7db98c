import { useEffect } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, must, type Schemas } from "@/shared/api/client";
import { paths } from "@/shared/paths";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { Page } from "@/shared/ui/Page";
import { Empty, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { excerpt, languageName, searchQuery, specialtiesOf } from "./doctorText";
import { doctorTitle } from "@/shared/people";
import "./doctors.css";

type Doctor = Schemas["DoctorView"];

async function findDoctors(specialty: string, q: string): Promise<Doctor[]> {
  const query = { ...(specialty && { specialty }), ...(q && { q }) };
  return must(await api.GET("/api/v1/doctors", { params: { query } })).doctors;
}

/** Find a doctor by specialty and free text; the search lives in the address, so Back works. */
export function FindDoctorPage() {
  const { query, route } = useLocation();
  const specialty = (query.specialty ?? "").trim();
  const q = (query.q ?? "").trim();
  const form = useForm({ specialty, q });
  useEffect(() => {
    form.set("specialty", specialty);
    form.set("q", q);
  }, [specialty, q]);
  const doctors = useResource(() => findDoctors(specialty, q), [specialty, q]);
  const everyone = useResource(() => findDoctors("", ""), []);
  const known = everyone.data ? specialtiesOf(everyone.data) : [];
  const searching = Boolean(specialty || q);

  return (
    <Page title="Find a doctor">
      <form
        class="card doctors-search"
        role="search"
        aria-label="Doctors"
        onSubmit={form.submit(async (v) => route(`${paths.doctors}${searchQuery(v)}`))}
      >
        <div class="doctors-search-fields">
          <Field form={form} name="specialty" label="Specialty" hint="For example Cardiology" />
          <Field form={form} name="q" label="Name or keyword" hint="Searches names, specialties and bios" type="search" />
        </div>
        <FormErrors form={form} />
        <div class="row">
          <Submit form={form}>Search</Submit>
          {searching && (
            <a class="button secondary" href={paths.doctors}>
              Show all doctors
            </a>
          )}
        </div>
        {known.length > 0 && (
          <datalist id={`${form.id}-specialties`}>
            {known.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
        )}
      </form>
      <SpecialtyList form={form.id} hasList={known.length > 0} />
      <section aria-labelledby="doctors-results">
        <h2 id="doctors-results">{searching ? "Matching doctors" : "All doctors"}</h2>
        <Loaded resource={doctors} what="Looking for doctors">
          {(list) => (
            <>
              <p role="status" class="muted small">
                {list.length === 0 ? "No doctors found." : `${list.length} ${list.length === 1 ? "doctor" : "doctors"} found.`}
              </p>
              {list.length === 0 ? (
                <Empty>
                  {searching ? (
                    <>
                      No doctor matches {describe(specialty, q)}. Check the spelling, try a broader word, or{" "}
                      <a href={paths.doctors}>see all doctors</a>.
                    </>
                  ) : (
                    "No doctors have joined yet. Please come back later."
                  )}
                </Empty>
              ) : (
                <ul class="list doctors-results">
                  {list.map((d) => (
                    <DoctorCard key={d.id} doctor={d} />
                  ))}
                </ul>
              )}
            </>
          )}
        </Loaded>
      </section>
    </Page>
  );
}

/** Links the specialty input to its datalist (Field has no `list` attribute). */
function SpecialtyList({ form, hasList }: { form: string; hasList: boolean }) {
  useEffect(() => {
    const input = document.getElementById(`${form}-specialty`);
    if (hasList) input?.setAttribute("list", `${form}-specialties`);
  }, [form, hasList]);
  return null;
}

function describe(specialty: string, q: string): string {
  const parts = [specialty && `the specialty “${specialty}”`, q && `“${q}”`].filter(Boolean);
  return parts.join(" and ");
}

function DoctorCard({ doctor }: { doctor: Doctor }) {
  const title = doctorTitle(doctor.name);
  const headingId = `doctor-${doctor.id}`;
  return (
    <li class="doctor-card">
      <article aria-labelledby={headingId}>
        <h3 id={headingId}>{doctor.name}</h3>
        {doctor.specialties.length > 0 && (
          <ul class="doctors-tags" aria-label="Specialties">
            {doctor.specialties.map((s) => (
              <li key={s} class="badge">
                {s}
              </li>
            ))}
          </ul>
        )}
        <dl class="doctors-facts small">
          {doctor.languages.length > 0 && (
            <div>
              <dt>Speaks</dt>
              <dd>{doctor.languages.map(languageName).join(", ")}</dd>
            </div>
          )}
          <div>
            <dt>Time zone</dt>
            <dd>{doctor.timezone}</dd>
          </div>
        </dl>
        {doctor.bio && <p class="doctors-bio">{excerpt(doctor.bio)}</p>}
        <a class="button primary" href={paths.doctor(doctor.id)}>
          See free times with {title}
        </a>
      </article>
    </li>
  );
}
