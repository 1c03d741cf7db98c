import { useEffect, useRef } from "preact/hooks";

/** A function that runs `fn` once, `ms` after the last of a burst of calls. */
export function useDebounced(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout>>();
  useEffect(() => () => clearTimeout(timer.current), []);
  const call = useRef(() => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => fnRef.current(), ms);
  });
  return call.current;
}
