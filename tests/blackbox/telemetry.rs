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

    // Nor does a made-up method: it counts as OTHER.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    app.client
        .request(brew, app.url("/api/v1/appointments"))
        .send()
        .await
        .unwrap();
    let last = scrape(&app.client, metrics_port).await;
    let methods: std::collections::BTreeSet<&str> = last["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s[1]["method"].as_str())
        .collect();
    assert!(methods.contains("OTHER"), "{methods:?}");
    assert!(!methods.contains("BREW"), "{methods:?}");
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let (_child, _lines, _app, serving) = serve_json(&[]).await;
    assert!(serving.get("metrics_port").is_none(), "{serving}");
}

/// Whether the scrape has a sample `name` whose labels include `labels`.
fn has(scrape: &Value, name: &str, labels: &[(&str, &str)]) -> bool {
    scrape["samples"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v))
}

/// `telemed serve` with `GET /metrics` on a free port (and `env`): the process, a client of it
/// and the metrics port. Its log is drained, so that it never waits on a full pipe.
async fn serve_metrics(env: &[(&str, &str)]) -> (tokio::process::Child, TestApp, u64) {
    let mut env = env.to_vec();
    env.push(("TELEMED_METRICS_BIND", "127.0.0.1:0"));
    let (child, mut lines, app, serving) = serve_json(&env).await;
    let port = serving["metrics_port"]
        .as_u64()
        .expect("the metrics port is logged");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, app, port)
}

/// Scrapes until `holds` is true of a scrape, which it returns; fails naming `what` after
/// 20 s. (Each scrape runs the parser, which paces the loop.)
async fn scrape_until(
    app: &TestApp,
    port: u64,
    what: &str,
    mut holds: impl AsyncFnMut(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let scraped = scrape(&app.client, port).await;
        if holds(&scraped).await {
            return scraped;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 20 s in vain until {what}; the last scrape: {scraped}"
        );
    }
}

const CONNECTIONS: &str = "telemed_live_connections";
const WEBSOCKET: [(&str, &str); 1] = [("transport", "websocket")];
const SOCKETIO: [(&str, &str); 1] = [("transport", "socketio")];

#[tokio::test]
async fn live_connections_are_counted_by_transport_until_they_close() {
    let (_child, app, port) = serve_metrics(&[]).await;
    let patient = app.patient().await;
    let before = scrape(&app.client, port).await;
    assert_eq!(before["types"][CONNECTIONS], "gauge", "{before}");
    assert!(has(&before, CONNECTIONS, &WEBSOCKET), "{before}");
    assert!(has(&before, CONNECTIONS, &SOCKETIO), "{before}");
    assert_eq!(sample(&before, CONNECTIONS, &WEBSOCKET), 0.0);
    assert_eq!(sample(&before, CONNECTIONS, &SOCKETIO), 0.0);

    // A round trip: the connection is being served.
    let mut ws = crate::live::Ws::connect(&app, &patient).await;
    ws.expect_usable().await;
    let open = scrape(&app.client, port).await;
    assert_eq!(sample(&open, CONNECTIONS, &WEBSOCKET), 1.0);
    assert_eq!(sample(&open, CONNECTIONS, &SOCKETIO), 0.0);

    let mut driver = crate::socketio::Driver::start(&app).await;
    driver.connect("a", Some(&patient.token)).await.unwrap();
    scrape_until(&app, port, "one connection of each", async |s| {
        sample(s, CONNECTIONS, &WEBSOCKET) == 1.0 && sample(s, CONNECTIONS, &SOCKETIO) == 1.0
    })
    .await;

    ws.hang_up().await;
    scrape_until(&app, port, "the WebSocket is off the gauge", async |s| {
        sample(s, CONNECTIONS, &WEBSOCKET) == 0.0 && sample(s, CONNECTIONS, &SOCKETIO) == 1.0
    })
    .await;
    driver.close("a").await;
    scrape_until(
        &app,
        port,
        "the Socket.IO socket is off the gauge",
        async |s| {
            sample(s, CONNECTIONS, &WEBSOCKET) == 0.0 && sample(s, CONNECTIONS, &SOCKETIO) == 0.0
        },
    )
    .await;
}

