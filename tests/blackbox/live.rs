//! Live events over the native WebSocket, with a real client (tokio-tungstenite): who gets
//! what, in which order, subscriptions and their authorization, bad frames, resume.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::auth::{altered, unix_now};
use crate::helpers::{TestApp, TestDb, User, expect_status, spawn_app, spawn_app_on};
use crate::scheduling::{days_ahead, rfc3339};

/// How long a test waits for a frame before failing.
const PATIENCE: Duration = Duration::from_secs(15);

/// A WebSocket client speaking the contract's frames.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Event frames received while waiting for an ack.
    pending: VecDeque<Value>,
    next_ack: u64,
}

/// The WebSocket URL of `app` for `token`.
fn ws_url(app: &TestApp, token: &str) -> String {
    format!(
        "{}/api/v1/ws?access_token={token}",
        app.address.replacen("http://", "ws://", 1)
    )
}

impl Ws {
    /// Connects as `user`.
    pub async fn connect(app: &TestApp, user: &User) -> Self {
        Self::connect_with(app, &user.token).await
    }

    /// Connects with `token`.
    pub async fn connect_with(app: &TestApp, token: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(ws_url(app, token))
            .await
            .expect("WebSocket connect");
        Self {
            stream,
            pending: VecDeque::new(),
            next_ack: 1,
        }
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("send a frame");
    }

    async fn frame(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("no frame in time")
                .expect("the connection ended")
                .expect("a WebSocket error");
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("a JSON frame");
                }
                Message::Close(close) => panic!("closed by the server: {close:?}"),
                _ => {}
            }
        }
    }

    /// Sends `event` with an ack number and returns the ack frame; event frames that arrive
    /// before it are kept for [`Ws::next_event`].
    pub async fn request(&mut self, event: &str, data: Value) -> Value {
        let ack = self.next_ack;
        self.next_ack += 1;
        let frame = json!({ "event": event, "data": data, "ack": ack });
        self.send_text(&frame.to_string()).await;
        loop {
            let frame = self.frame().await;
            if frame["event"] == "ack" && frame["ack"] == ack {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Asserts that the connection still answers requests (a resume from the start).
    pub async fn expect_usable(&mut self) {
        let ack = self
            .request(
                "resume",
                json!({ "after": telemed_domain::Position::START.to_string() }),
            )
            .await;
        assert!(ack["data"]["replayed"].is_u64(), "{ack}");
    }

    /// Sends every request at once (without waiting in between) and returns their ack
    /// frames in order.
    pub async fn pipelined(&mut self, requests: Vec<(&str, Value)>) -> Vec<Value> {
        let first = self.next_ack;
        for (event, data) in requests {
            let frame = json!({ "event": event, "data": data, "ack": self.next_ack });
            self.next_ack += 1;
            self.send_text(&frame.to_string()).await;
        }
        let mut acks = std::collections::BTreeMap::new();
        while acks.len() < (self.next_ack - first) as usize {
            let frame = self.frame().await;
            match frame["ack"].as_u64() {
                Some(ack) if frame["event"] == "ack" && ack >= first => {
                    acks.insert(ack, frame);
                }
                _ => self.pending.push_back(frame),
            }
        }
        acks.into_values().collect()
    }

    /// The next event frame.
    pub async fn next_event(&mut self) -> Value {
        match self.pending.pop_front() {
            Some(frame) => frame,
            None => self.frame().await,
        }
    }

    /// The next frame named `event`, skipping others (e.g. `availability:updated` when
    /// waiting for `appointment:updated`).
    pub async fn next_named(&mut self, event: &str) -> Value {
        loop {
            let frame = self.next_event().await;
            if frame["event"] == event {
                return frame;
            }
        }
    }

    /// The event frames received so far, and every one the server sent before answering a
    /// round trip: a subscription to `user`'s own topic, which the session answers only after
    /// sending the live events waiting for this connection.
    pub async fn events_so_far(&mut self, user: &User) -> Vec<Value> {
        let topic = format!("user:{}", user.id);
        let ack = self.request("subscribe", json!({ "topic": topic })).await;
        assert_eq!(ack["data"], json!({ "ok": true }), "{ack}");
        self.pending.drain(..).collect()
    }

    /// Asserts that no event frame is waiting: a round trip (an ack) proves that everything
    /// the server published before it has arrived (live events go out before acks).
    pub async fn expect_no_events(&mut self, what: &str) {
        let ack = self.request("subscribe", json!({ "topic": "nope" })).await;
        assert!(ack["error"].is_object(), "{ack}");
        let events: Vec<&Value> = self.pending.iter().collect();
        assert!(events.is_empty(), "{what}: unexpected events {events:?}");
    }

    /// Ends the connection from the client's side (TCP FIN, no close frame) and returns once
    /// the server has closed its side too, i.e. dropped the connection's session.
    pub async fn hang_up(mut self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let MaybeTlsStream::Plain(tcp) = self.stream.get_mut() else {
            panic!("a plain TCP connection");
        };
        tcp.shutdown().await.expect("shut down the write side");
        let mut buffer = [0u8; 4096];
        loop {
            let read = tokio::time::timeout(PATIENCE, tcp.read(&mut buffer))
                .await
                .expect("the server did not close in time");
            if matches!(read, Ok(0) | Err(_)) {
                return;
            }
        }
    }

    /// The server closes the connection: its close frame's code and reason.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("no close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string());
                }
                Some(Ok(Message::Text(text))) => {
                    self.pending
                        .push_back(serde_json::from_str(text.as_str()).expect("a JSON frame"));
                }
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// The `appointment:updated` frames' `(event_type, appointment id)` and positions.
async fn appointment_updates(ws: &mut Ws, count: usize) -> Vec<(String, String, String)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let frame = ws.next_named("appointment:updated").await;
        let data = &frame["data"];
        seen.push((
            data["event_type"].as_str().unwrap().to_string(),
            data["appointment"]["id"].as_str().unwrap().to_string(),
            data["position"].as_str().unwrap().to_string(),
        ));
    }
    seen
}

