import { describe, expect, it } from "vitest";
import { PerfectNegotiation, type PeerLike, type SignalMessage, type Signaling } from "./negotiation";

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** A peer connection's signaling state machine, without media. */
class FakePeer implements PeerLike {
  signalingState: RTCSignalingState = "stable";
  connectionState: RTCPeerConnectionState = "new";
  iceConnectionState: RTCIceConnectionState = "new";
  localDescription: { type: RTCSdpType; sdp: string } | null = null;
  remoteDescription: { type: RTCSdpType; sdp: string } | null = null;
  candidates: RTCIceCandidateInit[] = [];
  restarts = 0;
  rollbacks = 0;
  private offers = 0;
  onnegotiationneeded: ((ev: Event) => unknown) | null = null;
  onicecandidate: ((ev: RTCPeerConnectionIceEvent) => unknown) | null = null;
  onconnectionstatechange: ((ev: Event) => unknown) | null = null;
  oniceconnectionstatechange: ((ev: Event) => unknown) | null = null;

  constructor(readonly name: string) {}

  async setLocalDescription(): Promise<void> {
    await tick();
    if (this.signalingState === "stable" || this.signalingState === "have-local-offer") {
      this.localDescription = { type: "offer", sdp: `${this.name}-offer-${++this.offers}` };
      this.signalingState = "have-local-offer";
    } else if (this.signalingState === "have-remote-offer") {
      this.localDescription = { type: "answer", sdp: `${this.name}-answer-to-${this.remoteDescription?.sdp}` };
      this.signalingState = "stable";
    }
  }

  async setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    await tick();
    const description = { type: d.type as RTCSdpType, sdp: d.sdp ?? "" };
    if (description.type === "offer") {
      if (this.signalingState === "have-local-offer") this.rollbacks += 1;
      this.signalingState = "have-remote-offer";
      this.remoteDescription = description;
    } else {
      if (this.signalingState !== "have-local-offer") throw new Error(`InvalidStateError: answer in ${this.signalingState}`);
      this.signalingState = "stable";
      this.remoteDescription = description;
    }
  }

  async addIceCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    if (!this.remoteDescription) throw new Error("InvalidStateError: no remote description");
    this.candidates.push(candidate);
  }

  restartIce() {
    this.restarts += 1;
  }

  fail(which: "connection" | "ice") {
    if (which === "connection") {
      this.connectionState = "failed";
      this.onconnectionstatechange?.(new Event("connectionstatechange"));
    } else {
      this.iceConnectionState = "failed";
      this.oniceconnectionstatechange?.(new Event("iceconnectionstatechange"));
    }
  }
}

class Recorder implements Signaling {
  sent: SignalMessage[] = [];
  sendDescription(description: { type: RTCSdpType; sdp: string }) {
    this.sent.push({ description });
  }
  sendCandidate(candidate: RTCIceCandidateInit) {
    this.sent.push({ candidate });
  }
}

const offer = (sdp: string) => ({ description: { type: "offer" as const, sdp } });
const answer = (sdp: string) => ({ description: { type: "answer" as const, sdp } });

