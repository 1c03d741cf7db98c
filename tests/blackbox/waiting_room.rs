//! The waiting room over live connections: who may check in, the doctor's live queue, the
//! doctor's status as the waiting patient sees it, the ways a wait ends, and all of it across
//! two server processes.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::calls::CallSetup;
use crate::helpers::{TestDb, User, expect_status, problem_fields, spawn_process_with};
use crate::live::Ws;
use crate::scheduling::days_ahead;

/// Asserts that `ack` is an error with `status` (and `code`, when given); returns the problem.
fn refused(ack: &Value, status: u16, code: Option<&str>) -> Value {
    let problem = &ack["error"];
    assert_eq!(problem["status"], status, "{ack}");
    if let Some(code) = code {
        assert_eq!(problem["code"], code, "{ack}");
    }
    problem.clone()
}

async fn check_in(ws: &mut Ws, id: &str) -> Value {
    ws.request("waiting:checkin", json!({ "appointment_id": id }))
        .await
}

/// The next `doctor:status`'s status.
async fn next_status(ws: &mut Ws) -> String {
    let frame = ws.next_named("doctor:status").await;
    frame["data"]["status"].as_str().unwrap().to_string()
}

/// The next `waiting:left`'s reason, checking its appointment and patient.
async fn next_left(ws: &mut Ws, id: &str, patient: &User) -> String {
    let frame = ws.next_named("waiting:left").await;
    assert_eq!(frame["data"]["appointment_id"], id, "{frame}");
    assert_eq!(frame["data"]["patient_id"], patient.id.as_str(), "{frame}");
    frame["data"]["reason"].as_str().unwrap().to_string()
}

async fn list(ws: &mut Ws) -> Vec<Value> {
    let ack = ws.request("waiting:list", json!({})).await;
    ack["data"]["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn only_the_patient_of_a_confirmed_appointment_checks_in_inside_its_window() {
    let s = CallSetup::new(|_| {}).await;
    let mut patient = Ws::connect(&s.now, &s.patient).await;
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;

    let problem = refused(&check_in(&mut doctor, &s.id).await, 403, None);
    assert!(problem["detail"].as_str().unwrap().contains("patient"));
    let stranger = s.now.patient().await;
    let mut stranger_ws = Ws::connect(&s.now, &stranger).await;
    refused(&check_in(&mut stranger_ws, &s.id).await, 404, None);
    let unknown = uuid::Uuid::new_v4().to_string();
    refused(&check_in(&mut patient, &unknown).await, 404, None);
    let bad = refused(&check_in(&mut patient, "nope").await, 422, None);
    assert_eq!(problem_fields(&bad), vec!["data.appointment_id"]);
    let extra = patient
        .request(
            "waiting:checkin",
            json!({ "appointment_id": s.id, "mood": "calm" }),
        )
        .await;
    assert_eq!(
        problem_fields(&refused(&extra, 422, None)),
        vec!["data.mood"]
    );

    // A pending appointment of the same patient, in the same window.
    let start = days_ahead(3) + Duration::hours(11);
    let pending = s
        .app
        .book(
            &s.patient,
            &s.doctor.id,
            start,
            start + Duration::minutes(30),
        )
        .await;
    let pending = pending["id"].as_str().unwrap();
    let problem = refused(
        &check_in(&mut patient, pending).await,
        409,
        Some("not_confirmed"),
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not confirmed")
    );
    // The server on the real clock: three days early.
    let mut early = Ws::connect(&s.app, &s.patient).await;
    let problem = refused(
        &check_in(&mut early, &s.id).await,
        409,
        Some("outside_join_window"),
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("15 minutes before")
    );
    assert!(
        list(&mut doctor).await.is_empty(),
        "no refusal changed anything"
    );
    doctor.expect_no_events_named("waiting:joined").await;

    let first = check_in(&mut patient, &s.id).await;
    assert_eq!(first["data"]["doctor_status"], "online", "{first}");
    assert_eq!(next_status(&mut patient).await, "online");
    let again = check_in(&mut patient, &s.id).await;
    assert_eq!(
        again["data"]["checked_in_at"],
        first["data"]["checked_in_at"]
    );
    let entries = list(&mut doctor).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["checked_in_at"], first["data"]["checked_in_at"]);
    refused(&patient.request("waiting:list", json!({})).await, 403, None);
}

