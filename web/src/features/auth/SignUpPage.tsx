import { useMemo } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { ProblemError, toProblem } from "@/shared/api/problem";
import { signIn, type TokenAnswer } from "@/shared/auth/session";
import { paths } from "@/shared/paths";
import { browserZone } from "@/shared/time/zone";
import { Page } from "@/shared/ui/Page";
import { Field, FormErrors, Submit, useForm, type Form } from "@/shared/ui/form";
import { safeNext } from "./redirect";
import { zoneOptions } from "@/shared/time/zones";
import "./auth.css";

type Values = { name: string; email: string; password: string; role: string; timezone: string };

const roles = [
  { value: "patient", label: "Patient", hint: "Find a doctor and book video consultations." },
  { value: "doctor", label: "Doctor", hint: "Publish your availability and hold consultations." },
] as const;

/** A new patient or doctor account; then a doctor fills in the profile, a patient finds a doctor. */
export function SignUpPage() {
  const { route, query } = useLocation();
  const form = useForm<Values>({ name: "", email: "", password: "", role: "patient", timezone: browserZone() });
  const zones = useMemo(() => zoneOptions(form.values.timezone), []);
  const next = safeNext(query.next, location.origin);
  const signInHref = next ? `${paths.signIn}?next=${encodeURIComponent(next)}` : paths.signIn;

  const onSubmit = form.submit(async (v) => {
    let answer: TokenAnswer;
    try {
      answer = must(
        await api.POST("/api/v1/auth/register", {
          body: { name: v.name.trim(), email: v.email.trim(), password: v.password, role: v.role === "doctor" ? "doctor" : "patient", timezone: v.timezone },
        }),
      ) as TokenAnswer;
    } catch (e) {
      // The server names no field for a taken e-mail (409 email_taken): it belongs next to E-mail.
      const problem = toProblem(e);
      if (problem.problem.code !== "email_taken") throw problem;
      throw new ProblemError({
        ...problem.problem,
        title: "This e-mail already has an account",
        errors: [{ field: "email", message: "already has an account: sign in instead, or use another address" }],
      });
    }
    signIn(answer);
    if (answer.user.role === "doctor") route(`${paths.profile}?welcome=1`);
    else route(next ?? paths.doctors);
  });

  return (
    <Page title="Create your account">
      <div class="card auth-card">
        <form onSubmit={onSubmit} aria-label="Create your account">
          <Field form={form} name="name" label="Full name" autoComplete="name" schema="RegisterRequest" />
          <Field form={form} name="email" label="E-mail" type="email" autoComplete="email" schema="RegisterRequest" />
          <Field
            form={form}
            name="password"
            label="Password"
            type="password"
            autoComplete="new-password"
            hint="At least 10 characters."
            schema="RegisterRequest"
          />
          <RoleChoice form={form} />
          <Field
            form={form}
            name="timezone"
            label="Time zone"
            hint="Appointment times are shown in this zone. We picked your device's zone."
            options={zones}
            schema="RegisterRequest"
          />
          <FormErrors form={form} />
          <div class="row">
            <Submit form={form}>Create account</Submit>
          </div>
        </form>
      </div>
      <p>
        Already have an account? <a href={signInHref}>Sign in</a>.
      </p>
    </Page>
  );
}

/** Patient or doctor, as radio buttons, with the server's error for `role`. */
function RoleChoice({ form }: { form: Form<Values> }) {
  form.shown.add("role");
  const message = form.error?.field("role");
  const id = `${form.id}-role`;
  return (
    <fieldset
      id={id}
      tabIndex={-1}
      class={`field auth-role${message ? " invalid" : ""}`}
      aria-describedby={message ? `${id}-error` : undefined}
    >
      <legend>I am a</legend>
      {roles.map((r) => (
        <div class="auth-role-option" key={r.value}>
          <input
            type="radio"
            id={`${id}-${r.value}`}
            name="role"
            value={r.value}
            checked={form.values.role === r.value}
            required
            aria-describedby={`${id}-${r.value}-hint`}
            onChange={() => form.set("role", r.value)}
          />
          <label for={`${id}-${r.value}`}>{r.label}</label>
          <span class="hint" id={`${id}-${r.value}-hint`}>
            {r.hint}
          </span>
        </div>
      ))}
      {message && (
        <p class="field-error" id={`${id}-error`}>
          {message}
        </p>
      )}
    </fieldset>
  );
}