describe("PerfectNegotiation", () => {
  it("offers when negotiation is needed", async () => {
    const pc = new FakePeer("caller");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: false });
    const making = n.negotiationNeeded();
    expect(n.makingOffer).toBe(true);
    await making;
    expect(n.makingOffer).toBe(false);
    expect(out.sent).toEqual([offer("caller-offer-1")]);
    expect(pc.signalingState).toBe("have-local-offer");
  });

  it("answers an offer and applies the answer to its own offer", async () => {
    const callee = new FakePeer("callee");
    const out = new Recorder();
    const n = new PerfectNegotiation(callee, out, { polite: true });
    await n.receive(offer("o1"));
    expect(out.sent).toEqual([answer("callee-answer-to-o1")]);
    expect(callee.signalingState).toBe("stable");

    const caller = new FakePeer("caller");
    const n2 = new PerfectNegotiation(caller, new Recorder(), { polite: false });
    await n2.negotiationNeeded();
    await n2.receive(answer("a1"));
    expect(caller.signalingState).toBe("stable");
    expect(caller.remoteDescription).toEqual({ type: "answer", sdp: "a1" });
  });

  it("impolite peer ignores a colliding offer (while making its own or with one pending)", async () => {
    const pc = new FakePeer("caller");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: false });
    const making = n.negotiationNeeded();
    await n.receive(offer("glare-1")); // makingOffer is true
    expect(n.ignoreOffer).toBe(true);
    await making;
    await n.receive(offer("glare-2")); // have-local-offer
    expect(n.ignoreOffer).toBe(true);
    expect(pc.remoteDescription).toBeNull();
    expect(out.sent).toEqual([offer("caller-offer-1")]);
    // Candidates of the ignored offer fail quietly.
    pc.remoteDescription = { type: "answer", sdp: "x" };
    pc.addIceCandidate = async () => {
      throw new Error("unknown ufrag");
    };
    await expect(n.receive({ candidate: { candidate: "c" } })).resolves.toBeUndefined();
  });

  it("polite peer rolls back its own offer and answers a colliding one", async () => {
    const pc = new FakePeer("callee");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: true });
    await n.negotiationNeeded();
    expect(pc.signalingState).toBe("have-local-offer");
    await n.receive(offer("caller-offer"));
    expect(n.ignoreOffer).toBe(false);
    expect(pc.rollbacks).toBe(1);
    expect(pc.signalingState).toBe("stable");
    expect(out.sent.at(-1)).toEqual(answer("callee-answer-to-caller-offer"));
  });

  it("treats an offer as welcome while an answer is being applied", async () => {
    const pc = new FakePeer("caller");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: false });
    await n.negotiationNeeded();
    const applying = n.receive(answer("a1"));
    await tick(); // setRemoteDescription(answer) in flight
    expect(n.isSettingRemoteAnswerPending).toBe(true);
    const next = n.receive(offer("renegotiate"));
    await applying;
    expect(n.isSettingRemoteAnswerPending).toBe(false);
    await next;
    expect(n.ignoreOffer).toBe(false);
    expect(out.sent.at(-1)).toEqual(answer("caller-answer-to-renegotiate"));
  });

  it("a callee waiting for the caller does not offer first", async () => {
    const pc = new FakePeer("callee");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: true, waitForRemoteOffer: true });
    await n.negotiationNeeded();
    expect(out.sent).toEqual([]);
    await n.receive(offer("o1"));
    await n.negotiationNeeded(); // e.g. an ICE restart later
    expect(out.sent).toEqual([answer("callee-answer-to-o1"), offer("callee-offer-1")]);
  });

  it("keeps candidates that arrive before the offer, then applies them in order", async () => {
    const pc = new FakePeer("callee");
    const n = new PerfectNegotiation(pc, new Recorder(), { polite: true });
    await n.receive({ candidate: { candidate: "c1" } });
    await n.receive({ candidate: { candidate: "c2" } });
    expect(pc.candidates).toEqual([]);
    await n.receive(offer("o1"));
    await n.receive({ candidate: { candidate: "c3" } });
    expect(pc.candidates.map((c) => c.candidate)).toEqual(["c1", "c2", "c3"]);
  });

  it("handles messages one at a time, in order", async () => {
    const pc = new FakePeer("callee");
    const n = new PerfectNegotiation(pc, new Recorder(), { polite: true });
    const all = [n.receive(offer("o1")), n.receive({ candidate: { candidate: "c1" } })];
    await Promise.all(all);
    expect(pc.candidates.map((c) => c.candidate)).toEqual(["c1"]);
  });

  it("ignores a repeated offer and a late answer", async () => {
    const pc = new FakePeer("callee");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: true });
    await n.receive(offer("o1"));
    await n.receive(offer("o1"));
    expect(out.sent).toEqual([answer("callee-answer-to-o1")]);
    const errors: unknown[] = [];
    const caller = new FakePeer("caller");
    const n2 = new PerfectNegotiation(caller, new Recorder(), { polite: false, onError: (e) => errors.push(e) });
    await n2.receive(answer("stray"));
    expect(errors).toEqual([]);
    expect(caller.signalingState).toBe("stable");
  });

  it("re-sends only a pending offer", async () => {
    const pc = new FakePeer("caller");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: false });
    expect(await n.resendPendingOffer()).toBe(false);
    await n.negotiationNeeded();
    expect(await n.resendPendingOffer()).toBe(true);
    expect(out.sent).toEqual([offer("caller-offer-1"), offer("caller-offer-1")]);
    await n.receive(answer("a1"));
    expect(await n.resendPendingOffer()).toBe(false);
  });

  it("restarts ICE when the connection or ICE fails", () => {
    const pc = new FakePeer("p");
    const n = new PerfectNegotiation(pc, new Recorder(), { polite: true });
    pc.fail("connection");
    expect(pc.restarts).toBe(1);
    pc.fail("ice");
    expect(pc.restarts).toBe(2);
    expect(n.iceRestarts).toBe(2);
    n.close();
    pc.fail("connection");
    expect(pc.restarts).toBe(2);
  });

  it("sends local candidates, and nothing after close", async () => {
    const pc = new FakePeer("p");
    const out = new Recorder();
    const n = new PerfectNegotiation(pc, out, { polite: true });
    const event = { candidate: { toJSON: () => ({ candidate: "c1", sdpMid: "0" }) } } as unknown as RTCPeerConnectionIceEvent;
    pc.onicecandidate?.(event);
    pc.onicecandidate?.({ candidate: null } as RTCPeerConnectionIceEvent);
    n.close();
    pc.onicecandidate?.(event);
    await tick();
    expect(out.sent).toEqual([{ candidate: { candidate: "c1", sdpMid: "0" } }]);
  });

  it("two peers that both offer at once end up connected (glare)", async () => {
    const callerPc = new FakePeer("caller");
    const calleePc = new FakePeer("callee");
    const peers: { caller?: PerfectNegotiation; callee?: PerfectNegotiation } = {};
    const wire = (to: () => PerfectNegotiation): Signaling => ({
      sendDescription: (description) => void setTimeout(() => void to().receive({ description }), 0),
      sendCandidate: (candidate) => void setTimeout(() => void to().receive({ candidate }), 0),
    });
    const caller = new PerfectNegotiation(callerPc, wire(() => peers.callee!), { polite: false });
    const callee = new PerfectNegotiation(calleePc, wire(() => peers.caller!), { polite: true });
    Object.assign(peers, { caller, callee });
    await Promise.all([caller.negotiationNeeded(), callee.negotiationNeeded()]);
    for (let i = 0; i < 20; i++) await tick();
    expect(callerPc.signalingState).toBe("stable");
    expect(calleePc.signalingState).toBe("stable");
    expect(calleePc.remoteDescription?.sdp).toBe("caller-offer-1");
    expect(callerPc.remoteDescription?.sdp).toBe("callee-answer-to-caller-offer-1");
  });
});
