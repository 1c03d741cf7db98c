//! The web app in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/node/web/journey.mjs`) against a real `telemed serve` serving `web/dist`, in a
//! network namespace that has only loopback, so no packet of the video call leaves
//! 127.0.0.0/8. A doctor, a patient and an auditor each have their own browser context and
//! go through the journeys of issue 11; every screen is scanned with axe-core and saved at
//! desktop and phone width in `target/web-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::helpers::{TestApp, TestDb};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("api/ has a parent")
        .to_path_buf()
}

/// The test database's URL through PostgreSQL's Unix socket, which a network namespace with
/// only loopback still reaches.
async fn socket_url(db: &TestDb) -> String {
    let pool = db.migrated_pool().await;
    let (dirs, port): (String, String) = sqlx::query_as(
        "SELECT current_setting('unix_socket_directories'), current_setting('port')",
    )
    .fetch_one(&pool)
    .await
    .expect("read the server's socket settings");
    pool.close().await;
    let dir = dirs
        .split(',')
        .map(str::trim)
        .find(|d| d.starts_with('/'))
        .expect("PostgreSQL listens on a Unix socket");
    let url = reqwest::Url::parse(&db.url).expect("a URL");
    // The socket's directory as the host, percent-encoded (sqlx reads a host starting with `/`
    // as a socket directory; `postgres://user@/db?host=...` is refused: a user needs a host).
    format!(
        "postgres://{}@{}:{port}/{}",
        url.username(),
        dir.replace('/', "%2F"),
        url.path().trim_start_matches('/')
    )
}

/// Whether this process may make a network namespace (root, or unprivileged user namespaces).
fn namespaces_work() -> bool {
    std::process::Command::new("unshare")
        .args(["-n", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn patient_doctor_and_auditor_go_through_every_journey_in_the_browser() {
    let web_dir = root().join("web/dist");
    assert!(
        web_dir.join("index.html").exists(),
        "web/dist is not built: scripts/test builds it (scripts/lib/web.sh)"
    );
    let db = TestDb::create().await;
    let url = socket_url(&db).await;
    let shots = root().join("target/web-screenshots");
    let node = std::env::var("TELEMED_NODE").unwrap_or_else(|_| "node".to_string());
    let script = root().join("tests/node/web/journey.mjs");
    let mut command = if namespaces_work() {
        let mut c = tokio::process::Command::new("unshare");
        c.args(["-n", "sh", "-c", r#"ip link set lo up && exec "$@""#, "sh"]);
        c.arg(&node);
        c
    } else {
        eprintln!("no network namespace here: the browser test runs in the host's network");
        tokio::process::Command::new(&node)
    };
    let child = command
        .arg(&script)
        .env("TELEMED_BIN", TestApp::binary())
        .env("DATABASE_URL", &url)
        .env("TELEMED_WEB_DIR", &web_dir)
        .env("TELEMED_SHOTS", &shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {node} (scripts/test installs it): {e}"));
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(420),
        child.wait_with_output(),
    )
    .await
    .expect("the browser journeys took over seven minutes")
    .expect("the journey script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no result ({e}); stdout: {stdout}; stderr: {stderr}"));
    eprintln!("{stderr}");
    assert!(
        result["error"].is_null(),
        "journey failed: {result:#}\n{stderr}"
    );
    assert_eq!(result["violations"], Value::Array(vec![]), "{result:#}");
    // Console errors and uncaught exceptions of the pages, except those the journey provokes
    // on purpose (an error path's 4xx, the refused connections while the server restarts),
    // which it lists apart in `expected_problems`.
    assert_eq!(
        result["problems"],
        Value::Array(vec![]),
        "the pages logged errors: {:#}",
        result["problems"]
    );
    assert!(
        result["tti_ms"].is_u64(),
        "no time to interactive measured: {result:#}"
    );
    let screens = result["screens"].as_array().expect("screens");
    assert!(
        screens.len() >= 20,
        "only {} screens saved: {result:#}",
        screens.len()
    );
    eprintln!(
        "web app: {} steps in {} ms, {} screens in {}, first screen interactive in {} ms",
        result["steps"].as_array().map_or(0, Vec::len),
        result["duration_ms"],
        screens.len(),
        shots.display(),
        result["tti_ms"]
    );
}

#[tokio::test]
async fn the_web_apps_api_types_are_those_of_the_served_document() {
    let app = crate::helpers::spawn_app().await;
    let document = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET openapi.json")
        .text()
        .await
        .expect("the document");
    let file = std::env::temp_dir().join(format!("telemed-openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, document).expect("write the document");
    let node = std::env::var("TELEMED_NODE").unwrap_or_else(|_| "node".to_string());
    let output = tokio::process::Command::new(&node)
        .arg(root().join("web/scripts/openapi.mjs"))
        .arg("--check")
        .arg("--doc")
        .arg(&file)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {node}: {e}"));
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "web/openapi.json or the types generated from it are stale (run `npm run openapi` in \
         web/): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
