import { useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import type { SessionUser } from "@/shared/auth/session";
import { useLiveEvent } from "@/shared/live/hooks";
import { formatInstant } from "@/shared/time/zone";
import { Instant } from "@/shared/ui/Instant";
import { Empty, ErrorState, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { fromLive, linkFor, markRead, mergeItems, type Item } from "./inbox";
import { unread, useUnread } from "./store";

const PAGE = 20;

async function fetchPage(unreadOnly: boolean, before?: string) {
  return must(
    await api.GET("/api/v1/notifications", {
      params: { query: { limit: PAGE, ...(unreadOnly && { unread: true }), ...(before && { before: Number(before) }) } },
    }),
  );
}

/** The inbox: newest first, live arrivals on top, paging backwards, marking read. */
export function Inbox({ user }: { user: SessionUser }) {
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [older, setOlder] = useState<Item[]>([]);
  const [next, setNext] = useState<string | null | undefined>(undefined);
  const [live, setLive] = useState<Item[]>([]);
  const [readIds, setReadIds] = useState<Set<string>>(new Set());
  const [allRead, setAllRead] = useState(false);
  const [more, setMore] = useState<{ loading: boolean; error?: ProblemError }>({ loading: false });
  const [message, setMessage] = useState("");
  const [actionError, setActionError] = useState<ProblemError>();
  const count = useUnread();

  const first = useResource(async () => {
    const page = await fetchPage(unreadOnly);
    unread.set(page.unread_count);
    setOlder([]);
    setNext(undefined);
    setReadIds(new Set());
    setAllRead(false);
    return page;
  }, [unreadOnly]);

  useLiveEvent("notification", (data) => {
    const item = fromLive(data);
    if (item) setLive((l) => mergeItems([item], l));
  });

  const read = (i: Item): Item => (allRead || readIds.has(i.id) ? { ...i, read: true } : i);
  const loaded = first.data ? mergeItems(first.data.items, older).map(read) : [];
  const loadedIds = new Set(loaded.map((i) => i.id));
  const arrived = live.filter((i) => !loadedIds.has(i.id)).map(read);
  const nextToken = next === undefined ? first.data?.next : next;

  async function loadOlder() {
    if (!nextToken) return;
    setMore({ loading: true });
    try {
      const page = await fetchPage(unreadOnly, nextToken);
      setOlder((o) => mergeItems(o, page.items));
      setNext(page.next ?? null);
      setMore({ loading: false });
      setMessage(page.items.length ? `${page.items.length} older notifications loaded.` : "No older notifications.");
    } catch (e) {
      setMore({ loading: false, error: toProblem(e) });
    }
  }

  async function markOne(item: Item) {
    setActionError(undefined);
    try {
      const res = await api.POST("/api/v1/notifications/{id}/read", { params: { path: { id: item.id } } });
      if (!res.response.ok) must(res);
      setReadIds((s) => new Set(s).add(item.id));
      unread.read(1);
      setMessage(`Marked as read: ${item.title}.`);
      // The button is gone: keep the keyboard where it was, on the item's heading.
      requestAnimationFrame(() => document.getElementById(`notif-${item.id}`)?.focus());
    } catch (e) {
      setActionError(toProblem(e));
    }
  }

  async function markAll() {
    setActionError(undefined);
    try {
      const res = await api.POST("/api/v1/notifications/read-all");
      if (!res.response.ok) must(res);
      setAllRead(true);
      setLive((l) => markRead(l));
      unread.set(0);
      setMessage("All notifications marked as read.");
    } catch (e) {
      setActionError(toProblem(e));
    }
  }

  function toggleFilter(on: boolean) {
    setLive([]);
    setMore({ loading: false });
    setUnreadOnly(on);
  }

  const render = (item: Item) => (
    <NotificationItem key={item.id} item={item} user={user} onRead={() => void markOne(item)} />
  );

  return (
    <section aria-labelledby="notif-inbox-h">
      <h2 id="notif-inbox-h" class="visually-hidden">
        Inbox
      </h2>
      <div class="notif-toolbar">
        <p class="muted">
          {count === null ? "" : count === 0 ? "Everything is read." : `${count} unread`}
        </p>
        <div class="row">
          <label class="checkbox">
            <input type="checkbox" checked={unreadOnly} onChange={(e) => toggleFilter(e.currentTarget.checked)} />
            Show unread only
          </label>
          <button type="button" class="button secondary" onClick={() => void markAll()} disabled={count === 0}>
            Mark all as read
          </button>
        </div>
      </div>
      <p class="visually-hidden" role="status">
        {message}
      </p>
      {actionError && <ErrorState error={actionError} />}
      {/* New arrivals go in their own polite live region, above what was loaded. */}
      <ul class="list notif-list" aria-live="polite" aria-label="New notifications">
        {arrived.map(render)}
      </ul>
      <Loaded resource={first} what="Loading notifications">
        {() =>
          loaded.length === 0 && arrived.length === 0 ? (
            <Empty>
              {unreadOnly
                ? "No unread notifications."
                : "No notifications yet. You will be told here when an appointment changes or a message arrives."}
            </Empty>
          ) : (
            <>
              <ul class="list notif-list" aria-label={unreadOnly ? "Unread notifications" : "Notifications"}>
                {loaded.map(render)}
              </ul>
              {more.error && <ErrorState error={more.error} retry={() => void loadOlder()} />}
              {nextToken && !more.error && (
                <div class="notif-more">
                  <button type="button" class="button secondary" onClick={() => void loadOlder()} disabled={more.loading} aria-busy={more.loading}>
                    {more.loading ? "Loading…" : "Load older notifications"}
                  </button>
                </div>
              )}
              {!nextToken && loaded.length > 0 && <p class="small muted notif-more">That is everything.</p>}
            </>
          )
        }
      </Loaded>
    </section>
  );
}

function NotificationItem({ item, user, onRead }: { item: Item; user: SessionUser; onRead: () => void }) {
  const link = linkFor(item, user.role);
  const when = formatInstant(item.at, user.timezone);
  return (
    <li class={`notif-item ${item.read ? "read" : "unread"}`}>
      <div class="row spread">
        <h3 id={`notif-${item.id}`} tabIndex={-1}>
          {item.title}
        </h3>
        {!item.read && <span class="badge notif-new">Unread</span>}
      </div>
      <p>{item.body}</p>
      <p class="small muted">
        <Instant at={item.at} zone={user.timezone} />
      </p>
      {(link || !item.read) && (
        <div class="row">
          {link && (
            <a href={link.href} aria-label={`${link.label}: ${item.title}, ${when}`} onClick={() => !item.read && onRead()}>
              {link.label}
            </a>
          )}
          {!item.read && (
            <button type="button" class="button secondary" onClick={onRead} aria-label={`Mark as read: ${item.title}, ${when}`}>
              Mark as read
            </button>
          )}
        </div>
      )}
    </li>
  );
}
