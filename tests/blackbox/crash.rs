//! Crash survival: `kill -9` the server under load (bookings and chat); after a restart every
//! acknowledged command's events are in the store, clients retrying with their keys create no
//! duplicates, and every read model equals a full rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{
    TestApp, TestDb, User, assert_same_read_models, expect_status, read_models, spawn_process,
};

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
    // Chatters: both participants post until the server is gone.
    for (side, user) in [("d", doctor.clone()), ("p", chatter.clone())] {
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
