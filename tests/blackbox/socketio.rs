//! Socket.IO with the official `socket.io-client` v4 (Node.js, installed by `scripts/test`),
//! driven through `tests/node/socketio-driver.mjs`: connect errors for bad tokens, the same events
//! as the WebSocket, acks; and a raw Engine.IO client sending malformed and oversized packets
//! beside it.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_tungstenite::tungstenite::Message;

use crate::auth::{altered, unix_now};
use crate::helpers::{TestApp, TestDb, expect_status, spawn_app, spawn_app_on};
use crate::scheduling::days_ahead;

const PATIENCE: Duration = Duration::from_secs(20);

/// One Node.js process running the official client, with any number of named sockets.
pub struct Driver {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    backlog: VecDeque<Value>,
    next_id: u64,
}

impl Driver {
    pub async fn start(app: &TestApp) -> Self {
        let node = std::env::var("TELEMED_NODE").unwrap_or_else(|_| "node".to_string());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/node/socketio-driver.mjs"
        );
        let mut child = tokio::process::Command::new(&node)
            .arg(script)
            .arg(&app.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {node} (scripts/test installs Node.js and socket.io-client): {e}"
                )
            });
        Self {
            stdin: child.stdin.take().unwrap(),
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            _child: child,
            backlog: VecDeque::new(),
            next_id: 1,
        }
    }

    async fn command(&mut self, command: Value) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The first observation matching `wanted`, from the backlog or the driver's output.
    async fn wait(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(index) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(index).unwrap();
        }
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("waited in vain for {what}; seen {:?}", self.backlog))
                .unwrap()
                .expect("the driver ended");
            let observed: Value = serde_json::from_str(&line).unwrap();
            if wanted(&observed) {
                return observed;
            }
            self.backlog.push_back(observed);
        }
    }

    /// Connects socket `name`; `Err(message)` on a connect error.
    pub async fn connect(&mut self, name: &str, token: Option<&str>) -> Result<(), String> {
        self.command(json!({ "op": "connect", "name": name, "token": token }))
            .await;
        let outcome = self
            .wait("a connect outcome", |o| {
                o["name"] == name && (o["op"] == "connected" || o["op"] == "connect_error")
            })
            .await;
        match outcome["op"].as_str() {
            Some("connected") => Ok(()),
            _ => Err(outcome["message"].as_str().unwrap_or_default().to_string()),
        }
    }

    /// Closes socket `name` from the client's side.
    pub async fn close(&mut self, name: &str) {
        self.command(json!({ "op": "close", "name": name })).await;
        self.wait("the socket closed", |o| {
            o["op"] == "closed" && o["name"] == name
        })
        .await;
    }

    /// Emits `event` with an ack callback and returns the ack's argument.
    pub async fn emit(&mut self, name: &str, event: &str, data: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.command(json!({ "op": "emit", "name": name, "id": id, "event": event, "data": data }))
            .await;
        let ack = self
            .wait("an ack", |o| o["op"] == "ack" && o["id"] == id)
            .await;
        assert!(ack["timeout"].is_null(), "no ack: {ack}");
        ack["data"].clone()
    }

    /// The next server event `event` on socket `name`.
    pub async fn event(&mut self, name: &str, event: &str) -> Value {
        self.wait(event, |o| {
            o["op"] == "event" && o["name"] == name && o["event"] == event
        })
        .await["data"]
            .clone()
    }

    /// Events `event` on `name` received so far (after an ack round trip on that socket,
    /// every event published before it has arrived).
    pub async fn drain(&mut self, name: &str, event: &str) -> Vec<Value> {
        self.emit(name, "subscribe", json!({ "topic": "nope" }))
            .await;
        let (matching, rest): (Vec<Value>, Vec<Value>) = self
            .backlog
            .drain(..)
            .partition(|o| o["op"] == "event" && o["name"] == name && o["event"] == event);
        self.backlog = rest.into();
        matching.into_iter().map(|o| o["data"].clone()).collect()
    }
}

#[tokio::test]
async fn bad_tokens_get_connect_errors() {
    let app = spawn_app().await;
    let mut driver = Driver::start(&app).await;
    let garbage = driver.connect("garbage", Some("not-a-token")).await;
    assert_eq!(
        garbage,
        Err("unauthenticated: the access token is malformed".to_string())
    );
    let patient = app.patient().await;
    let expired = altered(&patient.token, |c| c["exp"] = (unix_now() - 120).into());
    let expired = driver.connect("expired", Some(&expired)).await;
    assert_eq!(
        expired,
        Err("unauthenticated: the access token has expired".to_string())
    );
    let missing = driver.connect("missing", None).await;
    assert_eq!(
        missing,
        Err("unauthenticated: the handshake must carry auth: {token}".to_string())
    );
}

