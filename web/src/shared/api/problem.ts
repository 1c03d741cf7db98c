/** An RFC 9457 problem as the server sends it (application/problem+json). */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code?: string;
  errors?: { field: string; message: string }[];
}

/** A problem thrown by the API client and by live acks. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title ?? `request failed (${problem.status})`);
  }

  /** The message for one field, if the server named it. */
  field(name: string): string | undefined {
    return this.problem.errors?.find((e) => e.field === name)?.message;
  }

  /** Messages for fields the form does not show: they go in the summary. */
  unplaced(shown: readonly string[]): string[] {
    return (this.problem.errors ?? [])
      .filter((e) => !shown.includes(e.field))
      .map((e) => `${e.field}: ${e.message}`);
  }
}

/** Turns anything thrown into a problem a screen can show. */
export function toProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error;
  if (isProblem(error)) return new ProblemError(error);
  const detail = error instanceof Error ? error.message : "Something went wrong";
  return new ProblemError({ status: 0, title: "Network error", detail });
}

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && typeof (value as Problem).status === "number";
}
