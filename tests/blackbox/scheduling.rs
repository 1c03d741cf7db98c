//! Scheduling over HTTP: availability windows, free slots, the appointment lifecycle, its
//! illegal transitions, who may do what, idempotent booking and the dashboards.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::helpers::{
    TestApp, TestDb, User, eventually, expect_problem, expect_status, hold_read_models,
    keys_in_progress, problem_fields, spawn_app, spawn_app_on,
};

/// An instant as RFC 3339 in UTC (`…Z`), the form the server answers with.
pub fn rfc3339(instant: OffsetDateTime) -> String {
    instant.to_offset(UtcOffset::UTC).format(&Rfc3339).unwrap()
}

/// Parses an RFC 3339 instant (any offset).
pub fn instant(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// The instant in a JSON string field.
pub fn at(value: &Value) -> OffsetDateTime {
    instant(
        value
            .as_str()
            .unwrap_or_else(|| panic!("{value} is not a string")),
    )
}

/// Midnight UTC `days` days after today (UTC).
pub fn days_ahead(days: i64) -> OffsetDateTime {
    (OffsetDateTime::now_utc() + Duration::days(days))
        .date()
        .midnight()
        .assume_utc()
}

/// Asserts a 409 problem with `code` and returns it.
pub async fn expect_conflict(response: Response, code: &str) -> Value {
    let problem = expect_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], code, "{problem}");
    problem
}

/// Asserts a 422 problem that names `field` and returns it.
pub async fn expect_invalid(response: Response, field: &str) -> Value {
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        problem_fields(&problem).contains(&field.to_string()),
        "{field} not named: {problem}"
    );
    problem
}

/// An app with a doctor in America/New_York, a patient in Asia/Kolkata and one window three
/// days ahead from 14:00 to 17:00 UTC, which is one New York morning in any season.
struct Clinic {
    app: TestApp,
    doctor: User,
    patient: User,
    window: Value,
    day: OffsetDateTime,
}

impl Clinic {
    async fn open() -> Self {
        Self::open_in(spawn_app().await).await
    }

    async fn open_in(app: TestApp) -> Self {
        let doctor = app.doctor().await;
        let patient = app.patient().await;
        let day = days_ahead(3);
        let window = app
            .open_window(
                &doctor,
                day + Duration::hours(14),
                day + Duration::hours(17),
            )
            .await;
        Self {
            app,
            doctor,
            patient,
            window,
            day,
        }
    }

    /// `hh:mm` UTC on the window's day.
    fn utc(&self, hour: i64, minute: i64) -> OffsetDateTime {
        self.day + Duration::hours(hour) + Duration::minutes(minute)
    }

    /// Books 30 minutes from `hh:mm` UTC for `patient`.
    async fn book(&self, patient: &User, hour: i64, minute: i64) -> Value {
        let start = self.utc(hour, minute);
        self.app
            .book(
                patient,
                &self.doctor.id,
                start,
                start + Duration::minutes(30),
            )
            .await
    }

    /// The free 30-minute slot starts of the window's day.
    async fn free(&self) -> Vec<OffsetDateTime> {
        self.app
            .free_starts(
                &self.doctor.id,
                &self.patient.token,
                self.day,
                self.day + Duration::days(1),
                30,
            )
            .await
    }

    /// A second app on the same database whose clock runs `offset` ahead.
    async fn later(&self, offset: Duration) -> TestApp {
        let db = TestDb {
            url: self.app.db.url.clone(),
        };
        spawn_app_on(db, |c| c.clock_offset = offset).await
    }

    fn windows_path(&self) -> String {
        format!(
            "/api/v1/doctors/{}/availability/{}",
            self.doctor.id,
            id_of(&self.window)
        )
    }
}

