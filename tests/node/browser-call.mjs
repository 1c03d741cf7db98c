// A real WebRTC call between two headless Chromium pages (the doctor and the patient of a
// confirmed appointment) whose only signaling path is Telemed's WebSocket. Driven by
// tests/blackbox/browser.rs.
//
// Usage: node browser-call.mjs <server-url> <call-id> <caller-token> <callee-token> <ice-servers-json>
// Prints one JSON line: {caller: {...}, callee: {...}} with connection states and the
// inbound-rtp bytes received before and after media flowed.
import http from "node:http";
import { chromium } from "playwright-core";

const [server, callId, callerToken, calleeToken, iceJson] = process.argv.slice(2);
const iceServers = JSON.parse(iceJson);
const wsUrl = server.replace(/^http/, "ws") + "/api/v1/ws";

// A blank page on http://127.0.0.1 (a secure context for getUserMedia).
const page = http.createServer((_, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>telemed call</title>");
});
await new Promise((resolve) => page.listen(0, "127.0.0.1", resolve));
const pageUrl = `http://127.0.0.1:${page.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.TELEMED_CHROMIUM || "/usr/bin/chromium",
  args: [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
  ],
});

// Runs inside each page: media, a peer connection, and signaling over our WebSocket.
async function join({ wsUrl, token, callId, iceServers, caller }) {
  const ws = new WebSocket(`${wsUrl}?access_token=${encodeURIComponent(token)}`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("websocket failed"));
  });
  let ack = 1;
  const send = (event, data) => ws.send(JSON.stringify({ event, data, ack: ack++ }));
  const pc = new RTCPeerConnection({ iceServers });
  window.pc = pc;
  window.signalErrors = [];
  // inbound-rtp bytes received, sampled five times a second.
  window.inbound = 0;
  setInterval(async () => {
    const stats = await pc.getStats();
    let bytes = 0;
    stats.forEach((s) => { if (s.type === "inbound-rtp") bytes += s.bytesReceived || 0; });
    window.inbound = bytes;
  }, 200);
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  for (const track of media.getTracks()) pc.addTrack(track, media);
  pc.onicecandidate = (e) => {
    if (e.candidate) send("call:ice", { call_id: callId, candidate: e.candidate.toJSON() });
  };
  const early = [];
  ws.onmessage = async (message) => {
    const frame = JSON.parse(message.data);
    if (frame.event === "ack" && frame.error) window.signalErrors.push(frame.error);
    const data = frame.data || {};
    if (data.call_id !== callId) return;
    if (frame.event === "call:ended") {
      window.endedWith(data.reason);
    } else if (frame.event === "call:offer") {
      await pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
      for (const c of early.splice(0)) await pc.addIceCandidate(c);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      send("call:answer", { call_id: callId, sdp: answer.sdp });
    } else if (frame.event === "call:answer") {
      await pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
      for (const c of early.splice(0)) await pc.addIceCandidate(c);
    } else if (frame.event === "call:ice") {
      if (pc.remoteDescription) await pc.addIceCandidate(data.candidate);
      else early.push(data.candidate);
    }
  };
  window.hangup = () => send("call:hangup", { call_id: callId });
  window.ended = new Promise((resolve) => { window.endedWith = resolve; });
  if (caller) {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send("call:offer", { call_id: callId, sdp: offer.sdp });
  }
}

async function open(token, caller) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(pageUrl);
  await tab.evaluate(join, { wsUrl, token, callId, iceServers, caller });
  return tab;
}

const result = {};
try {
  // The callee listens before the caller offers: signaling is live only.
  const callee = await open(calleeToken, false);
  const caller = await open(callerToken, true);
  for (const [name, tab] of [["caller", caller], ["callee", callee]]) {
    await tab.waitForFunction(() => window.pc.connectionState === "connected", null, { timeout: 30000 });
    const before = await tab.evaluate(() => window.inbound);
    const grown = await tab.waitForFunction((b) => window.inbound > b && window.inbound, before, {
      timeout: 30000,
    });
    const after = await grown.jsonValue();
    const state = await tab.evaluate(() => window.pc.connectionState);
    const errors = await tab.evaluate(() => window.signalErrors);
    result[name] = { state, before, after, errors };
  }
  await caller.evaluate(() => window.hangup());
  result.endedWith = await caller.evaluate(() => window.ended);
} catch (error) {
  result.error = String(error);
} finally {
  console.log(JSON.stringify(result));
  await browser.close();
  page.close();
}