const SENT: &str = "telemed_live_events_sent_total";
const BACKLOG: &str = "telemed_notify_outbox_deliveries";
const ATTEMPTS: &str = "telemed_notify_deliveries_total";

#[tokio::test]
async fn a_booking_moves_the_live_events_sent_and_the_notification_outbox() {
    let (_child, app, port) = serve_metrics(&[("TELEMED_NOTIFY_POLL_MS", "50")]).await;
    let (doctor, patient, day) = crate::live::clinic(&app).await;
    let mut ws = crate::live::Ws::connect(&app, &doctor).await;
    ws.events_so_far(&doctor).await;
    let before = scrape(&app.client, port).await;
    assert_eq!(before["types"]["telemed_live_events_sent"], "counter");
    assert_eq!(before["types"]["telemed_live_events_dropped"], "counter");
    assert_eq!(before["types"][BACKLOG], "gauge");
    assert_eq!(before["types"]["telemed_notify_deliveries"], "counter");
    for channel in ["email", "push", "sms"] {
        for state in ["scheduled", "retrying", "sending"] {
            let labels = [("channel", channel), ("state", state)];
            assert!(has(&before, BACKLOG, &labels), "{labels:?}: {before}");
            assert_eq!(sample(&before, BACKLOG, &labels), 0.0, "{labels:?}");
        }
    }

    // The doctor's connection gets the booking's events: each is counted once it is sent.
    let start = day + time::Duration::hours(10);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let mut received = vec![ws.next_event().await];
    received.extend(ws.events_so_far(&doctor).await);
    let after = scrape(&app.client, port).await;
    assert_eq!(
        sample(&after, SENT, &WEBSOCKET),
        sample(&before, SENT, &WEBSOCKET) + received.len() as f64,
        "{received:?}"
    );
    assert_eq!(sample(&after, SENT, &SOCKETIO), 0.0);

    // Confirmed: the request (to the doctor) and the confirmation (to the patient) are worked
    // off at once, e-mail and push being off here; the reminders (24 h and 1 h before, each
    // party, each channel) wait for their time.
    let id = booked["id"].as_str().unwrap();
    let confirm = app
        .act(&doctor, id, "confirm", &serde_json::json!({}))
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    scrape_until(
        &app,
        port,
        "the changes are worked off and the reminders wait",
        async |s| {
            ["email", "push", "sms"].iter().all(|channel| {
                let scheduled = [("channel", *channel), ("state", "scheduled")];
                let cancelled = [("channel", *channel), ("outcome", "cancelled")];
                let changes = if *channel == "sms" { 0.0 } else { 2.0 };
                sample(s, BACKLOG, &scheduled) == 4.0 && sample(s, ATTEMPTS, &cancelled) == changes
            })
        },
    )
    .await;
}

const LAG_EVENTS: &str = "telemed_projection_lag_events";
const LAG_SECONDS: &str = "telemed_projection_lag_seconds";

/// Whether every projection the service runs has its lag series, all at 0.
fn caught_up(scrape: &Value) -> bool {
    telemed_projections::all().iter().all(|projection| {
        let labels = [("projection", projection.name())];
        has(scrape, LAG_EVENTS, &labels)
            && has(scrape, LAG_SECONDS, &labels)
            && sample(scrape, LAG_EVENTS, &labels) == 0.0
            && sample(scrape, LAG_SECONDS, &labels) == 0.0
    })
}