#[tokio::test]
async fn the_official_client_receives_the_same_events_and_uses_acks() {
    let app = spawn_app().await;
    let (doctor, patient, day) = crate::live::clinic(&app).await;
    let stranger = app.patient().await;
    let mut driver = Driver::start(&app).await;
    for (name, user) in [
        ("doctor", &doctor),
        ("patient", &patient),
        ("stranger", &stranger),
    ] {
        driver.connect(name, Some(&user.token)).await.unwrap();
    }

    let start = day + time::Duration::hours(9);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().unwrap();
    expect_status(
        app.act(&doctor, id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.act(
            &patient,
            id,
            "cancel",
            &json!({ "reason": "feeling better" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let mut first_position = None;
    for name in ["doctor", "patient"] {
        let mut types = Vec::new();
        for _ in 0..3 {
            let data = driver.event(name, "appointment:updated").await;
            assert_eq!(data["appointment"]["id"], id, "{data}");
            first_position.get_or_insert(data["position"].as_str().unwrap().to_string());
            types.push(data["event_type"].as_str().unwrap().to_string());
        }
        assert_eq!(
            types,
            [
                "AppointmentRequested",
                "AppointmentConfirmed",
                "AppointmentCancelled"
            ]
        );
        assert!(
            driver.drain(name, "appointment:updated").await.is_empty(),
            "once each"
        );
    }
    assert!(
        driver
            .drain("stranger", "appointment:updated")
            .await
            .is_empty()
    );

    // Acks: errors are problems, successes the contract's data.
    let audit = driver
        .emit("patient", "subscribe", json!({ "topic": "audit" }))
        .await;
    assert_eq!(audit["error"]["status"], 403, "{audit}");
    let own = driver
        .emit(
            "patient",
            "subscribe",
            json!({ "topic": format!("appointment:{id}") }),
        )
        .await;
    assert_eq!(own, json!({ "ok": true }));
    let unknown = driver.emit("patient", "dance", json!({})).await;
    assert_eq!(unknown["error"]["status"], 400, "{unknown}");

    // A resume on this connection replays nothing: it missed nothing.
    let first_position = first_position.unwrap();
    let resumed = driver
        .emit("patient", "resume", json!({ "after": first_position }))
        .await;
    assert_eq!(resumed, json!({ "replayed": 0 }));

    // A new connection resuming after the first event gets the other two, before the ack (and
    // the patient's `notification` of the doctor's confirmation).
    driver
        .connect("patient again", Some(&patient.token))
        .await
        .unwrap();
    let resumed = driver
        .emit(
            "patient again",
            "resume",
            json!({ "after": first_position }),
        )
        .await;
    assert_eq!(resumed, json!({ "replayed": 3 }));
    let replayed: Vec<String> = driver
        .drain("patient again", "appointment:updated")
        .await
        .iter()
        .map(|d| d["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(replayed, ["AppointmentConfirmed", "AppointmentCancelled"]);
}

#[tokio::test]
async fn chat_over_the_official_client_reaches_the_other_participant_once() {
    let app = spawn_app().await;
    let (doctor, patient, day) = crate::live::clinic(&app).await;
    let start = day + time::Duration::hours(9);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().unwrap();
    let mut driver = Driver::start(&app).await;
    driver.connect("doctor", Some(&doctor.token)).await.unwrap();
    driver
        .connect("patient", Some(&patient.token))
        .await
        .unwrap();

    let message = driver
        .emit(
            "patient",
            "chat:send",
            json!({ "appointment_id": id, "content": "Hi from socket.io", "client_msg_id": "s-1" }),
        )
        .await;
    assert_eq!(message["content"], "Hi from socket.io", "{message}");
    let repeated = driver
        .emit(
            "patient",
            "chat:send",
            json!({ "appointment_id": id, "content": "again", "client_msg_id": "s-1" }),
        )
        .await;
    assert_eq!(repeated, message);
    let received = driver.event("doctor", "chat:message").await;
    assert_eq!(received, message);
    assert!(
        driver.drain("doctor", "chat:message").await.is_empty(),
        "once"
    );

    let typing = driver
        .emit("doctor", "chat:typing", json!({ "appointment_id": id }))
        .await;
    assert_eq!(typing, json!({ "ok": true }));
    let seen = driver.event("patient", "chat:typing").await;
    assert_eq!(seen["user_id"], doctor.id.as_str());
}

#[tokio::test]
async fn signaling_flows_between_a_socketio_client_and_a_websocket_client() {
    let s = crate::calls::CallSetup::new(|_| {}).await;
    let mut doctor_ws = crate::live::Ws::connect(&s.now, &s.doctor).await;
    let mut driver = Driver::start(&s.now).await;
    driver
        .connect("patient", Some(&s.patient.token))
        .await
        .unwrap();
    let call_id = s.start_call(&s.doctor).await;
    let ringing = driver.event("patient", "call:ringing").await;
    assert_eq!(ringing["call_id"], call_id.as_str());

    doctor_ws
        .request(
            "call:offer",
            json!({ "call_id": call_id, "sdp": "offer-sdp" }),
        )
        .await;
    let offer = driver.event("patient", "call:offer").await;
    assert_eq!(
        offer,
        json!({ "call_id": call_id, "from": s.doctor.id, "sdp": "offer-sdp" })
    );
    let ack = driver
        .emit(
            "patient",
            "call:answer",
            json!({ "call_id": call_id, "sdp": "answer-sdp" }),
        )
        .await;
    assert_eq!(ack, json!({ "ok": true }));
    let answer = doctor_ws.next_named("call:answer").await;
    assert_eq!(answer["data"]["sdp"], "answer-sdp");
    let stranger = driver
        .emit(
            "patient",
            "call:ice",
            json!({ "call_id": uuid::Uuid::new_v4(), "candidate": "c" }),
        )
        .await;
    assert_eq!(stranger["error"]["status"], 404, "{stranger}");
    driver
        .emit("patient", "call:hangup", json!({ "call_id": call_id }))
        .await;
    let ended = driver.event("patient", "call:ended").await;
    assert_eq!(ended["reason"], "user_hangup");
}

/// A raw Engine.IO v4 / Socket.IO v5 client over WebSocket, free to send what no real client
/// would.
struct RawSocketIo {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl RawSocketIo {
    /// Opens the Engine.IO session and connects to namespace `/` with `token`.
    async fn connect(app: &TestApp, token: &str) -> Self {
        Self::connect_with(app, token, &[]).await
    }

    /// The same with extra `headers` on the upgrade request.
    async fn connect_with(app: &TestApp, token: &str, headers: &[(&'static str, String)]) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            app.address.replacen("http://", "ws://", 1)
        );
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().append(*name, value.parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut raw = Self { stream };
        let open = raw.next_text().await.expect("an open packet");
        assert!(open.starts_with("0{"), "{open}");
        raw.send_text(&format!("40{}", json!({ "token": token })))
            .await;
        let connected = raw.next_text().await.expect("a connect packet");
        assert!(connected.starts_with("40{"), "{connected}");
        raw
    }

    async fn send_text(&mut self, text: &str) {
        // The server may already have closed the connection: that is its answer.
        let _ = self.stream.send(Message::text(text)).await;
    }

    async fn send_binary(&mut self, bytes: Vec<u8>) {
        let _ = self.stream.send(Message::binary(bytes)).await;
    }

    /// The next text packet other than a ping (answered), or `None` once the connection ends.
    async fn next_text(&mut self) -> Option<String> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("neither a packet nor the end in time");
            match message {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    let _ = self.stream.send(Message::text("3")).await;
                }
                Some(Ok(Message::Text(text))) => return Some(text.as_str().to_string()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The argument of the ack with id `id`, skipping other packets; `None` if the connection
    /// ends first.
    async fn ack(&mut self, id: u64) -> Option<Value> {
        let prefix = format!("43{id}");
        while let Some(packet) = self.next_text().await {
            if let Some(args) = packet.strip_prefix(&prefix) {
                let args: Vec<Value> = serde_json::from_str(args).unwrap();
                return Some(args[0].clone());
            }
        }
        None
    }

    /// The connection still answers: a bad subscription gets its error ack.
    async fn expect_usable(&mut self, what: &str) {
        self.send_text(r#"4299["subscribe",{"topic":"nope"}]"#)
            .await;
        let answer = self.ack(99).await;
        let status = answer.as_ref().map(|a| a["error"]["status"].clone());
        assert_eq!(status, Some(json!(422)), "{what}: {answer:?}");
    }

    /// Waits until the server ends the connection.
    async fn expect_end(&mut self, what: &str) {
        while let Some(packet) = self.next_text().await {
            assert!(
                !packet.starts_with("43"),
                "{what}: answered instead of ending the connection: {packet}"
            );
        }
    }
}

impl RawSocketIo {
    /// Sends `["subscribe", {topic}]` with ack id `id` and expects `{ok: true}`.
    async fn subscribe(&mut self, topic: &str, id: u64) {
        let packet = json!(["subscribe", { "topic": topic }]);
        self.send_text(&format!("42{id}{packet}")).await;
        assert_eq!(self.ack(id).await, Some(json!({ "ok": true })), "{topic}");
    }

    /// Sends a bad subscription with ack id `id` and returns the server events (`[name, data]`)
    /// that arrived before its ack: every live event waiting when it was read.
    async fn events_before_ack(&mut self, id: u64) -> Vec<(String, Value)> {
        self.send_text(&format!(r#"42{id}["subscribe",{{"topic":"nope"}}]"#))
            .await;
        let prefix = format!("43{id}");
        let mut events = Vec::new();
        while let Some(packet) = self.next_text().await {
            if packet.starts_with(&prefix) {
                return events;
            }
            if let Some(args) = packet.strip_prefix("42") {
                let args: Vec<Value> = serde_json::from_str(args).unwrap();
                events.push((args[0].as_str().unwrap().to_string(), args[1].clone()));
            }
        }
        panic!("the connection ended after {} events", events.len());
    }

    /// The next server event named `event` (other packets skipped).
    async fn event(&mut self, event: &str) -> Value {
        while let Some(packet) = self.next_text().await {
            if let Some(args) = packet.strip_prefix("42") {
                let args: Vec<Value> = serde_json::from_str(args).unwrap();
                if args[0] == event {
                    return args[1].clone();
                }
            }
        }
        panic!("the connection ended before {event}");
    }
}

/// The server's per-socket buffers are small (the WebSocket read buffer is 1 KiB, and the
/// upgrade request's URI and headers are copied out of hyper's read buffer): an upgrade
/// request with 6 KB of headers still connects, and messages many times that buffer, in
/// several bytes per character, arrive whole both ways, one after another.
#[tokio::test]
async fn large_handshake_headers_and_messages_many_times_the_read_buffer_arrive_whole() {
    let app = spawn_app().await;
    let (doctor, patient, id) = crate::live::consultation(&app, 9).await;
    let mut driver = Driver::start(&app).await;
    driver.connect("doctor", Some(&doctor.token)).await.unwrap();
    let padding = ("x-padding", "p".repeat(6_000));
    let mut raw = RawSocketIo::connect_with(&app, &patient.token, &[padding]).await;

    let contents = ["é".repeat(4_000), "z".repeat(4_000), "€".repeat(3_999)];
    for (ack, content) in (1..).zip(contents) {
        let packet = json!(["chat:send", { "appointment_id": id, "content": content }]);
        raw.send_text(&format!("42{ack}{packet}")).await;
        let sent = raw.ack(ack).await.expect("the chat:send ack");
        assert_eq!(sent["content"], content.as_str(), "ack {ack}");
        let received = driver.chat("doctor", &sent).await;
        assert_eq!(received, sent);

        let reply = format!("{ack}{content}");
        let reply = &reply[..reply
            .char_indices()
            .nth(4_000)
            .map_or(reply.len(), |(at, _)| at)];
        let answered = driver
            .emit(
                "doctor",
                "chat:send",
                json!({ "appointment_id": id, "content": reply }),
            )
            .await;
        assert_eq!(answered["content"], reply, "{answered}");
        // Its own messages come back to it as well: skipped.
        let heard = loop {
            let message = raw.event("chat:message").await;
            if message["id"] == answered["id"] {
                break message;
            }
        };
        assert_eq!(heard, answered);
    }
}

/// Events in the burst test: far more than engineioxide's default buffer of 128 packets, and,
/// padded to 16 KB, more than the loopback socket buffers hold, yet within the hub's queue
/// (1 024).
const BURST: usize = 1000;

#[tokio::test]
async fn a_burst_larger_than_the_transport_buffer_reaches_a_slow_reader_whole() {
    let app = spawn_app().await;
    let auditor = app.staff("auditor").await;
    let mut slow = RawSocketIo::connect(&app, &auditor.token).await;
    slow.subscribe("audit", 1).await;
    let mut witness = RawSocketIo::connect(&app, &auditor.token).await;
    witness.subscribe("audit", 1).await;

    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'test_burst', 'burst', s, 'Burst', '1', jsonb_build_object('pad', repeat('x', 16000)), '{}'::jsonb
           FROM generate_series(1, $1) AS s",
    )
    .bind(i32::try_from(BURST).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    // The witness reads as fast as it can: once it has every event, the hub has handed the
    // burst to the slow socket too, which has read nothing yet.
    for _ in 0..BURST {
        witness.event("audit:event").await;
    }
    let received = slow.events_before_ack(99).await;
    let audited = received
        .iter()
        .filter(|(event, _)| event == "audit:event")
        .count();
    assert_eq!(
        audited, BURST,
        "the slow reader got {audited} of {BURST} events"
    );
}

/// Connect-then-commit rounds in the connect-window test.
const CONNECT_ROUNDS: i64 = 3;
/// How long each session waits before it joins the hub in the connect-window test: far longer
/// than an event takes from its commit to the hub (even on a loaded machine), so an event
/// committed in any window between the client's connect packet and its join is published
/// before the join.
const JOIN_DELAY: Duration = Duration::from_secs(2);

#[tokio::test]
async fn an_event_committed_as_soon_as_the_client_is_connected_reaches_it() {
    let app = spawn_app_on(TestDb::create().await, |config| {
        config.live_join_delay = JOIN_DELAY;
    })
    .await;
    let doctor = app.doctor().await;
    let mut witness = RawSocketIo::connect(&app, &doctor.token).await;
    // An answer comes from the running session: the witness has joined the hub.
    witness.events_before_ack(1).await;
    let mut missed = Vec::new();
    for round in 0..CONNECT_ROUNDS {
        let mut fresh = RawSocketIo::connect(&app, &doctor.token).await;
        // The client has its connect packet: commit at once (straight into the store, the
        // quickest commit there is; the feed maps any doctor-day event to the doctor).
        let day = days_ahead(3 + round).date();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('doctor_day', $1, 1, 'Touched', '1', '{}'::jsonb, '{}'::jsonb)",
        )
        .bind(format!("{}:{day}", doctor.id))
        .execute(&app.pool)
        .await
        .unwrap();
        // Once the long-connected witness has the event, the hub has handed it to every
        // member; the fresh socket's answer to a later request follows it.
        let position = witness.event("availability:updated").await["position"].clone();
        let received = fresh.events_before_ack(7).await;
        if !received
            .iter()
            .any(|(event, data)| event == "availability:updated" && data["position"] == position)
        {
            missed.push(round);
        }
    }
    assert!(
        missed.is_empty(),
        "{} of {CONNECT_ROUNDS} fresh sockets missed the event committed right after their connect: rounds {missed:?}",
        missed.len()
    );
}

/// What a bad packet does to its own connection.
enum Outcome {
    /// The server ends the connection.
    Ended,
    /// The ack with this id carries a 4xx problem, and the connection stays usable.
    ErrorAck(u64),
    /// Nothing visible; the connection stays usable.
    Usable,
}

#[tokio::test]
async fn malformed_and_oversized_socketio_frames_never_disturb_a_neighbour() {
    let app = spawn_app().await;
    let (doctor, patient, id) = crate::live::consultation(&app, 9).await;
    let offender = app.patient().await;
    let mut driver = Driver::start(&app).await;
    driver.connect("doctor", Some(&doctor.token)).await.unwrap();
    driver
        .connect("patient", Some(&patient.token))
        .await
        .unwrap();
    let messages = format!("/api/v1/appointments/{id}/messages");

    // Each is sent on a connection of its own. Packets that break the protocol or the frame
    // limit end that connection; well-formed events with bad data get an error ack and leave
    // it usable. Either way the neighbour still gets its live events and chats both ways.
    let chat = |content: String| json!(["chat:send", { "appointment_id": id, "content": content }]);
    let text = |text: String| vec![Message::text(text)];
    let cases: Vec<(&str, Vec<Message>, Outcome)> = vec![
        ("a garbage packet", text("garbage".into()), Outcome::Ended),
        ("an empty packet", text(String::new()), Outcome::Ended),
        (
            "an unknown socket.io packet",
            text("4z[]".into()),
            Outcome::Ended,
        ),
        (
            "invalid JSON in an event",
            text(r#"42["chat:send",{not json"#.into()),
            Outcome::Ended,
        ),
        (
            "invalid JSON with an ack",
            text(r#"427["subscribe",{"#.into()),
            Outcome::Ended,
        ),
        (
            "an event that is no array",
            text(r#"42{"event":"x"}"#.into()),
            Outcome::Ended,
        ),
        (
            "a bare binary frame",
            vec![Message::binary(vec![1, 2, 3])],
            Outcome::Ended,
        ),
        (
            "a binary attachment where text is expected",
            vec![
                Message::text(r#"451-7["chat:send",{"_placeholder":true,"num":0}]"#),
                Message::binary(vec![0xff, 0, 0xfe]),
            ],
            Outcome::ErrorAck(7),
        ),
        (
            "an unknown namespace",
            text("40/admin,{}".into()),
            Outcome::Usable,
        ),
        (
            "an unknown event",
            text(r#"427["dance",{}]"#.into()),
            Outcome::ErrorAck(7),
        ),
        (
            "a chat message over the content limit",
            text(format!("427{}", chat("x".repeat(5_000)))),
            Outcome::ErrorAck(7),
        ),
        (
            "an event over the frame limit",
            text(format!("427{}", chat("x".repeat(100_000)))),
            Outcome::Ended,
        ),
        (
            "a huge engine.io packet",
            text(format!("42{}", chat("x".repeat(8 << 20)))),
            Outcome::Ended,
        ),
    ];
    let mut own = Vec::new();
    for (round, (what, frames, outcome)) in cases.into_iter().enumerate() {
        let mut raw = RawSocketIo::connect(&app, &offender.token).await;
        for frame in frames {
            match frame {
                Message::Text(text) => raw.send_text(text.as_str()).await,
                Message::Binary(bytes) => raw.send_binary(bytes.to_vec()).await,
                _ => unreachable!(),
            }
        }

        let from_doctor = format!("{what}: doctor {round}");
        let posted = expect_status(
            app.post(
                &messages,
                Some(&doctor.token),
                &json!({ "content": from_doctor }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(driver.chat("patient", &posted).await, posted, "{what}");
        let from_patient = format!("{what}: patient {round}");
        let sent = driver
            .emit(
                "patient",
                "chat:send",
                json!({ "appointment_id": id, "content": from_patient }),
            )
            .await;
        assert_eq!(sent["content"], from_patient.as_str(), "{what}: {sent}");
        assert_eq!(driver.chat("doctor", &sent).await, sent, "{what}");
        own.push((posted["id"].clone(), sent["id"].clone()));
        match outcome {
            Outcome::Ended => raw.expect_end(what).await,
            Outcome::ErrorAck(ack) => {
                let answer = raw.ack(ack).await;
                let status = answer.as_ref().map(|a| a["error"]["status"].clone());
                assert!(
                    status
                        .as_ref()
                        .and_then(Value::as_u64)
                        .is_some_and(|s| (400..500).contains(&s)),
                    "{what}: {answer:?}"
                );
                raw.expect_usable(what).await;
            }
            Outcome::Usable => raw.expect_usable(what).await,
        }
    }

    // Appointment events too, and nothing was delivered twice.
    expect_status(
        app.act(&doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let confirmed = driver.event("patient", "appointment:updated").await;
    assert_eq!(
        confirmed["event_type"], "AppointmentConfirmed",
        "{confirmed}"
    );
    // Each saw its own messages too, once each and in order.
    let doctors: Vec<Value> = own.iter().map(|(doctor, _)| doctor.clone()).collect();
    let patients: Vec<Value> = own.iter().map(|(_, patient)| patient.clone()).collect();
    for (name, expected) in [("doctor", doctors), ("patient", patients)] {
        let echoed: Vec<Value> = driver
            .drain(name, "chat:message")
            .await
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(echoed, expected, "{name}");
    }
}

impl Driver {
    /// Waits for `message` to arrive as a `chat:message` on socket `name`.
    async fn chat(&mut self, name: &str, message: &Value) -> Value {
        let id = message["id"].clone();
        self.wait("a chat message", |o| {
            o["op"] == "event"
                && o["name"] == name
                && o["event"] == "chat:message"
                && o["data"]["id"] == id
        })
        .await["data"]
            .clone()
    }
}
