import { mediaProblemOf, type MediaProblem } from "@/shared/media";
/**
 * One appointment's video call in this tab: start (caller, impolite), ring, answer (callee,
 * polite), decline, hang up, camera and microphone toggles, signaling over the live connection.
 */
import { useCallback, useEffect, useReducer, useRef, useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { live } from "@/shared/live/live";
import { useLiveEvent } from "@/shared/live/hooks";
import { callReducer, outcomeOf, type CallPhase } from "./callState";
import { PerfectNegotiation, type SignalMessage } from "./negotiation";

type IceServer = Schemas["IceServer"];
type CallView = Schemas["CallView"];

declare global {
  interface Window {
    /** The active peer connection, for the browser tests. */
    __telemedPeer?: RTCPeerConnection;
  }
}


/** Camera and microphone, or what could be had of them. */
async function getMedia(): Promise<{ stream: MediaStream | null; problem?: MediaProblem }> {
  if (!navigator.mediaDevices?.getUserMedia) return { stream: null, problem: "insecure" };
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: true, video: true }) };
  } catch (first) {
    const problem = mediaProblemOf(first);
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ audio: true }), problem };
    } catch {
      return { stream: null, problem };
    }
  }
}

interface Active {
  callId: string;
  pc: RTCPeerConnection;
  negotiation: PerfectNegotiation;
  timers: number[];
}

export interface CallControls {
  phase: CallPhase;
  local: MediaStream | null;
  remote: MediaStream | null;
  micOn: boolean;
  camOn: boolean;
  hasMic: boolean;
  hasCam: boolean;
  mediaProblem: MediaProblem | undefined;
  error: ProblemError | undefined;
  /** The call log, refreshed on every call event. */
  log: CallView[] | undefined;
  logError: ProblemError | undefined;
  reloadLog: () => void;
  start: () => Promise<void>;
  answer: () => Promise<void>;
  decline: () => Promise<void>;
  hangUp: () => Promise<void>;
  toggleMic: () => void;
  toggleCam: () => void;
  dismiss: () => void;
}

