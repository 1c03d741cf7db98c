import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api, must, type Schemas } from "@/shared/api/client";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { live } from "@/shared/live/live";
import { useLiveEvent, useLiveStatus } from "@/shared/live/hooks";
import { ErrorState, Loading } from "@/shared/ui/states";
import { formatDay, formatInstant, localDate, localTime } from "@/shared/time/zone";
import {
  isBefore,
  lastFromOther,
  mergeMessages,
  newClientMsgId,
  readReceipt,
  settlePending,
  TypingThrottle,
  unreadCount,
  type Message,
  type PendingMessage,
} from "./chat";

const PAGE = 30;

/** The GET messages answer, with the read markers and unread count being added by the server. */
type Page = Schemas["MessagePage"] & {
  read_markers?: { user_id: string; up_to: string }[];
  unread_count?: number;
};

async function fetchPage(appointmentId: string, before?: string): Promise<Page> {
  return must(
    await api.GET("/api/v1/appointments/{id}/messages", {
      params: { path: { id: appointmentId }, query: { limit: PAGE, ...(before ? { before } : {}) } },
    }),
  ) as Page;
}

function isClosed(problem: ProblemError): boolean {
  return problem.problem.code === "conversation_closed" || (problem.problem.status === 409 && /closed/i.test(problem.message));
}

