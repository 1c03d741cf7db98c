//! Calls: ICE servers with TURN REST credentials; call sessions, their log, and WebRTC
//! signaling relayed between the participants.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{TestApp, TestDb, User, expect_status, spawn_app, spawn_app_on};
use crate::live::Ws;
use crate::scheduling::{days_ahead, expect_conflict};

#[tokio::test]
async fn ice_servers_carry_stun_urls_and_coturn_compatible_turn_credentials() {
    let db = TestDb::create().await;
    let app = spawn_app_on(db, |config| {
        config.ice.stun_urls = vec!["stun:stun.example.org:3478".into()];
        config.ice.turn_urls = vec![
            "turn:turn.example.org:3478?transport=udp".into(),
            "turns:turn.example.org:5349".into(),
        ];
        config.ice.turn_secret = Some("north-wind".into());
        config.ice.turn_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    let patient = app.patient().await;
    let body = expect_status(
        app.get("/api/v1/ice-servers", &patient.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["ttl"], 600);
    let servers = body["ice_servers"].as_array().unwrap();
    assert_eq!(servers[0]["urls"][0], "stun:stun.example.org:3478");
    assert!(servers[0].get("username").is_none());
    let turn = &servers[1];
    assert_eq!(turn["urls"].as_array().unwrap().len(), 2);
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, patient.id);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "{expiry} vs {now}"
    );

    // An independent implementation of the TURN REST API (Python's hmac) agrees.
    let python = std::env::var("TELEMED_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys,hmac,hashlib,base64; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())";
    let output = std::process::Command::new(python)
        .args(["-c", script, "north-wind", username])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        turn["credential"].as_str().unwrap(),
        String::from_utf8(output.stdout).unwrap().trim()
    );

    let anonymous = app
        .client
        .get(app.url("/api/v1/ice-servers"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_configuration_there_are_no_ice_servers() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let body = expect_status(
        app.get("/api/v1/ice-servers", &doctor.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["ice_servers"], serde_json::json!([]));
}

#[tokio::test]
async fn turn_urls_without_a_secret_refuse_to_start() {
    let db = TestDb::create().await;
    let output = tokio::process::Command::new(TestApp::binary())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TELEMED_BIND", "127.0.0.1:0")
        .env("TELEMED_TURN_URLS", "turn:turn.example.org:3478")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TELEMED_TURN_SECRET"), "{stderr}");
    let bad_scheme = tokio::process::Command::new(TestApp::binary())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TELEMED_BIND", "127.0.0.1:0")
        .env("TELEMED_STUN_URLS", "http://stun.example.org")
        .output()
        .await
        .unwrap();
    assert!(!bad_scheme.status.success());
    assert!(String::from_utf8_lossy(&bad_scheme.stderr).contains("TELEMED_STUN_URLS"));
}

/// A confirmed appointment three days ahead, and a second server on the same database whose
/// clock stands five minutes before its start (inside the join window).
pub struct CallSetup {
    /// The server on the real clock.
    pub app: TestApp,
    /// The server whose clock is inside the join window.
    pub now: TestApp,
    /// The appointment's doctor.
    pub doctor: User,
    /// Its patient.
    pub patient: User,
    /// The appointment.
    pub id: String,
}

impl CallSetup {
    pub async fn new(adjust: impl FnOnce(&mut telemed_api::Config)) -> Self {
        Self::configured(|_| {}, adjust).await
    }

    /// As [`CallSetup::new`], with `both` applied to both servers' configuration first.
    pub async fn configured(
        both: impl Fn(&mut telemed_api::Config),
        adjust: impl FnOnce(&mut telemed_api::Config),
    ) -> Self {
        let app = spawn_app_on(TestDb::create().await, &both).await;
        let doctor = app.doctor().await;
        let patient = app.patient().await;
        let day = days_ahead(3);
        app.open_window(&doctor, day + Duration::hours(9), day + Duration::hours(12))
            .await;
        let start = day + Duration::hours(10);
        let booked = app
            .book(&patient, &doctor.id, start, start + Duration::minutes(30))
            .await;
        let id = booked["id"].as_str().unwrap().to_string();
        expect_status(
            app.act(&doctor, &id, "confirm", &json!({})).await,
            StatusCode::OK,
        )
        .await;
        let offset = start - Duration::minutes(5) - time::OffsetDateTime::now_utc();
        let now = spawn_app_on(
            TestDb {
                url: app.db.url.clone(),
            },
            |config| {
                both(config);
                config.clock_offset = offset;
                adjust(config);
            },
        )
        .await;
        Self {
            app,
            now,
            doctor,
            patient,
            id,
        }
    }

    pub async fn start_call(&self, user: &User) -> String {
        let body = expect_status(
            self.now
                .post(
                    &format!("/api/v1/appointments/{}/calls", self.id),
                    Some(&user.token),
                    &json!({}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        body["call_id"].as_str().unwrap().to_string()
    }

    pub async fn log(&self, user: &User) -> Value {
        expect_status(
            self.now
                .get(
                    &format!("/api/v1/appointments/{}/calls", self.id),
                    &user.token,
                )
                .await,
            StatusCode::OK,
        )
        .await
    }
}

pub const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

#[tokio::test]
async fn a_call_rings_connects_through_relayed_signaling_and_ends_in_the_log() {
    let s = CallSetup::new(|_| {}).await;
    let mut doctor_ws = Ws::connect(&s.now, &s.doctor).await;
    let mut patient_ws = Ws::connect(&s.now, &s.patient).await;
    let mut patient_phone = Ws::connect(&s.now, &s.patient).await;
    let stranger = s.app.patient().await;
    let mut stranger_ws = Ws::connect(&s.now, &stranger).await;

    let call_id = s.start_call(&s.doctor).await;
    for ws in [&mut patient_ws, &mut patient_phone] {
        let ringing = ws.next_named("call:ringing").await;
        assert_eq!(ringing["data"]["call_id"], call_id.as_str());
        assert_eq!(ringing["data"]["from"], s.doctor.id.as_str());
        assert_eq!(ringing["data"]["appointment_id"], s.id.as_str());
    }
    // The other participant starting a call joins the same one.
    assert_eq!(s.start_call(&s.patient).await, call_id);

    let offer = doctor_ws
        .request("call:offer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    assert_eq!(offer["data"], json!({ "ok": true }), "{offer}");
    let relayed = patient_ws.next_named("call:offer").await;
    assert_eq!(
        relayed["data"],
        json!({ "call_id": call_id, "from": s.doctor.id, "sdp": SDP })
    );
    patient_ws
        .request("call:answer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    let answer = doctor_ws.next_named("call:answer").await;
    assert_eq!(answer["data"]["from"], s.patient.id.as_str());
    let candidate = json!({ "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0 });
    patient_ws
        .request(
            "call:ice",
            json!({ "call_id": call_id, "candidate": candidate }),
        )
        .await;
    let ice = doctor_ws.next_named("call:ice").await;
    assert_eq!(ice["data"]["candidate"], candidate);
    doctor_ws.expect_no_events_named("call:offer").await;

    // A stranger can neither signal nor read the log.
    let refused = stranger_ws
        .request("call:offer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    assert_eq!(refused["error"]["status"], 404, "{refused}");
    stranger_ws.expect_no_events("a stranger").await;
    expect_status(
        s.now
            .get(
                &format!("/api/v1/appointments/{}/calls", s.id),
                &stranger.token,
            )
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let hangup = patient_ws
        .request("call:hangup", json!({ "call_id": call_id }))
        .await;
    assert_eq!(hangup["data"], json!({ "ok": true }), "{hangup}");
    for ws in [&mut doctor_ws, &mut patient_ws] {
        let ended = ws.next_named("call:ended").await;
        assert_eq!(ended["data"]["reason"], "user_hangup");
    }
    let over = doctor_ws
        .request("call:offer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    assert_eq!(over["error"]["code"], "call_over", "{over}");

    let log = s.log(&s.doctor).await;
    let call = &log["calls"][0];
    assert_eq!(call["call_id"], call_id.as_str());
    assert_eq!(call["status"], "ended");
    assert_eq!(call["end_reason"], "user_hangup");
    assert!(
        call["answered_at"].is_string() && call["ended_at"].is_string(),
        "{call}"
    );
    assert_eq!(call["participants"], json!([s.doctor.id, s.patient.id]));
    let auditor = s.app.staff("auditor").await;
    assert_eq!(s.log(&auditor).await, log);

    // Only the lifecycle is stored, never the signaling.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'call' ORDER BY sequence",
    )
    .fetch_all(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(stored, ["CallStarted", "CallAnswered", "CallEnded"]);

    // A new call can start after the last one ended.
    assert_ne!(s.start_call(&s.patient).await, call_id);
}

#[tokio::test]
async fn an_unanswered_call_is_missed_after_the_ring_timeout() {
    let s = CallSetup::new(|config| {
        config.calls.ring_timeout = Duration::seconds(1);
    })
    .await;
    let mut doctor_ws = Ws::connect(&s.now, &s.doctor).await;
    let call_id = s.start_call(&s.doctor).await;
    let ended = doctor_ws.next_named("call:ended").await;
    assert_eq!(ended["data"]["call_id"], call_id.as_str());
    assert_eq!(ended["data"]["reason"], "invite_timeout");
    let log = s.log(&s.patient).await;
    assert_eq!(log["calls"][0]["status"], "missed");
}

#[tokio::test]
async fn glare_relays_both_offers_and_signaling_is_rate_limited() {
    let s = CallSetup::new(|config| config.rate_limits = true).await;
    let mut doctor_ws = Ws::connect(&s.now, &s.doctor).await;
    let mut patient_ws = Ws::connect(&s.now, &s.patient).await;
    let call_id = s.start_call(&s.patient).await;
    let (doctor_ack, patient_ack) = tokio::join!(
        doctor_ws.request("call:offer", json!({ "call_id": call_id, "sdp": "doctor" })),
        patient_ws.request(
            "call:offer",
            json!({ "call_id": call_id, "sdp": "patient" })
        ),
    );
    assert_eq!(doctor_ack["data"], json!({ "ok": true }));
    assert_eq!(patient_ack["data"], json!({ "ok": true }));
    assert_eq!(
        doctor_ws.next_named("call:offer").await["data"]["sdp"],
        "patient"
    );
    assert_eq!(
        patient_ws.next_named("call:offer").await["data"]["sdp"],
        "doctor"
    );

    // A flood of candidates from one connection is cut off with a clear error.
    let acks = doctor_ws
        .pipelined(
            (0..400)
                .map(|n| {
                    let data = json!({ "call_id": call_id, "candidate": format!("candidate:{n}") });
                    ("call:ice", data)
                })
                .collect(),
        )
        .await;
    let limited = acks
        .iter()
        .filter(|ack| ack["error"]["code"] == "rate_limited")
        .count();
    assert!(limited > 0, "no rate limit after 400 messages sent at once");
    assert!(
        acks.iter()
            .all(|ack| ack["error"].is_null() || ack["error"]["status"] == 429)
    );

    // Bad signaling names the field.
    let bad = patient_ws
        .request("call:offer", json!({ "call_id": call_id, "sdp": 42 }))
        .await;
    assert_eq!(bad["error"]["errors"][0]["field"], "data.sdp", "{bad}");
    let huge = patient_ws
        .request(
            "call:offer",
            json!({ "call_id": call_id, "sdp": "x".repeat(40_000) }),
        )
        .await;
    assert_eq!(huge["error"]["errors"][0]["field"], "data.sdp", "{huge}");
}

#[tokio::test]
async fn signaling_crosses_server_processes_even_when_larger_than_notify_allows() {
    let s = CallSetup::new(|_| {}).await;
    let other = spawn_app_on(
        TestDb {
            url: s.app.db.url.clone(),
        },
        |config| config.clock_offset = Duration::ZERO,
    )
    .await;
    let mut doctor_ws = Ws::connect(&s.now, &s.doctor).await;
    let mut patient_ws = Ws::connect(&other, &s.patient).await;
    let call_id = s.start_call(&s.doctor).await;
    let ringing = patient_ws.next_named("call:ringing").await;
    assert_eq!(ringing["data"]["call_id"], call_id.as_str());
    // An SDP over NOTIFY's 8 000-byte limit travels through the relay table.
    let big_sdp = format!(
        "{SDP}{}",
        "a=candidate:0 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(400)
    );
    assert!(big_sdp.len() > 8_000);
    doctor_ws
        .request("call:offer", json!({ "call_id": call_id, "sdp": big_sdp }))
        .await;
    let relayed = patient_ws.next_named("call:offer").await;
    assert_eq!(relayed["data"]["sdp"], big_sdp.as_str());
}

#[tokio::test]
async fn calls_need_a_confirmed_appointment_inside_its_join_window() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let day = days_ahead(3);
    app.open_window(&doctor, day + Duration::hours(9), day + Duration::hours(12))
        .await;
    let start = day + Duration::hours(10);
    let booked = app
        .book(&patient, &doctor.id, start, start + Duration::minutes(30))
        .await;
    let id = booked["id"].as_str().unwrap();
    let path = format!("/api/v1/appointments/{id}/calls");
    expect_conflict(
        app.post(&path, Some(&patient.token), &json!({})).await,
        "not_confirmed",
    )
    .await;
    expect_status(
        app.act(&doctor, id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    expect_conflict(
        app.post(&path, Some(&patient.token), &json!({})).await,
        "outside_join_window",
    )
    .await;
    let stranger = app.patient().await;
    expect_status(
        app.post(&path, Some(&stranger.token), &json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn the_callee_hanging_up_a_ringing_call_declines_it() {
    let s = CallSetup::new(|_| {}).await;
    let mut doctor_ws = Ws::connect(&s.now, &s.doctor).await;
    let mut patient_ws = Ws::connect(&s.now, &s.patient).await;
    let call_id = s.start_call(&s.doctor).await;
    patient_ws.next_named("call:ringing").await;
    let ack = patient_ws
        .request("call:hangup", json!({ "call_id": call_id }))
        .await;
    assert_eq!(ack["data"], json!({ "ok": true }), "{ack}");
    let ended = doctor_ws.next_named("call:ended").await;
    assert_eq!(ended["data"]["reason"], "rejected");
    let log = s.log(&s.doctor).await;
    assert_eq!(log["calls"][0]["status"], "rejected");

    // A failure report ends an answered call as failed, over REST.
    let call_id = s.start_call(&s.patient).await;
    doctor_ws
        .request("call:answer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    let ended = expect_status(
        s.now
            .post(
                &format!("/api/v1/calls/{call_id}/end"),
                Some(&s.doctor.token),
                &json!({ "reason": "ice_failed" }),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended["status"], "failed");
    assert_eq!(ended["end_reason"], "ice_failed");
    let bad = s
        .now
        .post(
            &format!("/api/v1/calls/{call_id}/end"),
            Some(&s.doctor.token),
            &json!({ "reason": "Not A Reason!" }),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
