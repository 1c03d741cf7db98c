import { useEffect, useRef, useState } from "preact/hooks";
import { paths } from "@/shared/paths";
import { ErrorState } from "@/shared/ui/states";
import { formatClock, type CallPhase } from "./callState";
import type { MediaProblem } from "@/shared/media";
import type { CallControls } from "./useCall";

/** A <video> showing `stream`, playing as soon as it can. */
function StreamVideo({ stream, label, muted, onSoundBlocked }: { stream: MediaStream | null; label: string; muted?: boolean; onSoundBlocked?: () => void }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const video = ref.current;
    if (!video) return;
    if (video.srcObject !== stream) video.srcObject = stream;
    if (!stream) return;
    video.play().catch((e: unknown) => {
      // Autoplay with sound refused: play muted and offer to turn the sound on.
      if ((e as { name?: string }).name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        onSoundBlocked?.();
        void video.play().catch(() => undefined);
      }
    });
  }, [stream]);
  return <video ref={ref} class={muted ? "cr-video cr-self" : "cr-video cr-remote"} aria-label={label} autoplay playsInline muted={muted} />;
}

function statusText(phase: CallPhase, other: string): string {
  switch (phase.kind) {
    case "idle":
      return "No call in progress.";
    case "starting":
      return "Starting the camera…";
    case "incoming":
      return `${other} is calling`;
    case "outgoing":
      return `Calling ${other}… (ringing)`;
    case "connecting":
      return `Connecting to ${other}…`;
    case "active":
      return `In call with ${other}`;
    case "ended":
      switch (phase.outcome) {
        case "missed":
          return "Missed call: nobody answered.";
        case "declined":
          return "The call was declined.";
        case "failed":
          return "The call failed: the connection could not be made.";
        case "elsewhere":
          return "This call is going on in another tab or device.";
        default:
          return `The call has ended${phase.reason && phase.reason !== "user_hangup" ? ` (${phase.reason.replace(/_/g, " ")})` : ""}.`;
      }
  }
}

const badge: Record<CallPhase["kind"], string> = {
  idle: "",
  starting: "ringing",
  incoming: "ringing",
  outgoing: "ringing",
  connecting: "ringing",
  active: "active",
  ended: "",
};

function MediaHelp({ problem }: { problem: MediaProblem }) {
  const text: Record<MediaProblem, string> = {
    denied:
      "Your camera or microphone is blocked. To allow it, click the camera or lock icon at the left of the address bar, open the site settings, set Camera and Microphone to Allow, then start or answer the call again.",
    missing: "No camera or microphone was found. You can still see and hear the other person; connect a device and call again to be seen.",
    busy: "Your camera or microphone is in use by another application. Close it and call again to be seen.",
    insecure: "This browser cannot use a camera here (the page must be opened over https).",
    other: "Your camera or microphone could not be started.",
  };
  return <p class="notice warn small">{text[problem]}</p>;
}