/// A `clinic` with a 30-minute appointment of its patient at `hour` (UTC): the doctor, the
/// patient and the appointment's id.
pub async fn consultation(app: &TestApp, hour: i64) -> (User, User, String) {
    let (doctor, patient, day) = clinic(app).await;
    let start = day + time::Duration::hours(hour);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().expect("appointment id").to_string();
    (doctor, patient, id)
}

/// The status and problem with which the server refuses a WebSocket upgrade with `token`;
/// fails the test if the connection is made or fails otherwise.
pub async fn ws_refusal(app: &TestApp, token: &str) -> (u16, Value) {
    let request = ws_url(app, token).into_client_request().unwrap();
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let problem = serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "token {token:?}: not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            });
            (response.status().as_u16(), problem)
        }
        other => panic!("token {token:?}: expected a refusal over HTTP, got {other:?}"),
    }
}

/// A doctor with a window (08:00–18:00 UTC) five days ahead, and a patient.
pub async fn clinic(app: &TestApp) -> (User, User, time::OffsetDateTime) {
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let day = days_ahead(5);
    app.open_window(
        &doctor,
        day + time::Duration::hours(8),
        day + time::Duration::hours(18),
    )
    .await;
    (doctor, patient, day)
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    // Valid in every respect (the patient's live session) but its expiry.
    let expired = altered(&patient.token, |c| c["exp"] = (unix_now() - 120).into());
    let wrong_audience = altered(&patient.token, |c| c["aud"] = "someone-else".into());
    for (token, detail) in [
        ("", "the access token is malformed"),
        ("garbage", "the access token is malformed"),
        (expired.as_str(), "the access token has expired"),
        (
            wrong_audience.as_str(),
            "the access token is not meant for this API",
        ),
    ] {
        let (status, problem) = ws_refusal(&app, token).await;
        assert_eq!(status, 401, "token {token:?}: {problem}");
        assert_eq!(problem["detail"], detail, "token {token:?}: {problem}");
    }
    // Without a token at all, and a plain GET that is no upgrade.
    let plain = app.client.get(app.url("/api/v1/ws")).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::UNAUTHORIZED);
    let not_upgrade = app
        .client
        .get(app.url("/api/v1/ws"))
        .bearer_auth(&patient.token)
        .send()
        .await
        .unwrap();
    assert_eq!(not_upgrade.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn participants_receive_each_change_once_in_order_and_strangers_nothing() {
    let app = spawn_app().await;
    let (doctor, patient, day) = clinic(&app).await;
    let stranger = app.patient().await;
    let mut doctor_ws = Ws::connect(&app, &doctor).await;
    let mut patient_ws = Ws::connect(&app, &patient).await;
    let mut stranger_ws = Ws::connect(&app, &stranger).await;

    let start = day + time::Duration::hours(9);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().unwrap().to_string();
    expect_status(
        app.act(&doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let later = start + time::Duration::hours(2);
    expect_status(
        app.reschedule(&doctor, &id, later, later + time::Duration::minutes(30))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.act(
            &patient,
            &id,
            "cancel",
            &json!({ "reason": "feeling better" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let expected = [
        "AppointmentRequested",
        "AppointmentConfirmed",
        "AppointmentRescheduled",
        "AppointmentCancelled",
    ];
    for ws in [&mut doctor_ws, &mut patient_ws] {
        let updates = appointment_updates(ws, 4).await;
        let types: Vec<&str> = updates.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(types, expected);
        assert!(updates.iter().all(|(_, a, _)| *a == id));
        let positions: Vec<telemed_domain::Position> =
            updates.iter().map(|(_, _, p)| p.parse().unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        ws.expect_no_events_named("appointment:updated").await;
    }
    stranger_ws.expect_no_events("a stranger").await;
}

impl Ws {
    /// Asserts that no more frames named `event` are waiting (after a round trip).
    pub async fn expect_no_events_named(&mut self, event: &str) {
        let ack = self.request("subscribe", json!({ "topic": "nope" })).await;
        assert!(ack["error"].is_object(), "{ack}");
        let extra: Vec<&Value> = self
            .pending
            .iter()
            .filter(|f| f["event"] == event)
            .collect();
        assert!(extra.is_empty(), "duplicate {event} frames: {extra:?}");
    }
}

#[tokio::test]
async fn subscriptions_are_authorized() {
    let app = spawn_app().await;
    let (doctor, patient, day) = clinic(&app).await;
    let other = app.patient().await;
    let start = day + time::Duration::hours(10);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().unwrap();

    let mut ws = Ws::connect(&app, &other).await;
    let refused = ws
        .request("subscribe", json!({ "topic": format!("appointment:{id}") }))
        .await;
    assert_eq!(refused["error"]["status"], 404, "{refused}");
    let audit = ws.request("subscribe", json!({ "topic": "audit" })).await;
    assert_eq!(audit["error"]["status"], 403, "{audit}");
    let someone = ws
        .request(
            "subscribe",
            json!({ "topic": format!("user:{}", patient.id) }),
        )
        .await;
    assert_eq!(someone["error"]["status"], 403, "{someone}");
    let unknown_doctor = ws
        .request(
            "subscribe",
            json!({ "topic": format!("doctor:{}:availability", uuid::Uuid::new_v4()) }),
        )
        .await;
    assert_eq!(unknown_doctor["error"]["status"], 404, "{unknown_doctor}");

    // Public availability may be followed by anyone.
    let availability = ws
        .request(
            "subscribe",
            json!({ "topic": format!("doctor:{}:availability", doctor.id) }),
        )
        .await;
    assert_eq!(
        availability["data"],
        json!({ "ok": true }),
        "{availability}"
    );
    let start = day + time::Duration::hours(12);
    app.book(
        &patient,
        &doctor.id,
        start,
        start + time::Duration::minutes(30),
    )
    .await;
    let changed = ws.next_named("availability:updated").await;
    assert_eq!(changed["data"]["doctor_id"], doctor.id.as_str());
    assert_eq!(changed["data"]["date"], day.date().to_string());
    ws.expect_no_events_named("appointment:updated").await;

    // The patient's own appointment topic is allowed; an auditor may follow the audit log.
    let mut own = Ws::connect(&app, &patient).await;
    let joined = own
        .request("subscribe", json!({ "topic": format!("appointment:{id}") }))
        .await;
    assert_eq!(joined["data"], json!({ "ok": true }), "{joined}");
    let auditor = app.staff("auditor").await;
    let mut audit_ws = Ws::connect(&app, &auditor).await;
    let joined = audit_ws
        .request("subscribe", json!({ "topic": "audit" }))
        .await;
    assert_eq!(joined["data"], json!({ "ok": true }), "{joined}");
    expect_status(
        app.act(&doctor, id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let audited = audit_ws.next_named("audit:event").await;
    assert_eq!(audited["data"]["event_type"], "AppointmentConfirmed");
    assert_eq!(audited["data"]["aggregate_id"], id);
    for field in [
        "position",
        "aggregate_type",
        "sequence",
        "event_version",
        "payload",
        "metadata",
        "recorded_at",
    ] {
        assert!(
            !audited["data"][field].is_null(),
            "audit_event.{field} in {audited}"
        );
    }
    let left = audit_ws
        .request("unsubscribe", json!({ "topic": "audit" }))
        .await;
    assert_eq!(left["data"], json!({ "ok": true }));
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_errors_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let mut ws = Ws::connect(&app, &patient).await;

    ws.send_text("{not json").await;
    let error = ws.next_event().await;
    assert_eq!(error["event"], "error");
    assert_eq!(error["data"]["status"], 400, "{error}");

    ws.send_text(r#"{"event": "dance", "data": {}}"#).await;
    let error = ws.next_event().await;
    assert_eq!(error["event"], "error");
    assert_eq!(error["data"]["errors"][0]["field"], "event", "{error}");

    let unknown = ws.request("dance", json!({})).await;
    assert_eq!(unknown["error"]["status"], 400, "{unknown}");
    let bad_topic = ws.request("subscribe", json!({ "topic": 42 })).await;
    assert_eq!(bad_topic["error"]["status"], 422, "{bad_topic}");
    assert_eq!(
        bad_topic["error"]["errors"][0]["field"], "data.topic",
        "{bad_topic}"
    );
    let bad_token = ws.request("resume", json!({ "after": "yesterday" })).await;
    assert_eq!(
        bad_token["error"]["errors"][0]["field"], "data.after",
        "{bad_token}"
    );

    ws.stream
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    let error = ws.next_event().await;
    assert_eq!(error["event"], "error", "{error}");

    // Still usable.
    ws.expect_usable().await;
}

#[tokio::test]
async fn resume_replays_exactly_what_was_missed_in_order() {
    let app = spawn_app().await;
    let (doctor, patient, day) = clinic(&app).await;
    let mut ws = Ws::connect(&app, &patient).await;
    let start = day + time::Duration::hours(8);
    let first = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(10),
        )
        .await;
    let last_seen = ws.next_named("appointment:updated").await;
    assert_eq!(last_seen["data"]["appointment"]["id"], first["id"]);
    let token = last_seen["data"]["position"].as_str().unwrap().to_string();
    drop(ws);

    // 50 events while disconnected: 25 bookings and their 25 cancellations.
    let mut expected = Vec::new();
    for n in 1..=25 {
        let start = day + time::Duration::hours(8) + time::Duration::minutes(15 * n);
        let booked = app
            .book(
                &patient,
                &doctor.id,
                start,
                start + time::Duration::minutes(10),
            )
            .await;
        let id = booked["id"].as_str().unwrap().to_string();
        expected.push(("AppointmentRequested".to_string(), id.clone()));
        expect_status(
            app.act(
                &patient,
                &id,
                "cancel",
                &json!({ "reason": "changed my mind" }),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        expected.push(("AppointmentCancelled".to_string(), id));
    }

    let mut ws = Ws::connect(&app, &patient).await;
    let ack = ws.request("resume", json!({ "after": token })).await;
    assert_eq!(ack["data"]["replayed"], 50, "{ack}");
    let replayed: Vec<(String, String)> = ws
        .pending
        .drain(..)
        .map(|frame| {
            assert_eq!(frame["event"], "appointment:updated", "{frame}");
            (
                frame["data"]["event_type"].as_str().unwrap().to_string(),
                frame["data"]["appointment"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(replayed, expected);

    // Then live, with nothing repeated.
    let start = day + time::Duration::hours(17);
    let live = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(10),
        )
        .await;
    let next = ws.next_named("appointment:updated").await;
    assert_eq!(next["data"]["appointment"]["id"], live["id"]);
    ws.expect_no_events_named("appointment:updated").await;
}

#[tokio::test]
async fn an_event_sent_live_before_the_resume_is_not_replayed_again() {
    let app = spawn_app().await;
    let (doctor, patient, day) = clinic(&app).await;
    let slot = |n: i64| {
        let start = day + time::Duration::hours(8) + time::Duration::minutes(15 * n);
        (start, start + time::Duration::minutes(10))
    };
    let mut ws = Ws::connect(&app, &patient).await;
    let (start, end) = slot(0);
    app.book(&patient, &doctor.id, start, end).await;
    let token = ws.next_named("appointment:updated").await["data"]["position"]
        .as_str()
        .unwrap()
        .to_string();
    drop(ws);

    let (start, end) = slot(1);
    let missed = app.book(&patient, &doctor.id, start, end).await;
    // The client reconnects, and an event arrives live before it asks to resume.
    let mut ws = Ws::connect(&app, &patient).await;
    let (start, end) = slot(2);
    let live = app.book(&patient, &doctor.id, start, end).await;
    let first = ws.next_named("appointment:updated").await;
    assert_eq!(first["data"]["appointment"]["id"], live["id"]);

    let ack = ws.request("resume", json!({ "after": token })).await;
    assert_eq!(ack["data"]["replayed"], 1, "{ack}");
    let replayed: Vec<Value> = ws.pending.drain(..).collect();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["data"]["appointment"]["id"], missed["id"]);
    ws.expect_no_events_named("appointment:updated").await;
}

#[tokio::test]
async fn resume_works_across_a_server_restart() {
    let app = spawn_app().await;
    let (doctor, patient, day) = clinic(&app).await;
    let mut ws = Ws::connect(&app, &patient).await;
    let start = day + time::Duration::hours(9);
    app.book(
        &patient,
        &doctor.id,
        start,
        start + time::Duration::minutes(15),
    )
    .await;
    let seen = ws.next_named("appointment:updated").await;
    let token = seen["data"]["position"].as_str().unwrap().to_string();
    drop(ws);
    let start = day + time::Duration::hours(10);
    let missed = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(15),
        )
        .await;

    // Another server process on the same database has never seen this client.
    let restarted = spawn_app_on(
        TestDb {
            url: app.db.url.clone(),
        },
        |_| {},
    )
    .await;
    let mut ws = Ws::connect(&restarted, &patient).await;
    let ack = ws.request("resume", json!({ "after": token })).await;
    assert_eq!(ack["data"]["replayed"], 1, "{ack}");
    let frame = ws.next_event().await;
    assert_eq!(frame["data"]["appointment"]["id"], missed["id"]);
    assert_eq!(frame["data"]["event_type"], "AppointmentRequested");
}

#[tokio::test]
async fn a_connection_is_closed_when_its_token_expires() {
    let db = TestDb::create().await;
    let app = spawn_app_on(db, |c| c.access_token_ttl = Duration::from_secs(3)).await;
    let patient = app.patient().await;
    let mut ws = Ws::connect(&app, &patient).await;
    let (code, reason) = ws.expect_close().await;
    assert_eq!(code, 4001);
    assert_eq!(reason, "token expired");
    let error = ws
        .pending
        .pop_front()
        .expect("an error frame before the close");
    assert_eq!(error["data"]["status"], 401, "{error}");
}

#[tokio::test]
async fn a_booking_time_renders_as_sent_in_the_live_appointment() {
    let app = spawn_app().await;
    let (doctor, patient, day) = clinic(&app).await;
    let mut ws = Ws::connect(&app, &doctor).await;
    let start = day + time::Duration::hours(11);
    app.book(
        &patient,
        &doctor.id,
        start,
        start + time::Duration::minutes(20),
    )
    .await;
    let frame = ws.next_named("appointment:updated").await;
    let appointment = &frame["data"]["appointment"];
    assert_eq!(appointment["start"], rfc3339(start));
    assert_eq!(appointment["status"], "pending");
    assert_eq!(appointment["patient_id"], patient.id.as_str());
}

#[tokio::test]
async fn an_oversized_frame_ends_only_its_own_connection() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let mut neighbour = Ws::connect(&app, &patient).await;
    let mut offender = Ws::connect(&app, &patient).await;
    let huge = format!(
        r#"{{"event": "subscribe", "data": {{"topic": "{}"}}}}"#,
        "x".repeat(200 * 1024)
    );
    let _ = offender.stream.send(Message::text(huge)).await;
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match offender.stream.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the oversized frame's connection was not ended"
    );
    let ok = neighbour
        .request(
            "resume",
            json!({ "after": telemed_domain::Position::START.to_string() }),
        )
        .await;
    assert!(ok["data"]["replayed"].is_u64(), "{ok}");
}

#[tokio::test]
async fn a_client_that_falls_too_far_behind_is_dropped_with_a_reason() {
    let db = TestDb::create().await;
    let app = spawn_app_on(db, |c| c.live_queue = 16).await;
    let auditor = app.staff("auditor").await;
    let patient = app.patient().await;
    let mut slow = Ws::connect(&app, &auditor).await;
    let joined = slow.request("subscribe", json!({ "topic": "audit" })).await;
    assert_eq!(joined["data"], json!({ "ok": true }));
    let mut bystander = Ws::connect(&app, &patient).await;

    // 200 events in one commit: far more than the 16 the slow client may have waiting.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'test_burst', 'burst', s, 'Burst', '1', '{}'::jsonb, '{}'::jsonb
           FROM generate_series(1, 200) AS s",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (code, reason) = slow.expect_close().await;
    assert_eq!(code, 4008);
    assert!(reason.contains("slow consumer"), "{reason}");
    let error = slow
        .pending
        .pop_back()
        .expect("an error frame before the close");
    assert_eq!(error["data"]["code"], "slow_consumer", "{error}");

    // Others are unaffected.
    let ok = bystander
        .request(
            "resume",
            json!({ "after": telemed_domain::Position::START.to_string() }),
        )
        .await;
    assert!(ok["data"]["replayed"].is_u64(), "{ok}");
}
