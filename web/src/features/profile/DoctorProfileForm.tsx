import { useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import { ProblemError, toProblem } from "@/shared/api/problem";
import { updateUser, type SessionUser } from "@/shared/auth/session";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { joinLines, parseLines, placeConflict } from "./lists";
import { SavedStatus } from "./SavedStatus";
import { zoneOptions } from "@/shared/time/zones";

type Values = { name: string; specialties: string; languages: string; bio: string; timezone: string };

function valuesOf(d: Schemas["DoctorView"]): Values {
  return {
    name: d.name,
    specialties: joinLines(d.specialties),
    languages: joinLines(d.languages),
    bio: d.bio ?? "",
    timezone: d.timezone,
  };
}

/** A doctor's public profile: what patients see when they look for a doctor. */
export function DoctorProfileForm({ doctor, user }: { doctor: Schemas["DoctorView"]; user: SessionUser }) {
  const form = useForm<Values>(valuesOf(doctor));
  const [saved, setSaved] = useState<Values | null>(null);
  const [zones] = useState(() => zoneOptions(doctor.timezone));

  const onSubmit = form.submit(async (v) => {
    setSaved(null);
    let answer: Schemas["DoctorView"];
    try {
      answer = must(
        await api.PUT("/api/v1/doctors/{doctor_id}/profile", {
          params: { path: { doctor_id: doctor.id } },
          body: {
            name: v.name.trim(),
            specialties: parseLines(v.specialties),
            languages: parseLines(v.languages),
            bio: v.bio.trim(),
            timezone: v.timezone,
          },
        }),
      );
    } catch (e) {
      throw new ProblemError(placeConflict(toProblem(e).problem));
    }
    const next = valuesOf(answer);
    for (const [k, value] of Object.entries(next)) form.set(k as keyof Values, value);
    setSaved(next);
    if (answer.name !== user.name || answer.timezone !== user.timezone) {
      updateUser({ ...user, name: answer.name, timezone: answer.timezone });
    }
  });

  return (
    <form class="wide profile-form" onSubmit={onSubmit} aria-labelledby="profile-doctor-h">
      <h2 id="profile-doctor-h">Your public profile</h2>
      <p class="hint">Patients see this when they look for a doctor.</p>
      <div class="profile-pair">
        <Field form={form} name="name" label="Name as patients see it" autoComplete="name" required />
        <Field
          form={form}
          name="timezone"
          label="Time zone"
          hint="Your availability and appointments are in this zone."
          options={zones}
          schema="DoctorProfileRequest"
        />
      </div>
      <div class="profile-pair">
        <Field form={form} name="specialties" label="Specialties" hint="One per line, e.g. Cardiology." multiline required={false} />
        <Field form={form} name="languages" label="Languages you consult in" hint="One per line, e.g. English." multiline required={false} />
      </div>
      <Field form={form} name="bio" label="Introduction" hint="A few sentences about your practice and experience." multiline required={false} />
      <FormErrors form={form} />
      <div class="row">
        <Submit form={form}>Save profile</Submit>
        <SavedStatus saved={saved} current={form.values} />
      </div>
    </form>
  );
}