/** The consultation's conversation: history paged backwards, typing, read receipts, unread count. */
export function Chat({ appointmentId, me, other, zone, closedByStatus }: { appointmentId: string; me: string; other: string; zone: string; closedByStatus: boolean }) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<ProblemError>();
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const [earlier, setEarlier] = useState<"idle" | "loading">("idle");
  const [earlierError, setEarlierError] = useState<ProblemError>();
  const [pending, setPending] = useState<PendingMessage[]>([]);
  const [otherUpTo, setOtherUpTo] = useState<string | null>(null);
  const [myUpTo, setMyUpTo] = useState<string | null>(null);
  const [serverUnread, setServerUnread] = useState<number>();
  const [typingUntil, setTypingUntil] = useState(0);
  const [closed, setClosed] = useState(false);
  const [draft, setDraft] = useState("");
  const [sendError, setSendError] = useState<ProblemError>();
  const [announcement, setAnnouncement] = useState("");
  const [onScreen, setOnScreen] = useState(true);
  const [, setTick] = useState(0);
  const logRef = useRef<HTMLDivElement>(null);
  const scroll = useRef<{ restore?: { height: number; top: number }; stick: boolean }>({ stick: true });
  const throttle = useRef(new TypingThrottle(2000));
  const marking = useRef<string | null>(null);
  const messagesRef = useRef(messages);
  messagesRef.current = messages;

  const load = async () => {
    setLoadError(undefined);
    try {
      const page = await fetchPage(appointmentId);
      setMessages((old) => mergeMessages(page.messages, old));
      setNextBefore(page.next_before ?? null);
      const theirs = page.read_markers?.find((m) => m.user_id !== me);
      const mine = page.read_markers?.find((m) => m.user_id === me);
      if (theirs) setOtherUpTo(theirs.up_to);
      if (mine) setMyUpTo(mine.up_to);
      if (page.unread_count != null) setServerUnread(page.unread_count);
      scroll.current.stick = true;
      setLoaded(true);
    } catch (e) {
      setLoadError(toProblem(e));
    }
  };
  useEffect(() => void load(), [appointmentId]);

  // After a reconnection, the newest page again: `resume` replays what was missed, and this
  // also covers a resume the server could not serve. Merging by id keeps each message once.
  const status = useLiveStatus();
  const wasConnected = useRef(status === "connected");
  useEffect(() => {
    if (status === "connected" && !wasConnected.current && loaded) {
      void fetchPage(appointmentId)
        .then((page) => setMessages((old) => mergeMessages(page.messages, old)))
        .catch(() => undefined);
    }
    wasConnected.current = status === "connected";
  }, [status]);

  const loadEarlier = async () => {
    if (!nextBefore) return;
    setEarlier("loading");
    setEarlierError(undefined);
    try {
      const page = await fetchPage(appointmentId, nextBefore);
      const el = logRef.current;
      if (el) scroll.current.restore = { height: el.scrollHeight, top: el.scrollTop };
      setMessages((old) => mergeMessages(page.messages, old));
      setNextBefore(page.next_before ?? null);
    } catch (e) {
      setEarlierError(toProblem(e));
    } finally {
      setEarlier("idle");
    }
  };

  // Keep the reading position: after older messages are prepended, and at the bottom for new ones.
  useLayoutEffect(() => {
    const el = logRef.current;
    if (!el) return;
    const restore = scroll.current.restore;
    if (restore) {
      el.scrollTop = el.scrollHeight - restore.height + restore.top;
      scroll.current.restore = undefined;
    } else if (scroll.current.stick) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages, pending, loaded]);

  const onScroll = () => {
    const el = logRef.current;
    if (!el) return;
    scroll.current.stick = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    maybeMarkRead();
  };

  // Is the conversation on screen at all (the page may be scrolled to the video on a phone)?
  useEffect(() => {
    const el = logRef.current;
    if (!el || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((entries) => setOnScreen(entries.some((e) => e.isIntersecting)));
    observer.observe(el);
    return () => observer.disconnect();
  }, [loaded]);

  const maybeMarkRead = () => {
    if (document.visibilityState !== "visible" || !onScreen || !scroll.current.stick) return;
    const last = lastFromOther(messagesRef.current, me);
    if (!last || !isBefore(messagesRef.current, myUpTo, last.id) || marking.current === last.id) return;
    marking.current = last.id;
    void (async () => {
      try {
        if (live.status === "connected") {
          await live.request("chat:read", { appointment_id: appointmentId, up_to: last.id });
        } else {
          must(await api.POST("/api/v1/appointments/{id}/messages/read", { params: { path: { id: appointmentId } }, body: { up_to: last.id } }));
        }
        setMyUpTo(last.id);
      } catch {
        // Retried on the next change.
      } finally {
        marking.current = null;
      }
    })();
  };
  useEffect(maybeMarkRead, [messages, onScreen, loaded]);
  useEffect(() => {
    const onVisible = () => maybeMarkRead();
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("focus", onVisible);
    return () => {
      document.removeEventListener("visibilitychange", onVisible);
      window.removeEventListener("focus", onVisible);
    };
  });

  useLiveEvent("chat:message", (m: Message) => {
    if (m.appointment_id !== appointmentId) return;
    const el = logRef.current;
    if (el) scroll.current.stick = scroll.current.stick || m.sender_id === me;
    setMessages((old) => mergeMessages(old, [m]));
    setPending((p) => settlePending(p, [m]));
    if (m.sender_id !== me) {
      setTypingUntil(0);
      setAnnouncement(`New message from ${other}: ${m.content.slice(0, 140)}`);
    }
  });
  useLiveEvent("chat:typing", (d: { appointment_id: string; user_id: string }) => {
    if (d.appointment_id !== appointmentId || d.user_id === me) return;
    setTypingUntil(Date.now() + 3000);
    setTimeout(() => setTick((t) => t + 1), 3100);
  });
  useLiveEvent("chat:read", (d: { appointment_id: string; user_id: string; up_to?: string }) => {
    if (d.appointment_id !== appointmentId || !d.up_to) return;
    if (d.user_id === me) setMyUpTo(d.up_to);
    else setOtherUpTo(d.up_to);
  });

  const deliver = async (p: PendingMessage) => {
    setPending((list) => list.map((x) => (x.client_msg_id === p.client_msg_id ? { ...x, status: "sending", error: undefined } : x)));
    setSendError(undefined);
    try {
      const body = { appointment_id: appointmentId, content: p.content, client_msg_id: p.client_msg_id };
      const message =
        live.status === "connected"
          ? await live.request<Message>("chat:send", body)
          : must(await api.POST("/api/v1/appointments/{id}/messages", { params: { path: { id: appointmentId } }, body: { content: p.content, client_msg_id: p.client_msg_id } }));
      scroll.current.stick = true;
      setMessages((old) => mergeMessages(old, [message]));
      setPending((list) => list.filter((x) => x.client_msg_id !== p.client_msg_id));
    } catch (e) {
      const problem = toProblem(e);
      if (isClosed(problem)) setClosed(true);
      const reason = problem.field("content") ?? problem.problem.detail ?? problem.problem.title ?? "not sent";
      setPending((list) => list.map((x) => (x.client_msg_id === p.client_msg_id ? { ...x, status: "failed", error: reason } : x)));
      setSendError(problem);
    }
  };

  const send = (e: Event) => {
    e.preventDefault();
    if (!draft.trim()) {
      setSendError(toProblem({ status: 422, title: "Nothing to send", errors: [{ field: "content", message: "Write a message first." }] }));
      return;
    }
    const p: PendingMessage = { client_msg_id: newClientMsgId(), content: draft, status: "sending" };
    setPending((list) => [...list, p]);
    setDraft("");
    throttle.current.reset();
    void deliver(p);
  };

  const onInput = (e: Event) => {
    const value = (e.currentTarget as HTMLTextAreaElement).value;
    setDraft(value);
    if (value.trim() && throttle.current.shouldSend(Date.now())) live.send("chat:typing", { appointment_id: appointmentId });
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      (e.currentTarget as HTMLTextAreaElement).form?.requestSubmit();
    }
  };

  const receiptId = readReceipt(messages, me, otherUpTo);
  const unread = loaded ? unreadCount(messages, me, myUpTo, myUpTo && messages.some((m) => m.id === myUpTo) ? undefined : serverUnread) : 0;
  const typing = typingUntil > Date.now();
  const isClosedNow = closed || closedByStatus;
  const contentError = sendError?.field("content");
  const composerId = `cr-composer-${appointmentId}`;

  let lastDay = "";
  return (
    <section class="card cr-chat" aria-labelledby="cr-chat-title">
      <div class="row spread">
        <h2 id="cr-chat-title">
          Chat {unread > 0 && <span class="badge count">{unread} unread</span>}
        </h2>
        <span class="muted small">Times in {zone}</span>
      </div>
      {loadError ? (
        <ErrorState error={loadError} retry={load} />
      ) : !loaded ? (
        <Loading what="Loading messages" />
      ) : (
        <>
          <div class="cr-log" ref={logRef} onScroll={onScroll} tabIndex={0} role="region" aria-label={`Conversation with ${other}`}>
            {nextBefore ? (
              <div class="cr-earlier">
                <button type="button" class="button secondary" onClick={loadEarlier} disabled={earlier === "loading"} aria-busy={earlier === "loading"}>
                  {earlier === "loading" ? "Loading…" : "Load earlier messages"}
                </button>
                {earlierError && <ErrorState error={earlierError} retry={loadEarlier} />}
              </div>
            ) : (
              messages.length > 0 && <p class="muted small cr-start">Start of the conversation</p>
            )}
            {messages.length === 0 && pending.length === 0 && <p class="state state-empty">No messages yet. Say hello to {other}.</p>}
            <ol class="cr-messages">
              {messages.map((m) => {
                const day = localDate(m.sent_at, zone);
                const showDay = day !== lastDay;
                lastDay = day;
                const mine = m.sender_id === me;
                return (
                  <li key={m.id} class={mine ? "cr-msg mine" : "cr-msg theirs"}>
                    {showDay && <p class="cr-day">{formatDay(day)}</p>}
                    <div class="cr-bubble">
                      <span class="visually-hidden">{mine ? "You" : other}: </span>
                      <span class="cr-text">{m.content}</span>
                    </div>
                    <p class="cr-meta">
                      <time dateTime={m.sent_at} title={formatInstant(m.sent_at, zone)}>
                        {localTime(m.sent_at, zone)}
                      </time>
                      {receiptId === m.id && <span class="cr-read"> · Read</span>}
                    </p>
                  </li>
                );
              })}
              {pending.map((p) => (
                <li key={p.client_msg_id} class={`cr-msg mine ${p.status}`}>
                  <div class="cr-bubble">
                    <span class="visually-hidden">You: </span>
                    <span class="cr-text">{p.content}</span>
                  </div>
                  <p class="cr-meta">
                    {p.status === "sending" ? (
                      "Sending…"
                    ) : (
                      <>
                        <span class="cr-failed">Not sent{p.error ? `: ${p.error}` : ""}</span>{" "}
                        {!isClosedNow && (
                          <button type="button" class="button link" onClick={() => deliver(p)} aria-label={`Retry sending “${p.content.slice(0, 40)}”`}>
                            Retry
                          </button>
                        )}
                        <button
                          type="button"
                          class="button link"
                          onClick={() => setPending((list) => list.filter((x) => x.client_msg_id !== p.client_msg_id))}
                          aria-label={`Discard “${p.content.slice(0, 40)}”`}
                        >
                          Discard
                        </button>
                      </>
                    )}
                  </p>
                </li>
              ))}
            </ol>
          </div>
          <p class="cr-typing small muted" role="status" aria-live="polite">
            {typing ? `${other} is typing…` : ""}
          </p>
          <p class="visually-hidden" role="status" aria-live="polite">
            {announcement}
          </p>
          {isClosedNow ? (
            <p class="notice warn">This conversation is closed: no more messages can be sent.</p>
          ) : (
            <form class="cr-composer wide" onSubmit={send} noValidate>
              <label for={composerId}>Message to {other}</label>
              <textarea
                id={composerId}
                rows={2}
                maxLength={4000}
                value={draft}
                onInput={onInput}
                onKeyDown={onKeyDown}
                aria-invalid={contentError ? true : undefined}
                aria-describedby={`${composerId}-hint${sendError ? ` ${composerId}-error` : ""}`}
              />
              <div class="row spread">
                <p class="hint" id={`${composerId}-hint`}>
                  Enter sends, Shift+Enter adds a line.
                </p>
                <button type="submit" class="button primary">
                  Send
                </button>
              </div>
              {sendError && (
                <p class="field-error" id={`${composerId}-error`} role="alert">
                  {contentError ?? `${sendError.problem.title ?? "Not sent"}${sendError.problem.detail ? `: ${sendError.problem.detail}` : ""}`}
                </p>
              )}
            </form>
          )}
        </>
      )}
    </section>
  );
}
