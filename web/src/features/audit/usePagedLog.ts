import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { PAGE_SIZE } from "./model";
import type { LogPage } from "./api";

/** A log read page by page, oldest first, following each page's `next`. */
export interface PagedLog<T> {
  /** Rows loaded so far; undefined before the first page. */
  items: T[] | undefined;
  /** The first page's failure (the screen shows it instead of the table). */
  error: ProblemError | undefined;
  /** A later page's failure (shown under the table, the rows stay). */
  moreError: ProblemError | undefined;
  loading: boolean;
  /** False once a page came back short: nothing newer exists yet. */
  hasMore: boolean;
  /** Reads the following page (or checks again for newer rows at the end). */
  loadMore: () => Promise<void>;
  reload: () => Promise<void>;
}

/** Reads `fetchPage` from the start whenever `key` changes; the latest read wins. */
export function usePagedLog<T>(fetchPage: (after?: string) => Promise<LogPage<T>>, key: string): PagedLog<T> {
  const [items, setItems] = useState<T[]>();
  const [error, setError] = useState<ProblemError>();
  const [moreError, setMoreError] = useState<ProblemError>();
  const [loading, setLoading] = useState(true);
  const [hasMore, setHasMore] = useState(false);
  const next = useRef<string | undefined>(undefined);
  const generation = useRef(0);
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;

  const read = useCallback(async (fresh: boolean) => {
    const mine = fresh ? ++generation.current : generation.current;
    setLoading(true);
    if (fresh) {
      setItems(undefined);
      setError(undefined);
      next.current = undefined;
    }
    setMoreError(undefined);
    try {
      const page = await fetchRef.current(next.current);
      if (mine !== generation.current) return;
      next.current = page.next;
      setItems((old) => (fresh || !old ? page.items : old.concat(page.items)));
      setHasMore(page.items.length >= PAGE_SIZE);
    } catch (e) {
      if (mine !== generation.current) return;
      if (fresh) setError(toProblem(e));
      else setMoreError(toProblem(e));
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => void read(true), [key]);
  return {
    items,
    error,
    moreError,
    loading,
    hasMore,
    loadMore: () => read(false),
    reload: () => read(true),
  };
}
