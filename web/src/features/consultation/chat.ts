/** Chat state kept by the consultation room: pure functions, unit-tested. */
import type { Schemas } from "@/shared/api/client";

export type Message = Schemas["MessageView"];

/** A message the server has not confirmed yet (or refused). */
export interface PendingMessage {
  client_msg_id: string;
  content: string;
  status: "sending" | "failed";
  error?: string;
}

/** The messages of both lists, each once (by id), oldest first. */
export function mergeMessages(existing: readonly Message[], incoming: readonly Message[]): Message[] {
  const byId = new Map<string, Message>();
  for (const m of existing) byId.set(m.id, m);
  for (const m of incoming) byId.set(m.id, m);
  const order = new Map<string, number>();
  [...existing, ...incoming].forEach((m, i) => {
    if (!order.has(m.id)) order.set(m.id, i);
  });
  return [...byId.values()].sort((a, b) => {
    const t = Date.parse(a.sent_at) - Date.parse(b.sent_at);
    return t !== 0 ? t : (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0);
  });
}

/** Pending messages still waiting after `messages` arrived (matched by client_msg_id). */
export function settlePending(pending: readonly PendingMessage[], messages: readonly Message[]): PendingMessage[] {
  const confirmed = new Set(messages.map((m) => m.client_msg_id).filter(Boolean));
  return pending.filter((p) => !confirmed.has(p.client_msg_id));
}

/**
 * The id of my last message the other participant has read: the last of mine at or before their
 * read marker `upTo`. Null when they have read none of the loaded ones (or the marker is unknown).
 */
export function readReceipt(messages: readonly Message[], me: string, upTo: string | null | undefined): string | null {
  if (!upTo) return null;
  const at = messages.findIndex((m) => m.id === upTo);
  if (at < 0) return null;
  for (let i = at; i >= 0; i--) if (messages[i]!.sender_id === me) return messages[i]!.id;
  return null;
}

/**
 * How many of the other's messages I have not read: those after my read marker; when the marker
 * is not among the loaded messages, the server's count (or all of theirs).
 */
export function unreadCount(
  messages: readonly Message[],
  me: string,
  myUpTo: string | null | undefined,
  serverCount?: number | null,
): number {
  const at = myUpTo ? messages.findIndex((m) => m.id === myUpTo) : -1;
  if (at < 0 && serverCount != null) return serverCount;
  return messages.slice(at + 1).filter((m) => m.sender_id !== me).length;
}

/** The newest message from the other participant (what `chat:read` marks). */
export function lastFromOther(messages: readonly Message[], me: string): Message | undefined {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.sender_id !== me) return messages[i];
  return undefined;
}

/** Whether marker `a` is before message `b` in the list (unknown markers are before everything). */
export function isBefore(messages: readonly Message[], a: string | null | undefined, b: string): boolean {
  if (!a) return true;
  const ia = messages.findIndex((m) => m.id === a);
  const ib = messages.findIndex((m) => m.id === b);
  return ia < ib;
}

/** Sends `chat:typing` at most once every `interval` ms. */
export class TypingThrottle {
  private last = -Infinity;
  constructor(private readonly interval = 2000) {}
  /** True when a typing event may be sent now (and records it). */
  shouldSend(now: number): boolean {
    if (now - this.last < this.interval) return false;
    this.last = now;
    return true;
  }
  /** After sending a message, the next keystroke announces typing again. */
  reset() {
    this.last = -Infinity;
  }
}

/** A new client_msg_id (a UUID). */
export function newClientMsgId(): string {
  if (typeof crypto !== "undefined" && "randomUUID" in crypto) return crypto.randomUUID();
  const hex = [...Array(32)].map(() => Math.floor(Math.random() * 16).toString(16)).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
