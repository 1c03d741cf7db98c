//! The audit log over HTTP, `telemed audit export | telemed audit import` into a fresh
//! database rebuilding identical read models (every projection's tables), and the access log of patient-data reads.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::Duration;

use crate::calls::{CallSetup, SDP};
use crate::helpers::{
    TestApp, TestDb, User, assert_same_read_models, eventually, expect_problem, expect_status,
    problem_fields, projections_caught_up, read_models, spawn_app,
};
use crate::live::Ws;
use crate::scheduling::days_ahead;

/// Some of everything: profiles, windows, bookings, confirmations, reschedules, cancellations.
async fn busy(app: &TestApp) -> (User, Vec<User>) {
    let doctors = [app.doctor().await, app.doctor().await];
    let mut patients = Vec::new();
    for _ in 0..4 {
        patients.push(app.patient().await);
    }
    for (d, doctor) in doctors.iter().enumerate() {
        for day in 3..6 {
            let day = days_ahead(day);
            app.open_window(doctor, day + Duration::hours(8), day + Duration::hours(16))
                .await;
        }
        for (p, patient) in patients.iter().enumerate() {
            let day = days_ahead(3 + p as i64 % 3);
            let start = day + Duration::hours(8 + d as i64 * 4) + Duration::minutes(30 * p as i64);
            let booked = app
                .book(patient, &doctor.id, start, start + Duration::minutes(30))
                .await;
            let id = booked["id"].as_str().unwrap();
            match p {
                0 => {
                    expect_status(
                        app.act(doctor, id, "confirm", &json!({})).await,
                        StatusCode::OK,
                    )
                    .await;
                }
                1 => {
                    let later = start + Duration::hours(3);
                    expect_status(
                        app.reschedule(patient, id, later, later + Duration::minutes(30))
                            .await,
                        StatusCode::OK,
                    )
                    .await;
                }
                2 => {
                    expect_status(
                        app.act(patient, id, "cancel", &json!({ "reason": "travel" }))
                            .await,
                        StatusCode::OK,
                    )
                    .await;
                }
                _ => {}
            }
        }
    }
    let auditor = app.staff("auditor").await;
    (auditor, patients)
}

async fn audit_page(app: &TestApp, user: &User, query: &[(&str, &str)]) -> reqwest::Response {
    app.get_with("/api/v1/audit/events", &user.token, query)
        .await
}

