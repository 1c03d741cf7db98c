//! Notifications: the in-app inbox and its live events, e-mail through a real SMTP server
//! (Python's aiosmtpd), Web Push to a test push service (decrypted as a browser would) and SMS
//! through the webhook. Reminder instants are reached with the clock seam
//! (`TELEMED_CLOCK_OFFSET_SECONDS`), never by sleeping.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::helpers::{
    TestApp, TestDb, User, expect_problem, expect_status, spawn_app_on, spawn_process_with,
    try_eventually,
};
use crate::live::{Ws, clinic};

/// How long anything here may take to arrive.
const PATIENCE: Duration = Duration::from_secs(20);

/// A real SMTP server: every message it receives, parsed.
struct SmtpSink {
    child: tokio::process::Child,
    mail: mpsc::UnboundedReceiver<Value>,
    port: u16,
}

impl SmtpSink {
    async fn start(port: u16) -> Self {
        let python = std::env::var("TELEMED_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/smtp_sink.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP sink (python3 with aiosmtpd; scripts/test installs it)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the SMTP sink starts")
            .expect("read the sink")
            .expect("the sink says it is ready (is aiosmtpd installed?)");
        assert!(ready.contains("ready"), "{ready}");
        let (tx, mail) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        Self { child, mail, port }
    }

