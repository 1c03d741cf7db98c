//! Concurrent bookings: however many patients race for a time, the doctor is never double
//! booked, the losers get a clean 409 and the server never answers 5xx.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::helpers::{TestApp, TestDb, User, spawn_app_on};
use crate::scheduling::{at, days_ahead};

/// An app with room for many concurrent requests, a doctor in New York and one window three
/// days ahead from 13:00 to 23:00 UTC (one New York day in any season).
async fn busy_practice() -> (TestApp, User, OffsetDateTime) {
    let app = spawn_app_on(TestDb::create().await, |c| c.max_db_connections = 64).await;
    let doctor = app.doctor().await;
    let day = days_ahead(3);
    app.open_window(
        &doctor,
        day + Duration::hours(13),
        day + Duration::hours(23),
    )
    .await;
    (app, doctor, day)
}

/// Status and body of an answer.
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Asserts that `answer` is `success` or a 409 `slot_unavailable`; true if it succeeded.
fn won((status, body): &(StatusCode, Value), success: StatusCode) -> bool {
    assert!(!status.is_server_error(), "{status}: {body}");
    let refused = *status == StatusCode::CONFLICT && body["code"] == "slot_unavailable";
    assert!(*status == success || refused, "{status}: {body}");
    *status == success
}

/// How many of `answers` succeeded; every other one must be a 409 `slot_unavailable`.
fn winners(answers: &[(StatusCode, Value)], success: StatusCode) -> usize {
    answers.iter().filter(|answer| won(answer, success)).count()
}

async fn slot_reservations(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SlotReserved'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Asserts that no two of `intervals` overlap.
fn assert_disjoint(mut intervals: Vec<(OffsetDateTime, OffsetDateTime)>) {
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "double booked: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[tokio::test]
async fn two_hundred_patients_racing_for_one_slot_get_one_appointment_and_199_conflicts() {
    let (app, doctor, day) = busy_practice().await;
    let patients = app.patients(200, 20).await;
    let (start, end) = (
        day + Duration::hours(14),
        day + Duration::hours(14) + Duration::minutes(30),
    );

    let (app, doctor) = (&app, &doctor);
    let requests = patients
        .iter()
        .map(|p| async { answer(app.book_raw(p, &doctor.id, start, end).await).await });
    let answers = join_all(requests).await;

    assert_eq!(winners(&answers, StatusCode::CREATED), 1);
    assert_eq!(slot_reservations(app).await, 1);
    assert_eq!(app.rows_in("reservations").await, 1);
    assert_eq!(app.rows_in("appointments").await, 1);
}

#[tokio::test]
async fn a_hundred_overlapping_requests_never_double_book_the_doctor() {
    let (app, doctor, day) = busy_practice().await;
    let patients = app.patients(100, 20).await;
    // 30 minutes starting every 5 minutes from 13:00: each overlaps up to 5 others on each side.
    let intervals: Vec<_> = (0..100)
        .map(|n| {
            let start = day + Duration::hours(13) + Duration::minutes(5 * n);
            (start, start + Duration::minutes(30))
        })
        .collect();

    let (app, doctor) = (&app, &doctor);
    let requests = patients
        .iter()
        .zip(&intervals)
        .map(|(p, &(start, end))| async move {
            answer(app.book_raw(p, &doctor.id, start, end).await).await
        });
    let answers = join_all(requests).await;

    let accepted = winners(&answers, StatusCode::CREATED);
    assert!(accepted >= 1, "nobody got an appointment");
    let booked: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, a)| (at(&a["start"]), at(&a["end"])))
        .collect();
    assert_disjoint(booked);
    let accepted = accepted as i64;
    assert_eq!(slot_reservations(app).await, accepted);
    assert_eq!(app.rows_in("reservations").await, accepted);
    assert_eq!(app.rows_in("appointments").await, accepted);
}

#[tokio::test]
async fn a_reschedule_racing_a_new_booking_for_the_same_time_lets_exactly_one_win() {
    let (app, doctor, day) = busy_practice().await;
    let admin = app.staff("admin").await;
    let patients = app.patients(20, 20).await;
    let slot = |n: i64| {
        let start = day + Duration::hours(13) + Duration::minutes(30 * n);
        (start, start + Duration::minutes(30))
    };

    for (round, pair) in patients.chunks(2).enumerate() {
        let (holder, rival) = (&pair[0], &pair[1]);
        let (held, target) = (slot(2 * round as i64), slot(2 * round as i64 + 1));
        let appointment = app.book(holder, &doctor.id, held.0, held.1).await;
        let id = appointment["id"].as_str().unwrap();

        let (moved, booked) = tokio::join!(
            async { answer(app.reschedule(holder, id, target.0, target.1).await).await },
            async { answer(app.book_raw(rival, &doctor.id, target.0, target.1).await).await },
        );
        let wins = usize::from(won(&moved, StatusCode::OK))
            + usize::from(won(&booked, StatusCode::CREATED));
        assert_eq!(wins, 1, "round {round}: {moved:?} / {booked:?}");

        let (_, now) = answer(app.appointment(holder, id).await).await;
        let expected = if moved.0 == StatusCode::OK {
            target
        } else {
            held
        };
        assert_eq!(
            (at(&now["start"]), at(&now["end"])),
            expected,
            "round {round}: {now}"
        );
    }

    let (_, all) = answer(app.get("/api/v1/appointments", &admin.token).await).await;
    let open: Vec<_> = all["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] != "cancelled")
        .map(|a| (at(&a["start"]), at(&a["end"])))
        .collect();
    assert!(open.len() >= 10, "{all}");
    assert_eq!(
        app.rows_in("reservations").await,
        open.len() as i64,
        "one reservation each"
    );
    // The free slots are exactly the ones no appointment holds.
    let free = app
        .free_starts(&doctor.id, &admin.token, day, day + Duration::days(1), 30)
        .await;
    assert_eq!(free.len() + open.len(), 20, "free: {free:?}");
    for start in &free {
        assert!(
            open.iter().all(|(s, _)| s != start),
            "{start} is both free and booked"
        );
    }
    assert_disjoint(open);
}
