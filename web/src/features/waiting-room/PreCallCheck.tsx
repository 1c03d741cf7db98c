import { useEffect, useRef, useState } from "preact/hooks";
import { useLiveStatus } from "@/shared/live/hooks";
import { mediaProblemOf, type MediaProblem } from "@/shared/media";
import { connectionVerdict, levelOf, median, type ConnectionVerdict } from "./waiting";

type Phase = { kind: "idle" } | { kind: "requesting" } | { kind: "ready" } | { kind: "failed"; problem: MediaProblem; detail: string };

/** Help for a device problem: what happened and how to fix it. */
function DeviceHelp({ problem, detail, retry }: { problem: MediaProblem; detail: string; retry: () => void }) {
  return (
    <div class="state state-error wr-help" role="alert">
      {problem === "denied" ? (
        <>
          <p>
            <strong>Camera and microphone are blocked for this site.</strong>
          </p>
          <p>To allow them:</p>
          <ol>
            <li>Click the camera icon or the lock icon at the left of the address bar.</li>
            <li>
              Set <strong>Camera</strong> and <strong>Microphone</strong> to <strong>Allow</strong> (Chrome and Edge: “Site settings”; Firefox: clear the
              “Blocked” permissions; Safari: Settings → Websites → Camera and Microphone).
            </li>
            <li>Reload the page, then press “Try again”.</li>
          </ol>
          <p class="small">On a phone, also check in the system settings that your browser may use the camera and microphone.</p>
        </>
      ) : problem === "missing" ? (
        <p>
          <strong>No camera or microphone was found.</strong> Connect one (or choose another below) and press “Try again”. You can still check in: the doctor
          will hear or see what your device allows.
        </p>
      ) : problem === "busy" ? (
        <p>
          <strong>Your camera or microphone is in use by another application</strong> (another call, another tab). Close it and press “Try again”.
        </p>
      ) : problem === "insecure" ? (
        <p>
          <strong>This browser cannot use a camera on this page.</strong> Open the site over https, or use a recent Chrome, Edge, Firefox or Safari.
        </p>
      ) : (
        <p>
          <strong>The camera or microphone could not be started</strong>
          {detail ? `: ${detail}` : ""}.
        </p>
      )}
      <button type="button" class="button secondary" onClick={retry}>
        Try again
      </button>
    </div>
  );
}

const verdictText: Record<ConnectionVerdict, string> = {
  good: "Good",
  fair: "Fair",
  poor: "Poor: video may be choppy",
  offline: "Not connected",
};

