//! Crash survival: `kill -9` the server under load (bookings and chat); after a restart every
//! acknowledged command's events are in the store, clients retrying with their keys create no
//! duplicates, and every read model equals a full rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::helpers::{TestApp, TestDb, User, expect_status, spawn_process};

/// What the clients were told before the crash.
#[derive(Clone, Default)]
struct Acknowledged {
    bookings: Vec<String>,
    /// client_msg_id → message id.
    messages: BTreeMap<String, String>,
    /// Every client_msg_id sent, answered or not.
    attempted: BTreeSet<String>,
}

async fn post_message(app: &TestApp, user: &User, appointment: &str, key: &str) -> Option<Value> {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/appointments/{appointment}/messages")))
        .bearer_auth(&user.token)
        .json(&json!({ "content": format!("note {key}"), "client_msg_id": key }))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Every read model table's rows as sorted JSON.
async fn read_models(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let mut models = Vec::new();
    for projection in telemed_projections::all() {
        for table in projection.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            models.push((table.to_string(), rows));
        }
    }
    models
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
                let Ok(response) = app
                    .client
                    .post(app.url("/api/v1/appointments"))
                    .bearer_auth(&patient.token)
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                if response.status() != StatusCode::CREATED {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_str().unwrap().to_string();
                progress.send_modify(|a| a.bookings.push(id));
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
                let Some(message) = post_message(&app, &user, &room, &key).await else {
                    return;
                };
                let id = message["id"].as_str().unwrap().to_string();
                progress.send_modify(|a| {
                    a.messages.insert(key, id);
                });
            }
        }));
    }

    // Kill -9 in the middle of it.
    watched
        .wait_for(|a| a.bookings.len() >= 8 && a.messages.len() >= 30)
        .await
        .unwrap();
    child.kill().await.unwrap();
    for task in load {
        task.await.unwrap();
    }
    let acknowledged = progress.borrow().clone();

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
        let message = post_message(&app, user, &room, key)
            .await
            .unwrap_or_else(|| panic!("retrying {key} after the restart"));
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
    let live = read_models(&pool).await;
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
    assert_eq!(read_models(&pool).await, live);
}
