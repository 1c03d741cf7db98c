import { doctorTitle } from "@/shared/people";
/** The video call's states as the room shows them: a pure reducer, unit-tested. */

export type Outcome = "ended" | "missed" | "declined" | "failed" | "elsewhere";

export type CallPhase =
  | { kind: "idle" }
  /** Starting a call or answering: getting the camera, creating the connection. */
  | { kind: "starting"; callId?: string }
  /** I am called: Answer / Decline. */
  | { kind: "incoming"; callId: string }
  /** I called; the other side's devices ring. */
  | { kind: "outgoing"; callId: string }
  /** Answered; media not flowing yet (or reconnecting). */
  | { kind: "connecting"; callId: string; answeredAt: number }
  | { kind: "active"; callId: string; answeredAt: number }
  | { kind: "ended"; callId: string; outcome: Outcome; reason: string };

export type CallAction =
  | { type: "starting"; callId?: string }
  | { type: "incoming"; callId: string }
  | { type: "outgoing"; callId: string }
  /** `call:answered` (by either side) or the callee's own answer. */
  | { type: "answered"; callId: string; at: number; here: boolean }
  | { type: "connected"; callId: string; at: number }
  | { type: "disconnected"; callId: string }
  | { type: "ended"; callId: string; reason: string }
  | { type: "reset" }
  /** Shows a phase read from the call log (arriving in the room). */
  | { type: "show"; phase: CallPhase };

/** What an end reason means for people. */
export function outcomeOf(reason: string): Outcome {
  if (reason === "invite_timeout" || reason === "missed") return "missed";
  if (reason === "rejected" || reason === "declined") return "declined";
  if (reason === "answered_elsewhere") return "elsewhere";
  if (reason.includes("fail")) return "failed";
  return "ended";
}

function callIdOf(phase: CallPhase): string | undefined {
  return phase.kind === "idle" ? undefined : phase.callId;
}

export function callReducer(phase: CallPhase, action: CallAction): CallPhase {
  switch (action.type) {
    case "reset":
      return { kind: "idle" };
    case "show":
      return action.phase;
    case "starting":
      return { kind: "starting", callId: action.callId };
    case "incoming":
      // A ring for the call already shown (another device's ring, a replay) changes nothing.
      if (callIdOf(phase) === action.callId && phase.kind !== "ended") return phase;
      if (phase.kind === "connecting" || phase.kind === "active") return phase;
      return { kind: "incoming", callId: action.callId };
    case "outgoing":
      return { kind: "outgoing", callId: action.callId };
    case "answered":
      if (callIdOf(phase) !== action.callId) return phase;
      if (phase.kind === "incoming" && !action.here) {
        return { kind: "ended", callId: action.callId, outcome: "elsewhere", reason: "answered_elsewhere" };
      }
      if (phase.kind === "outgoing" || phase.kind === "starting" || phase.kind === "incoming") {
        return { kind: "connecting", callId: action.callId, answeredAt: action.at };
      }
      return phase;
    case "connected":
      if (callIdOf(phase) !== action.callId) return phase;
      if (phase.kind === "connecting") return { kind: "active", callId: action.callId, answeredAt: phase.answeredAt };
      // Media may flow before call:answered reaches the caller.
      if (phase.kind === "outgoing" || phase.kind === "starting") return { kind: "active", callId: action.callId, answeredAt: action.at };
      return phase;
    case "disconnected":
      if (phase.kind === "active" && phase.callId === action.callId) return { kind: "connecting", callId: phase.callId, answeredAt: phase.answeredAt };
      return phase;
    case "ended":
      if (callIdOf(phase) !== action.callId) return phase;
      if (phase.kind === "ended" && phase.outcome !== "elsewhere") return phase;
      return { kind: "ended", callId: action.callId, outcome: outcomeOf(action.reason), reason: action.reason };
  }
}

/** "02:05", "1:02:05". */
export function formatClock(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${String(m).padStart(2, "0")}:${sec}`;
}

/** A call log status for people. */
export function logStatusLabel(status: string, reason?: string | null): string {
  if (status === "ended" && reason === "declined") return "declined";
  switch (status) {
    case "rejected":
      return "declined";
    case "invite_timeout":
      return "missed";
    default:
      return status;
  }
}

/** A display name for a participant: doctors are "Dr …". */
export function personName(name: string, isDoctor: boolean): string {
  return isDoctor ? doctorTitle(name) : name.trim();
}
