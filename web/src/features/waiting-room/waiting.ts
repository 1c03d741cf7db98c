/** The waiting room's pure parts: the doctor's queue, labels, the pre-call check's verdicts. */

/** A checked-in patient as `waiting:list` / `waiting:joined` send it. */
export interface WaitingEntry {
  appointment_id: string;
  patient_id: string;
  patient_name: string;
  checked_in_at: string;
  start: string;
  end?: string;
}

/** Adds or replaces an entry (by appointment), longest waiting first. */
export function upsertEntry(queue: readonly WaitingEntry[], entry: WaitingEntry): WaitingEntry[] {
  return sortQueue([...queue.filter((e) => e.appointment_id !== entry.appointment_id), entry]);
}

/** Removes the entry of `appointment_id`. */
export function removeEntry(queue: readonly WaitingEntry[], appointmentId: string): WaitingEntry[] {
  return queue.filter((e) => e.appointment_id !== appointmentId);
}

export function sortQueue(queue: readonly WaitingEntry[]): WaitingEntry[] {
  return [...queue].sort((a, b) => Date.parse(a.checked_in_at) - Date.parse(b.checked_in_at));
}

/** "waiting less than a minute", "waiting 4 min", "waiting 1 h 05 min". */
export function waitedLabel(checkedInAt: string, now: number): string {
  const minutes = Math.floor((now - Date.parse(checkedInAt)) / 60_000);
  if (!(minutes >= 1)) return "waiting less than a minute";
  if (minutes < 60) return `waiting ${minutes} min`;
  return `waiting ${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** "02:05" or "1:02:05" since `since`. */
export function elapsedClock(since: string | number, now: number): string {
  const start = typeof since === "number" ? since : Date.parse(since);
  const s = Math.max(0, Math.floor((now - start) / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export type DoctorPresence = "online" | "in_call" | "away";

/** The doctor's status as the server names it, normalised. */
export function presenceOf(status: string | null | undefined): DoctorPresence {
  const s = (status ?? "").toLowerCase().replace(/[-\s]/g, "_");
  if (s === "online" || s === "available") return "online";
  if (s === "in_call" || s === "busy" || s === "in_another_call" || s === "on_call") return "in_call";
  return "away";
}

/** "Dr Grey is online" / "is in another call" / "is away". */
export function presenceText(doctor: string, presence: DoctorPresence): string {
  switch (presence) {
    case "online":
      return `${doctor} is online`;
    case "in_call":
      return `${doctor} is in another call`;
    default:
      return `${doctor} is away`;
  }
}

export type ConnectionVerdict = "good" | "fair" | "poor" | "offline";

/** A round trip in ms (null: it failed) as a verdict. */
export function connectionVerdict(roundTripMs: number | null, liveConnected: boolean): ConnectionVerdict {
  if (roundTripMs === null || !liveConnected) return "offline";
  if (roundTripMs < 150) return "good";
  if (roundTripMs < 400) return "fair";
  return "poor";
}

/** The median of some samples (null when there are none). */
export function median(samples: readonly number[]): number | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The level (0..1) of time-domain bytes from an AnalyserNode (128 is silence). */
export function levelOf(bytes: ArrayLike<number>): number {
  if (bytes.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) {
    const v = (bytes[i]! - 128) / 128;
    sum += v * v;
  }
  // RMS of speech is small: scale it so that talking fills most of the meter.
  return Math.min(1, Math.sqrt(sum / bytes.length) * 4);
}
