/**
 * Swagger UI and its stylesheet. Imported only with `import()` from the docs page, so neither
 * is in any other screen's bundle. Its CSS is scoped to `.swagger-ui` and it injects no
 * <style> elements, so it works under the server's CSP (`style-src 'self'`).
 */
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";
import "swagger-ui-dist/swagger-ui.css";
import { accessToken } from "@/shared/api/client";

/** The served OpenAPI document. */
export const OPENAPI_URL = "/api/v1/openapi.json";

/**
 * Renders the API reference into `domNode`. "Try it out" requests to this server carry the
 * signed-in user's token (fresh, as every API call's), unless the reader set one with
 * "Authorize".
 */
export function mountSwagger(domNode: HTMLElement): void {
  SwaggerUI({
    domNode,
    url: OPENAPI_URL,
    // Never ask validator.swagger.io (an external request the CSP blocks anyway).
    validatorUrl: null,
    deepLinking: false,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    syntaxHighlight: { activated: true, theme: "agate" },
    requestInterceptor: async (request) => {
      const sameOrigin = new URL(request.url, location.origin).origin === location.origin;
      const hasAuth = Object.keys(request.headers ?? {}).some((h) => h.toLowerCase() === "authorization");
      if (sameOrigin && !hasAuth && !request.url.endsWith(OPENAPI_URL)) {
        const token = await accessToken();
        if (token) request.headers = { ...request.headers, Authorization: `Bearer ${token}` };
      }
      return request;
    },
  });
}
