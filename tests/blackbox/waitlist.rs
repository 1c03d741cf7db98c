//! The waitlist: joining and leaving, offers of freed time to the first patient whose request
//! fits, holds nobody else can book, accept, decline, expiry, and races.

use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::helpers::{
    TestApp, TestDb, User, eventually, expect_problem, expect_status, problem_fields, spawn_app,
    spawn_app_on, spawn_process_with,
};
use crate::scheduling::{instant, rfc3339};

/// How long a test waits for the matcher.
const PATIENCE: StdDuration = StdDuration::from_secs(20);

/// A doctor whose window 09:00–10:00 UTC, three days ahead, is fully booked by two patients
/// (09:00 and 09:30); returns the doctor, the 09:00 appointment and its patient, and the day.
struct Booked {
    doctor: User,
    first: Value,
    first_patient: User,
    nine: OffsetDateTime,
}

async fn fully_booked(app: &TestApp) -> Booked {
    let doctor = app.register("doctor", "Dr. Wait", "UTC").await;
    let day = (OffsetDateTime::now_utc() + Duration::days(3)).date();
    let nine = day.midnight().assume_utc() + Duration::hours(9);
    app.open_window(&doctor, nine, nine + Duration::hours(1))
        .await;
    let first_patient = app.patient().await;
    let first = app
        .book(
            &first_patient,
            &doctor.id,
            nine,
            nine + Duration::minutes(30),
        )
        .await;
    let second = app.patient().await;
    app.book(
        &second,
        &doctor.id,
        nine + Duration::minutes(30),
        nine + Duration::hours(1),
    )
    .await;
    Booked {
        doctor,
        first,
        first_patient,
        nine,
    }
}

fn date_of(at: OffsetDateTime, days: i64) -> String {
    (at + Duration::days(days)).date().to_string()
}

async fn join_raw(app: &TestApp, patient: &User, doctor: &str, body: &Value) -> reqwest::Response {
    app.post(
        &format!("/api/v1/doctors/{doctor}/waitlist"),
        Some(&patient.token),
        body,
    )
    .await
}

/// Joins for `[from, to]` (days after `at`) and `minutes`; returns the entry.
async fn join(
    app: &TestApp,
    patient: &User,
    doctor: &str,
    at: OffsetDateTime,
    days: (i64, i64),
    minutes: i64,
) -> Value {
    let body = json!({
        "from": date_of(at, days.0), "to": date_of(at, days.1), "duration_minutes": minutes
    });
    expect_status(
        join_raw(app, patient, doctor, &body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn my_waitlist(app: &TestApp, patient: &User) -> Vec<Value> {
    let body = expect_status(
        app.get("/api/v1/me/waitlist", &patient.token).await,
        StatusCode::OK,
    )
    .await;
    body["entries"].as_array().expect("entries").clone()
}

/// The open offer of the patient's only entry, if any.
async fn offer_of(app: &TestApp, patient: &User) -> Option<Value> {
    my_waitlist(app, patient)
        .await
        .first()
        .map(|entry| entry["offer"].clone())
        .filter(|offer| !offer.is_null())
}

async fn await_offer(app: &TestApp, patient: &User) -> Value {
    eventually("the patient is offered time", PATIENCE, || async {
        offer_of(app, patient).await.is_some()
    })
    .await;
    offer_of(app, patient).await.expect("an offer")
}

async fn cancel(app: &TestApp, user: &User, appointment: &Value) {
    let id = appointment["id"].as_str().expect("id");
    expect_status(
        app.act(user, id, "cancel", &json!({ "reason": "cannot come" }))
            .await,
        StatusCode::OK,
    )
    .await;
}

async fn answer(app: &TestApp, patient: &User, offer: &Value, action: &str) -> reqwest::Response {
    let id = offer["id"].as_str().expect("offer id");
    app.post(
        &format!("/api/v1/waitlist/offers/{id}/{action}"),
        Some(&patient.token),
        &json!({}),
    )
    .await
}

/// Whether the matcher has read every event in the store.
async fn matcher_caught_up(app: &TestApp) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM projection_checkpoints WHERE name = 'waitlist_matcher'
            AND (transaction_id, global_position) >= ALL (
                SELECT transaction_id, global_position FROM events))",
    )
    .fetch_one(&app.pool)
    .await
    .expect("compare the matcher's checkpoint")
}

