/**
 * Perfect negotiation (MDN, "Establishing a connection: The WebRTC perfect negotiation
 * pattern"): both peers run the same code; on an offer collision the impolite peer (the caller)
 * ignores the incoming offer and the polite one (the callee) rolls back and answers it.
 *
 * The peer connection and the signaling channel are injected, so the decisions are testable
 * without a browser. Extras for our signaling, which is live only (never stored):
 * - incoming messages are handled one at a time, in order;
 * - ICE candidates that arrive before a remote description are kept until there is one;
 * - the caller may re-send its pending offer (`resendPendingOffer`) in case the callee's page
 *   was not listening yet; the callee ignores an offer identical to the one it already applied;
 * - a callee created with `waitForRemoteOffer` does not offer before the caller's first offer
 *   (so that it is the callee who sends `call:answer`, which picks the call up);
 * - `restartIce()` when the connection (or ICE) fails.
 */

/** The part of RTCPeerConnection this class uses. */
export interface PeerLike {
  readonly signalingState: RTCSignalingState;
  readonly connectionState: RTCPeerConnectionState;
  readonly iceConnectionState: RTCIceConnectionState;
  readonly localDescription: { type: RTCSdpType; sdp: string } | null;
  readonly remoteDescription: { type: RTCSdpType; sdp: string } | null;
  setLocalDescription(description?: RTCSessionDescriptionInit): Promise<void>;
  setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void>;
  addIceCandidate(candidate: RTCIceCandidateInit): Promise<void>;
  restartIce(): void;
  onnegotiationneeded: ((ev: Event) => unknown) | null;
  onicecandidate: ((ev: RTCPeerConnectionIceEvent) => unknown) | null;
  onconnectionstatechange: ((ev: Event) => unknown) | null;
  oniceconnectionstatechange: ((ev: Event) => unknown) | null;
}

/** Where descriptions and candidates go (call:offer / call:answer / call:ice). */
export interface Signaling {
  sendDescription(description: { type: RTCSdpType; sdp: string }): Promise<void> | void;
  sendCandidate(candidate: RTCIceCandidateInit): Promise<void> | void;
}

/** A message from the other peer. */
export type SignalMessage =
  | { description: { type: RTCSdpType; sdp: string } }
  | { candidate: RTCIceCandidateInit };

export interface NegotiationOptions {
  /** The callee is polite. */
  polite: boolean;
  /** Do not offer before the other side's first offer has been applied (the callee). */
  waitForRemoteOffer?: boolean;
  /** Errors worth logging (never thrown to the caller). */
  onError?: (error: unknown) => void;
}

export class PerfectNegotiation {
  readonly polite: boolean;
  makingOffer = false;
  ignoreOffer = false;
  isSettingRemoteAnswerPending = false;
  /** How many times ICE was restarted. */
  iceRestarts = 0;
  private hadRemoteOffer = false;
  private readonly waitForRemoteOffer: boolean;
  private readonly earlyCandidates: RTCIceCandidateInit[] = [];
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly onError: (error: unknown) => void;

  constructor(
    private readonly pc: PeerLike,
    private readonly signaling: Signaling,
    options: NegotiationOptions,
  ) {
    this.polite = options.polite;
    this.waitForRemoteOffer = options.waitForRemoteOffer ?? false;
    this.onError = options.onError ?? (() => undefined);
    pc.onnegotiationneeded = () => this.negotiationNeeded();
    pc.onicecandidate = (e) => {
      if (e.candidate && !this.closed) void Promise.resolve(this.signaling.sendCandidate(e.candidate.toJSON())).catch(this.onError);
    };
    pc.onconnectionstatechange = () => this.checkFailure(pc.connectionState);
    pc.oniceconnectionstatechange = () => this.checkFailure(pc.iceConnectionState);
  }

  /** Stops sending anything (the call is over). */
  close() {
    this.closed = true;
  }

  /** `negotiationneeded`: make an offer (implicit rollback-free setLocalDescription). */
  async negotiationNeeded(): Promise<void> {
    if (this.closed) return;
    if (this.waitForRemoteOffer && !this.hadRemoteOffer) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription;
      if (local && !this.closed) await this.signaling.sendDescription({ type: local.type, sdp: local.sdp });
    } catch (error) {
      this.onError(error);
    } finally {
      this.makingOffer = false;
    }
  }

  /** A message from the other peer; messages are applied one after another, in order. */
  receive(message: SignalMessage): Promise<void> {
    const next = this.queue.then(() => this.handle(message)).catch(this.onError);
    this.queue = next;
    return next;
  }

  /** The caller's pending offer again (the callee may not have been listening): true if sent. */
  async resendPendingOffer(): Promise<boolean> {
    const local = this.pc.localDescription;
    if (this.closed || this.makingOffer || this.pc.signalingState !== "have-local-offer" || local?.type !== "offer") {
      return false;
    }
    await this.signaling.sendDescription({ type: local.type, sdp: local.sdp });
    return true;
  }

  private async handle(message: SignalMessage): Promise<void> {
    if (this.closed) return;
    if ("description" in message) {
      const description = message.description;
      if (description.type === "offer" && this.isDuplicateOffer(description.sdp)) return;
      if (description.type === "answer" && this.pc.signalingState === "stable" && !this.isSettingRemoteAnswerPending) {
        // A late or repeated answer: nothing is waiting for it.
        return;
      }
      const readyForOffer =
        !this.makingOffer && (this.pc.signalingState === "stable" || this.isSettingRemoteAnswerPending);
      const offerCollision = description.type === "offer" && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      this.isSettingRemoteAnswerPending = description.type === "answer";
      try {
        await this.pc.setRemoteDescription(description); // rolls back a local offer if needed
      } finally {
        this.isSettingRemoteAnswerPending = false;
      }
      if (description.type === "offer") this.hadRemoteOffer = true;
      await this.flushCandidates();
      if (description.type === "offer") {
        await this.pc.setLocalDescription();
        const local = this.pc.localDescription;
        if (local && !this.closed) await this.signaling.sendDescription({ type: local.type, sdp: local.sdp });
      }
    } else if (message.candidate) {
      if (!this.pc.remoteDescription) {
        this.earlyCandidates.push(message.candidate);
        return;
      }
      await this.addCandidate(message.candidate);
    }
  }

  private isDuplicateOffer(sdp: string): boolean {
    return this.pc.signalingState === "stable" && this.pc.remoteDescription?.type === "offer" && this.pc.remoteDescription.sdp === sdp;
  }

  private async flushCandidates() {
    for (const candidate of this.earlyCandidates.splice(0)) await this.addCandidate(candidate);
  }

  private async addCandidate(candidate: RTCIceCandidateInit) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // Candidates of an offer we ignored fail to apply: expected.
      if (!this.ignoreOffer) throw error;
    }
  }

  private checkFailure(state: string) {
    if (state !== "failed" || this.closed) return;
    this.iceRestarts += 1;
    this.pc.restartIce();
  }
}