fn id_of(value: &Value) -> &str {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// The event types of an appointment's history, read by `user`.
async fn history_types(app: &TestApp, user: &User, appointment_id: &str) -> Vec<String> {
    let history = expect_status(
        app.get(
            &format!("/api/v1/appointments/{appointment_id}/history"),
            &user.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The lifecycle

#[tokio::test]
async fn a_booking_is_confirmed_rescheduled_by_the_doctor_confirmed_by_the_patient_and_completed() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);

    let booked = clinic.book(patient, 14, 0).await;
    let id = id_of(&booked).to_string();
    assert_eq!(booked["doctor_id"], doctor.id.as_str());
    assert_eq!(booked["patient_id"], patient.id.as_str());
    assert_eq!(at(&booked["start"]), clinic.utc(14, 0));
    assert_eq!(at(&booked["end"]), clinic.utc(14, 30));
    assert!(booked["start"].as_str().unwrap().ends_with('Z'), "{booked}");
    assert_eq!(booked["reason"], "check-up");
    at(&booked["created_at"]);
    at(&booked["updated_at"]);
    assert!(!booked["position"].is_null(), "{booked}");
    assert!(
        booked.get("cancellation").is_none_or(Value::is_null),
        "{booked}"
    );
    // Read-your-writes: both participants see it at once.
    for user in [doctor, patient] {
        let read = expect_status(app.appointment(user, &id).await, StatusCode::OK).await;
        assert_eq!(read["status"], "pending");
        assert_eq!(read["start"], booked["start"]);
    }

    let confirmed = expect_status(
        app.act(doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(confirmed["status"], "confirmed");

    let moved = expect_status(
        app.reschedule(doctor, &id, clinic.utc(15, 0), clinic.utc(15, 30))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["status"], "rescheduled");
    assert_eq!(at(&moved["start"]), clinic.utc(15, 0));
    assert_eq!(at(&moved["end"]), clinic.utc(15, 30));
    assert_eq!(at(&moved["rescheduled_from"]["start"]), clinic.utc(14, 0));
    assert_eq!(at(&moved["rescheduled_from"]["end"]), clinic.utc(14, 30));
    // The other party, named by role: an appointment has one patient and one doctor.
    assert_eq!(moved["awaiting_confirmation_by"], "patient", "{moved}");
    // The old time is free again, the new one is not.
    let free = clinic.free().await;
    assert!(free.contains(&clinic.utc(14, 0)), "{free:?}");
    assert!(!free.contains(&clinic.utc(15, 0)), "{free:?}");

    // After the doctor's reschedule only the patient may confirm.
    let refused = expect_problem(
        app.act(doctor, &id, "confirm", &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        refused["detail"],
        "a reschedule is confirmed by the other party, not the one who proposed it"
    );
    let reconfirmed = expect_status(
        app.act(patient, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reconfirmed["status"], "confirmed");

    // Not started yet by this server's clock.
    expect_conflict(
        app.act(doctor, &id, "complete", &json!({})).await,
        "not_started",
    )
    .await;
    expect_conflict(
        app.act(doctor, &id, "no-show", &json!({})).await,
        "not_started",
    )
    .await;

    // A second instance whose clock is four days ahead: the visit has started there.
    let later = clinic.later(Duration::days(4)).await;
    let doctor_later = later.sign_in(doctor).await;
    let patient_later = later.sign_in(patient).await;
    expect_problem(
        later.act(&patient_later, &id, "complete", &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let completed = expect_status(
        later.act(&doctor_later, &id, "complete", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(completed["status"], "completed");
    let read = expect_status(app.appointment(patient, &id).await, StatusCode::OK).await;
    assert_eq!(read["status"], "completed");

    let history = expect_status(
        app.get(
            &format!("/api/v1/appointments/{id}/history"),
            &patient.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let events = history["events"].as_array().unwrap();
    let types: Vec<_> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "AppointmentRequested",
            "AppointmentConfirmed",
            "AppointmentRescheduled",
            "AppointmentConfirmed",
            "AppointmentCompleted"
        ]
    );
    let actors = [
        (patient, "patient"),
        (doctor, "doctor"),
        (doctor, "doctor"),
        (patient, "patient"),
        (doctor, "doctor"),
    ];
    for (n, (event, (actor, role))) in events.iter().zip(actors).enumerate() {
        assert_eq!(event["aggregate_type"], "appointment", "{event}");
        assert_eq!(event["aggregate_id"], id.as_str(), "{event}");
        assert_eq!(event["sequence"], n as i64 + 1, "{event}");
        assert_eq!(event["metadata"]["actor_id"], actor.id.as_str(), "{event}");
        assert_eq!(event["metadata"]["actor_role"], role, "{event}");
        for key in ["request_id", "command"] {
            assert!(!event["metadata"][key].is_null(), "{key} missing: {event}");
        }
        for key in ["position", "event_version", "payload"] {
            assert!(!event[key].is_null(), "{key} missing: {event}");
        }
        at(&event["recorded_at"]);
    }
}

#[tokio::test]
async fn the_doctor_records_a_no_show_once_the_visit_has_started_and_not_before() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let id = id_of(&clinic.book(patient, 16, 0).await).to_string();
    expect_status(
        app.act(doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    expect_conflict(
        app.act(doctor, &id, "no-show", &json!({})).await,
        "not_started",
    )
    .await;

    let later = clinic.later(Duration::days(4)).await;
    let doctor_later = later.sign_in(doctor).await;
    let patient_later = later.sign_in(patient).await;
    expect_problem(
        later.act(&patient_later, &id, "no-show", &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let absent = expect_status(
        later.act(&doctor_later, &id, "no-show", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(absent["status"], "no_show");
    let before = app.events_of(&id).await;
    expect_conflict(
        later.act(&doctor_later, &id, "complete", &json!({})).await,
        "invalid_transition",
    )
    .await;
    assert_eq!(app.events_of(&id).await, before);
    assert_eq!(
        history_types(app, patient, &id).await.last().unwrap(),
        "AppointmentMarkedNoShow"
    );
}

#[tokio::test]
async fn a_cancellation_records_who_cancelled_and_frees_the_slot() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let id = id_of(&clinic.book(patient, 14, 30).await).to_string();
    assert!(!clinic.free().await.contains(&clinic.utc(14, 30)));

    let cancelled = expect_status(
        app.act(
            patient,
            &id,
            "cancel",
            &json!({ "reason": "feeling better" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancellation"]["by"], patient.id.as_str());
    assert_eq!(cancelled["cancellation"]["reason"], "feeling better");
    at(&cancelled["cancellation"]["at"]);
    assert!(clinic.free().await.contains(&clinic.utc(14, 30)));
    let read = expect_status(app.appointment(doctor, &id).await, StatusCode::OK).await;
    assert_eq!(read["cancellation"], cancelled["cancellation"]);

    // The doctor cancels another one: `by` is the doctor.
    let other = id_of(&clinic.book(patient, 15, 0).await).to_string();
    let cancelled = expect_status(
        app.act(
            doctor,
            &other,
            "cancel",
            &json!({ "reason": "called away" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["cancellation"]["by"], doctor.id.as_str());
    assert_eq!(
        history_types(app, doctor, &other).await,
        ["AppointmentRequested", "AppointmentCancelled"]
    );
    // Both times can be booked again.
    let again = clinic.book(patient, 14, 30).await;
    assert_ne!(again["id"], id.as_str());
    clinic.book(patient, 15, 0).await;
}

#[tokio::test]
async fn a_patients_reschedule_awaits_the_doctors_confirmation() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let id = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let moved = expect_status(
        app.reschedule(patient, &id, clinic.utc(16, 0), clinic.utc(16, 45))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["status"], "rescheduled");
    assert_eq!(moved["awaiting_confirmation_by"], "doctor", "{moved}");
    assert_eq!(at(&moved["rescheduled_from"]["start"]), clinic.utc(14, 0));

    expect_problem(
        app.act(patient, &id, "confirm", &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let confirmed = expect_status(
        app.act(doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(at(&confirmed["start"]), clinic.utc(16, 0));
    assert_eq!(at(&confirmed["end"]), clinic.utc(16, 45));
    let free = clinic.free().await;
    assert!(free.contains(&clinic.utc(14, 0)), "{free:?}");
    assert!(
        !free.contains(&clinic.utc(16, 0)) && !free.contains(&clinic.utc(16, 30)),
        "{free:?}"
    );
}

#[tokio::test]
async fn rescheduling_to_a_taken_or_unavailable_time_is_refused_and_changes_nothing() {
    let clinic = Clinic::open().await;
    let (app, patient) = (&clinic.app, &clinic.patient);
    let other = app.patient().await;
    let mine = clinic.book(patient, 14, 0).await;
    let id = id_of(&mine).to_string();
    clinic.book(&other, 15, 0).await;
    let events = app.events_of(&id).await;

    expect_conflict(
        app.reschedule(patient, &id, clinic.utc(15, 0), clinic.utc(15, 30))
            .await,
        "slot_unavailable",
    )
    .await;
    expect_conflict(
        app.reschedule(patient, &id, clinic.utc(14, 45), clinic.utc(15, 15))
            .await,
        "slot_unavailable",
    )
    .await;
    // Outside the window.
    expect_conflict(
        app.reschedule(patient, &id, clinic.utc(18, 0), clinic.utc(18, 30))
            .await,
        "slot_unavailable",
    )
    .await;
    // The same time is no change at all.
    expect_problem(
        app.reschedule(patient, &id, clinic.utc(14, 0), clinic.utc(14, 30))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let read = expect_status(app.appointment(patient, &id).await, StatusCode::OK).await;
    assert_eq!(read, mine);
    assert_eq!(app.events_of(&id).await, events);
    let free = clinic.free().await;
    assert!(
        !free.contains(&clinic.utc(14, 0)) && !free.contains(&clinic.utc(15, 0)),
        "{free:?}"
    );
    expect_conflict(
        app.book_raw(
            &other,
            &clinic.doctor.id,
            clinic.utc(14, 0),
            clinic.utc(14, 30),
        )
        .await,
        "slot_unavailable",
    )
    .await;
}

#[tokio::test]
async fn illegal_transitions_answer_409_and_change_nothing() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let pending = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let cancelled = id_of(&clinic.book(patient, 15, 0).await).to_string();
    let completed = id_of(&clinic.book(patient, 16, 0).await).to_string();
    expect_status(
        app.act(doctor, &cancelled, "cancel", &json!({"reason": "x"}))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.act(doctor, &completed, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let later = clinic.later(Duration::days(4)).await;
    let doctor_later = later.sign_in(doctor).await;
    expect_status(
        later
            .act(&doctor_later, &completed, "complete", &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;

    let reschedule = json!({
        "start": rfc3339(clinic.utc(16, 30)), "end": rfc3339(clinic.utc(17, 0)), "reason": "x"
    });
    let cancel = json!({ "reason": "again" });
    let empty = json!({});
    // (app, user, appointment, action, body)
    let attempts: Vec<(&TestApp, &User, &str, &str, &Value)> = vec![
        (app, doctor, &cancelled, "confirm", &empty),
        (app, patient, &cancelled, "cancel", &cancel),
        (app, doctor, &cancelled, "cancel", &cancel),
        (app, patient, &cancelled, "reschedule", &reschedule),
        (app, doctor, &cancelled, "reschedule", &reschedule),
        (&later, &doctor_later, &cancelled, "complete", &empty),
        (&later, &doctor_later, &cancelled, "no-show", &empty),
        (&later, &doctor_later, &pending, "complete", &empty),
        (&later, &doctor_later, &pending, "no-show", &empty),
        (&later, &doctor_later, &completed, "complete", &empty),
        (&later, &doctor_later, &completed, "no-show", &empty),
        (app, doctor, &completed, "confirm", &empty),
        (app, patient, &completed, "cancel", &cancel),
        (app, doctor, &completed, "reschedule", &reschedule),
    ];
    for (on, user, appointment, action, body) in attempts {
        let before_events = app.events_of(appointment).await;
        let before =
            expect_status(app.appointment(patient, appointment).await, StatusCode::OK).await;
        let response = on.act(user, appointment, action, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        assert_eq!(
            (status, &problem["code"]),
            (StatusCode::CONFLICT, &json!("invalid_transition")),
            "{action} on the {} appointment: {problem}",
            before["status"]
        );
        let after =
            expect_status(app.appointment(patient, appointment).await, StatusCode::OK).await;
        assert_eq!(after, before, "{action} changed the appointment");
        assert_eq!(
            app.events_of(appointment).await,
            before_events,
            "{action} recorded an event"
        );
    }
    // The refused reschedules did not take the time either.
    assert!(clinic.free().await.contains(&clinic.utc(16, 30)));
}

// ---------------------------------------------------------------------------------------------
// Who may do what

#[tokio::test]
async fn strangers_get_404_for_every_action_on_an_appointment_and_staff_read_what_they_may() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let id = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let other_patient = app.patient().await;
    let other_doctor = app.doctor().await;
    let auditor = app.staff("auditor").await;
    let admin = app.staff("admin").await;
    let events = app.events_of(&id).await;

    let reschedule = json!({
        "start": rfc3339(clinic.utc(15, 0)), "end": rfc3339(clinic.utc(15, 30)), "reason": "x"
    });
    for stranger in [&other_patient, &other_doctor] {
        expect_problem(app.appointment(stranger, &id).await, StatusCode::NOT_FOUND).await;
        expect_problem(
            app.get(
                &format!("/api/v1/appointments/{id}/history"),
                &stranger.token,
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        for (action, body) in [
            ("confirm", json!({})),
            ("reschedule", reschedule.clone()),
            ("cancel", json!({ "reason": "not mine" })),
            ("complete", json!({})),
            ("no-show", json!({})),
        ] {
            let response = app.act(stranger, &id, action, &body).await;
            expect_problem(response, StatusCode::NOT_FOUND).await;
        }
    }
    expect_problem(app.appointment(&auditor, &id).await, StatusCode::NOT_FOUND).await;
    for reader in [&auditor, &admin, doctor, patient] {
        let types = history_types(app, reader, &id).await;
        assert_eq!(types, ["AppointmentRequested"]);
    }
    let read = expect_status(app.appointment(&admin, &id).await, StatusCode::OK).await;
    assert_eq!(read["status"], "pending");
    assert_eq!(
        app.events_of(&id).await,
        events,
        "no stranger changed anything"
    );
    assert!(!clinic.free().await.contains(&clinic.utc(14, 0)));
    assert!(clinic.free().await.contains(&clinic.utc(15, 0)));
    // An unknown id is a 404 too, and no token is a 401.
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_problem(
        app.appointment(patient, &unknown).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let anonymous = app
        .client
        .get(app.url(&format!("/api/v1/appointments/{id}")))
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn only_patients_book_and_the_doctor_alone_confirms_completes_and_records_no_shows() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let (start, end) = (clinic.utc(14, 0), clinic.utc(14, 30));
    expect_problem(
        app.book_raw(doctor, &doctor.id, start, end).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let anonymous = json!({
        "doctor_id": doctor.id, "start": rfc3339(start), "end": rfc3339(end), "reason": "x"
    });
    expect_problem(
        app.post("/api/v1/appointments", None, &anonymous).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(app.rows_in("appointments").await, 0);

    let id = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let refused = expect_problem(
        app.act(patient, &id, "confirm", &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["detail"], "only the doctor can confirm a request");
    expect_status(
        app.act(doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    for action in ["complete", "no-show"] {
        let refused = expect_problem(
            app.act(patient, &id, action, &json!({})).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(
            refused["detail"], "only the doctor can record the outcome",
            "{action}"
        );
    }
    let read = expect_status(app.appointment(patient, &id).await, StatusCode::OK).await;
    assert_eq!(read["status"], "confirmed");
    assert_eq!(
        history_types(app, patient, &id).await,
        ["AppointmentRequested", "AppointmentConfirmed"]
    );
}

#[tokio::test]
async fn appointment_lists_show_each_caller_their_own() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let other_patient = app.patient().await;
    let other_doctor = app.doctor().await;
    let admin = app.staff("admin").await;
    app.open_window(&other_doctor, clinic.utc(14, 0), clinic.utc(17, 0))
        .await;

    let a = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let b = id_of(&clinic.book(&other_patient, 15, 0).await).to_string();
    let c = id_of(
        &app.book(
            patient,
            &other_doctor.id,
            clinic.utc(16, 0),
            clinic.utc(16, 30),
        )
        .await,
    )
    .to_string();
    expect_status(
        app.act(doctor, &a, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;

    let list = |user: &User, query: &'static [(&'static str, &'static str)]| {
        let token = user.token.clone();
        async move {
            let body = expect_status(
                app.get_with("/api/v1/appointments", &token, query).await,
                StatusCode::OK,
            )
            .await;
            let mut ids: Vec<String> = body["appointments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut ids: Vec<&String>| {
        ids.sort();
        ids.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(list(patient, &[]).await, sorted(vec![&a, &c]));
    assert_eq!(list(&other_patient, &[]).await, sorted(vec![&b]));
    assert_eq!(list(doctor, &[]).await, sorted(vec![&a, &b]));
    assert_eq!(list(&other_doctor, &[]).await, sorted(vec![&c]));
    assert_eq!(list(&admin, &[]).await, sorted(vec![&a, &b, &c]));
    assert_eq!(
        list(doctor, &[("status", "confirmed")]).await,
        vec![a.clone()]
    );
    assert_eq!(
        list(doctor, &[("status", "pending")]).await,
        vec![b.clone()]
    );
    assert!(list(patient, &[("status", "cancelled")]).await.is_empty());

    // from/to select by time.
    let (from, to) = (rfc3339(clinic.utc(15, 30)), rfc3339(clinic.utc(17, 0)));
    let body = expect_status(
        app.get_with(
            "/api/v1/appointments",
            &admin.token,
            &[("from", &from), ("to", &to)],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<_> = body["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(ids, [json!(c)]);

    let bad = app
        .get_with(
            "/api/v1/appointments",
            &patient.token,
            &[("status", "maybe")],
        )
        .await;
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["status"], "{problem}");
}

#[tokio::test]
async fn a_doctor_reads_a_patients_record_only_while_they_share_an_appointment() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let record = format!("/api/v1/patients/{}", patient.id);
    expect_problem(app.get(&record, &doctor.token).await, StatusCode::NOT_FOUND).await;

    let id = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let read = expect_status(app.get(&record, &doctor.token).await, StatusCode::OK).await;
    assert_eq!(read["id"], patient.id.as_str());
    let other_doctor = app.doctor().await;
    expect_problem(
        app.get(&record, &other_doctor.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    expect_status(
        app.act(patient, &id, "cancel", &json!({"reason": "x"}))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_problem(app.get(&record, &doctor.token).await, StatusCode::NOT_FOUND).await;
}

// ---------------------------------------------------------------------------------------------
// Booking rules

#[tokio::test]
async fn bookings_outside_the_rules_are_refused_with_the_field_or_code_that_explains_why() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let book =
        |start: OffsetDateTime, end: OffsetDateTime| app.book_raw(patient, &doctor.id, start, end);

    // Not inside a window.
    expect_conflict(
        book(clinic.utc(17, 0), clinic.utc(17, 30)).await,
        "slot_unavailable",
    )
    .await;
    expect_conflict(
        book(clinic.utc(16, 45), clinic.utc(17, 15)).await,
        "slot_unavailable",
    )
    .await;
    // In the past, or sooner than the notice.
    let past = OffsetDateTime::now_utc() - Duration::days(1);
    expect_invalid(book(past, past + Duration::minutes(30)).await, "start").await;
    let soon = OffsetDateTime::now_utc() + Duration::minutes(10);
    expect_invalid(book(soon, soon + Duration::minutes(30)).await, "start").await;
    // Beyond the horizon (180 days).
    let far = clinic.day + Duration::days(200) + Duration::hours(14);
    expect_invalid(book(far, far + Duration::minutes(30)).await, "start").await;
    // Too short, too long, backwards.
    expect_invalid(book(clinic.utc(14, 0), clinic.utc(14, 4)).await, "end").await;
    expect_invalid(book(clinic.utc(14, 0), clinic.utc(18, 1)).await, "end").await;
    expect_invalid(book(clinic.utc(14, 0), clinic.utc(13, 30)).await, "end").await;
    // Unknown doctor, or a patient's id as the doctor.
    for doctor_id in [uuid::Uuid::new_v4().to_string(), patient.id.clone()] {
        let response = app
            .book_raw(patient, &doctor_id, clinic.utc(14, 0), clinic.utc(14, 30))
            .await;
        expect_invalid(response, "doctor_id").await;
    }
    assert_eq!(app.rows_in("appointments").await, 0);
    assert_eq!(app.rows_in("reservations").await, 0);

    // Taken.
    clinic.book(patient, 14, 0).await;
    let other = app.patient().await;
    let taken = app
        .book_raw(&other, &doctor.id, clinic.utc(14, 15), clinic.utc(14, 45))
        .await;
    expect_conflict(taken, "slot_unavailable").await;

    // The same patient cannot be in two places at once, even with another doctor.
    let other_doctor = app.doctor().await;
    app.open_window(&other_doctor, clinic.utc(14, 0), clinic.utc(17, 0))
        .await;
    let busy = app
        .book_raw(
            patient,
            &other_doctor.id,
            clinic.utc(14, 15),
            clinic.utc(14, 45),
        )
        .await;
    expect_conflict(busy, "patient_busy").await;
    app.book(
        patient,
        &other_doctor.id,
        clinic.utc(14, 30),
        clinic.utc(15, 0),
    )
    .await;
    assert_eq!(app.rows_in("appointments").await, 2);
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let send = |key: &'static str, start: OffsetDateTime| {
        let body = json!({
            "doctor_id": doctor.id, "start": rfc3339(start),
            "end": rfc3339(start + Duration::minutes(30)), "reason": "check-up"
        });
        app.client
            .post(app.url("/api/v1/appointments"))
            .bearer_auth(&patient.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };

    let first = expect_status(
        send("key-1", clinic.utc(14, 0)).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let repeat = expect_status(
        send("key-1", clinic.utc(14, 0)).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(repeat, first);
    assert_eq!(app.rows_in("appointments").await, 1);

    let problem = expect_problem(
        send("key-1", clinic.utc(15, 0)).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem["errors"],
        json!([{ "field": "Idempotency-Key", "message": "was already used for a different request" }]),
        "a key reused for another body: {problem}"
    );
    assert_eq!(app.rows_in("appointments").await, 1);

    // A refusal is replayed too, even once the slot is free.
    let other = app.patient().await;
    let clash = app
        .book(&other, &doctor.id, clinic.utc(16, 0), clinic.utc(16, 30))
        .await;
    let refused = send("key-2", clinic.utc(16, 0)).await.unwrap();
    let refusal = expect_conflict(refused, "slot_unavailable").await;
    expect_status(
        app.act(&other, id_of(&clash), "cancel", &json!({"reason": "x"}))
            .await,
        StatusCode::OK,
    )
    .await;
    let replayed = send("key-2", clinic.utc(16, 0)).await.unwrap();
    assert_eq!(expect_conflict(replayed, "slot_unavailable").await, refusal);
    // A new key books the freed slot.
    expect_status(
        send("key-3", clinic.utc(16, 0)).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn a_keyed_retry_of_a_booking_whose_answer_was_lost_finds_it() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let body = json!({
        "doctor_id": doctor.id, "start": rfc3339(clinic.utc(14, 0)),
        "end": rfc3339(clinic.utc(14, 30)), "reason": "check-up"
    });
    let send = || {
        app.client
            .post(app.url("/api/v1/appointments"))
            .bearer_auth(&patient.token)
            .header("Idempotency-Key", "lost-answer")
            .json(&body)
            .send()
    };
    let first = expect_status(send().await.unwrap(), StatusCode::CREATED).await;
    // As when the database went away after the booking was recorded, before its answer was
    // stored: the key is unknown when the client retries.
    sqlx::query("DELETE FROM idempotency_keys")
        .execute(&app.pool)
        .await
        .unwrap();
    let retry = expect_status(send().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(retry["id"], first["id"], "{retry}");
    assert_eq!(app.rows_in("appointments").await, 1);

    // The slot was held once: cancelled, it is free for someone else.
    expect_status(
        app.act(patient, id_of(&first), "cancel", &json!({"reason": "x"}))
            .await,
        StatusCode::OK,
    )
    .await;
    let other = app.patient().await;
    app.book(&other, &doctor.id, clinic.utc(14, 0), clinic.utc(14, 30))
        .await;
    // Instants finer than the read model's microseconds are no different request.
    let fine = clinic.utc(15, 0) + Duration::nanoseconds(1);
    let body = json!({
        "doctor_id": doctor.id, "start": rfc3339(fine),
        "end": rfc3339(fine + Duration::minutes(30)), "reason": "check-up"
    });
    let booked = app
        .client
        .post(app.url("/api/v1/appointments"))
        .bearer_auth(&other.token)
        .header("Idempotency-Key", "nanoseconds")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_status(booked, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_key_whose_request_is_still_in_flight_answers_in_progress_until_it_is_answered() {
    let app = spawn_app_on(TestDb::create().await, |config| {
        config.read_your_writes_timeout = std::time::Duration::from_secs(60);
    })
    .await;
    let clinic = Clinic::open_in(app).await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let body = json!({
        "doctor_id": doctor.id, "start": rfc3339(clinic.utc(14, 0)),
        "end": rfc3339(clinic.utc(14, 30)), "reason": "check-up"
    });
    let send = || {
        app.client
            .post(app.url("/api/v1/appointments"))
            .bearer_auth(&patient.token)
            .header("Idempotency-Key", "in-flight")
            .json(&body)
            .send()
    };
    // The first request is recorded, then waits for read models that are held back.
    let hold = hold_read_models(&app.pool).await;
    let first = tokio::spawn(send());
    eventually(
        "the first request to be recorded",
        std::time::Duration::from_secs(30),
        || async {
            keys_in_progress(&app.pool).await == 1 && appointments_recorded(app).await == 1
        },
    )
    .await;
    expect_conflict(send().await.unwrap(), "request_in_progress").await;
    assert!(
        !first.is_finished(),
        "the first request was answered meanwhile"
    );

    // Answered, the key replays the answer.
    hold.rollback().await.unwrap();
    let first = expect_status(first.await.unwrap().unwrap(), StatusCode::CREATED).await;
    let repeat = expect_status(send().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(repeat, first);
    assert_eq!(app.rows_in("appointments").await, 1);
}

/// The appointments in the event store (recorded, projected or not).
async fn appointments_recorded(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'appointment'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Availability

#[tokio::test]
async fn only_the_doctor_opens_changes_and_removes_their_windows() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let other_doctor = app.doctor().await;
    let admin = app.staff("admin").await;
    let path = format!("/api/v1/doctors/{}/availability", doctor.id);
    let body = json!({ "start": rfc3339(clinic.utc(18, 0)), "end": rfc3339(clinic.utc(19, 0)) });
    for intruder in [&other_doctor, patient, &admin] {
        expect_problem(
            app.post(&path, Some(&intruder.token), &body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        expect_problem(
            app.put(&clinic.windows_path(), &intruder.token, &body)
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        expect_problem(
            app.delete(&clinic.windows_path(), &intruder.token).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    expect_problem(app.post(&path, None, &body).await, StatusCode::UNAUTHORIZED).await;
    let anonymous = app.client.get(app.url(&path)).send().await.unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
    // Anyone signed in reads the slots.
    let (from, to) = (rfc3339(clinic.day), rfc3339(clinic.day + Duration::days(1)));
    for reader in [&other_doctor, &admin] {
        let slots = expect_status(
            app.availability_raw(&doctor.id, &reader.token, &[("from", &from), ("to", &to)])
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(slots["slots"].as_array().unwrap().len(), 6, "{slots}");
    }
    assert_eq!(clinic.free().await.len(), 6, "nothing changed");
}

#[tokio::test]
async fn free_slots_run_back_to_back_from_each_window_start_minus_reservations() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let (from, to) = (rfc3339(clinic.day), rfc3339(clinic.day + Duration::days(1)));
    let body = expect_status(
        app.availability_raw(&doctor.id, &patient.token, &[("from", &from), ("to", &to)])
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["doctor_id"], doctor.id.as_str());
    assert_eq!(body["timezone"], "America/New_York");
    let slots = body["slots"].as_array().unwrap();
    let expected: Vec<_> = (0..6).map(|n| clinic.utc(14, 30 * n)).collect();
    let starts: Vec<_> = slots.iter().map(|s| at(&s["start"])).collect();
    assert_eq!(starts, expected, "default duration is 30 minutes");
    for slot in slots {
        assert_eq!(at(&slot["end"]) - at(&slot["start"]), Duration::minutes(30));
        assert!(slot["start"].as_str().unwrap().ends_with('Z'), "{slot}");
        assert!(
            slot.get("local_start").is_none_or(Value::is_null),
            "no tz, no local time"
        );
    }

    // 45 minutes: 14:00, 14:45, 15:30, 16:15 (17:00 would end after the window).
    let starts = app
        .free_starts(
            &doctor.id,
            &patient.token,
            clinic.day,
            clinic.day + Duration::days(1),
            45,
        )
        .await;
    assert_eq!(
        starts,
        [
            clinic.utc(14, 0),
            clinic.utc(14, 45),
            clinic.utc(15, 30),
            clinic.utc(16, 15)
        ]
    );

    // A booking 14:30–15:00 removes what it overlaps.
    clinic.book(patient, 14, 30).await;
    let starts = app
        .free_starts(
            &doctor.id,
            &patient.token,
            clinic.day,
            clinic.day + Duration::days(1),
            45,
        )
        .await;
    assert_eq!(starts, [clinic.utc(15, 30), clinic.utc(16, 15)]);
    let starts = clinic.free().await;
    assert_eq!(
        starts,
        [
            clinic.utc(14, 0),
            clinic.utc(15, 0),
            clinic.utc(15, 30),
            clinic.utc(16, 0),
            clinic.utc(16, 30)
        ]
    );
    // A second window the same day has slots from its own start.
    app.open_window(doctor, clinic.utc(17, 10), clinic.utc(18, 0))
        .await;
    let starts = clinic.free().await;
    assert_eq!(&starts[5..], [clinic.utc(17, 10)]);
    // `from`/`to` narrow the range.
    let narrow = app
        .free_starts(
            &doctor.id,
            &patient.token,
            clinic.utc(15, 0),
            clinic.utc(16, 0),
            30,
        )
        .await;
    assert_eq!(narrow, [clinic.utc(15, 0), clinic.utc(15, 30)]);
}

#[tokio::test]
async fn slot_queries_with_bad_parameters_are_refused() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let (from, to) = (rfc3339(clinic.day), rfc3339(clinic.day + Duration::days(1)));
    let range = [("from", from.as_str()), ("to", to.as_str())];
    let with = |extra: (&'static str, &'static str)| {
        let query = [range[0], range[1], extra];
        async move {
            app.availability_raw(&doctor.id, &patient.token, &query)
                .await
        }
    };
    expect_invalid(with(("duration", "4")).await, "duration").await;
    expect_invalid(with(("duration", "241")).await, "duration").await;
    expect_invalid(with(("tz", "Mars/Olympus_Mons")).await, "tz").await;
    for (key, value) in [("duration", "5"), ("duration", "240")] {
        expect_status(with((key, value)).await, StatusCode::OK).await;
    }
    let bad_from = app
        .availability_raw(
            &doctor.id,
            &patient.token,
            &[("from", "yesterday-ish"), ("to", &to)],
        )
        .await;
    let problem = expect_problem(bad_from, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["from"], "{problem}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let response = app.availability_raw(&unknown, &patient.token, &range).await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn slots_respect_the_minimum_notice_and_the_horizon() {
    let day = days_ahead(3);
    let threshold = day + Duration::hours(15) + Duration::minutes(30);
    // Notice ends just before 15:30 on the window's day.
    let notice = threshold - OffsetDateTime::now_utc() - Duration::minutes(1);
    let clinic = Clinic::open_in(
        spawn_app_on(TestDb::create().await, |c| c.booking_min_notice = notice).await,
    )
    .await;
    let starts = clinic.free().await;
    assert_eq!(
        starts,
        [clinic.utc(15, 30), clinic.utc(16, 0), clinic.utc(16, 30)]
    );
    let (app, patient) = (&clinic.app, &clinic.patient);
    let early = app
        .book_raw(
            patient,
            &clinic.doctor.id,
            clinic.utc(15, 0),
            clinic.utc(15, 30),
        )
        .await;
    expect_invalid(early, "start").await;
    clinic.book(patient, 15, 30).await;

    // The horizon ends just after 15:30 on the window's day.
    let horizon = threshold - OffsetDateTime::now_utc() + Duration::minutes(1);
    let clinic = Clinic::open_in(
        spawn_app_on(TestDb::create().await, |c| c.booking_horizon = horizon).await,
    )
    .await;
    let starts = clinic.free().await;
    let expected: Vec<_> = (0..4).map(|n| clinic.utc(14, 30 * n)).collect();
    assert_eq!(starts, expected);
    let (app, patient) = (&clinic.app, &clinic.patient);
    let late = app
        .book_raw(
            patient,
            &clinic.doctor.id,
            clinic.utc(16, 0),
            clinic.utc(16, 30),
        )
        .await;
    expect_invalid(late, "start").await;
    clinic.book(patient, 15, 30).await;
}

#[tokio::test]
async fn a_weekly_template_becomes_windows_in_the_doctors_zone() {
    let app = spawn_app_on(TestDb::create().await, |c| {
        c.booking_horizon = Duration::days(3650)
    })
    .await;
    let doctor = app.doctor().await;
    // Monday 2027-01-04 to Monday 2027-01-11; New York is on EST (-05:00).
    let body = json!({
        "weekly": [
            { "weekday": "mon", "start": "09:00", "end": "12:00" },
            { "weekday": "wed", "start": "13:00", "end": "17:30" },
            { "weekday": "fri", "start": "20:00", "end": "24:00" }
        ],
        "from": "2027-01-04", "to": "2027-01-11"
    });
    let opened = expect_status(
        app.open_availability(&doctor, &body).await,
        StatusCode::CREATED,
    )
    .await;
    let bounds: Vec<_> = opened["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["start"].as_str().unwrap(), w["end"].as_str().unwrap()))
        .collect();
    assert_eq!(
        bounds,
        [
            ("2027-01-04T14:00:00Z", "2027-01-04T17:00:00Z"),
            ("2027-01-06T18:00:00Z", "2027-01-06T22:30:00Z"),
            ("2027-01-09T01:00:00Z", "2027-01-09T05:00:00Z"),
            ("2027-01-11T14:00:00Z", "2027-01-11T17:00:00Z"),
        ],
        "`to` is inclusive: {opened}"
    );
    assert_eq!(opened["skipped"], json!([]));
    let patient = app.patient().await;
    let starts = app
        .free_starts(
            &doctor.id,
            &patient.token,
            instant("2027-01-08T00:00:00Z"),
            instant("2027-01-10T00:00:00Z"),
            60,
        )
        .await;
    let expected: Vec<_> = (1..5)
        .map(|h| instant("2027-01-09T00:00:00Z") + Duration::hours(h))
        .collect();
    assert_eq!(starts, expected);

    // The same template again overlaps.
    expect_conflict(
        app.open_availability(&doctor, &body).await,
        "window_overlap",
    )
    .await;
}

#[tokio::test]
async fn overlapping_windows_are_refused() {
    let clinic = Clinic::open().await;
    let (app, doctor) = (&clinic.app, &clinic.doctor);
    for (start, end) in [(13, 15), (16, 18), (14, 17), (15, 16)] {
        let body =
            json!({ "start": rfc3339(clinic.utc(start, 0)), "end": rfc3339(clinic.utc(end, 0)) });
        expect_conflict(app.open_availability(doctor, &body).await, "window_overlap").await;
    }
    // Touching is not overlapping.
    app.open_window(doctor, clinic.utc(17, 0), clinic.utc(18, 0))
        .await;
    app.open_window(doctor, clinic.utc(13, 0), clinic.utc(14, 0))
        .await;
    assert_eq!(clinic.free().await.len(), 10);
}

#[tokio::test]
async fn invalid_windows_are_refused_naming_the_field() {
    let clinic = Clinic::open().await;
    let (app, doctor) = (&clinic.app, &clinic.doctor);
    let (start, end) = (rfc3339(clinic.utc(18, 0)), rfc3339(clinic.utc(19, 0)));
    let weekly = |weekday: &str, start: &str, end: &str| {
        let rule = json!({ "weekday": weekday, "start": start, "end": end });
        json!({ "weekly": [rule], "from": "2027-01-04", "to": "2027-01-10" })
    };
    let monday = weekly("mon", "09:00", "10:00");
    let now = OffsetDateTime::now_utc();
    let cases = [
        (
            json!({ "start": start, "end": end, "weekly": monday["weekly"],
                    "from": "2027-01-04", "to": "2027-01-10" }),
            None,
        ),
        (json!({ "start": end, "end": start }), None),
        (json!({ "start": start, "end": start }), None),
        (json!({ "start": "tomorrow", "end": end }), Some("start")),
        (
            weekly("funday", "09:00", "10:00"),
            Some("weekly[0].weekday"),
        ),
        (weekly("mon", "25:00", "26:00"), Some("weekly[0].start")),
        (weekly("mon", "9am", "10:00"), Some("weekly[0].start")),
        (weekly("mon", "10:00", "09:00"), None),
        // 03:00 to 07:00 UTC: late evening to early morning in New York, two local days.
        (
            json!({ "start": rfc3339(clinic.utc(27, 0)), "end": rfc3339(clinic.utc(31, 0)) }),
            None,
        ),
        // Over before it starts to matter.
        (
            json!({
                "start": rfc3339(now - Duration::hours(3)), "end": rfc3339(now - Duration::hours(2))
            }),
            None,
        ),
        // 368 days.
        (
            json!({ "weekly": monday["weekly"], "from": "2027-01-01", "to": "2028-01-03" }),
            None,
        ),
    ];
    for (body, field) in cases {
        let problem = expect_problem(
            app.open_availability(doctor, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        if let Some(field) = field {
            assert!(
                problem_fields(&problem).contains(&field.to_string()),
                "{body}: {problem}"
            );
        }
    }
    assert_eq!(clinic.free().await.len(), 6, "nothing was opened");
}

#[tokio::test]
async fn a_window_moves_unless_it_would_drop_an_appointment_or_overlap() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let path = clinic.windows_path();
    let body = |start, end| json!({ "start": rfc3339(start), "end": rfc3339(end) });
    clinic.book(patient, 15, 0).await;
    let second = app
        .open_window(doctor, clinic.utc(18, 0), clinic.utc(19, 0))
        .await;
    let second_path = format!(
        "/api/v1/doctors/{}/availability/{}",
        doctor.id,
        id_of(&second)
    );

    let moved = expect_status(
        app.put(
            &path,
            &doctor.token,
            &body(clinic.utc(14, 30), clinic.utc(16, 0)),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["id"], clinic.window["id"]);
    assert_eq!(at(&moved["start"]), clinic.utc(14, 30));
    assert_eq!(at(&moved["end"]), clinic.utc(16, 0));
    assert_eq!(
        clinic.free().await,
        [
            clinic.utc(14, 30),
            clinic.utc(15, 30),
            clinic.utc(18, 0),
            clinic.utc(18, 30)
        ]
    );

    let drops = app
        .put(
            &path,
            &doctor.token,
            &body(clinic.utc(15, 15), clinic.utc(17, 0)),
        )
        .await;
    expect_conflict(drops, "would_drop_appointment").await;
    let overlaps = app
        .put(
            &path,
            &doctor.token,
            &body(clinic.utc(14, 0), clinic.utc(18, 30)),
        )
        .await;
    expect_conflict(overlaps, "window_overlap").await;
    // The empty second window may not move to another local day.
    let next_day = app
        .put(
            &second_path,
            &doctor.token,
            &body(clinic.utc(38, 0), clinic.utc(39, 0)),
        )
        .await;
    expect_problem(next_day, StatusCode::UNPROCESSABLE_ENTITY).await;
    let unknown = format!(
        "/api/v1/doctors/{}/availability/{}",
        doctor.id,
        uuid::Uuid::new_v4()
    );
    expect_problem(
        app.put(
            &unknown,
            &doctor.token,
            &body(clinic.utc(14, 0), clinic.utc(15, 0)),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        clinic.free().await,
        [
            clinic.utc(14, 30),
            clinic.utc(15, 30),
            clinic.utc(18, 0),
            clinic.utc(18, 30)
        ],
        "nothing changed"
    );
}

#[tokio::test]
async fn a_window_holding_an_appointment_is_removed_only_after_the_appointment_is_cancelled() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let path = clinic.windows_path();
    let id = id_of(&clinic.book(patient, 16, 0).await).to_string();
    expect_conflict(
        app.delete(&path, &doctor.token).await,
        "window_has_appointment",
    )
    .await;
    expect_status(
        app.act(doctor, &id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    expect_conflict(
        app.delete(&path, &doctor.token).await,
        "window_has_appointment",
    )
    .await;
    expect_status(
        app.reschedule(patient, &id, clinic.utc(14, 0), clinic.utc(14, 30))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_conflict(
        app.delete(&path, &doctor.token).await,
        "window_has_appointment",
    )
    .await;
    assert_eq!(clinic.free().await.len(), 5);

    expect_status(
        app.act(patient, &id, "cancel", &json!({"reason": "x"}))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.delete(&path, &doctor.token).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert!(clinic.free().await.is_empty());
    expect_problem(
        app.delete(&path, &doctor.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let refused = app
        .book_raw(patient, &doctor.id, clinic.utc(14, 0), clinic.utc(14, 30))
        .await;
    expect_conflict(refused, "slot_unavailable").await;
}

// ---------------------------------------------------------------------------------------------
// Dashboards

#[tokio::test]
async fn the_doctors_dashboard_lists_requests_and_the_next_seven_days() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let pending = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let other = app.patient().await;
    let confirmed = id_of(&clinic.book(&other, 15, 0).await).to_string();
    expect_status(
        app.act(doctor, &confirmed, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;

    expect_problem(
        app.get("/api/v1/dashboard/doctor", &patient.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let board = expect_status(
        app.get("/api/v1/dashboard/doctor", &doctor.token).await,
        StatusCode::OK,
    )
    .await;
    let ids = |key: &str| -> Vec<String> {
        board[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {board}"))
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("pending_requests"), std::slice::from_ref(&pending));
    let upcoming = ids("upcoming");
    assert!(
        upcoming.contains(&pending) && upcoming.contains(&confirmed),
        "{board}"
    );
    assert!(ids("today").is_empty(), "{board}");

    let days = board["availability"].as_array().unwrap();
    assert_eq!(days.len(), 7, "{board}");
    let dates: Vec<time::Date> = days
        .iter()
        .map(|d| {
            time::Date::parse(
                d["date"].as_str().unwrap(),
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .unwrap()
        })
        .collect();
    for pair in dates.windows(2) {
        assert_eq!(pair[1], pair[0].next_day().unwrap(), "{board}");
    }
    // The doctor's today, in New York.
    let new_york_today = || {
        use time_tz::OffsetDateTimeExt;
        let zone = time_tz::timezones::db::america::NEW_YORK;
        OffsetDateTime::now_utc().to_timezone(zone).date()
    };
    assert_eq!(dates[0], new_york_today(), "{board}");
    for (date, day) in dates.iter().zip(days) {
        if *date == clinic.day.date() {
            assert_eq!(
                (day["free_minutes"].as_i64(), day["booked_minutes"].as_i64()),
                (Some(120), Some(60)),
                "{board}"
            );
        } else {
            assert_eq!(
                (day["free_minutes"].as_i64(), day["booked_minutes"].as_i64()),
                (Some(0), Some(0)),
                "{board}"
            );
        }
    }
    assert!(dates.contains(&clinic.day.date()), "{board}");

    // Time off from 15:15 takes the free 15:30–17:00 (not the booked 15:00–15:30 twice).
    let off = json!({ "start": rfc3339(clinic.utc(15, 15)), "end": rfc3339(clinic.utc(17, 30)) });
    expect_status(
        app.post("/api/v1/doctors/me/time-off", Some(&doctor.token), &off)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let board = expect_status(
        app.get("/api/v1/dashboard/doctor", &doctor.token).await,
        StatusCode::OK,
    )
    .await;
    let day = board["availability"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == clinic.day.date().to_string())
        .unwrap()
        .clone();
    assert_eq!(
        (day["free_minutes"].as_i64(), day["booked_minutes"].as_i64()),
        (Some(30), Some(60)),
        "{board}"
    );
}

#[tokio::test]
async fn the_patients_dashboard_puts_cancelled_appointments_in_the_past() {
    let clinic = Clinic::open().await;
    let (app, doctor, patient) = (&clinic.app, &clinic.doctor, &clinic.patient);
    let kept = id_of(&clinic.book(patient, 14, 0).await).to_string();
    let dropped = id_of(&clinic.book(patient, 15, 0).await).to_string();
    expect_status(
        app.act(doctor, &dropped, "cancel", &json!({"reason": "x"}))
            .await,
        StatusCode::OK,
    )
    .await;

    expect_problem(
        app.get("/api/v1/dashboard/patient", &doctor.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let board = expect_status(
        app.get("/api/v1/dashboard/patient", &patient.token).await,
        StatusCode::OK,
    )
    .await;
    let ids = |key: &str| -> Vec<Value> {
        board[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].clone())
            .collect()
    };
    assert_eq!(ids("upcoming"), [json!(kept)]);
    assert_eq!(ids("past"), [json!(dropped)]);
    let other = app.patient().await;
    let board = expect_status(
        app.get("/api/v1/dashboard/patient", &other.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&board["upcoming"], &board["past"]),
        (&json!([]), &json!([])),
        "{board}"
    );
}

#[tokio::test]
async fn a_doctor_lists_their_windows_in_a_range_and_nobody_else_may() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let day = days_ahead(3);
    let first = app
        .open_window(&doctor, day + Duration::hours(9), day + Duration::hours(12))
        .await;
    let second = app
        .open_window(
            &doctor,
            day + Duration::hours(14),
            day + Duration::hours(15),
        )
        .await;
    app.open_window(
        &doctor,
        day + Duration::days(40),
        day + Duration::days(40) + Duration::hours(1),
    )
    .await;
    let path = format!("/api/v1/doctors/{}/availability/windows", doctor.id);
    let range = [
        ("from", rfc3339(day)),
        ("to", rfc3339(day + Duration::days(1))),
    ];
    let query: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let listed = expect_status(
        app.get_with(&path, &doctor.token, &query).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["doctor_id"], doctor.id.as_str());
    assert_eq!(listed["timezone"], "America/New_York");
    assert_eq!(listed["windows"], json!([first, second]));

    // by default: from now, 28 days, so the window 40 days ahead is not listed
    let default = expect_status(app.get(&path, &doctor.token).await, StatusCode::OK).await;
    assert_eq!(default["windows"], json!([first, second]));

    let admin = app.staff("admin").await;
    let as_admin = expect_status(
        app.get_with(&path, &admin.token, &query).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(as_admin["windows"], listed["windows"]);

    let other = app.doctor().await;
    let patient = app.patient().await;
    for reader in [&other, &patient] {
        expect_problem(
            app.get_with(&path, &reader.token, &query).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let bad = expect_problem(
        app.get_with(&path, &doctor.token, &[("from", "2026-13-01")])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&bad), ["from"]);
    let backwards = [("from", query[1].1), ("to", query[0].1)];
    let bad = expect_problem(
        app.get_with(&path, &doctor.token, &backwards).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&bad), ["to"]);
}
