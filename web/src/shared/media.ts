/** Camera and microphone: what a getUserMedia failure means for the person. */

/** Why the camera or microphone could not be used. */
export type MediaProblem = "denied" | "missing" | "busy" | "insecure" | "other";

/** Classifies a getUserMedia error (names differ between browsers and versions). */
export function mediaProblemOf(error: unknown): MediaProblem {
  const name = (error as { name?: string } | null)?.name;
  if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") return "busy";
  if (name === "TypeError") return "insecure";
  return "other";
}
