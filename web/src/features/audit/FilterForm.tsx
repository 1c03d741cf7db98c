import { useEffect } from "preact/hooks";
import type { ProblemError } from "@/shared/api/problem";
import { Field, FormErrors, Submit, useForm } from "@/shared/ui/form";

export interface FilterField {
  name: string;
  label: string;
  hint?: string;
  options?: readonly { value: string; label: string }[];
}

/**
 * A log's filter form. Applying it changes the address (`onApply`), which reloads the log;
 * a problem with one of its fields (`error`, from that load) is shown next to the field.
 * Mount it with `key` = the current filters, so it starts from them.
 */
export function FilterForm({
  fields,
  initial,
  error,
  onApply,
  label,
}: {
  fields: readonly FilterField[];
  initial: Record<string, string>;
  error: ProblemError | undefined;
  onApply: (values: Record<string, string>) => void;
  label: string;
}) {
  const form = useForm<Record<string, string>>(initial);
  useEffect(() => form.setError(error), [error]);
  const active = Object.values(initial).some((v) => v);
  return (
    <form class="audit-filters card" aria-label={label} onSubmit={form.submit(async (values) => onApply(values))} noValidate>
      {fields.map((f) => (
        <Field key={f.name} form={form} name={f.name} label={f.label} hint={f.hint} options={f.options} autoComplete="off" />
      ))}
      <div class="audit-filter-actions">
        <Submit form={form}>Apply filters</Submit>
        {active && (
          <button
            type="button"
            class="button secondary"
            onClick={() => onApply(Object.fromEntries(fields.map((f) => [f.name, ""])))}
          >
            Clear filters
          </button>
        )}
      </div>
      <FormErrors form={form} />
    </form>
  );
}
