import { useEffect, useRef, useState } from "preact/hooks";
import { live, type LiveStatus } from "./live";

/** Calls `handler` for every `event` while the component is mounted. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function useLiveEvent(event: string, handler: (data: any) => void) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => live.on(event, (data) => ref.current(data)), [event]);
}

/** The live connection's state. */
export function useLiveStatus(): LiveStatus {
  const [status, setStatus] = useState<LiveStatus>(live.status);
  useEffect(() => live.onStatus(setStatus), []);
  return status;
}
