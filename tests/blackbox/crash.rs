//! Crash survival: `kill -9` the server under load (bookings and chat from many devices, so
//! the kill finds chat messages being group-committed); after a restart every acknowledged
//! command's events are in the store (each device's messages in the order sent), clients
//! retrying with their keys create no duplicates, and every read model equals a full rebuild. Keyed bookings in flight at the
//! kill are taken over by their first retry, on the new process, without a wait.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::helpers::{
    TestApp, TestDb, User, assert_same_read_models, eventually, expect_status, hold_read_models,
    keys_in_progress, read_models, spawn_process, spawn_process_with,
};

/// Devices that each participant of the chat posts from at once.
const CHAT_DEVICES: usize = 8;

/// What the clients were told before the crash.
#[derive(Clone, Default)]
struct Acknowledged {
    bookings: Vec<String>,
    /// client_msg_id → message id.
    messages: BTreeMap<String, String>,
    /// Every client_msg_id sent, answered or not.
    attempted: BTreeSet<String>,
    /// Answers other than the expected 201 (none is allowed, before the kill or after).
    unexpected: Vec<String>,
}

/// What became of a request to a server that may be killed meanwhile.
enum Answer {
    /// 201 Created, with its body.
    Created(Value),
    /// No answer: the connection failed or broke (the server is gone).
    Gone,
    /// Any other answer: its status and body.
    Unexpected(String),
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let Ok(response) = request.send().await else {
        return Answer::Gone;
    };
    let status = response.status();
    let Ok(text) = response.text().await else {
        return Answer::Gone;
    };
    match serde_json::from_str(&text) {
        Ok(body) if status == StatusCode::CREATED => Answer::Created(body),
        _ => Answer::Unexpected(format!("{status}: {text}")),
    }
}

async fn post_message(app: &TestApp, user: &User, appointment: &str, key: &str) -> Answer {
    let request = app
        .client
        .post(app.url(&format!("/api/v1/appointments/{appointment}/messages")))
        .bearer_auth(&user.token)
        .json(&json!({ "content": format!("note {key}"), "client_msg_id": key }));
    answer(request).await
}

