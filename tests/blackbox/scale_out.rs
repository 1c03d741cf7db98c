//! Scale-out (issue 13): several real `telemed serve` processes on one database, talking over a
//! real NATS server (or, without `TELEMED_NATS_URL`, over PostgreSQL `NOTIFY`). Ephemeral events
//! reach exactly the right connections once whichever process each is on; stored events and
//! sign-outs reach every process; NATS going away loses nothing durable and delivery resumes by
//! itself; a killed process's clients resume on another without a gap or a duplicate.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use tokio::process::Child;

use crate::calls::SDP;
use crate::helpers::{
    TestApp, TestDb, User, eventually, expect_status, spawn_app_on, spawn_process_with,
};
use crate::live::{Ws, clinic};

/// Ephemeral events: a connection gets each of these only when it is meant for it.
const EPHEMERAL: &[&str] = &[
    "chat:typing",
    "call:offer",
    "call:answer",
    "call:ice",
    "call:hangup",
];

/// How long a process may take to (re)connect to NATS.
const RECONNECT: StdDuration = StdDuration::from_secs(20);

/// A real `nats-server` on a free local port, stopped when dropped.
struct Nats {
    port: u16,
    child: Option<Child>,
}

impl Nats {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut nats = Self { port, child: None };
        nats.restart().await;
        nats
    }

    /// `TELEMED_NATS_SERVER` (set by `scripts/test`), else `nats-server` on `PATH`, else
    /// Debian's.
    fn binary() -> PathBuf {
        if let Some(binary) = std::env::var_os("TELEMED_NATS_SERVER") {
            return binary.into();
        }
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("nats-server"))
            .find(|path| path.is_file())
            .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it accepts connections.
    async fn restart(&mut self) {
        assert!(self.child.is_none(), "NATS is running");
        let child = tokio::process::Command::new(Self::binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server (scripts/test installs Debian's nats-server package)");
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        eventually("NATS accepts connections", RECONNECT, || async {
            tokio::net::TcpStream::connect(&address).await.is_ok()
        })
        .await;
    }

    async fn stop(&mut self) {
        let mut child = self.child.take().expect("NATS is running");
        child.kill().await.expect("stop nats-server");
    }
}

/// `count` `telemed serve` processes on a fresh database (and NATS if given), with their
/// clocks shifted by `offset`, each reporting its broker connected.
async fn processes(
    db: &TestDb,
    nats: Option<&Nats>,
    offset: Duration,
    count: usize,
) -> Vec<(Child, TestApp)> {
    let url = nats.map(Nats::url);
    let offset = offset.whole_seconds().to_string();
    let mut env = vec![("TELEMED_CLOCK_OFFSET_SECONDS", offset.as_str())];
    if let Some(url) = &url {
        env.push(("TELEMED_NATS_URL", url.as_str()));
    }
    let mut spawned = Vec::new();
    for _ in 0..count {
        spawned.push(spawn_process_with(&db.url, &env).await);
    }
    let expected = nats.map(|_| "connected");
    for (_, app) in &spawned {
        eventually("every process reports its broker", RECONNECT, || async {
            broker(app).await.as_deref() == expected
        })
        .await;
    }
    spawned
}

/// `/readyz` answers 200; the broker's state it reports.
async fn broker(app: &TestApp) -> Option<String> {
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("GET /readyz");
    let body = expect_status(response, StatusCode::OK).await;
    assert_eq!(body["status"], "ready", "{body}");
    body["broker"].as_str().map(str::to_string)
}

/// A connection whose session has started (an answered request proves it).
async fn connect(app: &TestApp, user: &User) -> Ws {
    let mut ws = Ws::connect(app, user).await;
    round_trip(&mut ws).await;
    ws
}

/// Asserts that the connection answers a request.
async fn round_trip(ws: &mut Ws) {
    let ack = ws.request("subscribe", json!({ "topic": "nope" })).await;
    assert!(ack["error"].is_object(), "{ack}");
}

/// The next frame named `event`; fails on any other ephemeral frame on the way (a duplicate
/// or a misdelivery), skipping stored events and notifications.
async fn expect_frame(ws: &mut Ws, event: &str) -> Value {
    loop {
        let frame = ws.next_event().await;
        if frame["event"] == event {
            return frame;
        }
        let name = frame["event"].as_str().unwrap_or_default();
        assert!(!EPHEMERAL.contains(&name), "expected {event}, got {frame}");
    }
}

/// Asserts that no ephemeral frame is waiting on `ws` (after a round trip).
async fn expect_no_ephemeral(ws: &mut Ws) {
    for event in EPHEMERAL {
        ws.expect_no_events_named(event).await;
    }
}

/// A confirmed appointment (in a `clinic`), booked through a setup server on the real clock,
/// and the clock offset that puts a process five minutes before its start (calls may begin).
struct Appointment {
    setup: TestApp,
    doctor: User,
    patient: User,
    id: String,
    offset: Duration,
}

impl Appointment {
    async fn book() -> Self {
        let setup = spawn_app_on(TestDb::create().await, |_| {}).await;
        let (doctor, patient, day) = clinic(&setup).await;
        let start = day + Duration::hours(10);
        let booked = setup
            .book(&patient, &doctor.id, start, start + Duration::minutes(30))
            .await;
        let id = booked["id"].as_str().unwrap().to_string();
        expect_status(
            setup.act(&doctor, &id, "confirm", &json!({})).await,
            StatusCode::OK,
        )
        .await;
        let offset = start - Duration::minutes(5) - time::OffsetDateTime::now_utc();
        Self {
            setup,
            doctor,
            patient,
            id,
            offset,
        }
    }

    fn db(&self) -> TestDb {
        TestDb {
            url: self.setup.db.url.clone(),
        }
    }

    async fn start_call(&self, via: &TestApp) -> String {
        let body = expect_status(
            via.post(
                &format!("/api/v1/appointments/{}/calls", self.id),
                Some(&self.doctor.token),
                &json!({}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        body["call_id"].as_str().unwrap().to_string()
    }
}

fn candidate(n: u32) -> Value {
    json!({ "candidate": format!("candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host", 50_000 + n), "sdpMid": "0", "sdpMLineIndex": 0 })
}

async fn ice(ws: &mut Ws, call_id: &str, n: u32) {
    let ack = ws
        .request(
            "call:ice",
            json!({ "call_id": call_id, "candidate": candidate(n) }),
        )
        .await;
    assert_eq!(ack["data"], json!({ "ok": true }), "{ack}");
}

async fn expect_ice(ws: &mut Ws, from: &User, n: u32) {
    let frame = expect_frame(ws, "call:ice").await;
    assert_eq!(frame["data"]["candidate"], candidate(n), "{frame}");
    assert_eq!(frame["data"]["from"], from.id.as_str(), "{frame}");
}

#[tokio::test]
async fn over_nats_each_ephemeral_event_reaches_exactly_its_connections_once() {
    let a = Appointment::book().await;
    let nats = Nats::start().await;
    let spawned = processes(&a.db(), Some(&nats), a.offset, 3).await;
    let [(_, one), (_, two), (_, three)] = &spawned[..] else {
        unreachable!()
    };
    let stranger = a.setup.patient().await;
    // The doctor on processes one and two, the patient on two and three.
    let mut doctor_one = connect(one, &a.doctor).await;
    let mut doctor_two = connect(two, &a.doctor).await;
    let mut patient_two = connect(two, &a.patient).await;
    let mut patient_three = connect(three, &a.patient).await;
    let mut stranger_one = connect(one, &stranger).await;
    let mut stranger_three = connect(three, &stranger).await;

    let typing = patient_three
        .request("chat:typing", json!({ "appointment_id": a.id }))
        .await;
    assert_eq!(typing["data"], json!({ "ok": true }), "{typing}");
    for ws in [&mut doctor_one, &mut doctor_two] {
        let frame = expect_frame(ws, "chat:typing").await;
        assert_eq!(
            frame["data"],
            json!({ "appointment_id": a.id, "user_id": a.patient.id })
        );
    }

    let call_id = a.start_call(one).await;
    let offer = doctor_one
        .request("call:offer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    assert_eq!(offer["data"], json!({ "ok": true }), "{offer}");
    for ws in [&mut patient_two, &mut patient_three] {
        let frame = expect_frame(ws, "call:offer").await;
        assert_eq!(frame["data"]["from"], a.doctor.id.as_str());
    }
    patient_three
        .request("call:answer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    for ws in [&mut doctor_one, &mut doctor_two] {
        expect_frame(ws, "call:answer").await;
    }
    // Signaling from a process where the other side is connected too (two) and where it is
    // not (three), in order.
    for n in 1..=3 {
        ice(&mut doctor_two, &call_id, n).await;
        ice(&mut patient_three, &call_id, 100 + n).await;
    }
    for n in 1..=3 {
        for ws in [&mut patient_two, &mut patient_three] {
            expect_ice(ws, &a.doctor, n).await;
        }
    }
    for n in 101..=103 {
        for ws in [&mut doctor_one, &mut doctor_two] {
            expect_ice(ws, &a.patient, n).await;
        }
    }

    for ws in [
        &mut doctor_one,
        &mut doctor_two,
        &mut patient_two,
        &mut patient_three,
        &mut stranger_one,
        &mut stranger_three,
    ] {
        expect_no_ephemeral(ws).await;
    }
}

#[tokio::test]
async fn over_nats_stored_events_notifications_and_sign_outs_reach_every_process() {
    let db = TestDb::create().await;
    let nats = Nats::start().await;
    let spawned = processes(&db, Some(&nats), Duration::ZERO, 3).await;
    let apps: Vec<&TestApp> = spawned.iter().map(|(_, app)| app).collect();
    let (doctor, patient, day) = clinic(apps[0]).await;
    let mut doctors: Vec<Ws> = Vec::new();
    let mut patients: Vec<Ws> = Vec::new();
    for app in &apps {
        doctors.push(connect(app, &doctor).await);
        patients.push(connect(app, &patient).await);
    }

    // Booked through one process, confirmed through another: every connection of both sees
    // both changes, and the patient's connections the confirmation's notification.
    let start = day + Duration::hours(10);
    let booked = apps[1]
        .book(&patient, &doctor.id, start, start + Duration::minutes(30))
        .await;
    let id = booked["id"].as_str().unwrap();
    expect_status(
        apps[2].act(&doctor, id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    for (ws, kind) in doctors
        .iter_mut()
        .map(|ws| (ws, "appointment_requested"))
        .chain(patients.iter_mut().map(|ws| (ws, "appointment_confirmed")))
    {
        let (mut updates, mut notifications) = (Vec::new(), Vec::new());
        while updates.len() < 2 || notifications.is_empty() {
            let frame = ws.next_event().await;
            match frame["event"].as_str() {
                Some("appointment:updated") => updates.push(frame["data"].clone()),
                Some("notification") => notifications.push(frame["data"].clone()),
                _ => {}
            }
        }
        let types: Vec<&Value> = updates.iter().map(|u| &u["event_type"]).collect();
        assert_eq!(types, ["AppointmentRequested", "AppointmentConfirmed"]);
        assert!(updates.iter().all(|u| u["appointment"]["id"] == id));
        assert_eq!(notifications[0]["kind"], kind, "{notifications:?}");
        assert_eq!(notifications[0]["appointment_id"], id);
        ws.expect_no_events_named("appointment:updated").await;
        ws.expect_no_events_named("notification").await;
    }

    // Signed out through one process: the patient's sockets close on all three, and their
    // token is refused by all three; the doctor's stay.
    let response = apps[1]
        .client
        .post(apps[1].url("/api/v1/auth/logout"))
        .bearer_auth(&patient.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for ws in &mut patients {
        let (code, reason) = ws.expect_close().await;
        assert_eq!((code, reason.as_str()), (4001, "signed out"));
    }
    for app in &apps {
        let me = app.get("/api/v1/me", &patient.token).await;
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }
    for ws in &mut doctors {
        round_trip(ws).await;
    }
}

#[tokio::test]
async fn nats_stopped_and_started_again_loses_nothing_durable_and_delivery_resumes() {
    let db = TestDb::create().await;
    let mut nats = Nats::start().await;
    let spawned = processes(&db, Some(&nats), Duration::ZERO, 3).await;
    let apps: Vec<&TestApp> = spawned.iter().map(|(_, app)| app).collect();
    let (doctor, patient, day) = clinic(apps[0]).await;
    let mut doctor_one = connect(apps[0], &doctor).await;
    let mut doctor_three = connect(apps[2], &doctor).await;
    let mut patient_three = connect(apps[2], &patient).await;
    let start = day + Duration::hours(10);
    let booked = apps[0]
        .book(&patient, &doctor.id, start, start + Duration::minutes(30))
        .await;
    let id = booked["id"].as_str().unwrap().to_string();
    for ws in [&mut doctor_one, &mut doctor_three, &mut patient_three] {
        let frame = ws.next_named("appointment:updated").await;
        assert_eq!(frame["data"]["appointment"]["id"], id.as_str());
    }

    nats.stop().await;
    for app in &apps {
        eventually("every process reports NATS down", RECONNECT, || async {
            broker(app).await.as_deref() == Some("disconnected")
        })
        .await;
    }
    // Meanwhile a process's own clients still get its ephemeral events (no broker on the
    // local path; the others never get this one, not even late), and stored events reach
    // every process (the store is the source).
    let typing = patient_three
        .request("chat:typing", json!({ "appointment_id": id }))
        .await;
    assert_eq!(typing["data"], json!({ "ok": true }), "{typing}");
    expect_frame(&mut doctor_three, "chat:typing").await;
    let later = start + Duration::hours(1);
    let during = apps[1]
        .book(&patient, &doctor.id, later, later + Duration::minutes(30))
        .await;
    for ws in [&mut doctor_one, &mut doctor_three, &mut patient_three] {
        let frame = ws.next_named("appointment:updated").await;
        assert_eq!(frame["data"]["appointment"]["id"], during["id"]);
    }

    nats.restart().await;
    for app in &apps {
        eventually("every process reconnects to NATS", RECONNECT, || async {
            broker(app).await.as_deref() == Some("connected")
        })
        .await;
    }
    let typing = patient_three
        .request("chat:typing", json!({ "appointment_id": id }))
        .await;
    assert_eq!(typing["data"], json!({ "ok": true }), "{typing}");
    for ws in [&mut doctor_one, &mut doctor_three] {
        expect_frame(ws, "chat:typing").await;
    }
    for ws in [&mut doctor_one, &mut doctor_three, &mut patient_three] {
        expect_no_ephemeral(ws).await;
        ws.expect_no_events_named("appointment:updated").await;
    }
}

#[tokio::test]
async fn after_kill_9_of_a_process_its_clients_resume_on_another_without_gap_or_duplicate() {
    let db = TestDb::create().await;
    let nats = Nats::start().await;
    let mut spawned = processes(&db, Some(&nats), Duration::ZERO, 3).await;
    let (doctor, patient, day) = clinic(&spawned[0].1).await;
    let slot = |n: i64| {
        let start = day + Duration::hours(8) + Duration::minutes(15 * n);
        (start, start + Duration::minutes(10))
    };
    let mut on_two = connect(&spawned[1].1, &patient).await;
    let mut last = String::new();
    for n in 0..3 {
        let (start, end) = slot(n);
        let booked = spawned[0].1.book(&patient, &doctor.id, start, end).await;
        let frame = on_two.next_named("appointment:updated").await;
        assert_eq!(frame["data"]["appointment"]["id"], booked["id"]);
        last = frame["data"]["position"].as_str().unwrap().to_string();
    }

    spawned[1].0.kill().await.expect("kill -9 process two");
    drop(on_two);
    let mut missed = Vec::new();
    for n in 3..7 {
        let (start, end) = slot(n);
        let via = &spawned[if n % 2 == 0 { 0 } else { 2 }].1;
        let booked = via.book(&patient, &doctor.id, start, end).await;
        missed.push(booked["id"].clone());
    }

    let mut on_three = Ws::connect(&spawned[2].1, &patient).await;
    let ack = on_three.request("resume", json!({ "after": last })).await;
    assert!(ack["data"]["replayed"].is_u64(), "{ack}");
    let mut replayed = Vec::new();
    for _ in 0..missed.len() {
        let frame = on_three.next_named("appointment:updated").await;
        replayed.push(frame["data"]["appointment"]["id"].clone());
    }
    assert_eq!(replayed, missed);
    let (start, end) = slot(7);
    let live = spawned[0].1.book(&patient, &doctor.id, start, end).await;
    let frame = on_three.next_named("appointment:updated").await;
    assert_eq!(frame["data"]["appointment"]["id"], live["id"]);
    on_three.expect_no_events_named("appointment:updated").await;
}

#[tokio::test]
async fn without_nats_notify_carries_signaling_between_processes_once() {
    let a = Appointment::book().await;
    let spawned = processes(&a.db(), None, a.offset, 2).await;
    let [(_, one), (_, two)] = &spawned[..] else {
        unreachable!()
    };
    let mut doctor_one = connect(one, &a.doctor).await;
    let mut doctor_two = connect(two, &a.doctor).await;
    let mut patient_one = connect(one, &a.patient).await;
    let call_id = a.start_call(one).await;
    // The doctor's connection on the sender's process gets each candidate once (not again
    // when the sender's own NOTIFY comes back), the one on the other process once too.
    for n in 1..=3 {
        ice(&mut patient_one, &call_id, n).await;
    }
    for n in 1..=3 {
        expect_ice(&mut doctor_two, &a.patient, n).await;
    }
    for n in 1..=3 {
        expect_ice(&mut doctor_one, &a.patient, n).await;
    }
    for ws in [&mut doctor_one, &mut doctor_two, &mut patient_one] {
        expect_no_ephemeral(ws).await;
    }
}
