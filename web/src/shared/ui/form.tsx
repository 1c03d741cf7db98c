/**
 * Forms: controlled values, the server's problem+json shown next to the field it names, and
 * the constraints of the OpenAPI document (rules.ts) checked before sending, so that a form
 * refuses what the server would refuse, with the same kind of message in the same place.
 */
import type { ComponentChildren, JSX } from "preact";
import { useState } from "preact/hooks";
import { rules } from "../api/rules";
import { ProblemError, toProblem } from "../api/problem";
import { check } from "./validate";

type Values = Record<string, string>;

/** A form's state. */
export interface Form<V extends Values> {
  values: V;
  set: (name: keyof V & string, value: string) => void;
  error: ProblemError | undefined;
  setError: (error: ProblemError | undefined) => void;
  submitting: boolean;
  /** An onSubmit handler running `handler`, showing its problem, focusing the first bad field. */
  submit: (handler: (values: V) => Promise<void>) => (e: Event) => Promise<void>;
  /** Fields rendered by this form (for the summary of the others). */
  shown: Set<string>;
  /** The `id` prefix of this form's controls. */
  id: string;
  /** The constraints of the fields rendered by this form, by server field name. */
  rules: Map<string, { name: string; constraints: Constraints }>;
}

let forms = 0;

/** Creates a form's state with its initial values. */
export function useForm<V extends Values>(initial: V): Form<V> {
  const [values, setValues] = useState(initial);
  const [error, setError] = useState<ProblemError>();
  const [submitting, setSubmitting] = useState(false);
  const [id] = useState(() => `f${++forms}`);
  const shown = new Set<string>();
  const fieldRules = new Map<string, { name: string; constraints: Constraints }>();
  return {
    rules: fieldRules,
    values,
    set: (name, value) => setValues((v) => ({ ...v, [name]: value })),
    error,
    setError,
    submitting,
    shown,
    id,
    submit: (handler) => async (e) => {
      e.preventDefault();
      setSubmitting(true);
      setError(undefined);
      try {
        const errors = [...fieldRules].flatMap(([field, { name, constraints }]) => {
          const message = check(values[name] ?? "", constraints);
          return message ? [{ field, message }] : [];
        });
        if (errors.length) throw new ProblemError({ status: 422, title: "Please correct the highlighted fields", errors });
        await handler(values);
      } catch (err) {
        const problem = toProblem(err);
        setError(problem);
        const first = problem.problem.errors?.[0]?.field;
        const target = first && document.getElementById(`${id}-${first}`);
        (target || document.getElementById(`${id}-summary`))?.focus();
      } finally {
        setSubmitting(false);
      }
    },
  };
}

type Schema = keyof typeof rules;
type Rule = {
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  required?: boolean;
};

/** The HTML constraint attributes of a control. */
export interface Constraints {
  required?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  min?: number;
  max?: number;
}

/** HTML attributes for a schema's field, from the server's OpenAPI constraints. */
export function constraintsOf(schema: Schema | undefined, field: string): Constraints {
  if (!schema) return {};
  const rule = (rules[schema] as Record<string, Rule>)[field];
  if (!rule) return {};
  const attrs: Constraints = {};
  if (rule.required) attrs.required = true;
  if (rule.minLength !== undefined) attrs.minLength = rule.minLength;
  if (rule.maxLength !== undefined) attrs.maxLength = rule.maxLength;
  if (rule.pattern !== undefined) attrs.pattern = rule.pattern.replace(/^\^/, "").replace(/\$$/, "");
  if (rule.minimum !== undefined) attrs.min = rule.minimum;
  if (rule.maximum !== undefined) attrs.max = rule.maximum;
  return attrs;
}

interface FieldProps<V extends Values> {
  form: Form<V>;
  name: keyof V & string;
  label: string;
  /** The request schema whose constraints apply (e.g. "RegisterRequest"). */
  schema?: Schema;
  /** The field's name in the server's errors, when it differs from `name`. */
  serverName?: string;
  hint?: string;
  type?: string;
  autoComplete?: string;
  required?: boolean;
  multiline?: boolean;
  options?: readonly { value: string; label: string }[];
  inputMode?: JSX.HTMLAttributes["inputMode"];
  min?: string;
  max?: string;
  step?: string;
}

/** A labelled control with its hint and its server error. */
export function Field<V extends Values>(props: FieldProps<V>) {
  const { form, name, label, hint, schema } = props;
  const serverName = props.serverName ?? name;
  form.shown.add(serverName);
  const id = `${form.id}-${serverName}`;
  const message = form.error?.field(serverName);
  const described = [hint && `${id}-hint`, message && `${id}-error`].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name,
    value: form.values[name],
    "aria-invalid": message ? true : undefined,
    "aria-describedby": described,
    onInput: (e: Event) => form.set(name, (e.currentTarget as HTMLInputElement).value),
  };
  const constraints: Constraints = {
    ...constraintsOf(schema, serverName),
    ...(props.required !== undefined && { required: props.required }),
  };
  form.rules.set(serverName, { name, constraints });
  // The form checks constraints itself (see `submit`), so the browser does not pop up its own.
  const a11y = { "aria-required": constraints.required ? true : undefined };
  let control: ComponentChildren;
  if (props.options) {
    control = (
      <select {...common} {...a11y}>
        {props.options.map((o) => (
          <option value={o.value} key={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    );
  } else if (props.multiline) {
    control = <textarea {...common} {...a11y} rows={4} />;
  } else {
    control = (
      <input
        {...common}
        {...a11y}
        type={props.type ?? "text"}
        autoComplete={props.autoComplete}
        inputMode={props.inputMode}
        {...(props.min !== undefined && { min: props.min })}
        {...(props.max !== undefined && { max: props.max })}
        {...(props.step !== undefined && { step: props.step })}
      />
    );
  }
  return (
    <div class={`field${message ? " invalid" : ""}`}>
      <label for={id}>
        {label}
        {constraints.required ? "" : <span class="optional"> (optional)</span>}
      </label>
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {control}
      {message && (
        <p class="field-error" id={`${id}-error`}>
          {message}
        </p>
      )}
    </div>
  );
}

/** The problem's title and the errors of fields the form does not show; place it after the fields. */
export function FormErrors<V extends Values>({ form }: { form: Form<V> }) {
  const error = form.error;
  const unplaced = error?.unplaced([...form.shown]) ?? [];
  const detail = error && !error.problem.errors?.length ? error.problem.detail : undefined;
  return (
    <div id={`${form.id}-summary`} tabIndex={-1} role="alert" class={error ? "form-errors" : "form-errors empty"}>
      {error && (
        <>
          <p>
            <strong>{error.problem.title ?? "Could not save"}</strong>
            {detail ? `: ${detail}` : ""}
          </p>
          {unplaced.length > 0 && (
            <ul>
              {unplaced.map((m) => (
                <li key={m}>{m}</li>
              ))}
            </ul>
          )}
        </>
      )}
    </div>
  );
}

/** The submit button, busy while submitting. */
export function Submit<V extends Values>({ form, children }: { form: Form<V>; children: ComponentChildren }) {
  return (
    <button type="submit" class="button primary" disabled={form.submitting} aria-busy={form.submitting}>
      {form.submitting ? "Working…" : children}
    </button>
  );
}
