import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { ProblemError, toProblem } from "@/shared/api/problem";
import { useSession } from "@/shared/auth/hooks";
import { getEndedReason, signIn, type TokenAnswer } from "@/shared/auth/session";
import { paths } from "@/shared/paths";
import { Page } from "@/shared/ui/Page";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";
import { homeOf } from "@/shared/paths";
import { afterSignIn, safeNext } from "./redirect";
import "./auth.css";

/** E-mail and password; then the page the person was sent from, or their home. */
export function SignInPage() {
  const { route, query } = useLocation();
  const session = useSession();
  const [ended] = useState(getEndedReason);
  const form = useForm({ email: "", password: "" });
  const next = safeNext(query.next, location.origin);
  const signUpHref = next ? `${paths.signUp}?next=${encodeURIComponent(next)}` : paths.signUp;

  const onSubmit = form.submit(async (values) => {
    let answer: TokenAnswer;
    try {
      answer = must(await api.POST("/api/v1/auth/login", { body: { email: values.email.trim(), password: values.password } })) as TokenAnswer;
    } catch (e) {
      const problem = toProblem(e);
      // One message for an unknown e-mail and a wrong password: show it as the server says it.
      if (problem.problem.status === 401) {
        throw new ProblemError({ status: 401, title: "Could not sign in", detail: problem.problem.detail ?? "E-mail or password is incorrect" });
      }
      throw problem;
    }
    signIn(answer);
    route(afterSignIn(answer.user.role, next, location.origin));
  });

  return (
    <Page title="Sign in">
      {ended && (
        <p class="notice warn" role="status">
          {ended}
        </p>
      )}
      {session && !ended && (
        <p class="notice">
          You are signed in as {session.user.name} ({session.user.email}).{" "}
          <a href={homeOf(session.user.role)}>Go to your start page</a>, or sign in with another account below.
        </p>
      )}
      <div class="card auth-card">
        <form onSubmit={onSubmit} aria-label="Sign in">
          <Field form={form} name="email" label="E-mail" type="email" autoComplete="username" schema="LoginRequest" />
          <Field form={form} name="password" label="Password" type="password" autoComplete="current-password" schema="LoginRequest" />
          <FormErrors form={form} />
          <div class="row">
            <Submit form={form}>Sign in</Submit>
          </div>
        </form>
      </div>
      <p>
        New to Telemed? <a href={signUpHref}>Create an account</a>.
      </p>
    </Page>
  );
}
