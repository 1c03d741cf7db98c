/**
 * The one typed API client. Types come from the server's OpenAPI document
 * (`npm run openapi` regenerates `schema.d.ts`); every request carries the access token,
 * refreshed before it expires, and a 401 is retried once after a refresh.
 */
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { ProblemError, type Problem } from "./problem";
import { getSession, needsRefresh, refresh } from "../auth/session";

export type Schemas = components["schemas"];

const REFRESH_PATH = "/api/v1/auth/refresh";

/** Posts the refresh token (used by the session store's single-flight refresh). */
export function postRefresh(refreshToken: string): Promise<Response> {
  return fetch(REFRESH_PATH, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
}

/** A valid access token, refreshing first when it is about to expire. */
export async function accessToken(): Promise<string | null> {
  let session = getSession();
  if (session && needsRefresh(session)) session = await refresh(postRefresh);
  return session?.accessToken ?? null;
}

const originals = new WeakMap<Request, Request>();

const auth: Middleware = {
  async onRequest({ request }) {
    if (request.url.endsWith(REFRESH_PATH)) return request;
    const token = await accessToken();
    if (token) request.headers.set("authorization", `Bearer ${token}`);
    originals.set(request, request.clone());
    return request;
  },
  async onResponse({ request, response }) {
    if (response.status !== 401 || !getSession()) return response;
    const original = originals.get(request);
    const session = await refresh(postRefresh);
    // A refused refresh has already ended the session, with its reason.
    if (!session || !original) return response;
    original.headers.set("authorization", `Bearer ${session.accessToken}`);
    return fetch(original);
  },
};

/** The client every feature uses. */
export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
api.use(auth);

/**
 * Unwraps an openapi-fetch result: the data, or a thrown ProblemError with the server's
 * problem+json.
 */
export function must<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    const body = result.error as Partial<Problem> | undefined;
    throw new ProblemError({ ...body, status: result.response.status });
  }
  return result.data as T;
}
