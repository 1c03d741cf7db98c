import { useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import { ProblemError, toProblem } from "@/shared/api/problem";
import { updateUser, type SessionUser } from "@/shared/auth/session";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { joinLines, orNull, parseLines, placeConflict } from "./lists";
import { SavedStatus } from "./SavedStatus";
import { zoneOptions } from "@/shared/time/zones";

type Values = {
  name: string;
  timezone: string;
  phone: string;
  address: string;
  conditions: string;
  allergies: string;
  medications: string;
  notes: string;
};

function valuesOf(p: Schemas["PatientView"]): Values {
  return {
    name: p.name,
    timezone: p.timezone,
    phone: p.contact.phone ?? "",
    address: p.contact.address ?? "",
    conditions: joinLines(p.medical_history.conditions),
    allergies: joinLines(p.medical_history.allergies),
    medications: joinLines(p.medical_history.medications),
    notes: p.medical_history.notes ?? "",
  };
}

const lineHint = "One per line.";

/** A patient's own contact details and medical history. */
export function PatientProfileForm({ patient, user }: { patient: Schemas["PatientView"]; user: SessionUser }) {
  const form = useForm<Values>(valuesOf(patient));
  const [saved, setSaved] = useState<Values | null>(null);
  const [zones] = useState(() => zoneOptions(patient.timezone));

  const onSubmit = form.submit(async (v) => {
    setSaved(null);
    let answer: Schemas["PatientView"];
    try {
      answer = must(
        await api.PUT("/api/v1/patients/{patient_id}/profile", {
          params: { path: { patient_id: patient.id } },
          body: {
            name: v.name.trim(),
            timezone: v.timezone,
            contact: { phone: orNull(v.phone), address: orNull(v.address) },
            medical_history: {
              conditions: parseLines(v.conditions),
              allergies: parseLines(v.allergies),
              medications: parseLines(v.medications),
              notes: v.notes.trim(),
            },
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
    <form class="wide profile-form" onSubmit={onSubmit} aria-labelledby="profile-patient-h">
      <h2 id="profile-patient-h">Your details</h2>
      <div class="profile-pair">
        <Field form={form} name="name" label="Full name" autoComplete="name" required />
        <Field
          form={form}
          name="timezone"
          label="Time zone"
          hint="Appointment times are shown in this zone."
          options={zones}
          schema="PatientProfileRequest"
        />
      </div>
      <fieldset>
        <legend>Contact</legend>
        <div class="profile-pair">
          <Field
            form={form}
            name="phone"
            serverName="contact.phone"
            label="Phone"
            type="tel"
            autoComplete="tel"
            hint="With the country code, e.g. +44 20 7946 0958."
            required={false}
          />
          <Field form={form} name="address" serverName="contact.address" label="Postal address" autoComplete="street-address" multiline required={false} />
        </div>
      </fieldset>
      <fieldset>
        <legend>Medical history</legend>
        <p class="hint">Only you, doctors you have an appointment with and administrators can read this.</p>
        <div class="profile-triple">
          <Field form={form} name="conditions" serverName="medical_history.conditions" label="Conditions" hint={lineHint} multiline required={false} />
          <Field form={form} name="allergies" serverName="medical_history.allergies" label="Allergies" hint={lineHint} multiline required={false} />
          <Field form={form} name="medications" serverName="medical_history.medications" label="Medications" hint={lineHint} multiline required={false} />
        </div>
        <Field form={form} name="notes" serverName="medical_history.notes" label="Notes" hint="Anything else your doctor should know." multiline required={false} />
      </fieldset>
      <FormErrors form={form} />
      <div class="row">
        <Submit form={form}>Save profile</Submit>
        <SavedStatus saved={saved} current={form.values} />
      </div>
    </form>
  );
}