#[tokio::test]
async fn auditors_page_through_the_whole_history_once_in_order() {
    let app = spawn_app().await;
    let (auditor, patients) = busy(&app).await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let mut after = String::new();
    let mut seen: Vec<Value> = Vec::new();
    loop {
        let page = expect_status(
            audit_page(&app, &auditor, &[("after", &after), ("limit", "7")]).await,
            StatusCode::OK,
        )
        .await;
        let events = page["events"].as_array().unwrap().clone();
        after = page["next"].as_str().unwrap().to_string();
        if events.is_empty() {
            break;
        }
        seen.extend(events);
    }
    assert_eq!(seen.len() as i64, total);
    let positions: Vec<telemed_domain::Position> = seen
        .iter()
        .map(|e| e["position"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    for field in [
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "event_type",
        "event_version",
        "payload",
        "metadata",
        "recorded_at",
    ] {
        assert!(!seen[0][field].is_null(), "{field} in {}", seen[0]);
    }

    // Filters.
    let one = seen
        .iter()
        .find(|e| e["aggregate_type"] == "appointment")
        .unwrap();
    let id = one["aggregate_id"].as_str().unwrap();
    let filtered = expect_status(
        audit_page(
            &app,
            &auditor,
            &[("aggregate_type", "appointment"), ("aggregate_id", id)],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let filtered = filtered["events"].as_array().unwrap();
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|e| e["aggregate_id"] == id));
    let sequences: Vec<i64> = filtered
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>());

    // Bad input names the field; others than auditors and admins are refused.
    let bad = audit_page(&app, &auditor, &[("after", "yesterday"), ("limit", "0")]).await;
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["after", "limit"]);
    expect_problem(
        audit_page(&app, &patients[0], &[]).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let admin = app.staff("admin").await;
    expect_status(audit_page(&app, &admin, &[]).await, StatusCode::OK).await;
    let anonymous = app
        .client
        .get(app.url("/api/v1/audit/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// The columns of read models that hold store coordinates, which an import issues anew (a
/// notification's id is derived from its event's position).
const STORE_COORDINATES: [&str; 4] = ["position", "xid", "gpos", "notification_id"];

/// A consultation on `s`'s confirmed appointment: messages both ways, a read marker, and a call
/// answered over the live connection and ended (which also fills the notifications).
async fn consult(s: &CallSetup) {
    let path = format!("/api/v1/appointments/{}/messages", s.id);
    let mut last = Value::Null;
    for (n, user) in [&s.patient, &s.doctor, &s.patient].into_iter().enumerate() {
        let body = json!({ "content": format!("message {n}") });
        last = expect_status(
            s.app.post(&path, Some(&user.token), &body).await,
            StatusCode::CREATED,
        )
        .await;
    }
    let read = s
        .app
        .post(
            &format!("{path}/read"),
            Some(&s.doctor.token),
            &json!({ "up_to": last["id"] }),
        )
        .await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    let call_id = s.start_call(&s.patient).await;
    let mut doctor_ws = Ws::connect(&s.now, &s.doctor).await;
    let ack = doctor_ws
        .request("call:answer", json!({ "call_id": call_id, "sdp": SDP }))
        .await;
    assert!(ack["error"].is_null(), "{ack}");
    let ended = expect_status(
        s.now
            .post(
                &format!("/api/v1/calls/{call_id}/end"),
                Some(&s.patient.token),
                &json!({ "reason": "user_hangup" }),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended["status"], "ended", "{ended}");
}

async fn telemed(args: &[&str], url: &str) -> std::process::Output {
    let output = tokio::process::Command::new(TestApp::binary())
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "telemed {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A doctor's time off and a waitlist entry (read models of issue 14 §1), so that an export
/// and import carries them too.
/// Time off, and a waitlist whose patient holds an open offer: the freed slot is on day 10,
/// beyond the second server's clock (three days ahead) and both servers hold offers for five
/// days (see [`HOLD`]), so neither server's matcher finds it too near or lapsed.
async fn waitlisted_and_off(app: &TestApp) {
    let doctor = app.doctor().await;
    let day = days_ahead(10);
    let nine = day + Duration::hours(9);
    app.open_window(&doctor, nine, nine + Duration::hours(1))
        .await;
    let off = json!({ "start": (day + Duration::days(2)).date().to_string(),
        "end": (day + Duration::days(3)).date().to_string(), "note": "conference" });
    expect_status(
        app.post("/api/v1/doctors/me/time-off", Some(&doctor.token), &off)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let first = app.patient().await;
    let booked = app
        .book(&first, &doctor.id, nine, nine + Duration::minutes(30))
        .await;
    let waiting = app.patient().await;
    let date = day.date().to_string();
    let join = json!({ "from": date, "to": date, "duration_minutes": 30 });
    expect_status(
        app.post(
            &format!("/api/v1/doctors/{}/waitlist", doctor.id),
            Some(&waiting.token),
            &join,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = booked["id"].as_str().unwrap();
    expect_status(
        app.act(&first, id, "cancel", &json!({ "reason": "cannot come" }))
            .await,
        StatusCode::OK,
    )
    .await;
    let offered = || async {
        let mine = expect_status(
            app.get("/api/v1/me/waitlist", &waiting.token).await,
            StatusCode::OK,
        )
        .await;
        mine["entries"][0]["offer"].is_object()
    };
    eventually(
        "the freed slot is offered to the waiting patient",
        std::time::Duration::from_secs(20),
        offered,
    )
    .await;
}

/// How long the export test's servers hold a waitlist offer: longer than the second server's
/// clock is ahead, so its matcher does not expire the first server's offer at once.
const HOLD: Duration = Duration::days(5);

#[tokio::test]
async fn an_export_imports_into_a_fresh_database_with_identical_read_models() {
    let s = CallSetup::configured(|config| config.waitlist_hold = HOLD, |_| {}).await;
    let app = &s.app;
    busy(app).await;
    consult(&s).await;
    waitlisted_and_off(app).await;
    eventually(
        "the live read models are caught up",
        std::time::Duration::from_secs(15),
        || projections_caught_up(&app.pool),
    )
    .await;
    let exported = telemed(&["audit", "export"], &app.db.url).await;
    let text = String::from_utf8(exported.stdout).unwrap();
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(text.lines().count() as i64, total);

    let file = std::env::temp_dir().join(format!("telemed-export-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&file, &text).unwrap();
    let fresh = TestDb::create().await;
    let imported = telemed(&["audit", "import", file.to_str().unwrap()], &fresh.url).await;
    assert!(
        String::from_utf8_lossy(&imported.stdout).contains(&format!("imported {total} events")),
        "{}",
        String::from_utf8_lossy(&imported.stdout)
    );
    let pool = fresh.migrated_pool().await;
    let original = read_models(&app.pool, &STORE_COORDINATES).await;
    for (table, rows) in &original {
        assert!(
            !rows.is_empty(),
            "{table} is empty: the test fills every read model"
        );
    }
    let imported = read_models(&pool, &STORE_COORDINATES).await;
    assert_same_read_models(&original, &imported, "original (left) and imported (right)");
    let claims = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM patient_time_claims")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(claims(pool.clone()).await, claims(app.pool.clone()).await);

    // A second import into the same database is refused and changes nothing.
    let again = tokio::process::Command::new(TestApp::binary())
        .args(["audit", "import", file.to_str().unwrap()])
        .env("DATABASE_URL", &fresh.url)
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after, total);

    // A damaged export names its line and writes nothing (the good lines before it neither).
    let broken = TestDb::create().await;
    let mut lines: Vec<&str> = text.lines().collect();
    *lines.last_mut().unwrap() = "{\"aggregate_type\": 42}";
    std::fs::write(&file, lines.join("\n")).unwrap();
    let refused = tokio::process::Command::new(TestApp::binary())
        .args(["audit", "import", file.to_str().unwrap()])
        .env("DATABASE_URL", &broken.url)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("line "), "{message}");
    let broken_pool = broken.migrated_pool().await;
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&broken_pool)
        .await
        .unwrap();
    assert_eq!(none, 0);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn reads_of_patient_data_by_others_are_in_the_access_log() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let stranger = app.doctor().await;
    let day = days_ahead(3);
    app.open_window(&doctor, day + Duration::hours(9), day + Duration::hours(12))
        .await;
    let start = day + Duration::hours(10);
    let booked = app
        .book(&patient, &doctor.id, start, start + Duration::minutes(30))
        .await;
    let id = booked["id"].as_str().unwrap();

    // The treating doctor reads the record, the appointment and its messages; a stranger
    // tries the record; the patient reads their own (not logged).
    let profile = format!("/api/v1/patients/{}", patient.id);
    let messages = format!("/api/v1/appointments/{id}/messages");
    expect_status(app.get(&profile, &doctor.token).await, StatusCode::OK).await;
    expect_status(
        app.get(&format!("/api/v1/appointments/{id}"), &doctor.token)
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(app.get(&messages, &doctor.token).await, StatusCode::OK).await;
    expect_problem(
        app.get(&profile, &stranger.token).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_status(app.get(&profile, &patient.token).await, StatusCode::OK).await;

    let auditor = app.staff("auditor").await;
    let page = expect_status(
        app.get_with(
            "/api/v1/audit/access",
            &auditor.token,
            &[("patient_id", &patient.id)],
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let entries: Vec<(String, String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["patient_id"], patient.id.as_str());
            assert!(e["at"].is_string() && e["request_id"].is_string(), "{e}");
            (
                e["actor_id"].as_str().unwrap().to_string(),
                e["resource"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let entry = |who: &User, what: &str, outcome: &str| {
        (who.id.clone(), what.to_string(), outcome.to_string())
    };
    assert_eq!(
        entries,
        vec![
            entry(&doctor, "patient_profile", "allowed"),
            entry(&doctor, "appointment", "allowed"),
            entry(&doctor, "messages", "allowed"),
            entry(&stranger, "patient_profile", "denied"),
        ]
    );

    // Only auditors and admins read it; it cannot be changed; it is in the export.
    expect_problem(
        app.get("/api/v1/audit/access", &patient.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bad = app
        .get_with(
            "/api/v1/audit/access",
            &auditor.token,
            &[("after", "-1"), ("patient_id", "x")],
        )
        .await;
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["after", "patient_id"]);
    let tampered = sqlx::query("UPDATE access_log SET outcome = 'allowed'")
        .execute(&app.pool)
        .await;
    let refusal = tampered.expect_err("the access log must be append-only");
    let refusal = refusal
        .as_database_error()
        .expect("refused by the database");
    assert_eq!(refusal.code().as_deref(), Some("42501"), "{refusal}");
    assert_eq!(
        refusal.message(),
        "the access log is append-only: UPDATE on access_log is not allowed"
    );
    let exported = telemed(&["audit", "export", "--access-log"], &app.db.url).await;
    let text = String::from_utf8(exported.stdout).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.contains("\"denied\""));
}