export function useCall(appointmentId: string, me: string, initialCallId: string | undefined): CallControls {
  const [phase, dispatch] = useReducer(callReducer, { kind: "idle" } as CallPhase);
  const [local, setLocal] = useState<MediaStream | null>(null);
  const [remote, setRemote] = useState<MediaStream | null>(null);
  const [micOn, setMicOn] = useState(true);
  const [camOn, setCamOn] = useState(true);
  const [mediaProblem, setMediaProblem] = useState<MediaProblem>();
  const [error, setError] = useState<ProblemError>();
  const [log, setLog] = useState<CallView[]>();
  const [logError, setLogError] = useState<ProblemError>();
  const active = useRef<Active | null>(null);
  const stream = useRef<MediaStream | null>(null);
  /** Signals of calls this tab has not joined yet (the callee before Answer), since their last offer. */
  const buffered = useRef(new Map<string, SignalMessage[]>());
  const phaseRef = useRef(phase);
  phaseRef.current = phase;

  const loadLog = useCallback(async (): Promise<CallView[] | undefined> => {
    try {
      const data = must(await api.GET("/api/v1/appointments/{id}/calls", { params: { path: { id: appointmentId } } }));
      setLog(data.calls);
      setLogError(undefined);
      return data.calls;
    } catch (e) {
      setLogError(toProblem(e));
      return undefined;
    }
  }, [appointmentId]);

  /** The log now and once more shortly after (its read model may trail the live event). */
  const refreshLog = useCallback(() => {
    void loadLog();
    setTimeout(() => void loadLog(), 1500);
  }, [loadLog]);

  const teardown = useCallback(() => {
    const a = active.current;
    if (a) {
      a.negotiation.close();
      a.timers.forEach((t) => clearInterval(t));
      a.pc.close();
      if (window.__telemedPeer === a.pc) delete window.__telemedPeer;
      active.current = null;
    }
    stream.current?.getTracks().forEach((t) => t.stop());
    stream.current = null;
    setLocal(null);
    setRemote(null);
  }, []);

  const join = useCallback(
    async (callId: string, iceServers: IceServer[], polite: boolean) => {
      const media = await getMedia();
      setMediaProblem(media.problem);
      stream.current = media.stream;
      setLocal(media.stream);
      setMicOn(true);
      setCamOn(true);
      const pc = new RTCPeerConnection({
        iceServers: iceServers.map((s) => ({
          urls: s.urls,
          ...(s.username ? { username: s.username } : {}),
          ...(s.credential ? { credential: s.credential } : {}),
        })),
      });
      window.__telemedPeer = pc;
      const remoteStream = new MediaStream();
      pc.ontrack = (e) => {
        const source = e.streams[0];
        if (source) {
          setRemote(source);
        } else {
          remoteStream.addTrack(e.track);
          setRemote(new MediaStream(remoteStream.getTracks()));
        }
      };
      const timers: number[] = [];
      let failedSince = 0;
      pc.addEventListener("connectionstatechange", () => {
        if (active.current?.pc !== pc) return;
        const state = pc.connectionState;
        if (state === "connected") {
          failedSince = 0;
          dispatch({ type: "connected", callId, at: Date.now() });
        } else if (state === "disconnected" || state === "failed") {
          dispatch({ type: "disconnected", callId });
          if (state === "failed" && !failedSince) failedSince = Date.now();
        }
      });
      // A connection that stays failed after ICE restarts ends the call.
      timers.push(
        window.setInterval(() => {
          if (failedSince && Date.now() - failedSince > 30_000 && active.current?.pc === pc) {
            void live.request("call:hangup", { call_id: callId, reason: "ice_failed" }).catch(() => undefined);
            failedSince = 0;
          }
        }, 5_000),
      );
      const negotiation = new PerfectNegotiation(
        pc,
        {
          sendDescription: async (d) => {
            await live.request(d.type === "offer" ? "call:offer" : "call:answer", { call_id: callId, sdp: d.sdp });
          },
          sendCandidate: async (candidate) => {
            await live.request("call:ice", { call_id: callId, candidate });
          },
        },
        {
          polite,
          waitForRemoteOffer: polite,
          // A candidate racing the call's end is refused (409 call_over): nothing to report.
          onError: (e) => {
            if ((e as { problem?: { status?: number } }).problem?.status !== 409) console.warn("negotiation", e);
          },
        },
      );
      active.current = { callId, pc, negotiation, timers };
      const tracks = media.stream?.getTracks() ?? [];
      for (const track of tracks) pc.addTrack(track, media.stream as MediaStream);
      if (!polite) {
        // Receive both even without a camera or microphone of our own.
        if (!tracks.some((t) => t.kind === "audio")) pc.addTransceiver("audio", { direction: "recvonly" });
        if (!tracks.some((t) => t.kind === "video")) pc.addTransceiver("video", { direction: "recvonly" });
        // Signaling is live only: repeat the offer while the callee's page may not have been listening.
        timers.push(window.setInterval(() => void negotiation.resendPendingOffer().catch(() => undefined), 4_000));
      }
      for (const message of buffered.current.get(callId) ?? []) void negotiation.receive(message);
      buffered.current.delete(callId);
    },
    [],
  );

  const iceServers = async (): Promise<IceServer[]> =>
    must(await api.GET("/api/v1/ice-servers")).ice_servers;

  // Where things stand on arrival: a call ringing for me, or my own ringing call to (re)join.
  useEffect(() => {
    let cancelled = false;
    void (async () => {
      let calls = await loadLog();
      if (calls && initialCallId && !calls.some((c) => c.call_id === initialCallId)) {
        // Just started: the call log may not show it yet.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        calls = cancelled ? calls : await loadLog();
      }
      if (cancelled || !calls) return;
      const live_ = [...calls].reverse().find((c) => c.status === "ringing" || c.status === "active");
      const wanted = initialCallId ? calls.find((c) => c.call_id === initialCallId) : undefined;
      if (live_ && live_.status === "ringing") {
        if (live_.caller_id === me) {
          dispatch({ type: "starting", callId: live_.call_id });
          try {
            await join(live_.call_id, await iceServers(), false);
            if (!cancelled) dispatch({ type: "outgoing", callId: live_.call_id });
          } catch (e) {
            setError(toProblem(e));
            dispatch({ type: "reset" });
          }
        } else {
          dispatch({ type: "incoming", callId: live_.call_id });
        }
      } else if (live_ && live_.status === "active") {
        // Going on in another tab or device: it can be ended from here.
        dispatch({ type: "show", phase: { kind: "ended", callId: live_.call_id, outcome: "elsewhere", reason: "answered_elsewhere" } });
      } else if (wanted) {
        const reason = wanted.end_reason ?? wanted.status;
        dispatch({ type: "show", phase: { kind: "ended", callId: wanted.call_id, outcome: outcomeOf(reason), reason } });
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [appointmentId, me]);

  // Leaving the room ends this tab's call.
  useEffect(
    () => () => {
      const a = active.current;
      if (a) live.send("call:hangup", { call_id: a.callId });
      teardown();
    },
    [],
  );
  useEffect(() => {
    const onHide = () => {
      const a = active.current;
      if (a) live.send("call:hangup", { call_id: a.callId });
    };
    window.addEventListener("pagehide", onHide);
    return () => window.removeEventListener("pagehide", onHide);
  }, []);

  const route = (callId: string, message: SignalMessage) => {
    const a = active.current;
    if (a && a.callId === callId) {
      void a.negotiation.receive(message);
      return;
    }
    // Not joined (yet): keep what a later Answer needs. A new offer replaces everything before it.
    const list = "description" in message && message.description.type === "offer" ? [] : buffered.current.get(callId) ?? [];
    list.push(message);
    buffered.current.set(callId, list.slice(-200));
  };

  useLiveEvent("call:offer", (d: { call_id: string; sdp: string }) => route(d.call_id, { description: { type: "offer", sdp: d.sdp } }));
  useLiveEvent("call:answer", (d: { call_id: string; sdp: string }) => {
    if (active.current?.callId === d.call_id) route(d.call_id, { description: { type: "answer", sdp: d.sdp } });
  });
  useLiveEvent("call:ice", (d: { call_id: string; candidate: RTCIceCandidateInit | string }) => {
    const candidate = typeof d.candidate === "string" ? { candidate: d.candidate, sdpMid: "0" } : d.candidate;
    route(d.call_id, { candidate });
  });
  useLiveEvent("call:ringing", (d: { call_id: string; appointment_id: string }) => {
    if (d.appointment_id !== appointmentId) return;
    dispatch({ type: "incoming", callId: d.call_id });
    refreshLog();
  });
  useLiveEvent("call:answered", (d: { call_id: string; by?: string }) => {
    const here = active.current?.callId === d.call_id;
    dispatch({ type: "answered", callId: d.call_id, at: Date.now(), here });
    refreshLog();
  });
  useLiveEvent("call:ended", (d: { call_id: string; reason: string }) => {
    dispatch({ type: "ended", callId: d.call_id, reason: d.reason });
    buffered.current.delete(d.call_id);
    if (active.current?.callId === d.call_id) teardown();
    refreshLog();
  });

  const start = async () => {
    setError(undefined);
    dispatch({ type: "starting" });
    try {
      const started = must(await api.POST("/api/v1/appointments/{id}/calls", { params: { path: { id: appointmentId } } }));
      if (active.current?.callId !== started.call_id) {
        teardown();
        await join(started.call_id, started.ice_servers, false);
      }
      dispatch({ type: "outgoing", callId: started.call_id });
      void loadLog();
    } catch (e) {
      teardown();
      setError(toProblem(e));
      dispatch({ type: "reset" });
    }
  };

  const answer = async () => {
    const current = phaseRef.current;
    if (current.kind !== "incoming") return;
    const callId = current.callId;
    setError(undefined);
    dispatch({ type: "starting", callId });
    try {
      await join(callId, await iceServers(), true);
      // call:answered arrives once our answer is relayed; until then we are connecting.
      dispatch({ type: "answered", callId, at: Date.now(), here: true });
    } catch (e) {
      teardown();
      setError(toProblem(e));
      dispatch({ type: "incoming", callId });
    }
  };

  const decline = async () => {
    const current = phaseRef.current;
    if (current.kind !== "incoming") return;
    setError(undefined);
    try {
      // The callee's plain hang-up while ringing is recorded as a decline (status `rejected`);
      // an explicit reason would record an ordinary end instead.
      await live.request("call:hangup", { call_id: current.callId });
      dispatch({ type: "ended", callId: current.callId, reason: "declined" });
    } catch (e) {
      setError(toProblem(e));
    }
  };

  const hangUp = async () => {
    const current = phaseRef.current;
    const callId = current.kind === "idle" ? undefined : current.callId;
    if (!callId) return;
    setError(undefined);
    teardown();
    try {
      await live.request("call:hangup", { call_id: callId });
    } catch {
      try {
        must(await api.POST("/api/v1/calls/{call_id}/end", { params: { path: { call_id: callId } }, body: {} }));
      } catch (e) {
        const problem = toProblem(e);
        if (problem.problem.status !== 409) setError(problem);
      }
    }
    dispatch({ type: "ended", callId, reason: "user_hangup" });
    void loadLog();
  };

  const toggle = (kind: "audio" | "video") => {
    const tracks = stream.current?.getTracks().filter((t) => t.kind === kind) ?? [];
    if (tracks.length === 0) return;
    const on = !tracks[0]!.enabled;
    for (const t of tracks) t.enabled = on;
    if (kind === "audio") setMicOn(on);
    else setCamOn(on);
  };

  return {
    phase,
    local,
    remote,
    micOn,
    camOn,
    hasMic: !!local?.getAudioTracks().length,
    hasCam: !!local?.getVideoTracks().length,
    mediaProblem,
    error,
    log,
    logError,
    reloadLog: () => void loadLog(),
    start,
    answer,
    decline,
    hangUp,
    toggleMic: () => toggle("audio"),
    toggleCam: () => toggle("video"),
    dismiss: () => dispatch({ type: "reset" }),
  };
}