    /// The next message, within `PATIENCE`.
    async fn next(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.mail.recv())
            .await
            .expect("an e-mail arrives in time")
            .expect("the sink is running")
    }

    /// The next `n` messages, keyed by recipient.
    async fn next_for(&mut self, n: usize) -> std::collections::HashMap<String, Value> {
        let mut out = std::collections::HashMap::new();
        for _ in 0..n {
            let mail = self.next().await;
            let to = mail["to"][0].as_str().expect("a recipient").to_string();
            assert!(
                out.insert(to, mail).is_none(),
                "two e-mails to one recipient"
            );
        }
        out
    }

    async fn stop(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let _ = self.child.kill().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until `query` (one boolean) holds on `app`'s database.
async fn until(app: &TestApp, what: &str, query: &str) {
    let holds = || async {
        sqlx::query_scalar::<_, bool>(query)
            .fetch_one(&app.pool)
            .await
            .expect("query")
    };
    if try_eventually(PATIENCE, holds).await.is_none() {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT concat_ws(' ', kind, channel, user_id, state, attempts, due_at, last_error)
               FROM notification_deliveries ORDER BY due_at",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap_or_default();
        panic!(
            "timed out waiting until {what}; deliveries:\n{}",
            rows.join("\n")
        );
    }
}

/// Waits until no delivery is being sent (an e-mail can reach the sink a moment before its
/// outcome is recorded; a process killed in that moment leaves it `sending`, never resent).
async fn settled(app: &TestApp) {
    until(
        app,
        "every attempt's outcome is recorded",
        "SELECT NOT EXISTS (SELECT 1 FROM notification_deliveries WHERE state = 'sending')",
    )
    .await;
}

/// `(kind, user, state, attempts, due_at)` of an appointment's e-mail deliveries.
async fn email_deliveries(
    app: &TestApp,
    appointment: &str,
) -> Vec<(String, String, String, i32, OffsetDateTime)> {
    sqlx::query(
        "SELECT kind, user_id::text AS user_id, state, attempts, due_at
           FROM notification_deliveries
          WHERE appointment_id = $1::uuid AND channel = 'email'
          ORDER BY kind, user_id",
    )
    .bind(appointment)
    .fetch_all(&app.pool)
    .await
    .expect("deliveries")
    .iter()
    .map(|r| {
        (
            r.get("kind"),
            r.get("user_id"),
            r.get("state"),
            r.get("attempts"),
            r.get("due_at"),
        )
    })
    .collect()
}

fn subjects(mail: &std::collections::HashMap<String, Value>) -> Vec<String> {
    let mut subjects: Vec<String> = mail
        .values()
        .map(|m| m["subject"].as_str().unwrap_or_default().to_string())
        .collect();
    subjects.sort();
    subjects
}

/// Books a 30-minute consultation at `start` and has the doctor confirm it; its id.
async fn confirmed(app: &TestApp, doctor: &User, patient: &User, start: OffsetDateTime) -> String {
    let booked = app
        .book(
            patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().expect("id").to_string();
    let confirm = app.act(doctor, &id, "confirm", &json!({})).await;
    expect_status(confirm, StatusCode::OK).await;
    id
}

fn seconds_until(instant: OffsetDateTime) -> String {
    (instant - OffsetDateTime::now_utc())
        .whole_seconds()
        .to_string()
}

async fn serve_with_mail(db: &TestDb, smtp: u16, offset: &str) -> (tokio::process::Child, TestApp) {
    let url = format!("smtp://127.0.0.1:{smtp}");
    spawn_process_with(
        &db.url,
        &[
            ("TELEMED_SMTP_URL", url.as_str()),
            ("TELEMED_SMTP_FROM", "Telemed <care@telemed.test>"),
            ("TELEMED_NOTIFY_POLL_MS", "50"),
            ("TELEMED_NOTIFY_RETRY_BASE_MS", "200"),
            ("TELEMED_CLOCK_OFFSET_SECONDS", offset),
        ],
    )
    .await
}

#[tokio::test]
async fn reminders_are_mailed_at_their_instants_once_and_follow_a_reschedule() {
    let db = TestDb::create().await;
    let mut sink = SmtpSink::start(free_port()).await;
    let (first, app) = serve_with_mail(&db, sink.port, "0").await;
    let (doctor, patient, day) = clinic(&app).await;
    let start = day + time::Duration::hours(10);
    let id = confirmed(&app, &doctor, &patient, start).await;

    // The request goes to the doctor, the confirmation to the patient, each once, as text and
    // HTML, with the time in the recipient's zone.
    let mail = sink.next_for(2).await;
    let request = &mail[&doctor.email];
    assert_eq!(
        request["subject"], "Telemed: New consultation request",
        "{request}"
    );
    let confirmed = &mail[&patient.email];
    assert_eq!(
        confirmed["subject"], "Telemed: Consultation confirmed",
        "{confirmed}"
    );
    assert_eq!(confirmed["from"], "Telemed <care@telemed.test>");
    let text = confirmed["text"].as_str().expect("a plain-text part");
    let html = confirmed["html"].as_str().expect("an HTML part");
    // 10:00 UTC is 15:30 in Kolkata; New York sees 05:00 or 06:00.
    assert!(
        text.contains("15:30 (Asia/Kolkata)") && text.contains("Dr. Grey"),
        "{text}"
    );
    assert!(
        html.contains("15:30 (Asia/Kolkata)") && html.contains("<p>"),
        "{html}"
    );
    let local = request["text"].as_str().expect("text");
    assert!(
        local.contains(":00 (America/New_York)") && local.contains("Ada Patient"),
        "{local}"
    );

    // Both parties' reminders are planned for exactly 24 h and 1 h before.
    let reminders: Vec<_> = email_deliveries(&app, &id)
        .await
        .into_iter()
        .filter(|d| d.0.starts_with("reminder"))
        .collect();
    assert_eq!(reminders.len(), 4, "{reminders:?}");
    for (kind, _, state, attempts, due) in &reminders {
        let lead = if kind == "reminder_24h" { 24 } else { 1 };
        assert_eq!(*due, start - time::Duration::hours(lead), "{kind}");
        assert_eq!((state.as_str(), *attempts), ("scheduled", 0), "{kind}");
    }
    settled(&app).await;
    drop(first);

    // A server whose clock reads one minute past the 24-hour mark sends those two only.
    let offset = seconds_until(start - time::Duration::hours(24) + time::Duration::minutes(1));
    let (second, app) = serve_with_mail(&db, sink.port, &offset).await;
    let mail = sink.next_for(2).await;
    assert_eq!(
        subjects(&mail),
        vec!["Telemed: Your consultation is tomorrow"; 2],
        "{mail:?}"
    );
    assert!(mail.contains_key(&doctor.email) && mail.contains_key(&patient.email));
    settled(&app).await;
    let states: Vec<_> = email_deliveries(&app, &id)
        .await
        .into_iter()
        .filter(|d| d.0.starts_with("reminder"))
        .map(|(kind, _, state, attempts, _)| (kind, state, attempts))
        .collect();
    let state = |kind: &str, state: &str, attempts| (kind.to_string(), state.to_string(), attempts);
    assert_eq!(
        states,
        [
            state("reminder_1h", "scheduled", 0),
            state("reminder_1h", "scheduled", 0),
            state("reminder_24h", "sent", 1),
            state("reminder_24h", "sent", 1),
        ],
        "only the 24-hour reminders are sent"
    );

    // The doctor moves the appointment two hours later; the patient agrees. The pending
    // 1-hour reminders move with it; the 24-hour ones, sent already, are not sent again.
    let moved = start + time::Duration::hours(2);
    expect_status(
        app.reschedule(&doctor, &id, moved, moved + time::Duration::minutes(30))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.act(&patient, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let mail = sink.next_for(2).await;
    assert_eq!(
        mail[&patient.email]["subject"],
        "Telemed: Consultation moved"
    );
    assert_eq!(
        mail[&doctor.email]["subject"],
        "Telemed: Consultation confirmed"
    );
    let moved_text = mail[&patient.email]["text"].as_str().expect("text");
    assert!(
        moved_text.contains("15:30") && moved_text.contains("17:30"),
        "{moved_text}"
    );
    let one_hour: Vec<OffsetDateTime> = email_deliveries(&app, &id)
        .await
        .into_iter()
        .filter(|d| d.0 == "reminder_1h")
        .map(|d| d.4)
        .collect();
    assert_eq!(one_hour, [moved - time::Duration::hours(1); 2]);
    settled(&app).await;
    drop(second);

    // After a restart, with the clock past the new 1-hour mark: the 1-hour reminders go out,
    // once each, and nothing is sent twice (the 24-hour ones, due longer ago, would come
    // first in the same round).
    let offset = seconds_until(moved - time::Duration::hours(1) + time::Duration::minutes(1));
    let (_third, app) = serve_with_mail(&db, sink.port, &offset).await;
    let mail = sink.next_for(2).await;
    assert_eq!(
        subjects(&mail),
        vec!["Telemed: Your consultation starts in an hour"; 2],
        "{mail:?}"
    );
    let reminder = mail[&patient.email]["text"].as_str().expect("text");
    assert!(reminder.contains("17:30 (Asia/Kolkata)"), "{reminder}");
    until(
        &app,
        "no delivery is pending",
        "SELECT NOT EXISTS (SELECT 1 FROM notification_deliveries
                             WHERE channel = 'email' AND state IN ('scheduled', 'retrying', 'sending'))",
    )
    .await;
    let counts: Vec<(String, i64, i64)> = sqlx::query(
        "SELECT kind, count(*) FILTER (WHERE state = 'sent'), max(attempts)::bigint
           FROM notification_deliveries WHERE channel = 'email' GROUP BY kind ORDER BY kind",
    )
    .fetch_all(&app.pool)
    .await
    .expect("counts")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        counts,
        vec![
            ("appointment_confirmed".to_string(), 2, 1),
            ("appointment_requested".to_string(), 1, 1),
            ("appointment_rescheduled".to_string(), 1, 1),
            ("reminder_1h".to_string(), 2, 1),
            ("reminder_24h".to_string(), 2, 1),
        ]
    );
    assert!(sink.mail.try_recv().is_err(), "an e-mail too many");
    sink.stop().await;
}

#[tokio::test]
async fn mail_waits_for_a_down_smtp_server_and_a_cancel_drops_the_reminders() {
    let db = TestDb::create().await;
    // A mail server that is down: it takes connections and drops them at once. (Holding the
    // port also keeps other tests from picking it meanwhile.)
    let down = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = down.local_addr().expect("address").port();
    let down = tokio::spawn(async move {
        loop {
            if let Ok((socket, _)) = down.accept().await {
                drop(socket);
            }
        }
    });
    let (_server, app) = serve_with_mail(&db, port, "0").await;
    let (doctor, patient, day) = clinic(&app).await;
    let start = day + time::Duration::hours(9);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().expect("id").to_string();

    // Nobody listens on the SMTP port: the doctor's e-mail is retried, with its error.
    until(
        &app,
        "the request e-mail failed twice",
        "SELECT EXISTS (SELECT 1 FROM notification_deliveries
                         WHERE kind = 'appointment_requested' AND channel = 'email'
                           AND state = 'retrying' AND attempts >= 2
                           AND last_error LIKE 'SMTP%')",
    )
    .await;
    down.abort();
    let _ = down.await;
    let mut sink = SmtpSink::start(port).await;
    let mail = sink.next().await;
    assert_eq!(mail["to"][0], doctor.email.as_str());
    assert_eq!(mail["subject"], "Telemed: New consultation request");
    until(
        &app,
        "the e-mail is recorded as sent",
        "SELECT EXISTS (SELECT 1 FROM notification_deliveries
                         WHERE kind = 'appointment_requested' AND channel = 'email'
                           AND state = 'sent' AND sent_at IS NOT NULL)",
    )
    .await;

    expect_status(
        app.act(&doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        sink.next().await["subject"],
        "Telemed: Consultation confirmed"
    );
    let body = json!({ "reason": "feeling better" });
    expect_status(
        app.act(&patient, &id, "cancel", &body).await,
        StatusCode::OK,
    )
    .await;
    let cancelled = sink.next().await;
    assert_eq!(cancelled["to"][0], doctor.email.as_str());
    assert_eq!(cancelled["subject"], "Telemed: Consultation cancelled");
    let reminders: Vec<(String, String)> = sqlx::query(
        "SELECT state, coalesce(last_error, '') FROM notification_deliveries
          WHERE appointment_id = $1::uuid AND kind LIKE 'reminder%'",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .expect("reminders")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(reminders.len(), 12, "2 kinds x 2 people x 3 channels");
    assert!(
        reminders
            .iter()
            .all(|(state, why)| state == "cancelled" && why == "the appointment was cancelled"),
        "{reminders:?}"
    );
    sink.stop().await;
}

#[tokio::test]
async fn the_inbox_lists_notifications_live_and_keeps_read_state() {
    let app = spawn_app_on(TestDb::create().await, |_| {}).await;
    let (doctor, patient, day) = clinic(&app).await;
    let mut live = Ws::connect(&app, &patient).await;
    let start = day + time::Duration::hours(11);
    let id = confirmed(&app, &doctor, &patient, start).await;
    let message = json!({ "content": "Please bring your last results." });
    let path = format!("/api/v1/appointments/{id}/messages");
    expect_status(
        app.post(&path, Some(&doctor.token), &message).await,
        StatusCode::CREATED,
    )
    .await;

    // Live, to the patient only: the confirmation and the message, never the message's text.
    let confirmed = live.next_named("notification").await["data"].clone();
    assert_eq!(confirmed["kind"], "appointment_confirmed", "{confirmed}");
    assert_eq!(confirmed["appointment_id"], id.as_str());
    assert!(
        confirmed["body"]
            .as_str()
            .unwrap()
            .contains("16:30 (Asia/Kolkata)"),
        "{confirmed}"
    );
    let new_message = live.next_named("notification").await["data"].clone();
    assert_eq!(new_message["kind"], "message");
    assert!(!new_message["body"].as_str().unwrap().contains("results"));
    for field in ["id", "title", "at"] {
        assert!(new_message[field].is_string(), "{field}: {new_message}");
    }

    let inbox = expect_status(
        app.get("/api/v1/notifications", &patient.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(inbox["unread_count"], 2, "{inbox}");
    let items = inbox["items"].as_array().expect("items");
    assert_eq!(items[0]["id"], new_message["id"], "newest first: {inbox}");
    assert_eq!(items[1]["id"], confirmed["id"]);
    assert!(items.iter().all(|n| n["read"] == false));
    let doctors = expect_status(
        app.get("/api/v1/notifications", &doctor.token).await,
        StatusCode::OK,
    )
    .await;
    let kinds: Vec<&str> = doctors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["appointment_requested"], "{doctors}");

    // Paging, read state, and errors that name the problem.
    let page = expect_status(
        app.get_with("/api/v1/notifications", &patient.token, &[("limit", "1")])
            .await,
        StatusCode::OK,
    )
    .await;
    let next = page["next"].as_str().expect("a next token").to_string();
    let older = expect_status(
        app.get_with(
            "/api/v1/notifications",
            &patient.token,
            &[("before", next.as_str())],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(older["items"][0]["id"], confirmed["id"], "{older}");
    assert!(older.get("next").is_none());
    let read = format!(
        "/api/v1/notifications/{}/read",
        confirmed["id"].as_str().unwrap()
    );
    let response = app.post(&read, Some(&patient.token), &json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.post(&read, Some(&doctor.token), &json!({})).await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
    let unread = expect_status(
        app.get_with(
            "/api/v1/notifications",
            &patient.token,
            &[("unread", "true")],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unread["unread_count"], 1);
    assert_eq!(unread["items"].as_array().unwrap().len(), 1);
    assert_eq!(unread["items"][0]["id"], new_message["id"]);
    for (field, value) in [("limit", "0"), ("before", "x"), ("unread", "maybe")] {
        let problem = expect_problem(
            app.get_with("/api/v1/notifications", &patient.token, &[(field, value)])
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let all = app
        .post(
            "/api/v1/notifications/read-all",
            Some(&patient.token),
            &json!({}),
        )
        .await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);

    // A rebuild keeps ids and read state.
    for projection in telemed_projections::all() {
        telemed_projections::rebuild::rebuild(&app.pool, projection.as_ref())
            .await
            .expect("rebuild");
    }
    let after = expect_status(
        app.get("/api/v1/notifications", &patient.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after["unread_count"], 0, "{after}");
    assert_eq!(
        after["items"],
        json!(
            items
                .iter()
                .map(|n| {
                    let mut n = n.clone();
                    n["read"] = json!(true);
                    n
                })
                .collect::<Vec<_>>()
        )
    );
}

#[tokio::test]
async fn preferences_are_validated_and_respected() {
    let app = spawn_app_on(TestDb::create().await, |_| {}).await;
    let patient = app.patient().await;
    let path = "/api/v1/notifications/preferences";
    let defaults = expect_status(app.get(path, &patient.token).await, StatusCode::OK).await;
    assert_eq!(
        defaults,
        json!({ "email": true, "push": true, "sms": false, "phone": null })
    );
    for (body, field) in [
        (json!({ "email": true, "push": true, "sms": true }), "phone"),
        (
            json!({ "email": true, "push": true, "sms": false, "phone": "0612" }),
            "phone",
        ),
        (
            json!({ "email": "yes", "push": true, "sms": false }),
            "email",
        ),
    ] {
        let problem = expect_problem(
            app.put(path, &patient.token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(problem.to_string().contains(field), "{problem}");
    }
    let body = json!({ "email": false, "push": true, "sms": true, "phone": "+33 6 12 34 56 78" });
    let saved = expect_status(app.put(path, &patient.token, &body).await, StatusCode::OK).await;
    assert_eq!(saved["phone"], "+33612345678");
    assert_eq!(
        expect_status(app.get(path, &patient.token).await, StatusCode::OK).await,
        saved
    );
}

/// What the test push service and SMS provider received.
#[derive(Debug)]
enum Received {
    Push {
        device: String,
        headers: HeaderMap,
        body: Bytes,
    },
    Sms(Value),
}

async fn provider() -> (String, mpsc::UnboundedReceiver<Received>) {
    use axum::extract::{Path, State};
    use axum::routing::post;
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let router = axum::Router::new()
        .route(
            "/push/{device}",
            post(
                |State(tx): State<mpsc::UnboundedSender<Received>>,
                 Path(device): Path<String>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let gone = device == "gone";
                    let _ = tx.send(Received::Push {
                        device,
                        headers,
                        body,
                    });
                    if gone {
                        axum::http::StatusCode::GONE
                    } else {
                        axum::http::StatusCode::CREATED
                    }
                },
            ),
        )
        .route(
            "/sms",
            post(
                |State(tx): State<mpsc::UnboundedSender<Received>>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    assert_eq!(headers["authorization"], "Bearer sms-secret");
                    let _ = tx.send(Received::Sms(body));
                    axum::http::StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, rx)
}

/// A browser's push keys: (secret, p256dh, auth).
pub(crate) fn device_keys() -> (web_push_native::p256::SecretKey, String, [u8; 16]) {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let secret = web_push_native::p256::SecretKey::from_slice(&bytes).expect("a P-256 key");
    let public = secret.public_key().to_sec1_bytes();
    (
        secret,
        URL_SAFE_NO_PAD.encode(public),
        *uuid::Uuid::new_v4().as_bytes(),
    )
}

#[tokio::test]
async fn push_and_sms_reach_devices_without_health_information() {
    let (provider_url, mut received) = provider().await;
    let db = TestDb::create().await;
    let (vapid_secret, _, _) = device_keys();
    let vapid = URL_SAFE_NO_PAD.encode(vapid_secret.to_bytes());
    let channels = |config: &mut telemed_api::Config| {
        config.notify.vapid_private_key = Some(vapid.clone().into());
        config.notify.vapid_subject = "mailto:ops@telemed.test".into();
        config.notify.sms_webhook_url = Some(format!("{provider_url}/sms"));
        config.notify.sms_webhook_token = Some("sms-secret".into());
        config.notify.poll_interval = Duration::from_millis(50);
    };
    let app = spawn_app_on(db, channels).await;
    let (doctor, patient, day) = clinic(&app).await;

    // The patient's phone subscribes (and an old tablet whose subscription has expired).
    let key = expect_status(
        app.get("/api/v1/notifications/push-key", &patient.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let public_key = key["public_key"].as_str().expect("key").to_string();
    let (secret, p256dh, auth) = device_keys();
    let subscribe = |device: &str| {
        json!({ "endpoint": format!("{provider_url}/push/{device}"),
                "keys": { "p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode(auth) } })
    };
    let subs = "/api/v1/notifications/push-subscriptions";
    for device in ["phone", "gone"] {
        expect_status(
            app.post(subs, Some(&patient.token), &subscribe(device))
                .await,
            StatusCode::CREATED,
        )
        .await;
    }
    let bad = json!({ "endpoint": "ftp://x", "keys": { "p256dh": "AAAA", "auth": "short" } });
    let problem = expect_problem(
        app.post(subs, Some(&patient.token), &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["endpoint", "keys.p256dh", "keys.auth"],
        "{problem}"
    );
    let prefs = json!({ "email": true, "push": true, "sms": true, "phone": "+919876543210" });
    expect_status(
        app.put("/api/v1/notifications/preferences", &patient.token, &prefs)
            .await,
        StatusCode::OK,
    )
    .await;

    let start = day + time::Duration::hours(12);
    confirmed(&app, &doctor, &patient, start).await;

    // A second instance whose clock is past the 1-hour mark sends the SMS reminder.
    let offset =
        start - time::Duration::hours(1) + time::Duration::minutes(1) - OffsetDateTime::now_utc();
    let _later = spawn_app_on(
        TestDb {
            url: app.db.url.clone(),
        },
        |config| {
            channels(config);
            config.clock_offset = offset;
        },
    )
    .await;

    let mut pushes = Vec::new();
    let mut sms = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // The confirmation and the 1-hour reminder to the phone, one SMS; the 24-hour reminder,
    // overtaken by the 1-hour one, is not sent at all.
    while pushes.iter().filter(|(d, _, _)| d == "phone").count() < 2 || sms.is_empty() {
        let next = tokio::time::timeout_at(deadline, received.recv())
            .await
            .expect("push and SMS arrive in time")
            .expect("provider running");
        match next {
            Received::Push {
                device,
                headers,
                body,
            } => pushes.push((device, headers, body)),
            Received::Sms(body) => sms.push(body),
        }
    }
    let mut kinds = Vec::new();
    for (device, headers, body) in pushes.iter().filter(|(d, _, _)| d == "phone") {
        assert_eq!(headers["content-encoding"], "aes128gcm", "{device}");
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with("vapid t=")
                && authorization.ends_with(&format!("k={public_key}")),
            "{authorization}"
        );
        let plain = web_push_native::decrypt(body.to_vec(), &secret, &auth.into())
            .expect("decrypts for the device");
        let payload: Value = serde_json::from_slice(&plain).expect("JSON payload");
        let text = payload.to_string();
        assert!(
            !text.contains("Grey") && !text.contains("check-up"),
            "{text}"
        );
        kinds.push(payload["kind"].as_str().unwrap().to_string());
    }
    kinds.sort();
    assert_eq!(
        kinds,
        vec!["appointment_confirmed", "reminder_1h"],
        "{pushes:?}"
    );
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["to"], "+919876543210");
    let text = sms[0]["body"].as_str().unwrap();
    assert!(
        text.starts_with("Telemed: Reminder") && text.contains("(Asia/Kolkata)"),
        "{text}"
    );
    assert!(
        !text.contains("Grey") && !text.contains("check-up"),
        "{text}"
    );
    // The expired subscription was forgotten after its first 410.
    until(
        &app,
        "the gone subscription is removed",
        "SELECT count(*) = 1 FROM push_subscriptions",
    )
    .await;
}

#[tokio::test]
async fn bad_notification_requests_are_named() {
    let app = spawn_app_on(TestDb::create().await, |_| {}).await;
    let user: User = app.patient().await;
    let response = app
        .post(
            "/api/v1/notifications/not-a-uuid/read",
            Some(&user.token),
            &json!({}),
        )
        .await;
    expect_problem(response, StatusCode::BAD_REQUEST).await;
    let missing = format!("/api/v1/notifications/{}/read", uuid::Uuid::new_v4());
    expect_problem(
        app.post(&missing, Some(&user.token), &json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Push is not configured on this server.
    expect_problem(
        app.get("/api/v1/notifications/push-key", &user.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let gone = format!(
        "/api/v1/notifications/push-subscriptions/{}",
        uuid::Uuid::new_v4()
    );
    expect_problem(app.delete(&gone, &user.token).await, StatusCode::NOT_FOUND).await;
    let response = app
        .client
        .get(app.url("/api/v1/notifications"))
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}