#[tokio::test]
async fn a_patient_joins_sees_and_leaves_a_waitlist() {
    let app = spawn_app().await;
    let doctor = app.register("doctor", "Dr. List", "UTC").await;
    let patient = app.patient().await;
    let now = OffsetDateTime::now_utc();
    let entry = join(&app, &patient, &doctor.id, now, (1, 7), 30).await;
    assert_eq!(entry["status"], "waiting", "{entry}");
    assert_eq!(entry["doctor_id"], doctor.id.as_str());
    assert_eq!(entry["doctor_name"], "Dr. List");
    assert_eq!(entry["duration_minutes"], 30);
    assert!(entry["offer"].is_null());
    let listed = my_waitlist(&app, &patient).await;
    assert_eq!(listed, vec![entry.clone()]);

    // Nobody else sees it or can remove it.
    let other = app.patient().await;
    assert!(my_waitlist(&app, &other).await.is_empty());
    let path = format!("/api/v1/me/waitlist/{}", entry["id"].as_str().unwrap());
    expect_problem(app.delete(&path, &other.token).await, StatusCode::NOT_FOUND).await;

    expect_status(
        app.delete(&path, &patient.token).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert!(my_waitlist(&app, &patient).await.is_empty());

    // Doctors do not join waitlists; unknown doctors have none.
    let body = json!({ "from": date_of(now, 1), "to": date_of(now, 2), "duration_minutes": 30 });
    expect_problem(
        join_raw(&app, &doctor, &doctor.id, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let nobody = uuid::Uuid::new_v4().to_string();
    expect_problem(
        join_raw(&app, &patient, &nobody, &body).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn bad_waitlist_requests_are_refused_naming_each_field_and_change_nothing() {
    let app = spawn_app().await;
    let doctor = app.register("doctor", "Dr. Strict", "UTC").await;
    let patient = app.patient().await;
    let now = OffsetDateTime::now_utc();
    let cases = [
        (
            json!({ "from": "soon", "to": "2020-01-01", "duration_minutes": 3 }),
            vec!["from", "to", "duration_minutes"],
        ),
        (
            json!({ "from": date_of(now, 5), "to": date_of(now, 2), "duration_minutes": 30 }),
            vec!["to"],
        ),
        (
            json!({ "from": date_of(now, 1), "to": date_of(now, 400), "duration_minutes": 600 }),
            vec!["to", "duration_minutes"],
        ),
        (
            json!({ "from": date_of(now, 1), "to": date_of(now, 2), "duration_minutes": "half an hour" }),
            vec!["duration_minutes"],
        ),
        (
            json!({ "from": date_of(now, 1), "to": date_of(now, 2) }),
            vec!["duration_minutes"],
        ),
    ];
    for (body, fields) in cases {
        let problem = expect_problem(
            join_raw(&app, &patient, &doctor.id, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let mut named = problem_fields(&problem);
        named.sort();
        let mut expected: Vec<String> = fields.iter().map(ToString::to_string).collect();
        expected.sort();
        assert_eq!(named, expected, "{body} → {problem}");
    }
    assert_eq!(app.rows_in("waitlist_entries").await, 0);
    let unknown_offer = format!("/api/v1/waitlist/offers/{}/accept", uuid::Uuid::new_v4());
    expect_problem(
        app.post(&unknown_offer, Some(&patient.token), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_cancellation_is_offered_to_the_first_fitting_patient_held_and_accepted() {
    let app = spawn_app().await;
    let booked = fully_booked(&app).await;
    let doctor = &booked.doctor.id;
    let now = OffsetDateTime::now_utc();
    // First in line, but wants an hour: a freed half hour does not fit.
    let too_long = app.patient().await;
    join(&app, &too_long, doctor, now, (1, 10), 60).await;
    // Second, but for other days.
    let other_days = app.patient().await;
    join(&app, &other_days, doctor, now, (5, 10), 30).await;
    // Third: fits. Fourth: fits too, but comes later.
    let fits = app.patient().await;
    join(&app, &fits, doctor, now, (1, 10), 30).await;
    let later = app.patient().await;
    join(&app, &later, doctor, now, (2, 4), 30).await;

    cancel(&app, &booked.first_patient, &booked.first).await;
    let offer = await_offer(&app, &fits).await;
    assert_eq!(
        instant(offer["start"].as_str().unwrap()),
        booked.nine,
        "{offer}"
    );
    assert_eq!(
        instant(offer["end"].as_str().unwrap()),
        booked.nine + Duration::minutes(30)
    );
    // Told in the app (and by e-mail and push, through the outbox), about the offer's appointment.
    let inbox = expect_status(
        app.get("/api/v1/notifications", &fits.token).await,
        StatusCode::OK,
    )
    .await;
    let told = &inbox["items"][0];
    assert_eq!(told["kind"], "waitlist_offer", "{inbox}");
    assert_eq!(told["appointment_id"], offer["id"], "{inbox}");
    let outbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification_deliveries WHERE kind = 'waitlist_offer' AND user_id = $1::uuid",
    )
    .bind(&fits.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(outbox, 2, "e-mail and push");
    let expires = instant(offer["expires_at"].as_str().unwrap());
    let hold = expires - now;
    assert!(
        hold > Duration::minutes(14) && hold <= Duration::minutes(16),
        "{offer}"
    );
    eventually("the matcher has read everything", PATIENCE, || {
        matcher_caught_up(&app)
    })
    .await;
    for patient in [&too_long, &other_days, &later] {
        assert!(offer_of(&app, patient).await.is_none());
    }

    // Held: not among the free slots, and not bookable by anyone else.
    let day_end = booked.nine + Duration::hours(1);
    let free = app
        .free_starts(doctor, &later.token, booked.nine, day_end, 30)
        .await;
    assert!(free.is_empty(), "{free:?}");
    let refused = app
        .book_raw(
            &later,
            doctor,
            booked.nine,
            booked.nine + Duration::minutes(30),
        )
        .await;
    let problem = expect_problem(refused, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], "slot_unavailable");
    // Nor by the offered patient's neighbour in line answering an offer that is not theirs.
    expect_problem(
        answer(&app, &later, &offer, "accept").await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let appointment = expect_status(
        answer(&app, &fits, &offer, "accept").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(appointment["status"], "pending", "{appointment}");
    assert_eq!(appointment["patient_id"], fits.id.as_str());
    assert_eq!(instant(appointment["start"].as_str().unwrap()), booked.nine);
    assert!(my_waitlist(&app, &fits).await.is_empty());
    // An accepted offer cannot be declined any more; accepting again answers the same booking.
    let closed = expect_problem(
        answer(&app, &fits, &offer, "decline").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(closed["code"], "offer_closed");
    let again = expect_status(
        answer(&app, &fits, &offer, "accept").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again["id"], appointment["id"]);
    assert_eq!(app.rows_in("slot_holds").await, 0);
}

#[tokio::test]
async fn a_declined_offer_goes_to_the_next_patient_and_the_decliner_keeps_waiting() {
    let app = spawn_app().await;
    let booked = fully_booked(&app).await;
    let doctor = &booked.doctor.id;
    let now = OffsetDateTime::now_utc();
    let first = app.patient().await;
    join(&app, &first, doctor, now, (1, 10), 30).await;
    let second = app.patient().await;
    join(&app, &second, doctor, now, (1, 10), 30).await;

    cancel(&app, &booked.first_patient, &booked.first).await;
    let offer = await_offer(&app, &first).await;
    expect_status(
        answer(&app, &first, &offer, "decline").await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let next = await_offer(&app, &second).await;
    assert_eq!(next["start"], offer["start"]);
    assert_ne!(next["id"], offer["id"]);
    // A declined offer is closed: accepting it later is a conflict, not an unknown offer.
    let closed = expect_problem(
        answer(&app, &first, &offer, "accept").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(closed["code"], "offer_closed", "{closed}");
    // The decliner waits again, for other times.
    let entries = my_waitlist(&app, &first).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], "waiting");
    // Leaving with an open offer withdraws it: the time goes back to the first in line, who
    // declined it, so it is free again.
    let entry = my_waitlist(&app, &second).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect_status(
        app.delete(&format!("/api/v1/me/waitlist/{entry}"), &second.token)
            .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let withdrawn = expect_problem(
        answer(&app, &second, &next, "accept").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(withdrawn["code"], "offer_closed", "{withdrawn}");
    eventually("the withdrawn time is free again", PATIENCE, || async {
        let end = booked.nine + Duration::hours(1);
        app.free_starts(doctor, &first.token, booked.nine, end, 30)
            .await
            == vec![booked.nine]
    })
    .await;
}

#[tokio::test]
async fn an_offer_not_accepted_in_time_expires_and_goes_to_the_next_patient() {
    let db = TestDb::create().await;
    // 0.05 minutes: offers hold their time for 3 s.
    let (_server, app) =
        spawn_process_with(&db.url, &[("TELEMED_WAITLIST_HOLD_MINUTES", "0.05")]).await;
    let booked = fully_booked(&app).await;
    let doctor = &booked.doctor.id;
    let now = OffsetDateTime::now_utc();
    let slow = app.patient().await;
    join(&app, &slow, doctor, now, (1, 10), 30).await;
    let next = app.patient().await;
    join(&app, &next, doctor, now, (1, 10), 30).await;

    cancel(&app, &booked.first_patient, &booked.first).await;
    let offer = await_offer(&app, &slow).await;
    let expires = instant(offer["expires_at"].as_str().unwrap());
    assert!(
        expires - OffsetDateTime::now_utc() <= Duration::seconds(3),
        "{offer}"
    );
    let handed_on = await_offer(&app, &next).await;
    assert_eq!(handed_on["start"], offer["start"]);
    // Too late to answer the lapsed one: it is known, and expired.
    for action in ["accept", "decline"] {
        let late = answer(&app, &slow, &offer, action).await;
        let problem = expect_problem(late, StatusCode::CONFLICT).await;
        assert_eq!(problem["code"], "offer_expired", "{action}: {problem}");
    }
    // Still nobody else's.
    expect_problem(
        answer(&app, &next, &offer, "accept").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let entries = my_waitlist(&app, &slow).await;
    assert_eq!(entries[0]["status"], "waiting", "{entries:?}");
}

#[tokio::test]
async fn concurrent_accepts_and_bookings_of_a_held_slot_make_exactly_one_appointment() {
    let app = spawn_app().await;
    let booked = fully_booked(&app).await;
    let doctor = booked.doctor.id.clone();
    let now = OffsetDateTime::now_utc();
    let waiting = app.patient().await;
    join(&app, &waiting, &doctor, now, (1, 10), 30).await;
    cancel(&app, &booked.first_patient, &booked.first).await;
    let offer = await_offer(&app, &waiting).await;

    let rivals = app.patients(20, 10).await;
    let (start, end) = (booked.nine, booked.nine + Duration::minutes(30));
    let accepts = (0..10).map(|_| {
        let (app, waiting, offer) = (&app, &waiting, &offer);
        async move { answer(app, waiting, offer, "accept").await.status() }
    });
    let bookings = rivals.iter().map(|rival| {
        let (app, doctor) = (&app, &doctor);
        async move { app.book_raw(rival, doctor, start, end).await.status() }
    });
    let (accepted, booked_directly) = tokio::join!(
        futures::future::join_all(accepts),
        futures::future::join_all(bookings)
    );
    let attempts = accepted.len() + booked_directly.len();
    assert!(
        accepted.iter().all(|s| *s == StatusCode::CREATED),
        "{accepted:?}"
    );
    assert!(
        booked_directly.iter().all(|s| *s == StatusCode::CONFLICT),
        "{booked_directly:?}"
    );
    let holders: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "SELECT patient_id FROM appointments
          WHERE doctor_id = $1::uuid AND start_at < $3 AND end_at > $2 AND status <> 'cancelled'",
    )
    .bind(&doctor)
    .bind(start)
    .bind(end)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].0.to_string(), waiting.id);
    println!("waitlist race: {attempts} attempts (10 accepts, 20 bookings), 1 winner: the offer");
}

#[tokio::test]
async fn a_freed_slot_raced_by_bookings_and_the_matcher_is_taken_once() {
    let app = spawn_app().await;
    let booked = fully_booked(&app).await;
    let doctor = booked.doctor.id.clone();
    let now = OffsetDateTime::now_utc();
    let waiting = app.patient().await;
    join(&app, &waiting, &doctor, now, (1, 10), 30).await;
    let rivals = app.patients(20, 10).await;
    let (start, end) = (booked.nine, booked.nine + Duration::minutes(30));
    // The cancellation frees the slot while twenty patients try to book it: the matcher's
    // hold and the bookings race on the doctor-day.
    let bookings = rivals.iter().map(|rival| {
        let (app, doctor) = (&app, &doctor);
        async move { app.book_raw(rival, doctor, start, end).await.status() }
    });
    let ((), statuses) = tokio::join!(
        cancel(&app, &booked.first_patient, &booked.first),
        futures::future::join_all(bookings)
    );
    eventually("the matcher has read everything", PATIENCE, || {
        matcher_caught_up(&app)
    })
    .await;
    let winners = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM slot_holds WHERE doctor_id = $1::uuid AND start_at < $3 AND end_at > $2",
    )
    .bind(&doctor)
    .bind(start)
    .bind(end)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM appointments
          WHERE doctor_id = $1::uuid AND start_at < $3 AND end_at > $2 AND status <> 'cancelled'",
    )
    .bind(&doctor)
    .bind(start)
    .bind(end)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(usize::try_from(open).unwrap(), winners);
    assert_eq!(open + held, 1, "{winners} bookings won, {held} holds");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT)
    );
    println!(
        "waitlist free race: 21 contenders (20 bookings, the matcher), {winners} booking(s) and {held} hold(s) won"
    );
}

#[tokio::test]
async fn a_freed_slot_in_time_off_is_not_offered_until_the_time_off_is_lifted() {
    let app = spawn_app().await;
    let booked = fully_booked(&app).await;
    let doctor = &booked.doctor.id;
    let half_past = booked.nine + Duration::minutes(30);
    // Time off over the booked 09:00 appointment is recorded (it lists the appointment).
    let body = json!({ "start": rfc3339(booked.nine), "end": rfc3339(half_past) });
    let time_off = expect_status(
        app.post(
            "/api/v1/doctors/me/time-off",
            Some(&booked.doctor.token),
            &body,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let patient = app.patient().await;
    join(
        &app,
        &patient,
        doctor,
        OffsetDateTime::now_utc(),
        (1, 10),
        30,
    )
    .await;

    // The 09:00 slot is freed, but it lies in the doctor's time off: no offer, no hold.
    cancel(&app, &booked.first_patient, &booked.first).await;
    eventually("the matcher has read everything", PATIENCE, || {
        matcher_caught_up(&app)
    })
    .await;
    assert!(offer_of(&app, &patient).await.is_none());
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM slot_holds")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(holds, 0);

    // Lifting the time off frees the slot, and the waiting patient is offered it.
    let id = time_off["id"].as_str().unwrap();
    expect_status(
        app.delete(
            &format!("/api/v1/doctors/me/time-off/{id}"),
            &booked.doctor.token,
        )
        .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let offer = await_offer(&app, &patient).await;
    assert_eq!(instant(offer["start"].as_str().unwrap()), booked.nine);
}

#[tokio::test]
async fn shorter_buffers_free_time_and_wake_the_matcher() {
    let app = spawn_app().await;
    let doctor = app.register("doctor", "Dr. Buffer", "UTC").await;
    let policy = |after: i64| json!({ "buffer_before_minutes": 0, "buffer_after_minutes": after });
    expect_status(
        app.put("/api/v1/doctors/me/scheduling", &doctor.token, &policy(30))
            .await,
        StatusCode::OK,
    )
    .await;
    let day = (OffsetDateTime::now_utc() + Duration::days(3)).date();
    let nine = day.midnight().assume_utc() + Duration::hours(9);
    let half_past = nine + Duration::minutes(30);
    app.open_window(&doctor, nine, nine + Duration::hours(1))
        .await;
    let booked = app.patient().await;
    app.book(&booked, &doctor.id, nine, half_past).await;
    // 09:30 lies in the 09:00 appointment's 30-minute buffer: nothing is free.
    let waiting = app.patient().await;
    join(&app, &waiting, &doctor.id, nine, (-1, 1), 30).await;
    eventually("the matcher has read everything", PATIENCE, || {
        matcher_caught_up(&app)
    })
    .await;
    assert!(offer_of(&app, &waiting).await.is_none());

    // Without the buffer, 09:30 is free: the waiting patient is offered it.
    expect_status(
        app.put("/api/v1/doctors/me/scheduling", &doctor.token, &policy(0))
            .await,
        StatusCode::OK,
    )
    .await;
    let offer = await_offer(&app, &waiting).await;
    assert_eq!(
        instant(offer["start"].as_str().unwrap()),
        half_past,
        "{offer}"
    );
}

#[tokio::test]
async fn join_dates_are_checked_on_the_doctors_calendar() {
    use time_tz::OffsetDateTimeExt;
    let app = spawn_app().await;
    // At any hour one of them is on another date than UTC: Kiritimati (UTC+14) a day ahead
    // from 10:00 UTC, Honolulu (UTC-10) a day behind until 10:00 UTC.
    let zones = [
        (
            "Pacific/Kiritimati",
            time_tz::timezones::db::pacific::KIRITIMATI,
        ),
        (
            "Pacific/Honolulu",
            time_tz::timezones::db::pacific::HONOLULU,
        ),
    ];
    for (name, zone) in zones {
        let doctor = app.register("doctor", "Dr. Far", name).await;
        let patient = app.patient().await;
        let now = OffsetDateTime::now_utc();
        let today = now.to_timezone(zone).date();
        let last = (now + Duration::days(180)).to_timezone(zone).date();
        let body = |from: time::Date, to: time::Date| json!({ "from": from.to_string(), "to": to.to_string(), "duration_minutes": 30 });
        // The doctor's today up to the last day of the horizon there.
        let entry = expect_status(
            join_raw(&app, &patient, &doctor.id, &body(today, last)).await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            (entry["from"].as_str(), entry["to"].as_str()),
            (
                Some(today.to_string().as_str()),
                Some(last.to_string().as_str())
            ),
            "{name}: {entry}"
        );
        // The doctor's yesterday is past; the day after the horizon is too far.
        let yesterday = today.previous_day().unwrap();
        let past = expect_problem(
            join_raw(&app, &patient, &doctor.id, &body(yesterday, yesterday)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            problem_fields(&past),
            vec!["to".to_string()],
            "{name}: {past}"
        );
        let beyond = last.next_day().unwrap();
        let mut far = problem_fields(
            &expect_problem(
                join_raw(&app, &patient, &doctor.id, &body(beyond, beyond)).await,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await,
        );
        far.sort();
        assert_eq!(far, vec!["from".to_string(), "to".to_string()], "{name}");
    }
}

/// How a race between an accept and something that closes the offer may end.
#[derive(Clone, Copy, Debug)]
enum Rival {
    Decline,
    Leave,
    Expiry,
}

/// Round `round` of an accept race: `patient` waits for day `3 + round` alone, the doctor opens
/// a half hour there, and the patient is offered it; returns the entry and the offer.
async fn offered_round(
    app: &TestApp,
    doctor: &User,
    patient: &User,
    round: i64,
) -> (String, Value) {
    let now = OffsetDateTime::now_utc();
    let day = 3 + round;
    let entry = join(app, patient, &doctor.id, now, (day, day), 30).await;
    let nine = (now + Duration::days(day)).date().midnight().assume_utc() + Duration::hours(9);
    app.open_window(doctor, nine, nine + Duration::minutes(30))
        .await;
    let offer = await_offer(app, patient).await;
    (entry["id"].as_str().unwrap().to_string(), offer)
}

/// Events recorded for aggregate `id`.
async fn events_of_type(app: &TestApp, aggregate_type: &str, id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Races an accept of `offer` against `rival`; asserts that either the accept booked the
/// offer's appointment and the entry records it, or it answered 409 and no appointment exists.
/// Returns whether the accept won.
async fn race_accept(
    app: &TestApp,
    patient: &User,
    (entry, offer): (&str, &Value),
    rival: Rival,
) -> bool {
    let offer_id = offer["id"].as_str().unwrap();
    let expires = instant(offer["expires_at"].as_str().unwrap());
    let rival_answer = async {
        match rival {
            Rival::Decline => Some(answer(app, patient, offer, "decline").await.status()),
            Rival::Leave => Some(
                app.delete(&format!("/api/v1/me/waitlist/{entry}"), &patient.token)
                    .await
                    .status(),
            ),
            Rival::Expiry => None,
        }
    };
    let accept = async {
        if let Rival::Expiry = rival {
            // Accept at the last moment, as the matcher's round expires the offer.
            let last_moment = expires - Duration::milliseconds(15);
            eventually("the offer's last moment", PATIENCE, || async {
                OffsetDateTime::now_utc() >= last_moment
            })
            .await;
        }
        answer(app, patient, offer, "accept").await
    };
    let (accepted, rival_status) = tokio::join!(accept, rival_answer);
    let status = accepted.status();
    let body: Value = accepted.json().await.unwrap_or(Value::Null);
    let appointment_events = events_of_type(app, "appointment", offer_id).await;
    match status {
        StatusCode::CREATED => {
            assert_eq!(body["id"], offer["id"], "{rival:?}: {body}");
            assert!(appointment_events > 0, "{rival:?}");
            let recorded: String =
                sqlx::query_scalar("SELECT status FROM waitlist_entries WHERE entry_id = $1::uuid")
                    .bind(entry)
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            assert_eq!(recorded, "booked", "{rival:?}");
            if let Some(rival_status) = rival_status {
                assert_eq!(rival_status, StatusCode::CONFLICT, "{rival:?}");
            }
            true
        }
        StatusCode::CONFLICT => {
            assert_eq!(
                appointment_events, 0,
                "{rival:?}: the accept answered {body} but booked the offer's appointment"
            );
            if let Some(rival_status) = rival_status {
                assert_eq!(rival_status, StatusCode::NO_CONTENT, "{rival:?}: {body}");
            }
            false
        }
        other => panic!("{rival:?}: the accept answered {other}: {body}"),
    }
}

#[tokio::test]
async fn an_accept_racing_a_decline_or_a_leave_books_only_when_it_wins() {
    let app = spawn_app().await;
    let doctor = app.register("doctor", "Dr. Race", "UTC").await;
    let mut won = 0;
    for round in 0..12 {
        let patient = app.patient().await;
        let rival = if round % 2 == 0 {
            Rival::Decline
        } else {
            Rival::Leave
        };
        let offered = offered_round(&app, &doctor, &patient, round).await;
        won += usize::from(race_accept(&app, &patient, (&offered.0, &offered.1), rival).await);
    }
    println!("waitlist accept race: 12 rounds against a decline or a leave, the accept won {won}");
}

#[tokio::test]
async fn an_accept_racing_the_expiry_books_only_when_it_wins() {
    let db = TestDb::create().await;
    let app = spawn_app_on(db, |config| {
        config.waitlist_hold = Duration::milliseconds(1500);
    })
    .await;
    let doctor = app.register("doctor", "Dr. Lapse", "UTC").await;
    let mut won = 0;
    for round in 0..8 {
        let patient = app.patient().await;
        let offered = offered_round(&app, &doctor, &patient, round).await;
        won +=
            usize::from(race_accept(&app, &patient, (&offered.0, &offered.1), Rival::Expiry).await);
    }
    println!("waitlist expiry race: 8 rounds, the accept won {won}");
}

#[tokio::test]
async fn a_patient_waits_once_per_doctor_and_on_at_most_ten_waitlists() {
    let app = spawn_app().await;
    let now = OffsetDateTime::now_utc();
    let patient = app.patient().await;
    let mut doctors = Vec::new();
    for _ in 0..11 {
        doctors.push(app.doctor().await);
    }
    let first = join(&app, &patient, &doctors[0].id, now, (1, 7), 30).await;
    // Once per doctor: a second entry is refused, naming the open one, and changes nothing.
    let body = json!({ "from": date_of(now, 2), "to": date_of(now, 9), "duration_minutes": 60 });
    let again = expect_problem(
        join_raw(&app, &patient, &doctors[0].id, &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(again["code"], "already_waiting", "{again}");
    let first_id = first["id"].as_str().unwrap();
    assert!(
        again["detail"].as_str().unwrap().contains(first_id),
        "{again}"
    );
    assert_eq!(my_waitlist(&app, &patient).await, vec![first.clone()]);

    // Ten open entries at most.
    for doctor in &doctors[1..10] {
        join(&app, &patient, &doctor.id, now, (1, 7), 30).await;
    }
    let full = expect_problem(
        join_raw(&app, &patient, &doctors[10].id, &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(full["code"], "too_many_waitlist_entries", "{full}");
    assert!(full["detail"].as_str().unwrap().contains("10"), "{full}");
    assert_eq!(my_waitlist(&app, &patient).await.len(), 10);
    assert_eq!(app.rows_in("waitlist_entries").await, 10);

    // Leaving frees a seat, and the doctor left may be joined again.
    expect_status(
        app.delete(&format!("/api/v1/me/waitlist/{first_id}"), &patient.token)
            .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    join(&app, &patient, &doctors[0].id, now, (2, 9), 60).await;
    expect_problem(
        join_raw(&app, &patient, &doctors[10].id, &body).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn concurrent_joins_keep_one_entry_per_doctor_and_ten_per_patient() {
    let app = spawn_app().await;
    let now = OffsetDateTime::now_utc();
    let body = json!({ "from": date_of(now, 1), "to": date_of(now, 7), "duration_minutes": 30 });
    // Twelve joins of one doctor at once: one entry.
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let same = futures::future::join_all(
        (0..12).map(|_| async { join_raw(&app, &patient, &doctor.id, &body).await.status() }),
    )
    .await;
    let created = same.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{same:?}");
    assert!(
        same.iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{same:?}"
    );
    // Fifteen joins of fifteen doctors at once: ten entries.
    let patient = app.patient().await;
    let mut doctors = Vec::new();
    for _ in 0..15 {
        doctors.push(app.doctor().await);
    }
    let many = futures::future::join_all(doctors.iter().map(|doctor| {
        let (app, patient, body) = (&app, &patient, &body);
        async move { join_raw(app, patient, &doctor.id, body).await.status() }
    }))
    .await;
    let created = many.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(created, 10, "{many:?}");
    assert!(
        many.iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{many:?}"
    );
    assert_eq!(my_waitlist(&app, &patient).await.len(), 10);
}