#[tokio::test]
async fn the_doctor_sees_the_queue_live_in_the_list_and_on_connecting() {
    let s = CallSetup::new(|_| {}).await;
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;
    let mut patient = Ws::connect(&s.now, &s.patient).await;
    let ack = check_in(&mut patient, &s.id).await;

    let joined = doctor.next_named("waiting:joined").await;
    let entry = &joined["data"];
    assert_eq!(entry["appointment_id"], s.id.as_str());
    assert_eq!(entry["patient_id"], s.patient.id.as_str());
    assert_eq!(entry["patient_name"], "Ada Patient");
    assert_eq!(entry["checked_in_at"], ack["data"]["checked_in_at"]);
    let start = (days_ahead(3) + Duration::hours(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(entry["start"], start.as_str());
    assert_eq!(list(&mut doctor).await, vec![entry.clone()]);

    // A connection opened later starts with the queue.
    let mut second = Ws::connect(&s.now, &s.doctor).await;
    assert_eq!(second.next_event().await, joined);

    let left = patient
        .request("waiting:leave", json!({ "appointment_id": s.id }))
        .await;
    assert_eq!(left["data"], json!({ "ok": true }));
    assert_eq!(next_left(&mut doctor, &s.id, &s.patient).await, "left");
    assert_eq!(next_left(&mut second, &s.id, &s.patient).await, "left");
    assert!(list(&mut doctor).await.is_empty());
    refused(
        &doctor
            .request("waiting:leave", json!({ "appointment_id": s.id }))
            .await,
        403,
        None,
    );
}

#[tokio::test]
async fn the_waiting_patient_follows_the_doctor_away_online_and_into_the_call() {
    let s = CallSetup::new(|_| {}).await;
    let mut patient = Ws::connect(&s.now, &s.patient).await;
    let ack = check_in(&mut patient, &s.id).await;
    assert_eq!(ack["data"]["doctor_status"], "away", "{ack}");
    assert_eq!(next_status(&mut patient).await, "away");

    let doctor = Ws::connect(&s.now, &s.doctor).await;
    assert_eq!(next_status(&mut patient).await, "online");
    doctor.hang_up().await;
    assert_eq!(next_status(&mut patient).await, "away");
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;
    assert_eq!(next_status(&mut patient).await, "online");
    assert_eq!(doctor.next_event().await["event"], "waiting:joined");

    s.start_call(&s.doctor).await;
    patient.next_named("call:ringing").await;
    assert_eq!(next_status(&mut patient).await, "in_call");
    assert_eq!(
        next_left(&mut doctor, &s.id, &s.patient).await,
        "call_started"
    );
    assert!(list(&mut doctor).await.is_empty());
    // While the call rings, checking in again is pointless.
    refused(
        &check_in(&mut patient, &s.id).await,
        409,
        Some("call_in_progress"),
    );
}

#[tokio::test]
async fn the_wait_ends_with_the_patients_last_connection_not_before() {
    let s = CallSetup::new(|_| {}).await;
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;
    let mut first = Ws::connect(&s.now, &s.patient).await;
    let mut second = Ws::connect(&s.now, &s.patient).await;
    check_in(&mut first, &s.id).await;
    doctor.next_named("waiting:joined").await;

    first.hang_up().await;
    // The server has dropped the first connection: the patient still waits.
    second.expect_usable().await;
    assert_eq!(list(&mut doctor).await.len(), 1);
    doctor.expect_no_events_named("waiting:left").await;

    second.hang_up().await;
    assert_eq!(
        next_left(&mut doctor, &s.id, &s.patient).await,
        "disconnected"
    );
    assert!(list(&mut doctor).await.is_empty());
}

#[tokio::test]
async fn cancelling_the_appointment_ends_the_wait() {
    let s = CallSetup::new(|_| {}).await;
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;
    let mut patient = Ws::connect(&s.now, &s.patient).await;
    check_in(&mut patient, &s.id).await;
    doctor.next_named("waiting:joined").await;
    expect_status(
        s.now
            .act(&s.doctor, &s.id, "cancel", &json!({ "reason": "unwell" }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(next_left(&mut doctor, &s.id, &s.patient).await, "cancelled");
    assert!(list(&mut doctor).await.is_empty());
    refused(
        &check_in(&mut patient, &s.id).await,
        409,
        Some("not_confirmed"),
    );
}

#[tokio::test]
async fn doctor_and_patient_on_two_telemed_processes() {
    let s = CallSetup::new(|_| {}).await;
    // Two real processes whose clocks stand inside the join window.
    let start = days_ahead(3) + Duration::hours(10);
    let offset = (start - Duration::minutes(5) - time::OffsetDateTime::now_utc()).whole_seconds();
    let env = [("TELEMED_CLOCK_OFFSET_SECONDS", offset.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = TestDb {
        url: s.app.db.url.clone(),
    };
    let (_a_process, a) = spawn_process_with(&db.url, &env).await;
    let (_b_process, b) = spawn_process_with(&db.url, &env).await;

    let mut patient = Ws::connect(&b, &s.patient).await;
    let ack = check_in(&mut patient, &s.id).await;
    assert_eq!(ack["data"]["doctor_status"], "away", "{ack}");
    assert_eq!(next_status(&mut patient).await, "away");

    // Process a learns of the check-in over the bus (before or after the doctor connects:
    // exactly one waiting:joined either way), b of the doctor's connection.
    let mut doctor = Ws::connect(&a, &s.doctor).await;
    let joined = doctor.next_named("waiting:joined").await;
    assert_eq!(
        joined["data"]["checked_in_at"],
        ack["data"]["checked_in_at"]
    );
    assert_eq!(next_status(&mut patient).await, "online");
    assert_eq!(list(&mut doctor).await, vec![joined["data"].clone()]);

    doctor.hang_up().await;
    assert_eq!(next_status(&mut patient).await, "away");
    let mut doctor = Ws::connect(&a, &s.doctor).await;
    assert_eq!(doctor.next_event().await["event"], "waiting:joined");
    assert_eq!(next_status(&mut patient).await, "online");

    let started = a
        .post(
            &format!("/api/v1/appointments/{}/calls", s.id),
            Some(&s.doctor.token),
            &json!({}),
        )
        .await;
    expect_status(started, StatusCode::CREATED).await;
    assert_eq!(next_status(&mut patient).await, "in_call");
    assert_eq!(
        next_left(&mut doctor, &s.id, &s.patient).await,
        "call_started"
    );
    assert!(list(&mut doctor).await.is_empty());
}

#[tokio::test]
async fn a_patient_disconnecting_from_another_process_leaves_the_queue() {
    let s = CallSetup::new(|_| {}).await;
    let other = crate::helpers::spawn_app_on(
        TestDb {
            url: s.app.db.url.clone(),
        },
        |config| {
            config.clock_offset = (days_ahead(3) + Duration::hours(10))
                - Duration::minutes(5)
                - time::OffsetDateTime::now_utc()
        },
    )
    .await;
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;
    let mut patient = Ws::connect(&other, &s.patient).await;
    check_in(&mut patient, &s.id).await;
    doctor.next_named("waiting:joined").await;
    patient.hang_up().await;
    assert_eq!(
        next_left(&mut doctor, &s.id, &s.patient).await,
        "disconnected"
    );
}

#[tokio::test]
async fn the_official_socketio_client_checks_in_the_same_way() {
    let s = CallSetup::new(|_| {}).await;
    let mut doctor = Ws::connect(&s.now, &s.doctor).await;
    let mut driver = crate::socketio::Driver::start(&s.now).await;
    driver
        .connect("patient", Some(&s.patient.token))
        .await
        .unwrap();
    let ack = driver
        .emit(
            "patient",
            "waiting:checkin",
            json!({ "appointment_id": s.id }),
        )
        .await;
    assert_eq!(ack["doctor_status"], "online", "{ack}");
    let status = driver.event("patient", "doctor:status").await;
    assert_eq!(
        status,
        json!({ "doctor_id": s.doctor.id, "status": "online" })
    );
    let joined = doctor.next_named("waiting:joined").await;
    assert_eq!(joined["data"]["checked_in_at"], ack["checked_in_at"]);
    let refused = driver.emit("patient", "waiting:list", json!({})).await;
    assert_eq!(refused["error"]["status"], 403, "{refused}");
    let left = driver
        .emit(
            "patient",
            "waiting:leave",
            json!({ "appointment_id": s.id }),
        )
        .await;
    assert_eq!(left, json!({ "ok": true }));
    assert_eq!(next_left(&mut doctor, &s.id, &s.patient).await, "left");
}
