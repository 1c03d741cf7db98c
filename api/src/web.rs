//! The web app: the single-page app that `npm run build` writes to `TELEMED_WEB_DIR` (default
//! `web/dist`), served at `/` beside the API.
//!
//! - `/assets/*`: content-hashed files, cached for a year (`immutable`); a missing one is a
//!   404 problem, never `index.html`.
//! - other files at the root (`favicon.ico`, `manifest.webmanifest`, `sw.js`, `index.html`):
//!   `no-cache`, so a new build is picked up at once.
//! - any other path: `index.html` (`no-cache`), so that deep links such as
//!   `/appointments/{id}` reach the app's own router.
//! - no build (no `index.html`): a small page that says how to build it; the API still works.
//!
//! Precompressed `.br` and `.gz` siblings are sent to clients that accept them. Paths the API
//! owns (`/api`, `/socket.io`, `/healthz`, `/readyz`) never reach the app and keep their
//! problem+json 404. The app answers GET and HEAD only; other methods get a 405 problem. Every
//! answer carries a strict Content-Security-Policy and the other headers in [`SECURITY_HEADERS`].

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;

/// The Content-Security-Policy of the app: nothing inline, nothing from elsewhere; media from
/// the camera and microphone (`mediastream:`), live connections to this server (`ws:`/`wss:`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
connect-src 'self' ws: wss:; worker-src 'self'; object-src 'none'; base-uri 'self'; \
frame-ancestors 'none'; form-action 'self'";

/// Headers on every answer of the app (see `docs/decisions.md` for the referrer policy).
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=()",
    ),
];

/// `Cache-Control` of content-hashed assets.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else the app serves: revalidate every time.
pub const NO_CACHE: &str = "no-cache";

/// Path prefixes that belong to the API: an unknown path there is an API 404.
const API_PREFIXES: [&str; 5] = ["/api", "/socket.io", "/healthz", "/readyz", "/fhir"];

/// The page served at `/` when no build is present (no inline script or style: the CSP
/// blocks both).
const NOT_BUILT_PAGE: &str = include_str!("web/not_built.html");

/// The app's files.
#[derive(Clone)]
struct WebApp {
    /// `index.html` of the build.
    index: PathBuf,
    /// The build directory, with no fallback (for `/assets/*`).
    files: ServeDir,
    /// The build directory, with `index.html` for every path that is not a file.
    pages: ServeDir<ServeFile>,
}

/// The web app served from `dir`, as a router to use as the API's fallback.
pub fn router(dir: &Path) -> Router {
    let index = dir.join("index.html");
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    let pages = files.clone().fallback(
        ServeFile::new(&index)
            .precompressed_br()
            .precompressed_gzip(),
    );
    let app = WebApp {
        index,
        files,
        pages,
    };
    Router::new().fallback(move |request: Request| app.clone().serve(request))
}

/// Whether `dir` holds a build (an `index.html`).
pub fn is_built(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

impl WebApp {
    /// Answers one request that no API route matched.
    async fn serve(self, request: Request) -> Response {
        let path = request.uri().path();
        if path == "/fhir" || path.starts_with("/fhir/") {
            return fhir_not_found();
        }
        if owned_by_api(path) {
            return ApiError::NotFound("no such route".into()).into_response();
        }
        let mut response = if !matches!(*request.method(), Method::GET | Method::HEAD) {
            method_not_allowed()
        } else if path.starts_with("/assets/") {
            self.asset(request).await
        } else if !tokio::fs::try_exists(&self.index).await.unwrap_or(false) {
            not_built()
        } else {
            self.page(request).await
        };
        secure(response.headers_mut());
        response
    }

    /// A content-hashed asset, cached for good; a 404 problem when missing.
    async fn asset(self, request: Request) -> Response {
        let response = serve_with(self.files, request).await;
        if response.status() == StatusCode::NOT_FOUND {
            return ApiError::NotFound("no such asset".into()).into_response();
        }
        cache(response, IMMUTABLE)
    }

    /// A file at the root, or `index.html` for any other path.
    async fn page(self, request: Request) -> Response {
        cache(serve_with(self.pages, request).await, NO_CACHE)
    }
}

/// Whether `path` is under one of the [`API_PREFIXES`] (`/api` and `/api/…`, not `/apis`).
fn owned_by_api(path: &str) -> bool {
    API_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// An unknown path of the FHIR API: a FHIR `OperationOutcome`, as its routes answer.
fn fhir_not_found() -> Response {
    let outcome = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-supported",
                   "diagnostics": "no such FHIR route (see /fhir/R4/metadata)"}],
    });
    let mut response = (StatusCode::NOT_FOUND, outcome.to_string()).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/fhir+json"),
    );
    response
}

/// Runs a `ServeDir` on `request`.
async fn serve_with<S>(service: S, request: Request) -> Response
where
    S: tower::Service<Request, Error = std::convert::Infallible>,
    S::Response: IntoResponse,
{
    match service.oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// `response` with `cache_control` when it is a file (2xx or 304); files differ by
/// `Accept-Encoding` when precompressed siblings exist, so caches must keep them apart.
fn cache(mut response: Response, cache_control: &'static str) -> Response {
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// The page that says the app is not built.
fn not_built() -> Response {
    let mut response = Html(NOT_BUILT_PAGE).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    response
}

/// 405 problem for a method other than GET or HEAD on an app path.
fn method_not_allowed() -> Response {
    let mut response = ApiError::MethodNotAllowed.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// Adds the [`SECURITY_HEADERS`].
fn secure(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_prefixes_own_their_subpaths_only() {
        assert!(owned_by_api("/api"));
        assert!(owned_by_api("/api/v1/nope"));
        assert!(owned_by_api("/socket.io/"));
        assert!(owned_by_api("/healthz/x"));
        assert!(!owned_by_api("/apis"));
        assert!(!owned_by_api("/appointments/123"));
        assert!(!owned_by_api("/"));
    }

    #[test]
    fn the_security_headers_are_valid_header_values() {
        let mut headers = HeaderMap::new();
        secure(&mut headers);
        assert_eq!(headers.len(), SECURITY_HEADERS.len());
    }
}
