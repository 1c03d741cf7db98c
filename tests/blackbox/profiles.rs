//! Doctor and patient profiles: reads, edits, search and their access rules.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    doctor_profile, expect_problem, expect_status, patient_profile, problem_fields, spawn_app,
};

#[tokio::test]
async fn a_doctor_edits_their_profile_and_everyone_reads_it_at_once() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let path = format!("/api/v1/doctors/{}/profile", doctor.id);

    let updated = expect_status(
        app.put(&path, &doctor.token, &doctor_profile("Heart specialist."))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["bio"], "Heart specialist.");
    assert_eq!(updated["timezone"], "America/Chicago");
    assert_eq!(updated["name"], "Dr. Grey");

    // Read-your-writes: the very next read, by anyone, sees the change.
    let read = expect_status(
        app.get(&format!("/api/v1/doctors/{}", doctor.id), &patient.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read, updated);
    assert_eq!(
        read["specialties"],
        json!(["Cardiology", "Internal medicine"])
    );
    assert_eq!(read["languages"], json!(["en", "es"]));
}

#[tokio::test]
async fn only_the_doctor_may_edit_their_profile() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let other_doctor = app.doctor().await;
    let patient = app.patient().await;
    let admin = app.staff("admin").await;
    let path = format!("/api/v1/doctors/{}/profile", doctor.id);
    let body = doctor_profile("Not written by the doctor.");

    for intruder in [&other_doctor, &patient, &admin] {
        expect_problem(
            app.put(&path, &intruder.token, &body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let anonymous = app
        .client
        .put(app.url(&path))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(&doctor.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "only the registration is recorded");
}

#[tokio::test]
async fn unknown_and_malformed_doctor_ids() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let unknown = format!("/api/v1/doctors/{}", uuid::Uuid::new_v4());
    expect_problem(
        app.get(&unknown, &patient.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        app.get("/api/v1/doctors/not-a-uuid", &patient.token).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A patient's id is not a doctor's.
    let as_doctor = format!("/api/v1/doctors/{}", patient.id);
    expect_problem(
        app.get(&as_doctor, &patient.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn invalid_profile_fields_are_named_and_change_nothing() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;

    let bad_doctor = json!({
        "specialties": ["ok", ""], "bio": "x".repeat(10_001), "languages": [], "timezone": "Nowhere/City"
    });
    let problem = expect_problem(
        app.put(
            &format!("/api/v1/doctors/{}/profile", doctor.id),
            &doctor.token,
            &bad_doctor,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&problem),
        vec!["specialties", "bio", "timezone"]
    );

    let mut bad_patient = patient_profile("fine");
    bad_patient["contact"]["phone"] = json!("call me maybe");
    bad_patient["medical_history"]["conditions"] = json!(["line\u{0007}bell"]);
    let problem = expect_problem(
        app.put(
            &format!("/api/v1/patients/{}/profile", patient.id),
            &patient.token,
            &bad_patient,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        problem_fields(&problem),
        vec!["contact.phone", "medical_history.conditions"]
    );

    let mut missing = patient_profile("fine");
    missing["medical_history"]
        .as_object_mut()
        .unwrap()
        .remove("allergies");
    let problem = expect_problem(
        app.put(
            &format!("/api/v1/patients/{}/profile", patient.id),
            &patient.token,
            &missing,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&problem), vec!["medical_history.allergies"]);

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 2, "only the two registrations are recorded");
}

#[tokio::test]
async fn a_patient_reads_and_edits_their_own_record() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let path = format!("/api/v1/patients/{}", patient.id);

    let before = expect_status(app.get(&path, &patient.token).await, StatusCode::OK).await;
    assert_eq!(before["name"], "Ada Patient");
    assert_eq!(before["contact"], json!({ "phone": null, "address": null }));
    assert_eq!(before["medical_history"]["conditions"], json!([]));

    let mut body = patient_profile("Seasonal flare-ups.");
    body["name"] = json!("Ada Lovelace");
    let updated = expect_status(
        app.put(&format!("{path}/profile"), &patient.token, &body)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["name"], "Ada Lovelace");
    assert_eq!(updated["contact"]["phone"], "+91 22 1234 5678");
    assert_eq!(
        updated["medical_history"]["allergies"],
        json!(["penicillin"])
    );
    assert_eq!(updated["medical_history"]["notes"], "Seasonal flare-ups.");
    assert_eq!(
        expect_status(app.get(&path, &patient.token).await, StatusCode::OK).await,
        updated
    );

    // `me` follows the new name at once.
    let me = expect_status(app.get("/api/v1/me", &patient.token).await, StatusCode::OK).await;
    assert_eq!(me["name"], "Ada Lovelace");

    // The same body again records nothing new.
    expect_status(
        app.put(&format!("{path}/profile"), &patient.token, &body)
            .await,
        StatusCode::OK,
    )
    .await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(&patient.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 2);
}

#[tokio::test]
async fn patient_records_are_private() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let other_patient = app.patient().await;
    let doctor = app.doctor().await;
    let auditor = app.staff("auditor").await;
    let admin = app.staff("admin").await;
    let path = format!("/api/v1/patients/{}", patient.id);
    let edit = format!("{path}/profile");
    let body = patient_profile("written by someone else");

    // Without a shared appointment (none exist yet), no doctor may read; nor other patients
    // or auditors. They all get 404: the record's existence is not revealed.
    for stranger in [&other_patient, &doctor, &auditor] {
        expect_problem(app.get(&path, &stranger.token).await, StatusCode::NOT_FOUND).await;
        expect_problem(
            app.put(&edit, &stranger.token, &body).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    // Admins may read but not edit.
    let read = expect_status(app.get(&path, &admin.token).await, StatusCode::OK).await;
    assert_eq!(read["id"], patient.id.as_str());
    expect_problem(
        app.put(&edit, &admin.token, &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Unknown patients are 404 for admins too.
    let unknown = format!("/api/v1/patients/{}", uuid::Uuid::new_v4());
    expect_problem(app.get(&unknown, &admin.token).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn doctors_are_found_by_specialty_and_text() {
    let app = spawn_app().await;
    let viewer = app.patient().await;
    let cardiologist = app.register("doctor", "Dr. Heart", "Europe/Paris").await;
    let dermatologist = app.register("doctor", "Dr. Skin", "Europe/Paris").await;
    let mut body = doctor_profile("Treats hearts.");
    expect_status(
        app.put(
            &format!("/api/v1/doctors/{}/profile", cardiologist.id),
            &cardiologist.token,
            &body,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    body["specialties"] = json!(["Dermatology"]);
    body["bio"] = json!("Eczema and acne.");
    expect_status(
        app.put(
            &format!("/api/v1/doctors/{}/profile", dermatologist.id),
            &dermatologist.token,
            &body,
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let names = |body: serde_json::Value| -> Vec<String> {
        body["doctors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = expect_status(
        app.get("/api/v1/doctors", &viewer.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(all), vec!["Dr. Heart", "Dr. Skin"]);
    let by_specialty = expect_status(
        app.get("/api/v1/doctors?specialty=cardiology", &viewer.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(by_specialty), vec!["Dr. Heart"]);
    let by_text = expect_status(
        app.get("/api/v1/doctors?q=ECZEMA", &viewer.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(by_text), vec!["Dr. Skin"]);
    let wildcard = expect_status(
        app.get("/api/v1/doctors?q=%25", &viewer.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        names(wildcard),
        Vec::<String>::new(),
        "% is matched literally"
    );
    let none = expect_status(
        app.get("/api/v1/doctors?specialty=cardio", &viewer.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        names(none),
        Vec::<String>::new(),
        "specialty matches exactly"
    );

    let typo = app.get("/api/v1/doctors?speciality=x", &viewer.token).await;
    let problem = expect_problem(typo, StatusCode::BAD_REQUEST).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("speciality"),
        "{problem}"
    );
    let anonymous = app
        .client
        .get(app.url("/api/v1/doctors"))
        .send()
        .await
        .unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn concurrent_edits_of_one_profile_all_succeed_in_some_order() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let path = format!("/api/v1/doctors/{}/profile", doctor.id);
    let edits = (0..20).map(|i| {
        let app = &app;
        let path = &path;
        let token = &doctor.token;
        async move {
            app.put(path, token, &doctor_profile(&format!("version {i}")))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(edits).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );

    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(&doctor.id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(sequences, (1..=21).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_doctor_cannot_change_time_zone_while_future_availability_is_open() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let path = format!("/api/v1/doctors/{}/profile", doctor.id);
    let start = crate::scheduling::days_ahead(3) + time::Duration::hours(14);
    let window = app
        .open_window(&doctor, start, start + time::Duration::hours(2))
        .await;

    // Same zone: fine. Another zone while the window is open: refused, nothing recorded.
    let mut body = doctor_profile("bio");
    body["timezone"] = json!("America/New_York");
    expect_status(app.put(&path, &doctor.token, &body).await, StatusCode::OK).await;
    body["timezone"] = json!("Asia/Tokyo");
    let refused = expect_problem(
        app.put(&path, &doctor.token, &body).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["code"], "timezone_change_with_availability");

    // Once the window is removed, the zone can change.
    let window_path = format!(
        "/api/v1/doctors/{}/availability/{}",
        doctor.id,
        window["id"].as_str().unwrap()
    );
    assert_eq!(
        app.delete(&window_path, &doctor.token).await.status(),
        StatusCode::NO_CONTENT
    );
    let moved = expect_status(app.put(&path, &doctor.token, &body).await, StatusCode::OK).await;
    assert_eq!(moved["timezone"], "Asia/Tokyo");
}