#[tokio::test]
async fn a_killed_server_loses_nothing_acknowledged_and_its_read_models_equal_a_rebuild() {
    let db = TestDb::create().await;
    let url = db.url.clone();
    let (mut child, app) = spawn_process(&url).await;
    let (doctor, chatter, day) = crate::live::clinic(&app).await;
    let start = day + time::Duration::hours(17);
    let room = app
        .book(
            &chatter,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let room = room["id"].as_str().unwrap().to_string();
    let patients = app.patients(4, 4).await;

    let (progress, mut watched) = watch::channel(Acknowledged::default());
    let progress = Arc::new(progress);
    let app = Arc::new(app);
    let mut load = Vec::new();
    // Bookers: each patient takes its own 15-minute slots between 08:00 and 16:00.
    for (n, patient) in patients.iter().enumerate() {
        let (app, progress, patient, doctor_id) = (
            app.clone(),
            progress.clone(),
            patient.clone(),
            doctor.id.clone(),
        );
        load.push(tokio::spawn(async move {
            for slot in (n..32).step_by(4) {
                let start =
                    day + time::Duration::hours(8) + time::Duration::minutes(15 * slot as i64);
                let body = json!({
                    "doctor_id": doctor_id,
                    "start": crate::scheduling::rfc3339(start),
                    "end": crate::scheduling::rfc3339(start + time::Duration::minutes(15)),
                    "reason": "check-up",
                });
                let request = app
                    .client
                    .post(app.url("/api/v1/appointments"))
                    .bearer_auth(&patient.token)
                    .json(&body);
                match answer(request).await {
                    Answer::Created(body) => {
                        let id = body["id"].as_str().unwrap().to_string();
                        progress.send_modify(|a| a.bookings.push(id));
                    }
                    Answer::Gone => return,
                    Answer::Unexpected(what) => {
                        progress.send_modify(|a| a.unexpected.push(format!("booking: {what}")));
                        return;
                    }
                }
            }
        }));
    }
    // Chatters: both participants post from several devices at once until the server is gone,
    // so that the kill finds appends being group-committed.
    let devices = (0..CHAT_DEVICES).flat_map(|device| {
        [
            (format!("d{device}"), doctor.clone()),
            (format!("p{device}"), chatter.clone()),
        ]
    });
    for (side, user) in devices {
        let (app, progress, room) = (app.clone(), progress.clone(), room.clone());
        load.push(tokio::spawn(async move {
            for n in 0.. {
                let key = format!("{side}-{n}");
                progress.send_modify(|a| {
                    a.attempted.insert(key.clone());
                });
                match post_message(&app, &user, &room, &key).await {
                    Answer::Created(message) => {
                        let id = message["id"].as_str().unwrap().to_string();
                        progress.send_modify(|a| {
                            a.messages.insert(key, id);
                        });
                    }
                    Answer::Gone => return,
                    Answer::Unexpected(what) => {
                        progress.send_modify(|a| a.unexpected.push(format!("{key}: {what}")));
                        return;
                    }
                }
            }
        }));
    }

    // Kill -9 in the middle of it (or as soon as a client is answered unexpectedly).
    watched
        .wait_for(|a| !a.unexpected.is_empty() || (a.bookings.len() >= 8 && a.messages.len() >= 30))
        .await
        .unwrap();
    child.kill().await.unwrap();
    for task in load {
        task.await.unwrap();
    }
    let acknowledged = progress.borrow().clone();
    assert!(
        acknowledged.unexpected.is_empty(),
        "{:#?}",
        acknowledged.unexpected
    );

    // Every acknowledged command's events are in the store.
    let pool = db.migrated_pool().await;
    let ids: Vec<&String> = acknowledged
        .bookings
        .iter()
        .chain(acknowledged.messages.values())
        .collect();
    for id in ids {
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(events >= 1, "acknowledged {id} has no events");
    }
    // Each device's acknowledged messages are stored once, in the order it sent them.
    let commit_order: BTreeMap<String, (u64, i64)> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT aggregate_id, transaction_id::text, global_position
           FROM events WHERE aggregate_type = 'chat_message'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, xid, position)| (id, (xid.parse().unwrap(), position)))
    .collect();
    for device in 0..CHAT_DEVICES {
        for side in ["d", "p"] {
            let prefix = format!("{side}{device}-");
            let positions: Vec<(u64, i64)> = (0..)
                .map_while(|n| acknowledged.messages.get(&format!("{prefix}{n}")))
                .map(|id| commit_order[id])
                .collect();
            assert!(positions.is_sorted(), "{prefix}: {positions:?}");
        }
    }

    // Restart; the clients retry every message whose answer they may have missed.
    let (_child, app) = spawn_process(&url).await;
    for key in &acknowledged.attempted {
        let user = if key.starts_with('d') {
            &doctor
        } else {
            &chatter
        };
        let message = match post_message(&app, user, &room, key).await {
            Answer::Created(message) => message,
            Answer::Gone => panic!("retrying {key} after the restart: no answer"),
            Answer::Unexpected(what) => panic!("retrying {key} after the restart: {what}"),
        };
        if let Some(first) = acknowledged.messages.get(key) {
            assert_eq!(message["id"].as_str(), Some(first.as_str()), "{key}");
        }
    }
    // No message twice: one per key, in the store and in the read model.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'chat_message'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'chat_message'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, distinct);
    assert_eq!(distinct, acknowledged.attempted.len() as i64);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE appointment_id = $1::uuid")
            .bind(&room)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, distinct);

    // The read models, caught up (a command's answer waits for them), equal a full rebuild.
    expect_status(
        app.act(&doctor, &room, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let live = read_models(&pool, &[]).await;
    let output = tokio::process::Command::new(TestApp::binary())
        .args(["rebuild"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rebuilt = read_models(&pool, &[]).await;
    assert_same_read_models(&live, &rebuilt, "live (left) and rebuilt (right)");
}

/// A keyed booking request as a patient's app sends it (and resends it after a failure).
fn keyed_booking(
    app: &TestApp,
    patient: &User,
    doctor_id: &str,
    start: time::OffsetDateTime,
) -> reqwest::RequestBuilder {
    let body = json!({
        "doctor_id": doctor_id,
        "start": crate::scheduling::rfc3339(start),
        "end": crate::scheduling::rfc3339(start + time::Duration::minutes(15)),
        "reason": "check-up",
    });
    app.client
        .post(app.url("/api/v1/appointments"))
        .bearer_auth(&patient.token)
        .header("Idempotency-Key", format!("booking-of-{}", patient.id))
        .json(&body)
}

/// Appointments recorded in the store.
async fn appointments_recorded(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'appointment'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn keyed_bookings_in_flight_at_a_kill_are_taken_over_by_their_first_retry() {
    const RECORDED: usize = 4;
    const UNRECORDED: usize = 2;
    let db = TestDb::create().await;
    let url = db.url.clone();
    // Answers wait for the read models as long as the test holds them back.
    let env = [
        ("TELEMED_READ_YOUR_WRITES_TIMEOUT_MS", "120000"),
        ("TELEMED_DB_MAX_CONNECTIONS", "16"),
    ];
    let (mut child, app) = spawn_process_with(&url, &env).await;
    let (doctor, _, day) = crate::live::clinic(&app).await;
    let patients = app.patients(RECORDED + UNRECORDED, 6).await;
    let start_of =
        |n: usize| day + time::Duration::hours(8) + time::Duration::minutes(15 * n as i64);

    // Bookings recorded, whose answers wait for the (held back) read models ...
    let hold = hold_read_models(&app.pool).await;
    let mut unanswered = Vec::new();
    for (n, patient) in patients.iter().take(RECORDED).enumerate() {
        unanswered.push(tokio::spawn(
            keyed_booking(&app, patient, &doctor.id, start_of(n)).send(),
        ));
    }
    eventually(
        "the first bookings to be recorded",
        Duration::from_secs(30),
        || async {
            appointments_recorded(&app.pool).await == RECORDED as i64
                && keys_in_progress(&app.pool).await == RECORDED as i64
        },
    )
    .await;
    // ... and bookings whose keys are registered but which cannot record their claims yet.
    let mut claims = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE patient_time_claims IN SHARE MODE")
        .execute(&mut *claims)
        .await
        .unwrap();
    for (n, patient) in patients.iter().enumerate().skip(RECORDED) {
        unanswered.push(tokio::spawn(
            keyed_booking(&app, patient, &doctor.id, start_of(n)).send(),
        ));
    }
    eventually(
        "the other keys to be registered",
        Duration::from_secs(30),
        || async { keys_in_progress(&app.pool).await == (RECORDED + UNRECORDED) as i64 },
    )
    .await;
    assert_eq!(appointments_recorded(&app.pool).await, RECORDED as i64);

    // kill -9: none of them is answered.
    child.kill().await.unwrap();
    for request in unanswered {
        assert!(request.await.unwrap().is_err(), "answered despite the kill");
    }
    claims.rollback().await.unwrap();
    hold.rollback().await.unwrap();

    // After a restart each retry is answered at once: the booking it made, or made now.
    let (_child, app) = spawn_process(&url).await;
    for (n, patient) in patients.iter().enumerate() {
        let sent = std::time::Instant::now();
        let retry = keyed_booking(&app, patient, &doctor.id, start_of(n))
            .send()
            .await
            .unwrap();
        let retry = expect_status(retry, StatusCode::CREATED).await;
        println!("retry {n} answered 201 after {:?}", sent.elapsed());
        // Nothing booked twice: the patient has this one appointment.
        let listed = expect_status(
            app.get("/api/v1/appointments", &patient.token).await,
            StatusCode::OK,
        )
        .await;
        let ids: Vec<&Value> = listed["appointments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["id"])
            .collect();
        assert_eq!(ids, [&retry["id"]], "patient {n}");
        // Its key now replays that answer.
        let again = keyed_booking(&app, patient, &doctor.id, start_of(n))
            .send()
            .await
            .unwrap();
        assert_eq!(expect_status(again, StatusCode::CREATED).await, retry);
    }
    assert_eq!(
        appointments_recorded(&app.pool).await,
        (RECORDED + UNRECORDED) as i64
    );
    assert_eq!(keys_in_progress(&app.pool).await, 0);
}
