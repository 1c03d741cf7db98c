//! Operations: JSON logs (`TELEMED_LOG_FORMAT=json`) from the real binary.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStderr;

use crate::helpers::{TestApp, TestDb};

/// The next log line, which must be a JSON object.
async fn next_json(lines: &mut Lines<BufReader<ChildStderr>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a log line within 30 s")
        .unwrap()
        .expect("the server is still logging");
    let value: Value = serde_json::from_str(&line)
        .unwrap_or_else(|error| panic!("not a JSON log line ({error}): {line}"));
    assert!(value.is_object(), "{line}");
    assert!(
        value["timestamp"].is_string() && value["level"].is_string(),
        "{line}"
    );
    value
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_user_id_of_each_request() {
    let db = TestDb::create().await;
    let mut child = tokio::process::Command::new(TestApp::binary())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TELEMED_BIND", "127.0.0.1:0")
        .env("TELEMED_RATE_LIMITS", "off")
        .env("TELEMED_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = next_json(&mut lines).await;
        if let Some(port) = line["fields"]["port"].as_u64() {
            break port;
        }
    };
    let pool = telemed_api::database::pool(&db.url, 2).unwrap();
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db,
        pool,
        client: reqwest::Client::new(),
    };
    let patient = app.patient().await;

    let request_id = "json-log-probe-1";
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&patient.token)
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let line = loop {
        let line = next_json(&mut lines).await;
        let text = line.to_string();
        assert!(!text.contains(&patient.token), "a token in the log: {text}");
        assert!(
            !text.contains(crate::helpers::PASSWORD),
            "a password in the log: {text}"
        );
        if line["span"]["request_id"] == request_id && line["fields"]["message"] == "request" {
            break line;
        }
    };
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["route"], "/api/v1/me", "{line}");
    assert_eq!(line["span"]["user_id"], patient.id.as_str(), "{line}");
    assert_eq!(line["fields"]["status"], 200, "{line}");
    assert!(
        line["fields"]["latency_ms"].as_f64().unwrap() >= 0.0,
        "{line}"
    );
}

#[tokio::test]
async fn an_unknown_log_format_is_refused_by_name() {
    let output = tokio::process::Command::new(TestApp::binary())
        .arg("openapi")
        .env("TELEMED_LOG_FORMAT", "yaml")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TELEMED_LOG_FORMAT") && stderr.contains("yaml"),
        "{stderr}"
    );
}
