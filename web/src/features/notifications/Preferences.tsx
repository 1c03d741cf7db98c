import { useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import type { SessionUser } from "@/shared/auth/session";
import { Field, FormErrors, Submit, useForm, type Form } from "@/shared/ui/form";
import { Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";

type Values = { email: string; push: string; sms: string; phone: string };

const on = (b: boolean) => (b ? "on" : "");

function valuesOf(p: Schemas["Preferences"]): Values {
  return { email: on(p.email), push: on(p.push), sms: on(p.sms), phone: p.phone ?? "" };
}

/** Which channels carry notifications besides the inbox. */
export function Preferences({ user }: { user: SessionUser }) {
  const prefs = useResource(async () => must(await api.GET("/api/v1/notifications/preferences")), [user.id]);
  return (
    <section class="card notif-section" aria-labelledby="notif-prefs-h">
      <h2 id="notif-prefs-h">How we reach you</h2>
      <p class="muted small">
        The inbox above always gets every notification. E-mails, push notifications and text messages never include names,
        reasons or message text: only that there is something to see.
      </p>
      <Loaded resource={prefs} what="Loading your preferences">
        {(p) => <PreferencesForm prefs={p} user={user} />}
      </Loaded>
    </section>
  );
}

function PreferencesForm({ prefs, user }: { prefs: Schemas["Preferences"]; user: SessionUser }) {
  const form = useForm<Values>(valuesOf(prefs));
  const [saved, setSaved] = useState<Values | null>(null);
  const onSubmit = form.submit(async (v) => {
    setSaved(null);
    const phone = v.phone.trim();
    const answer = must(
      await api.PUT("/api/v1/notifications/preferences", {
        body: { email: !!v.email, push: !!v.push, sms: !!v.sms, phone: phone || null },
      }),
    );
    const next = valuesOf(answer);
    for (const [k, value] of Object.entries(next)) form.set(k as keyof Values, value);
    setSaved(next);
  });
  const clean = saved !== null && (Object.keys(saved) as (keyof Values)[]).every((k) => saved[k] === form.values[k]);

  return (
    <form class="notif-form" onSubmit={onSubmit} aria-labelledby="notif-prefs-h">
      <fieldset>
        <legend>Send notifications by</legend>
        <Check form={form} name="email" label={`E-mail, to ${user.email}`} />
        <Check form={form} name="push" label="Push notifications, on the devices where you turn them on below" />
        <Check form={form} name="sms" label="Text message (SMS) reminders, 24 hours and 1 hour before a consultation" />
      </fieldset>
      <Field
        form={form}
        name="phone"
        label="Mobile number for SMS"
        type="tel"
        autoComplete="tel"
        inputMode="tel"
        hint="International format: + then 8 to 15 digits, e.g. +33612345678. Needed for SMS."
        required={false}
      />
      <FormErrors form={form} />
      <div class="row">
        <Submit form={form}>Save preferences</Submit>
        <p class="notif-saved" role="status">
          {clean ? "Saved." : ""}
        </p>
      </div>
    </form>
  );
}

/** A checkbox bound to a form value ("on" or ""), with the server's error for it. */
function Check({ form, name, label }: { form: Form<Values>; name: keyof Values; label: string }) {
  form.shown.add(name);
  const id = `${form.id}-${name}`;
  const message = form.error?.field(name);
  return (
    <div class={`field notif-check${message ? " invalid" : ""}`}>
      <div class="checkbox">
        <input
          type="checkbox"
          id={id}
          name={name}
          checked={!!form.values[name]}
          aria-invalid={message ? true : undefined}
          aria-describedby={message ? `${id}-error` : undefined}
          onChange={(e) => form.set(name, on(e.currentTarget.checked))}
        />
        <label for={id}>{label}</label>
      </div>
      {message && (
        <p class="field-error" id={`${id}-error`}>
          {message}
        </p>
      )}
    </div>
  );
}
