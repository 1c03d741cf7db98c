//! `telemed serve` serves the built web app at `/`: SPA fallback, caching, security headers,
//! the API's own 404s, and a page that says so when no build is present.

use std::path::{Path, PathBuf};

use reqwest::{Response, StatusCode};
use uuid::Uuid;

use crate::helpers::{TestApp, TestDb, expect_problem, spawn_app_on, spawn_process_with};

const INDEX: &str =
    "<!doctype html><title>Telemed</title><script type=module src=/assets/app-abc123.js></script>";
const SCRIPT: &str = "console.log('telemed');";
const WORKER: &str = "self.addEventListener('fetch', () => {});";
/// Not real gzip: the server sends precompressed files as they are.
const SCRIPT_GZ: &[u8] = b"pretend-gzip-bytes";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; \
worker-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; \
form-action 'self'";

/// A fake `npm run build` output in a fresh temporary directory (removed on drop).
struct FakeBuild(PathBuf);

impl FakeBuild {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("telemed-web-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), INDEX).unwrap();
        std::fs::write(dir.join("assets/app-abc123.js"), SCRIPT).unwrap();
        std::fs::write(dir.join("assets/app-abc123.js.gz"), SCRIPT_GZ).unwrap();
        std::fs::write(dir.join("sw.js"), WORKER).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for FakeBuild {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn app_serving(dir: &Path) -> TestApp {
    let dir = dir.to_path_buf();
    spawn_app_on(TestDb::create().await, move |config| config.web_dir = dir).await
}

async fn get(app: &TestApp, path: &str) -> Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} header on {}", response.url()))
}

/// Asserts the app's security headers, exactly.
fn assert_secured(response: &Response) {
    assert_eq!(header(response, "content-security-policy"), CSP);
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
    assert_eq!(
        header(response, "permissions-policy"),
        "camera=(self), microphone=(self), display-capture=()"
    );
}

/// Asserts a 200 of `content_type` with `cache_control` and the security headers; the body.
async fn expect_file(response: Response, content_type: &str, cache_control: &str) -> String {
    assert_eq!(response.status(), StatusCode::OK, "{}", response.url());
    assert_secured(&response);
    assert_eq!(header(&response, "content-type"), content_type);
    assert_eq!(header(&response, "cache-control"), cache_control);
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_root_and_deep_links_get_index_html_uncached() {
    let build = FakeBuild::new();
    let app = app_serving(build.path()).await;
    for path in [
        "/",
        "/index.html",
        "/appointments/123",
        "/doctors/x/availability?week=2",
    ] {
        let body = expect_file(get(&app, path).await, "text/html", "no-cache").await;
        assert_eq!(body, INDEX, "{path}");
    }
    let head = app
        .client
        .head(app.url("/appointments/123"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_secured(&head);
    assert_eq!(head.text().await.unwrap(), "");
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_root_files_are_revalidated() {
    let build = FakeBuild::new();
    let app = app_serving(build.path()).await;
    let script = get(&app, "/assets/app-abc123.js").await;
    let body = expect_file(
        script,
        "text/javascript",
        "public, max-age=31536000, immutable",
    )
    .await;
    assert_eq!(body, SCRIPT);
    let worker = get(&app, "/sw.js").await;
    assert_eq!(
        expect_file(worker, "text/javascript", "no-cache").await,
        WORKER
    );

    let gzipped = app
        .client
        .get(app.url("/assets/app-abc123.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&gzipped, "content-encoding"), "gzip");
    assert_eq!(header(&gzipped, "vary"), "accept-encoding");
    let body = expect_file(
        gzipped,
        "text/javascript",
        "public, max-age=31536000, immutable",
    )
    .await;
    assert_eq!(body.as_bytes(), SCRIPT_GZ);
}

#[tokio::test]
async fn a_missing_asset_is_a_404_not_the_app() {
    let build = FakeBuild::new();
    let app = app_serving(build.path()).await;
    let missing = get(&app, "/assets/app-000000.js").await;
    assert_secured(&missing);
    assert!(missing.headers().get("cache-control").is_none());
    expect_problem(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn api_paths_keep_their_problem_404s_with_nosniff() {
    let build = FakeBuild::new();
    let app = app_serving(build.path()).await;
    for path in ["/api/v1/nope", "/api", "/healthz/nope", "/readyz/x"] {
        let response = get(&app, path).await;
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(response.headers().get("content-security-policy").is_none());
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    let health = get(&app, "/healthz").await;
    assert_eq!(header(&health, "x-content-type-options"), "nosniff");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn other_methods_on_app_paths_are_405_with_allow() {
    let build = FakeBuild::new();
    let app = app_serving(build.path()).await;
    for path in ["/appointments/123", "/assets/app-abc123.js", "/"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(header(&response, "allow"), "GET, HEAD");
        assert_secured(&response);
        expect_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}

#[tokio::test]
async fn without_a_build_the_root_says_how_to_build_and_the_api_works() {
    let missing = std::env::temp_dir().join(format!("telemed-no-web-{}", Uuid::new_v4()));
    let app = app_serving(&missing).await;
    for path in ["/", "/appointments/123"] {
        let page = expect_file(
            get(&app, path).await,
            "text/html; charset=utf-8",
            "no-cache",
        )
        .await;
        assert!(page.contains("not built"), "{page}");
        assert!(
            page.contains("npm ci --prefix web &amp;&amp; npm run build --prefix web"),
            "{page}"
        );
        assert!(page.contains("scripts/run"), "{page}");
        assert!(page.contains(r#"href="/api/v1/openapi.json""#), "{page}");
        assert!(
            !page.contains("<script") && !page.contains("<style"),
            "{page}"
        );
    }
    expect_problem(
        get(&app, "/assets/app-abc123.js").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let document = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(document.status(), StatusCode::OK);
    assert_eq!(header(&document, "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn the_binary_reads_telemed_web_dir() {
    let build = FakeBuild::new();
    let db = TestDb::create().await;
    let dir = build.path().to_str().unwrap();
    let (_child, app) = spawn_process_with(&db.url, &[("TELEMED_WEB_DIR", dir)]).await;
    let body = expect_file(get(&app, "/appointments/7").await, "text/html", "no-cache").await;
    assert_eq!(body, INDEX);
}
