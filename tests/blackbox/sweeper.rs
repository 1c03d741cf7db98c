//! The sweeper frees what a crash in the middle of a booking leaves behind.

use reqwest::StatusCode;
use serde_json::json;
use telemed_commands::{Clock, CommandContext, Scheduling, SchedulingRules};
use telemed_domain::availability::{AvailabilityCommand, AvailabilityError};
use telemed_domain::calendar::Interval;
use telemed_domain::{AppointmentId, DayId, ReservationId, UserId};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::helpers::{eventually, expect_status, spawn_app};

#[tokio::test]
async fn a_reservation_without_an_appointment_is_released_and_the_slot_is_bookable_again() {
    let app = spawn_app().await;
    let doctor = app.register("doctor", "Dr. Sweep", "UTC").await;
    let patient = app.patient().await;
    let day = (OffsetDateTime::now_utc() + Duration::days(3)).date();
    let start = day.midnight().assume_utc() + Duration::hours(9);
    let end = start + Duration::minutes(30);
    let (start_text, end_text) = (
        start.format(&Rfc3339).unwrap(),
        end.format(&Rfc3339).unwrap(),
    );
    expect_status(
        app.post(
            &format!("/api/v1/doctors/{}/availability", doctor.id),
            Some(&doctor.token),
            &json!({ "start": start_text, "end": end_text }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    // A booking that crashed between the reservation and the appointment: reserve directly.
    let scheduling = Scheduling::new(&app.pool, Clock::system(), SchedulingRules::default());
    let doctor_id: UserId = doctor.id.parse().unwrap();
    let day_id = DayId::new(doctor_id, day);
    let interval = Interval::new(start, end).unwrap();
    let orphan = AvailabilityCommand::Reserve {
        day: day_id,
        reservation_id: ReservationId::new(),
        appointment_id: AppointmentId::new(),
        patient_id: patient.id.parse().unwrap(),
        interval,
        policy: Default::default(),
        hold: None,
    };
    let executor = telemed_commands::Executor::new(app.pool.clone());
    // A store of its own, as another process would have: the app's cached doctor-day is now
    // stale, and must not let the booking below through.
    let days = telemed_commands::store::Store::<telemed_domain::availability::DoctorDay>::new(
        &app.pool,
        (),
    );
    executor
        .execute(
            &days,
            &day_id.to_string(),
            orphan,
            &CommandContext::system("test"),
        )
        .await
        .unwrap();
    let booking = json!({ "doctor_id": doctor.id, "start": start_text, "end": end_text, "reason": "check-up" });
    let refused = app
        .post("/api/v1/appointments", Some(&patient.token), &booking)
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::CONFLICT,
        "the orphan holds the slot"
    );

    // The sweeper reads the read model: wait until the orphan is projected, then sweep with a
    // zero timeout instead of waiting two minutes.
    eventually(
        "the orphan is projected",
        std::time::Duration::from_secs(10),
        || async { app.rows_in("reservations").await == 1 },
    )
    .await;
    let swept = telemed_api::sweeper::sweep(&app.pool, &scheduling, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.0, 1, "one orphaned reservation released");

    let booked = app
        .post("/api/v1/appointments", Some(&patient.token), &booking)
        .await;
    let appointment = expect_status(booked, StatusCode::CREATED).await;
    assert_eq!(appointment["status"], "pending");
    // A sweep now leaves the real booking alone.
    let again = telemed_api::sweeper::sweep(&app.pool, &scheduling, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.0, 0);
    let second = AvailabilityCommand::Reserve {
        day: day_id,
        reservation_id: ReservationId::new(),
        appointment_id: AppointmentId::new(),
        patient_id: patient.id.parse().unwrap(),
        interval,
        policy: Default::default(),
        hold: None,
    };
    let still_taken = executor
        .execute(
            &days,
            &day_id.to_string(),
            second,
            &CommandContext::system("test"),
        )
        .await;
    assert!(matches!(
        still_taken,
        Err(telemed_commands::CommandError::Rejected(
            AvailabilityError::SlotUnavailable
        ))
    ));
}
