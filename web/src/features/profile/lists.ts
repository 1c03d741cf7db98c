/** Lists edited as text, one item per line. */

/** The non-empty, trimmed lines of `text`. */
export function parseLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** The text of a list, one item per line. */
export function joinLines(items: readonly string[] | null | undefined): string {
  return (items ?? []).join("\n");
}

/** A trimmed value, or null when empty (optional fields the server takes as null). */
export function orNull(value: string): string | null {
  const trimmed = value.trim();
  return trimmed ? trimmed : null;
}

/**
 * Field errors named after the server's request paths (`medical_history.conditions`) keep
 * their names; a conflict about the time zone is placed next to the time zone field.
 */
export function placeConflict<P extends { status: number; code?: string; detail?: string; errors?: { field: string; message: string }[] }>(
  problem: P,
): P {
  if (problem.status === 409 && problem.code === "timezone_change_with_availability" && !problem.errors?.length) {
    return { ...problem, errors: [{ field: "timezone", message: problem.detail ?? "cannot change while you have availability" }] };
  }
  return problem;
}
