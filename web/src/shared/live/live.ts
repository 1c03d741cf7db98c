/**
 * The live connection: the official socket.io-client, reconnecting by itself and sending
 * `resume` with the last position it saw, so that nothing is missed or doubled.
 */
import { io, type Socket } from "socket.io-client";
import { accessToken } from "../api/client";
import { ProblemError, type Problem } from "../api/problem";
import { ResumeState } from "./resume";

export type LiveStatus = "connecting" | "connected" | "offline";
type Handler = (data: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

class Live {
  private socket: Socket | null = null;
  private readonly resume = new ResumeState();
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly statusListeners = new Set<(s: LiveStatus) => void>();
  private currentStatus: LiveStatus = "offline";

  /** Connects (once) for the signed-in user. */
  start() {
    if (this.socket) return;
    const socket = io({
      path: "/socket.io/",
      transports: ["websocket"],
      auth: (cb) => void accessToken().then((token) => cb({ token })),
    });
    socket.on("connect", () => void this.onConnect());
    socket.on("disconnect", () => this.onDrop());
    socket.on("connect_error", () => this.onDrop());
    socket.onAny((event: string, data: unknown) => this.dispatch(event, data));
    this.socket = socket;
    this.setStatus("connecting");
  }

  /** Disconnects and forgets everything (sign-out). */
  stop() {
    this.socket?.disconnect();
    this.socket = null;
    this.setStatus("offline");
  }

  /** Listens to a server event; returns the unsubscribe function. */
  on(event: string, handler: Handler): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** The connection's state, now and on every change. */
  onStatus(listener: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.currentStatus);
    return () => this.statusListeners.delete(listener);
  }

  get status(): LiveStatus {
    return this.currentStatus;
  }

  /** Sends an event and waits for its ack: the ack data, or a thrown ProblemError. */
  async request<T = unknown>(event: string, data: unknown, timeoutMs = 10_000): Promise<T> {
    const socket = this.socket;
    if (!socket) throw new ProblemError({ status: 0, title: "Not connected", detail: "Live connection is not open" });
    const answer = await socket.timeout(timeoutMs).emitWithAck(event, data);
    if (answer && typeof answer === "object" && "error" in answer) {
      throw new ProblemError((answer as { error: Problem }).error);
    }
    return answer as T;
  }

  /** Sends an event without waiting (typing indicators). */
  send(event: string, data: unknown) {
    this.socket?.emit(event, data);
  }

  private async onConnect() {
    this.setStatus("connected");
    const socket = this.socket;
    // A refused resume (e.g. a restarted server whose live feed is still catching up) is tried
    // again, with a growing pause, for as long as this connection lasts.
    for (let attempt = 0; socket && socket === this.socket && socket.connected; attempt++) {
      const after = this.resume.after;
      if (!after) return;
      this.resume.startResume();
      try {
        await this.request("resume", { after }, 30_000);
        this.resume.finishResume();
        return;
      } catch {
        this.resume.abortResume();
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 8_000)));
      }
    }
  }

  private onDrop() {
    if (this.resume.isResuming) this.resume.abortResume();
    if (this.socket) this.setStatus(this.socket.active ? "connecting" : "offline");
  }

  private dispatch(event: string, data: unknown) {
    const position = (data as { position?: string } | null)?.position;
    if (!this.resume.receive(event, position)) return;
    for (const handler of this.handlers.get(event) ?? []) handler(data);
  }

  private setStatus(status: LiveStatus) {
    this.currentStatus = status;
    for (const l of this.statusListeners) l(status);
  }
}

/** The app's one live connection. */
export const live = new Live();