async fn events_in_store(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn projection_lag_counts_what_a_held_back_projection_has_not_applied() {
    let (_child, app, port) = serve_metrics(&[]).await;
    let (doctor, patient, day) = crate::live::clinic(&app).await;
    let settled = scrape_until(&app, port, "every projection is caught up", async |s| {
        caught_up(s)
    })
    .await;
    assert_eq!(settled["types"][LAG_EVENTS], "gauge");
    assert_eq!(settled["types"][LAG_SECONDS], "gauge");

    // The read models are held back while a booking is recorded.
    let recorded = events_in_store(&app).await;
    let hold = crate::helpers::hold_read_models(&app.pool).await;
    let start = day + time::Duration::hours(11);
    let body = serde_json::json!({
        "doctor_id": doctor.id, "reason": "check-up",
        "start": crate::scheduling::rfc3339(start),
        "end": crate::scheduling::rfc3339(start + time::Duration::minutes(30)),
    });
    let booking = tokio::spawn(
        app.client
            .post(app.url("/api/v1/appointments"))
            .bearer_auth(&patient.token)
            .json(&body)
            .send(),
    );
    scrape_until(
        &app,
        port,
        "every projection is behind by the booking",
        async |s| {
            let behind = (events_in_store(&app).await - recorded) as f64;
            behind > 0.0
                && telemed_projections::all().iter().all(|projection| {
                    let labels = [("projection", projection.name())];
                    sample(s, LAG_EVENTS, &labels) == behind
                        && sample(s, LAG_SECONDS, &labels) > 0.0
                })
        },
    )
    .await;

    hold.rollback().await.unwrap();
    let booked = booking.await.unwrap().unwrap();
    assert_eq!(booked.status(), StatusCode::CREATED);
    scrape_until(&app, port, "every projection caught up again", async |s| {
        caught_up(s)
    })
    .await;
}

#[tokio::test]
async fn pool_gauges_are_plausible() {
    let (_child, app, port) = serve_metrics(&[("TELEMED_DB_MAX_CONNECTIONS", "7")]).await;
    app.patient().await;
    let scraped = scrape(&app.client, port).await;
    let size = sample(&scraped, "telemed_db_pool_connections", &[]);
    let idle = sample(&scraped, "telemed_db_pool_idle_connections", &[]);
    let in_use = sample(&scraped, "telemed_db_pool_in_use_connections", &[]);
    let max = sample(&scraped, "telemed_db_pool_max_connections", &[]);
    for name in [
        "telemed_db_pool_connections",
        "telemed_db_pool_idle_connections",
        "telemed_db_pool_in_use_connections",
        "telemed_db_pool_max_connections",
        "telemed_metrics_database_up",
    ] {
        assert_eq!(scraped["types"][name], "gauge", "{name}: {scraped}");
    }
    assert_eq!(max, 7.0);
    assert!(size >= 1.0, "a request used the pool: {size}");
    assert!(in_use <= size && size <= max, "{in_use} ≤ {size} ≤ {max}");
    assert_eq!(idle + in_use, size);
    assert_eq!(sample(&scraped, "telemed_metrics_database_up", &[]), 1.0);
}

#[tokio::test]
async fn a_slow_consumer_s_lost_events_are_counted_as_dropped() {
    const DROPPED: &str = "telemed_live_events_dropped_total";
    const QUEUE_FULL: [(&str, &str); 1] = [("reason", "queue_full")];
    let (_child, app, port) = serve_metrics(&[("TELEMED_LIVE_QUEUE", "16")]).await;
    let auditor = app.staff("auditor").await;
    let mut slow = crate::live::Ws::connect(&app, &auditor).await;
    let joined = slow
        .request("subscribe", serde_json::json!({ "topic": "audit" }))
        .await;
    assert_eq!(joined["data"], serde_json::json!({ "ok": true }));
    let before = scrape(&app.client, port).await;
    assert!(has(&before, DROPPED, &QUEUE_FULL), "{before}");
    assert!(has(&before, DROPPED, &[("reason", "closed")]), "{before}");

    // 200 events in one commit, published at once: the connection's queue takes 16 (and what
    // its session takes out meanwhile); the rest are dropped, and so is the connection.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'test_burst', 'burst', s, 'Burst', '1', '{}'::jsonb, '{}'::jsonb
           FROM generate_series(1, 200) AS s",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (code, _) = slow.expect_close().await;
    assert_eq!(code, 4008);
    let sent = sample(&before, SENT, &WEBSOCKET);
    let dropped = sample(&before, DROPPED, &QUEUE_FULL);
    scrape_until(
        &app,
        port,
        "each event is either sent or dropped",
        async |s| {
            let now_dropped = sample(s, DROPPED, &QUEUE_FULL) - dropped;
            now_dropped > 0.0
                && sample(s, SENT, &WEBSOCKET) - sent + now_dropped == 200.0
                && sample(s, CONNECTIONS, &WEBSOCKET) == 0.0
        },
    )
    .await;
}