/** The pre-call check: camera and microphone (with a preview and a level meter), speakers, connection. */
export function PreCallCheck() {
  const [phase, setPhase] = useState<Phase>({ kind: "idle" });
  const [cameras, setCameras] = useState<MediaDeviceInfo[]>([]);
  const [mics, setMics] = useState<MediaDeviceInfo[]>([]);
  const [camera, setCamera] = useState("");
  const [mic, setMic] = useState("");
  const [heard, setHeard] = useState(false);
  const [playing, setPlaying] = useState(false);
  const [rtt, setRtt] = useState<number | null | undefined>(undefined);
  const liveStatus = useLiveStatus();
  const video = useRef<HTMLVideoElement>(null);
  const meter = useRef<HTMLMeterElement>(null);
  const stream = useRef<MediaStream | null>(null);
  const audio = useRef<AudioContext | null>(null);
  const frame = useRef(0);

  const stop = () => {
    cancelAnimationFrame(frame.current);
    stream.current?.getTracks().forEach((t) => t.stop());
    stream.current = null;
  };

  const context = (): AudioContext => {
    audio.current ??= new AudioContext();
    if (audio.current.state === "suspended") void audio.current.resume();
    return audio.current;
  };

  const listDevices = async () => {
    const devices = await navigator.mediaDevices.enumerateDevices();
    setCameras(devices.filter((d) => d.kind === "videoinput"));
    setMics(devices.filter((d) => d.kind === "audioinput"));
  };

  const startMeter = (s: MediaStream) => {
    if (s.getAudioTracks().length === 0) return;
    const ctx = context();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaStreamSource(s).connect(analyser);
    const bytes = new Uint8Array(analyser.fftSize);
    const loop = () => {
      analyser.getByteTimeDomainData(bytes);
      const level = levelOf(bytes);
      if (meter.current) meter.current.value = level;
      if (level > 0.15) setHeard(true);
      frame.current = requestAnimationFrame(loop);
    };
    loop();
  };

  const start = async (cam = camera, microphone = mic) => {
    stop();
    setPhase({ kind: "requesting" });
    setHeard(false);
    if (!navigator.mediaDevices?.getUserMedia) {
      setPhase({ kind: "failed", problem: "insecure", detail: "" });
      return;
    }
    try {
      const s = await navigator.mediaDevices.getUserMedia({
        video: cam ? { deviceId: { exact: cam } } : true,
        audio: microphone ? { deviceId: { exact: microphone } } : true,
      });
      stream.current = s;
      if (video.current) {
        video.current.srcObject = s;
        void video.current.play().catch(() => undefined);
      }
      setCamera(s.getVideoTracks()[0]?.getSettings().deviceId ?? cam);
      setMic(s.getAudioTracks()[0]?.getSettings().deviceId ?? microphone);
      await listDevices();
      startMeter(s);
      setPhase({ kind: "ready" });
    } catch (e) {
      setPhase({ kind: "failed", problem: mediaProblemOf(e), detail: (e as Error)?.message ?? "" });
      void listDevices().catch(() => undefined);
    }
  };

  const testConnection = async () => {
    setRtt(undefined);
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      try {
        const res = await fetch(`/healthz?t=${Date.now()}`, { cache: "no-store" });
        if (res.ok) samples.push(performance.now() - t0);
      } catch {
        // counted as failed
      }
    }
    setRtt(samples.length ? Math.round(median(samples) as number) : null);
  };

  const playTone = () => {
    const ctx = context();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 660;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.3, ctx.currentTime + 0.05);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 1.2);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 1.2);
    setPlaying(true);
    osc.onended = () => setPlaying(false);
  };

  useEffect(() => {
    void testConnection();
    // Start at once when the browser already allows the camera and microphone.
    void (async () => {
      try {
        const [c, m] = await Promise.all([
          navigator.permissions.query({ name: "camera" as PermissionName }),
          navigator.permissions.query({ name: "microphone" as PermissionName }),
        ]);
        if (c.state === "granted" && m.state === "granted") void start();
        else if (c.state === "denied" || m.state === "denied") setPhase({ kind: "failed", problem: "denied", detail: "" });
      } catch {
        // Permissions API without camera support: wait for the button.
      }
    })();
    const onChange = () => void listDevices().catch(() => undefined);
    navigator.mediaDevices?.addEventListener?.("devicechange", onChange);
    return () => {
      stop();
      navigator.mediaDevices?.removeEventListener?.("devicechange", onChange);
      void audio.current?.close().catch(() => undefined);
    };
  }, []);

  const verdict = rtt === undefined ? undefined : connectionVerdict(rtt, liveStatus === "connected");
  const ready = phase.kind === "ready";
  return (
    <section class="card wr-check" aria-labelledby="wr-check-title">
      <h2 id="wr-check-title">Check your camera, microphone and connection</h2>
      <div class="wr-check-grid">
        <div class="wr-preview">
          <video ref={video} class="wr-video" aria-label="Your camera" autoplay playsInline muted />
          {!ready && (
            <div class="wr-preview-empty">
              {phase.kind === "requesting" ? (
                <p role="status">Waiting for permission… Allow the camera and microphone in the browser’s prompt.</p>
              ) : (
                <p>Your camera preview appears here.</p>
              )}
            </div>
          )}
        </div>
        <div class="wr-controls">
          {phase.kind === "idle" && (
            <>
              <p>We will ask your browser for the camera and microphone so that you can check them before the consultation.</p>
              <button type="button" class="button primary" onClick={() => start()}>
                Start the check
              </button>
            </>
          )}
          {phase.kind === "failed" && <DeviceHelp problem={phase.problem} detail={phase.detail} retry={() => start()} />}
          {(cameras.length > 0 || mics.length > 0) && (
            <div class="wr-devices">
              <div class="field">
                <label for="wr-camera">Camera</label>
                <select id="wr-camera" value={camera} disabled={cameras.length === 0} onChange={(e) => void start((e.currentTarget as HTMLSelectElement).value, mic)}>
                  {cameras.length === 0 && <option value="">No camera found</option>}
                  {cameras.map((d, i) => (
                    <option key={d.deviceId} value={d.deviceId}>
                      {d.label || `Camera ${i + 1}`}
                    </option>
                  ))}
                </select>
              </div>
              <div class="field">
                <label for="wr-mic">Microphone</label>
                <select id="wr-mic" value={mic} disabled={mics.length === 0} onChange={(e) => void start(camera, (e.currentTarget as HTMLSelectElement).value)}>
                  {mics.length === 0 && <option value="">No microphone found</option>}
                  {mics.map((d, i) => (
                    <option key={d.deviceId} value={d.deviceId}>
                      {d.label || `Microphone ${i + 1}`}
                    </option>
                  ))}
                </select>
              </div>
            </div>
          )}
          {ready && (
            <div class="field">
              <label for="wr-level">Microphone level</label>
              <meter id="wr-level" ref={meter} min={0} max={1} low={0.15} high={0.8} optimum={0.5} value={0} class="wr-meter" aria-describedby="wr-level-hint" />
              <p class="hint" id="wr-level-hint" role="status">
                {heard ? "✓ We can hear you." : "Say something: the bar should move."}
              </p>
            </div>
          )}
          <div class="field">
            <span class="wr-label">Speakers</span>
            <div class="row">
              <button type="button" class="button secondary" onClick={playTone} disabled={playing}>
                {playing ? "Playing…" : "Play test sound"}
              </button>
              <span class="hint">You should hear a short tone. If not, turn the volume up or pick other speakers in your system settings.</span>
            </div>
          </div>
          <div class="field">
            <span class="wr-label">Connection</span>
            <p class="row" role="status">
              {verdict === undefined ? (
                <span>Testing…</span>
              ) : (
                <>
                  <span class={`badge ${verdict === "good" ? "online" : verdict === "offline" ? "failed" : "pending"}`}>{verdictText[verdict]}</span>
                  <span class="small muted">
                    {rtt != null ? `Round trip ${rtt} ms` : "The server did not answer"} · live updates {liveStatus}
                  </span>
                </>
              )}
              <button type="button" class="button link" onClick={testConnection} disabled={verdict === undefined}>
                Test again
              </button>
            </p>
          </div>
        </div>
      </div>
    </section>
  );
}
