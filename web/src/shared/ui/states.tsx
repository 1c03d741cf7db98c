import type { ComponentChildren } from "preact";
import type { ProblemError } from "../api/problem";

/** A polite "loading" line for screen readers and eyes. */
export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p class="state state-loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {what}…
    </p>
  );
}

/** What a list shows when it has nothing. */
export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="state state-empty">{children}</p>;
}

/** A failed load, with a retry. */
export function ErrorState({ error, retry }: { error: ProblemError; retry?: () => void }) {
  return (
    <div class="state state-error" role="alert">
      <p>
        <strong>{error.problem.title ?? "Something went wrong"}</strong>
        {error.problem.detail ? `: ${error.problem.detail}` : ""}
      </p>
      {retry && (
        <button type="button" class="button secondary" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Loading, error or the content of a resource. */
export function Loaded<T>({
  resource,
  what,
  children,
}: {
  resource: { data: T | undefined; error: ProblemError | undefined; loading: boolean; reload: () => void };
  what?: string;
  children: (data: T) => ComponentChildren;
}) {
  if (resource.error) return <ErrorState error={resource.error} retry={resource.reload} />;
  if (resource.data === undefined) return <Loading what={what} />;
  return <>{children(resource.data)}</>;
}
