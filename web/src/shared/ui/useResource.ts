import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { toProblem, type ProblemError } from "../api/problem";

/** A loaded value with its loading and error states, reloadable. */
export interface Resource<T> {
  data: T | undefined;
  error: ProblemError | undefined;
  loading: boolean;
  reload: () => Promise<void>;
  /** Replaces the data locally (live updates). */
  set: (update: (old: T | undefined) => T | undefined) => void;
}

/** Loads `load()` now and whenever `deps` change; the latest load wins. */
export function useResource<T>(load: () => Promise<T>, deps: readonly unknown[]): Resource<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<ProblemError>();
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const value = await loadRef.current();
      if (mine === generation.current) {
        setData(value);
        setError(undefined);
      }
    } catch (e) {
      if (mine === generation.current) setError(toProblem(e));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => void reload(), deps);
  return { data, error, loading, reload, set: setData };
}
