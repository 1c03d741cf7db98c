//! Several server instances on one database: each keeps its own cache of aggregates, and no
//! answer may depend on a cache that another instance has made stale.

use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::helpers::{TestApp, TestDb, expect_status, spawn_app, spawn_app_on, spawn_process};
use crate::scheduling::{days_ahead, expect_conflict};

/// A second instance on `app`'s database.
async fn twin(app: &TestApp) -> TestApp {
    let db = TestDb {
        url: app.db.url.clone(),
    };
    spawn_app_on(db, |_| {}).await
}

#[tokio::test]
async fn a_stale_cached_doctor_day_never_changes_an_answer() {
    let a = spawn_app().await;
    let b = twin(&a).await;
    let doctor = a.doctor().await;
    let (first, second, third) = (a.patient().await, a.patient().await, a.patient().await);
    let day = days_ahead(4);
    let (start, end) = (
        day + Duration::hours(10),
        day + Duration::hours(10) + Duration::minutes(30),
    );
    a.open_window(&doctor, day + Duration::hours(9), day + Duration::hours(12))
        .await;

    // A books the slot: A now caches a doctor-day in which the slot is taken.
    let booked = a.book(&first, &doctor.id, start, end).await;
    let id = booked["id"].as_str().unwrap();

    // B cancels it: A's cached day is stale (it still shows the slot taken).
    let cancelled = b
        .act(&first, id, "cancel", &json!({ "reason": "cannot come" }))
        .await;
    assert_eq!(
        expect_status(cancelled, StatusCode::OK).await["status"],
        "cancelled"
    );

    // Through A, the slot is free again: a refusal decided on the cached state is decided
    // again on the stored one.
    let rebooked = a.book(&second, &doctor.id, start, end).await;

    // B's cached day (after its cancel) does not know of that booking: its append conflicts,
    // and the retry from the store refuses the double booking.
    expect_conflict(
        b.book_raw(&third, &doctor.id, start, end).await,
        "slot_unavailable",
    )
    .await;

    let day_id = format!("{}:{}", doctor.id, day.date());
    let reservations: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE event_type = 'SlotReserved')
              - count(*) FILTER (WHERE event_type = 'SlotReleased')
           FROM events WHERE aggregate_type = 'doctor_day' AND aggregate_id = $1",
    )
    .bind(&day_id)
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert_eq!(reservations, 1, "exactly one live reservation on {day_id}");
    let held = expect_status(
        a.appointment(&second, rebooked["id"].as_str().unwrap())
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(held["status"], "pending");
}

#[tokio::test]
async fn events_of_commands_on_one_process_reach_clients_of_another_in_order() {
    let a = spawn_app().await;
    let b = twin(&a).await;
    let doctor = a.doctor().await;
    let patient = a.patient().await;
    let day = days_ahead(6);
    a.open_window(&doctor, day + Duration::hours(8), day + Duration::hours(20))
        .await;
    let mut on_b = crate::live::Ws::connect(&b, &patient).await;

    let mut expected = Vec::new();
    for n in 0..10 {
        let start = day + Duration::hours(8) + Duration::minutes(30 * n);
        // Alternate the process that executes the command.
        let via = if n % 2 == 0 { &a } else { &b };
        let booked = via
            .book(&patient, &doctor.id, start, start + Duration::minutes(20))
            .await;
        expected.push(booked["id"].as_str().unwrap().to_string());
    }
    let mut received = Vec::new();
    for _ in 0..expected.len() {
        let frame = on_b.next_named("appointment:updated").await;
        received.push(
            frame["data"]["appointment"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(received, expected);
    on_b.expect_no_events_named("appointment:updated").await;
}

#[tokio::test]
async fn two_telemed_serve_processes_each_deliver_every_event() {
    let db = TestDb::create().await;
    let (_a_process, a) = spawn_process(&db.url).await;
    let (_b_process, b) = spawn_process(&db.url).await;
    let doctor = a.doctor().await;
    let patient = b.patient().await;
    let day = days_ahead(7);
    a.open_window(&doctor, day + Duration::hours(8), day + Duration::hours(20))
        .await;
    let mut doctor_on_a = crate::live::Ws::connect(&a, &doctor).await;
    let mut patient_on_b = crate::live::Ws::connect(&b, &patient).await;

    let mut expected = Vec::new();
    for n in 0..6 {
        let start = day + Duration::hours(8) + Duration::minutes(30 * n);
        let via = if n % 2 == 0 { &a } else { &b };
        let booked = via
            .book(&patient, &doctor.id, start, start + Duration::minutes(20))
            .await;
        expected.push(booked["id"].as_str().unwrap().to_string());
    }
    for ws in [&mut doctor_on_a, &mut patient_on_b] {
        let mut received = Vec::new();
        for _ in 0..expected.len() {
            let frame = ws.next_named("appointment:updated").await;
            received.push(
                frame["data"]["appointment"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(received, expected);
        ws.expect_no_events_named("appointment:updated").await;
    }
}
