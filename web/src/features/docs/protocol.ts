/**
 * The live protocol, as data: the docs page renders these rows as tables. Keep it in step with
 * CONTRACT.md "Live events" and the README's "Live events" section.
 */

/** One live event in one direction. */
export interface EventRow {
  /** Event name, e.g. `chat:send`. */
  name: string;
  /** The `data` it carries (JSON shape, informal). */
  data: string;
  /** Client → server: the ack's data ("—" when none). Server → client: who receives it. */
  answer: string;
  /** A sentence for people. */
  purpose: string;
}

/** A topic a client may `subscribe` to. */
export interface TopicRow {
  topic: string;
  who: string;
  delivers: string;
}

/** A transport and how to open it. */
export interface TransportRow {
  name: string;
  connect: string;
  auth: string;
  frames: string;
  acks: string;
}

export const transports: readonly TransportRow[] = [
  {
    name: "WebSocket",
    connect: "GET /api/v1/ws?access_token=TOKEN (or the Authorization: Bearer header)",
    auth: "A bad or expired token is refused before the upgrade (401).",
    frames: 'JSON text frames {"event": NAME, "data": {...}}; a client frame may add "ack": N.',
    acks: 'The server answers {"event": "ack", "ack": N, "data": {...}} or {"event": "ack", "ack": N, "error": problem}.',
  },
  {
    name: "Socket.IO (v4)",
    connect: "path /socket.io/, namespace /, e.g. io({path: \"/socket.io/\", auth: {token}})",
    auth: "Token in the handshake auth: {token}; a bad one gets a connect_error whose message starts with “unauthenticated”.",
    frames: "Socket.IO events with the same names and data.",
    acks: "Socket.IO acks: the single argument is the ack data, or {error: problem}. Use acks: errors of events sent without one are not reported.",
  },
];

export const topics: readonly TopicRow[] = [
  { topic: "(your user, automatic)", who: "Everyone, without subscribing", delivers: "Events of everything you take part in: your appointments, conversations and calls; doctors also get their availability and waiting room; waiting patients get their doctor's status." },
  { topic: "appointment:{id}", who: "Its participants, admins and auditors (others: 404)", delivers: "That appointment's updates, messages and call events." },
  { topic: "doctor:{id}:availability", who: "Anyone (unknown doctor: 404)", delivers: "availability:updated when that doctor's free slots change." },
  { topic: "audit", who: "Auditors and admins (others: 403)", delivers: "audit:event for every stored event." },
];

export const clientEvents: readonly EventRow[] = [
  { name: "resume", data: "{after: position}", answer: "{replayed: n}", purpose: "After a reconnection: replays, in order, every event you are entitled to after that position, then acks, then goes live; live events committed meanwhile wait for the ack, so from a resume on positions arrive in increasing order. No position is sent twice: events sent live before the server read the resume are not replayed." },
  { name: "subscribe", data: "{topic}", answer: "{ok: true} or error", purpose: "Joins a topic (see the topics table); checked at every join." },
  { name: "unsubscribe", data: "{topic}", answer: "{ok: true} or error", purpose: "Leaves a topic." },
  { name: "chat:send", data: "{appointment_id, content, client_msg_id?}", answer: "message", purpose: "Sends a chat message; client_msg_id makes a retry safe." },
  { name: "chat:typing", data: "{appointment_id}", answer: "—", purpose: "Tells the other participant you are typing." },
  { name: "chat:read", data: "{appointment_id, up_to}", answer: "{ok: true}", purpose: "Marks messages read up to a message." },
  { name: "call:offer", data: "{call_id, sdp}", answer: "{ok: true}", purpose: "WebRTC offer, relayed to the other participant." },
  { name: "call:answer", data: "{call_id, sdp}", answer: "{ok: true}", purpose: "WebRTC answer, relayed to the other participant." },
  { name: "call:ice", data: "{call_id, candidate}", answer: "{ok: true}", purpose: "An ICE candidate, relayed to the other participant." },
  { name: "call:hangup", data: "{call_id, reason?}", answer: "{ok: true}", purpose: "Ends the call." },
  { name: "waiting:checkin", data: "{appointment_id}", answer: "{checked_in_at, doctor_status}", purpose: "The patient of a confirmed appointment checks in to its waiting room, inside the call window (doctor: 403; others: 404; not confirmed or outside the window: 409). Checking in again keeps the first checked_in_at." },
  { name: "waiting:leave", data: "{appointment_id}", answer: "{ok: true}", purpose: "The patient leaves the waiting room." },
  { name: "waiting:list", data: "{}", answer: "{entries: [waiting entry]}", purpose: "Doctors only (others: 403): every patient waiting for them now." },
];

export const serverEvents: readonly EventRow[] = [
  { name: "appointment:updated", data: "{appointment, event_type, position}", answer: "Both parties; topic appointment:{id}", purpose: "An appointment changed; appointment is what GET /appointments/{id} answers at that moment." },
  { name: "availability:updated", data: "{doctor_id, date, position}", answer: "The doctor; topic doctor:{id}:availability", purpose: "A doctor's free slots changed on that date." },
  { name: "chat:message", data: "message", answer: "Both participants", purpose: "A new chat message." },
  { name: "chat:typing", data: "{appointment_id, user_id}", answer: "The other participant", purpose: "Someone is typing." },
  { name: "chat:read", data: "{appointment_id, user_id, up_to}", answer: "Both participants", purpose: "Messages were read up to a message." },
  { name: "call:ringing", data: "{call_id, appointment_id, from}", answer: "The other participant", purpose: "An incoming call." },
  { name: "call:offer", data: "{call_id, from, sdp}", answer: "Only the other participant", purpose: "Relayed WebRTC offer." },
  { name: "call:answer", data: "{call_id, from, sdp}", answer: "Only the other participant", purpose: "Relayed WebRTC answer." },
  { name: "call:ice", data: "{call_id, from, candidate}", answer: "Only the other participant", purpose: "Relayed ICE candidate." },
  { name: "call:ended", data: "{call_id, reason, position}", answer: "Both participants", purpose: "The call ended." },
  { name: "waiting:joined", data: "{appointment_id, patient_id, patient_name, checked_in_at, start}", answer: "The doctor", purpose: "A patient checked in (a waiting entry); also sent on connect for each patient already waiting." },
  { name: "waiting:left", data: "{appointment_id, patient_id, reason}", answer: "The doctor", purpose: "A patient stopped waiting; reason is left, disconnected (their last connection went), call_started or cancelled." },
  { name: "doctor:status", data: "{doctor_id, status: online | in_call | away}", answer: "Patients waiting for that doctor", purpose: "The doctor's presence: right after check-in and on every change." },
  { name: "notification", data: "{id, kind, title, body, appointment_id?, at}", answer: "The recipient", purpose: "An in-app notification (also listed by GET /api/v1/notifications)." },
  { name: "audit:event", data: "audit event (as GET /api/v1/audit/events items)", answer: "Topic audit only", purpose: "Every stored event, for auditors." },
  { name: "error", data: "problem", answer: "The connection concerned", purpose: "A malformed frame, an unknown event, a slow consumer (then closed, 4008) or an expired token (then closed, 4001)." },
];

/** The limits a client must respect. */
export const limits: readonly string[] = [
  "Frames are at most 64 KiB; a larger one ends that connection only.",
  "The server pings every 25 s; a client silent for 60 s is dropped.",
  "Events derived from stored events carry position, an opaque token: remember the last one and send it in resume after reconnecting.",
  "Signing out closes every connection of the user (WebSocket close code 4001, reason “signed out”).",
];