/** The video call: status, both videos, the controls. */
export function CallPanel({ call, other, canStart, closed, appointmentId }: { call: CallControls; other: string; canStart: boolean; closed: boolean; appointmentId: string }) {
  const { phase } = call;
  const [now, setNow] = useState(Date.now());
  const [soundBlocked, setSoundBlocked] = useState(false);
  const answerRef = useRef<HTMLButtonElement>(null);
  const remoteWrap = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (phase.kind !== "active") return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [phase.kind]);
  useEffect(() => {
    if (phase.kind === "incoming") answerRef.current?.focus();
  }, [phase.kind]);
  const inCall = phase.kind === "starting" || phase.kind === "outgoing" || phase.kind === "connecting" || phase.kind === "active";
  const showVideos = inCall || !!call.local || !!call.remote;
  const text = statusText(phase, other);

  const unmute = () => {
    const video = remoteWrap.current?.querySelector("video");
    if (video) {
      video.muted = false;
      void video.play().catch(() => undefined);
    }
    setSoundBlocked(false);
  };

  return (
    <section class="card cr-call" aria-labelledby="cr-call-title">
      <div class="row spread">
        <h2 id="cr-call-title">Video call</h2>
        {badge[phase.kind] && <span class={`badge ${badge[phase.kind]}`}>{phase.kind === "active" ? "active" : phase.kind === "connecting" ? "connecting" : "ringing"}</span>}
        {phase.kind === "ended" && <span class={`badge ${phase.outcome === "declined" ? "rejected" : phase.outcome}`}>{phase.outcome === "elsewhere" ? "active elsewhere" : phase.outcome}</span>}
      </div>
      {/* The status is announced on changes; the ticking duration beside it is not. */}
      <p class={phase.kind === "incoming" ? "visually-hidden" : "cr-call-status"}>
        <span role="status" aria-live="polite">
          {text}
        </span>
        {phase.kind === "active" && (
          <span class="cr-clock">
            {" · "}
            <span class="visually-hidden">duration </span>
            {formatClock((now - phase.answeredAt) / 1000)}
          </span>
        )}
      </p>

      {phase.kind === "incoming" && (
        <div class="cr-incoming" role="group" aria-label={`Incoming call from ${other}`}>
          <p class="cr-incoming-title">
            <span class="cr-ring" aria-hidden="true" /> {other} is calling
          </p>
          <div class="row">
            <button ref={answerRef} type="button" class="button primary" onClick={call.answer}>
              Answer
            </button>
            <button type="button" class="button danger" onClick={call.decline}>
              Decline
            </button>
          </div>
        </div>
      )}

      {showVideos && (
        <div class="cr-stage">
          <div class="cr-remote-wrap" ref={remoteWrap}>
            <StreamVideo stream={call.remote} label={`${other}'s video`} onSoundBlocked={() => setSoundBlocked(true)} />
            {!call.remote && <p class="cr-placeholder">{phase.kind === "active" ? `${other}'s camera is off` : `Waiting for ${other}…`}</p>}
          </div>
          <div class="cr-self-wrap">
            <StreamVideo stream={call.local} label="Your camera" muted />
            {(!call.local || !call.hasCam || !call.camOn) && <p class="cr-placeholder small">Your camera is off</p>}
          </div>
        </div>
      )}
      {soundBlocked && (
        <p class="notice small">
          The browser started the call without sound.{" "}
          <button type="button" class="button secondary" onClick={unmute}>
            Turn on sound
          </button>
        </p>
      )}
      {call.mediaProblem && inCall && <MediaHelp problem={call.mediaProblem} />}

      <div class="row cr-controls">
        {inCall && (
          <>
            <button type="button" class="button secondary" aria-pressed={!call.micOn} disabled={!call.hasMic} onClick={call.toggleMic}>
              {call.micOn ? "Mute microphone" : "Unmute microphone"}
            </button>
            <button type="button" class="button secondary" aria-pressed={!call.camOn} disabled={!call.hasCam} onClick={call.toggleCam}>
              {call.camOn ? "Turn camera off" : "Turn camera on"}
            </button>
            <button type="button" class="button danger solid" onClick={call.hangUp}>
              Hang up
            </button>
          </>
        )}
        {phase.kind === "ended" && phase.outcome === "elsewhere" && (
          <button type="button" class="button danger" onClick={call.hangUp}>
            End that call
          </button>
        )}
        {canStart && !closed && !inCall && phase.kind !== "incoming" && !(phase.kind === "ended" && phase.outcome === "elsewhere") && (
          <button type="button" class="button primary" onClick={call.start}>
            {phase.kind === "ended" ? "Call again" : "Start video call"}
          </button>
        )}
        {!canStart && phase.kind === "idle" && !closed && (
          <p class="muted small">
            {other} will start the video call when it is time. <a href={paths.waitingRoom(appointmentId)}>Check in in the waiting room</a> to let them know you are
            here.
          </p>
        )}
      </div>
      {call.error && <ErrorState error={call.error} />}
    </section>
  );
}
