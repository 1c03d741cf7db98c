/** The audit feature's API calls. */
import { api, must } from "@/shared/api/client";
import { PAGE_SIZE, presentFilters, type AccessEntry, type AccessFilters, type AuditEvent, type EventFilters } from "./model";

/** One page of a log: its rows and the token of the following page. */
export interface LogPage<T> {
  items: T[];
  next: string;
}

/** Events after `after` (oldest first), filtered. */
export async function fetchEvents(filters: EventFilters, after?: string, limit = PAGE_SIZE): Promise<LogPage<AuditEvent>> {
  const query = { ...presentFilters(filters), limit, ...(after ? { after } : {}) };
  const page = must(await api.GET("/api/v1/audit/events", { params: { query } }));
  return { items: page.events, next: page.next };
}

/** Access-log entries after `after` (oldest first), filtered. */
export async function fetchAccess(filters: AccessFilters, after?: string, limit = PAGE_SIZE): Promise<LogPage<AccessEntry>> {
  const query = { ...presentFilters(filters), limit, ...(after ? { after: Number(after) } : {}) };
  const page = must(await api.GET("/api/v1/audit/access", { params: { query } }));
  return { items: page.entries, next: page.next };
}

/** The head of the log's hash chain: keep it to prove later that the history up to it is unchanged. */
export async function fetchChainHead(): Promise<ChainHead> {
  return must(await api.GET("/api/v1/audit/head"));
}

/** The newest sealed link of the hash chain over the log. */
export interface ChainHead {
  position: string;
  hash: string;
  events: number;
}
