//! Operations: JSON logs (`TELEMED_LOG_FORMAT=json`) and `GET /metrics` (Prometheus) from the
//! real binary.

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

/// `telemed serve` with JSON logs and `env`, its log lines, a client of it, and the fields of
/// its "serving" line.
async fn serve_json(
    env: &[(&str, &str)],
) -> (
    tokio::process::Child,
    Lines<BufReader<ChildStderr>>,
    TestApp,
    Value,
) {
    let db = TestDb::create().await;
    let mut child = tokio::process::Command::new(TestApp::binary())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TELEMED_BIND", "127.0.0.1:0")
        .env("TELEMED_RATE_LIMITS", "off")
        .env("TELEMED_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = loop {
        let line = next_json(&mut lines).await;
        if line["fields"]["port"].is_u64() {
            break line["fields"].clone();
        }
    };
    let pool = telemed_api::database::pool(&db.url, 2).unwrap();
    let app = TestApp {
        address: format!("http://127.0.0.1:{}", serving["port"]),
        db,
        pool,
        client: reqwest::Client::new(),
    };
    (child, lines, app, serving)
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_user_id_of_each_request() {
    let (_child, mut lines, app, _) = serve_json(&[]).await;
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

/// Parses a scrape with Python's `prometheus_client` (the reference parser): each sample as
/// `[name, labels, value]`, and each family's type.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(sys.stdin.read()))
print(json.dumps({
    "types": {f.name: f.type for f in families},
    "samples": [[s.name, s.labels, s.value] for f in families for s in f.samples],
}))
"#;

async fn scrape(client: &reqwest::Client, port: u64) -> Value {
    use tokio::io::AsyncWriteExt;
    let response = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let python3 = std::env::var("TELEMED_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut python = tokio::process::Command::new(&python3)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut stdin = python.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = python.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "prometheus_client (tests/python/requirements.txt; set TELEMED_PYTHON) cannot parse the \
         scrape: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 when there is none).
fn sample(scrape: &Value, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = scrape["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v))
        .map(|s| s[2].as_f64().unwrap())
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().copied().unwrap_or(0.0)
}

#[tokio::test]
async fn a_booking_moves_the_request_counter_of_its_route_template() {
    use time::Duration as Span;
    let (_child, _lines, app, serving) =
        serve_json(&[("TELEMED_METRICS_BIND", "127.0.0.1:0")]).await;
    let metrics_port = serving["metrics_port"]
        .as_u64()
        .expect("the metrics port is logged");
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let day = crate::scheduling::days_ahead(3);
    app.open_window(&doctor, day + Span::hours(14), day + Span::hours(17))
        .await;
    let booked = [
        ("method", "POST"),
        ("route", "/api/v1/appointments"),
        ("status", "201"),
    ];
    let latency = [("method", "POST"), ("route", "/api/v1/appointments")];

    let before = scrape(&app.client, metrics_port).await;
    assert_eq!(
        before["types"]["telemed_http_request_duration_seconds"], "histogram",
        "{before}"
    );
    assert_eq!(
        before["types"]["telemed_http_requests"], "counter",
        "{before}"
    );
    assert_eq!(sample(&before, "telemed_http_requests_total", &booked), 0.0);

    let start = day + Span::hours(15);
    app.book(&patient, &doctor.id, start, start + Span::minutes(30))
        .await;

    let after = scrape(&app.client, metrics_port).await;
    assert_eq!(sample(&after, "telemed_http_requests_total", &booked), 1.0);
    assert_eq!(
        sample(
            &after,
            "telemed_http_request_duration_seconds_count",
            &latency
        ),
        sample(
            &before,
            "telemed_http_request_duration_seconds_count",
            &latency
        ) + 1.0
    );
    // The concrete path of one appointment never becomes a label: only its template does.
    let templates: Vec<&str> = after["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s[1]["route"].as_str())
        .collect();
    assert!(
        templates.iter().all(|route| !route.contains(&doctor.id)),
        "{templates:?}"
    );
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let (_child, _lines, _app, serving) = serve_json(&[]).await;
    assert!(serving.get("metrics_port").is_none(), "{serving}");
}
