//! A graceful stop (SIGTERM) lets the background work finish its round: a notification being
//! sent when the signal arrives is sent and recorded, not left claimed (which would mark it
//! failed, "outcome unknown", once the claim lapses).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::helpers::{TestDb, eventually, expect_status, spawn_process_with};
use crate::live::clinic;
use crate::notifications::device_keys;

const PATIENCE: Duration = Duration::from_secs(20);

/// A push service that reports each request as it arrives and answers it only once `gate`
/// has a permit for it.
async fn held_push_service() -> (String, mpsc::UnboundedReceiver<String>, Arc<Semaphore>) {
    use axum::extract::{Path, State};
    use axum::routing::post;
    let (arrived, arrivals) = mpsc::unbounded_channel::<String>();
    let gate = Arc::new(Semaphore::new(0));
    let router = axum::Router::new()
        .route(
            "/push/{device}",
            post(
                |State((arrived, gate)): State<(mpsc::UnboundedSender<String>, Arc<Semaphore>)>,
                 Path(device): Path<String>| async move {
                    let _ = arrived.send(device);
                    let permit = gate.acquire().await.expect("the gate stays open");
                    permit.forget();
                    axum::http::StatusCode::CREATED
                },
            ),
        )
        .with_state((arrived, gate.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, arrivals, gate)
}

#[tokio::test]
async fn a_notification_being_sent_at_sigterm_is_finished_before_the_process_exits() {
    let (push_url, mut arrivals, gate) = held_push_service().await;
    let db = TestDb::create().await;
    let (vapid_secret, _, _) = device_keys();
    let vapid = URL_SAFE_NO_PAD.encode(vapid_secret.to_bytes());
    let (mut child, app) = spawn_process_with(
        &db.url,
        &[
            ("TELEMED_VAPID_PRIVATE_KEY", vapid.as_str()),
            ("TELEMED_NOTIFY_POLL_MS", "50"),
        ],
    )
    .await;
    let (doctor, patient, day) = clinic(&app).await;
    let (_, p256dh, auth) = device_keys();
    let subscription = json!({ "endpoint": format!("{push_url}/push/phone"),
                               "keys": { "p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode(auth) } });
    expect_status(
        app.post(
            "/api/v1/notifications/push-subscriptions",
            Some(&patient.token),
            &subscription,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let start = day + time::Duration::hours(12);
    let booked = app
        .book(
            &patient,
            &doctor.id,
            start,
            start + time::Duration::minutes(30),
        )
        .await;
    let id = booked["id"].as_str().expect("id");
    expect_status(
        app.act(&doctor, id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;

    // The confirmation's push is under way: claimed, and held by the push service.
    let device = tokio::time::timeout(PATIENCE, arrivals.recv())
        .await
        .expect("the push is sent")
        .expect("the push service runs");
    assert_eq!(device, "phone");
    let sending = "SELECT count(*) FROM notification_deliveries
                    WHERE channel = 'push' AND kind = 'appointment_confirmed' AND state = $1";
    let count = |state: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sending)
                .bind(state)
                .fetch_one(&pool)
                .await
                .expect("count deliveries")
        }
    };
    assert_eq!(count("sending").await, 1);

    // SIGTERM; once the server has stopped accepting, the push service answers.
    let pid = child.id().expect("running").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let port = app.address.rsplit(':').next().expect("a port").to_string();
    eventually("the server stops accepting", PATIENCE, || async {
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .is_err()
    })
    .await;
    gate.add_permits(1);

    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the process exits in time")
        .expect("wait for the process");
    assert!(status.success(), "{status:?}");
    assert_eq!(count("sending").await, 0, "the delivery was left claimed");
    assert_eq!(count("sent").await, 1, "the delivery is recorded as sent");
}
