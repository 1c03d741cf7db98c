/**
 * The unread count, shared by the header badge and the inbox: a tiny module-level store.
 * Live arrivals are counted once per notification id.
 */
import { useEffect, useState } from "preact/hooks";

type Listener = (count: number | null) => void;

/** A count of unread notifications; null until the first load. */
export class UnreadStore {
  private count: number | null = null;
  private readonly seen = new Set<string>();
  private readonly listeners = new Set<Listener>();

  get(): number | null {
    return this.count;
  }

  /** The server's count (a fresh load). */
  set(count: number) {
    this.update(Math.max(0, count));
  }

  /** A live `notification` arrived: one more, unless that id was already counted. */
  arrived(id: string) {
    if (this.seen.has(id)) return;
    this.seen.add(id);
    if (this.count !== null) this.update(this.count + 1);
  }

  /** `n` notifications were marked read. */
  read(n = 1) {
    if (this.count !== null) this.update(Math.max(0, this.count - n));
  }

  /** Signed out: forget everything. */
  reset() {
    this.seen.clear();
    this.update(null);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private update(count: number | null) {
    if (count === this.count) return;
    this.count = count;
    for (const l of this.listeners) l(count);
  }
}

/** The app's one unread count. */
export const unread = new UnreadStore();

/** The unread count, re-rendering on change. */
export function useUnread(): number | null {
  const [count, setCount] = useState(unread.get());
  useEffect(() => {
    setCount(unread.get());
    return unread.subscribe(setCount);
  }, []);
  return count;
}
