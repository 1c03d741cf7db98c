//! The FHIR R4 read API: every resource and bundle the server returns is validated by an
//! independent FHIR library (Python's `fhir.resources`, R4B models, `tests/python/
//! fhir_validate.py`); searches are checked against the REST API's answers for the same user;
//! access rules and bad search parameters answer `OperationOutcome`s.

use std::process::Stdio;

use futures::StreamExt;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, User, doctor_profile, expect_status, patient_profile, spawn_app};
use crate::scheduling::{days_ahead, rfc3339};

/// Validates `resources` with `fhir.resources` (R4B); fails (never skips) without it.
pub async fn validate(resources: &[Value]) {
    for resource in resources {
        json_rules(resource, "");
    }
    let python = std::env::var("TELEMED_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/python/fhir_validate.py"
    );
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python (scripts/test provides .venv-test with fhir.resources)");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&serde_json::to_vec(resources).unwrap())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "fhir.resources refused the server's FHIR: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        serde_json::to_string_pretty(resources).unwrap()
    );
    let kinds = String::from_utf8_lossy(&output.stdout);
    assert_eq!(kinds.split_whitespace().count(), resources.len(), "{kinds}");
}

/// A FHIR GET: its status and body, checked to be `application/fhir+json`.
async fn fhir(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("FHIR GET");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = response.json().await.expect("FHIR JSON");
    assert_eq!(content_type, "application/fhir+json", "{path}: {body}");
    (status, body)
}

/// FHIR's JSON rules that `fhir.resources` leaves unchecked: no empty arrays, objects or
/// strings, no nulls; and invariant ait-1 (an AllergyIntolerance has a clinical status).
fn json_rules(value: &Value, path: &str) {
    match value {
        Value::Null => panic!("{path} is null"),
        Value::String(s) => assert!(!s.is_empty(), "{path} is an empty string"),
        Value::Array(items) => {
            assert!(!items.is_empty(), "{path} is an empty array");
            for (n, item) in items.iter().enumerate() {
                json_rules(item, &format!("{path}[{n}]"));
            }
        }
        Value::Object(fields) => {
            assert!(!fields.is_empty(), "{path} is an empty object");
            if value["resourceType"] == "AllergyIntolerance" {
                assert!(value["clinicalStatus"].is_object(), "{path}: ait-1");
            }
            for (name, field) in fields {
                json_rules(field, &format!("{path}.{name}"));
            }
        }
        _ => {}
    }
}

/// A FHIR GET that must answer 200; the resource is kept for validation.
async fn ok(app: &TestApp, seen: &mut Vec<Value>, path: &str, token: &str) -> Value {
    let (status, body) = fhir(app, path, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    seen.push(body.clone());
    body
}

/// A FHIR GET that must answer an `OperationOutcome` with `status` and issue `code`; returns
/// the expressions of its issues (the parameters named).
async fn refused(
    app: &TestApp,
    seen: &mut Vec<Value>,
    path: &str,
    token: Option<&str>,
    (status, code): (StatusCode, &str),
) -> Vec<String> {
    let (actual, body) = fhir(app, path, token).await;
    assert_eq!(actual, status, "{path}: {body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{path}: {body}");
    assert_eq!(body["issue"][0]["code"], code, "{path}: {body}");
    seen.push(body.clone());
    body["issue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

/// The `resource`s of a bundle's entries.
fn entries(bundle: &Value) -> Vec<Value> {
    assert_eq!(bundle["resourceType"], "Bundle", "{bundle}");
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|entry| entry["resource"].clone()).collect())
        .unwrap_or_default()
}

fn ids(resources: &[Value]) -> Vec<String> {
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The path and query of a bundle link (`self`, `next`, …), if present.
fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find_map(|l| {
        (l["relation"] == relation).then(|| {
            let url = l["url"].as_str().unwrap();
            let path = url.split_once("/fhir/").unwrap().1;
            format!("/fhir/{path}")
        })
    })
}

/// A doctor with a profile and a two-hour window three days ahead; a patient with a profile,
/// one confirmed appointment with a message, one rescheduled and one cancelled.
struct World {
    doctor: User,
    patient: User,
    confirmed: String,
    rescheduled: String,
    cancelled: String,
    window: (time::OffsetDateTime, time::OffsetDateTime),
}

impl World {
    async fn arrange(app: &TestApp) -> Self {
        let doctor = app.doctor().await;
        let patient = app.patient().await;
        let path = format!("/api/v1/doctors/{}/profile", doctor.id);
        expect_status(
            app.put(&path, &doctor.token, &doctor_profile("Listens."))
                .await,
            StatusCode::OK,
        )
        .await;
        let path = format!("/api/v1/patients/{}/profile", patient.id);
        expect_status(
            app.put(&path, &patient.token, &patient_profile("Runs daily."))
                .await,
            StatusCode::OK,
        )
        .await;
        let start = days_ahead(3) + Duration::hours(10);
        let end = start + Duration::hours(2);
        app.open_window(&doctor, start, end).await;
        let half = Duration::minutes(30);
        let book = |at: time::OffsetDateTime| app.book(&patient, &doctor.id, at, at + half);
        let confirmed = book(start).await["id"].as_str().unwrap().to_string();
        let rescheduled = book(start + half).await["id"].as_str().unwrap().to_string();
        let cancelled = book(start + half * 2).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        expect_status(
            app.act(&doctor, &confirmed, "confirm", &json!({})).await,
            StatusCode::OK,
        )
        .await;
        let moved = start + half * 3;
        expect_status(
            app.reschedule(&patient, &rescheduled, moved, moved + half)
                .await,
            StatusCode::OK,
        )
        .await;
        let reason = json!({"reason": "feeling better"});
        expect_status(
            app.act(&patient, &cancelled, "cancel", &reason).await,
            StatusCode::OK,
        )
        .await;
        for text in ["Hello doctor", "See you then"] {
            let path = format!("/api/v1/appointments/{confirmed}/messages");
            let body = json!({"content": text});
            expect_status(
                app.post(&path, Some(&patient.token), &body).await,
                StatusCode::CREATED,
            )
            .await;
        }
        World {
            doctor,
            patient,
            confirmed,
            rescheduled,
            cancelled,
            window: (start, end),
        }
    }
}

/// The REST API's appointments of `user` with `query`: `(id, status)`, by start.
async fn rest_appointments(
    app: &TestApp,
    user: &User,
    query: &[(&str, &str)],
) -> Vec<(String, String)> {
    let body = expect_status(
        app.get_with("/api/v1/appointments", &user.token, query)
            .await,
        StatusCode::OK,
    )
    .await;
    body["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_fhir_resource_validates_and_searches_answer_as_the_rest_api() {
    let app = spawn_app().await;
    let world = World::arrange(&app).await;
    let (doctor, patient) = (&world.doctor, &world.patient);
    let mut seen = Vec::new();

    // The capability statement needs no sign-in.
    let (status, metadata) = fhir(&app, "/fhir/R4/metadata", None).await;
    assert_eq!(status, StatusCode::OK, "{metadata}");
    assert_eq!(metadata["resourceType"], "CapabilityStatement");
    seen.push(metadata);

    // Practitioner and Schedule: the REST directory.
    let practitioner = ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Practitioner/{}", doctor.id),
        &patient.token,
    )
    .await;
    assert_eq!(practitioner["name"][0]["text"], "Dr. Grey");
    let found = ok(
        &app,
        &mut seen,
        "/fhir/R4/Practitioner?name=grey",
        &patient.token,
    )
    .await;
    assert_eq!(ids(&entries(&found)), vec![doctor.id.clone()]);
    assert_eq!(found["total"], 1);
    let rest = expect_status(
        app.get("/api/v1/doctors", &patient.token).await,
        StatusCode::OK,
    )
    .await;
    let rest_ids: Vec<String> = rest["doctors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let all = ok(&app, &mut seen, "/fhir/R4/Practitioner", &patient.token).await;
    assert_eq!(ids(&entries(&all)), rest_ids);
    ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Schedule/{}", doctor.id),
        &patient.token,
    )
    .await;
    let schedules = ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Schedule?actor=Practitioner/{}", doctor.id),
        &patient.token,
    )
    .await;
    assert_eq!(ids(&entries(&schedules)), vec![doctor.id.clone()]);

    // Slot: the REST free slots of the same range.
    let (from, to) = (
        world.window.0 - Duration::hours(1),
        world.window.1 + Duration::hours(1),
    );
    let rest_starts = app
        .free_starts(&doctor.id, &patient.token, from, to, 30)
        .await;
    assert_eq!(
        rest_starts.len(),
        2,
        "the moved and the cancelled half hours are free"
    );
    let query = format!(
        "/fhir/R4/Slot?schedule=Schedule/{}&start=ge{}&start=lt{}",
        doctor.id,
        rfc3339(from).replace('+', "%2B"),
        rfc3339(to).replace('+', "%2B")
    );
    let slots = entries(&ok(&app, &mut seen, &query, &patient.token).await);
    let starts: Vec<_> = slots
        .iter()
        .map(|s| crate::scheduling::instant(s["start"].as_str().unwrap()))
        .collect();
    assert_eq!(starts, rest_starts);
    assert!(slots.iter().all(|s| s["status"] == "free"
        && s["schedule"]["reference"] == format!("Schedule/{}", doctor.id)));
    let slot_id = slots[0]["id"].as_str().unwrap();
    ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Slot/{slot_id}"),
        &patient.token,
    )
    .await;

    // Patient: the patient, and their doctor (an audited read).
    let own = ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Patient/{}", patient.id),
        &patient.token,
    )
    .await;
    assert_eq!(own["telecom"][0]["value"], "+91 22 1234 5678");
    let logged_before = app.rows_in("access_log").await;
    ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Patient/{}", patient.id),
        &doctor.token,
    )
    .await;
    let logged: (String, String, String) = sqlx::query_as(
        "SELECT actor_id::text, resource, outcome FROM access_log ORDER BY entry_id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(app.rows_in("access_log").await, logged_before + 1);
    assert_eq!(
        logged,
        (
            doctor.id.clone(),
            "patient_profile".into(),
            "allowed".into()
        )
    );

    // Appointment: the REST list, statuses mapped; a reschedule and a cancellation visible.
    let expected_status = |rest: &str| match rest {
        "confirmed" => "booked",
        "cancelled" => "cancelled",
        "rescheduled" | "pending" => "pending",
        other => panic!("unexpected status {other}"),
    };
    for user in [patient, doctor] {
        let rest = rest_appointments(&app, user, &[]).await;
        assert_eq!(rest.len(), 3);
        let bundle = ok(&app, &mut seen, "/fhir/R4/Appointment", &user.token).await;
        let found: Vec<(String, String)> = entries(&bundle)
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_string(),
                    a["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mapped: Vec<(String, String)> = rest
            .iter()
            .map(|(id, s)| (id.clone(), expected_status(s).to_string()))
            .collect();
        assert_eq!(found, mapped);
        assert_eq!(bundle["total"], 3);
    }
    let booked = ok(
        &app,
        &mut seen,
        "/fhir/R4/Appointment?status=booked",
        &patient.token,
    )
    .await;
    let rest_confirmed = rest_appointments(&app, patient, &[("status", "confirmed")]).await;
    assert_eq!(
        ids(&entries(&booked)),
        rest_confirmed
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(ids(&entries(&booked)), vec![world.confirmed.clone()]);
    let day = world.window.0.date().to_string();
    let on_day = ok(
        &app,
        &mut seen,
        &format!(
            "/fhir/R4/Appointment?date={day}&practitioner=Practitioner/{}&patient=Patient/{}",
            doctor.id, patient.id
        ),
        &patient.token,
    )
    .await;
    assert_eq!(on_day["total"], 3);
    let later = rfc3339(world.window.0 + Duration::minutes(45)).replace('+', "%2B");
    let after = ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Appointment?date=ge{later}"),
        &patient.token,
    )
    .await;
    assert_eq!(
        ids(&entries(&after)),
        vec![world.cancelled.clone(), world.rescheduled.clone()]
    );

    let moved = ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Appointment/{}", world.rescheduled),
        &patient.token,
    )
    .await;
    assert_eq!(moved["status"], "pending");
    assert_eq!(moved["comment"], "rescheduled");
    let extension = &moved["extension"][0];
    assert_eq!(
        extension["url"],
        "https://telemed.dev/fhir/StructureDefinition/rescheduled-from"
    );
    assert_eq!(
        extension["valuePeriod"]["start"],
        rfc3339(world.window.0 + Duration::minutes(30))
    );
    let awaiting: Vec<&str> = moved["participant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        awaiting,
        vec!["needs-action", "accepted"],
        "the doctor confirms a patient's reschedule"
    );
    let called_off = ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Appointment/{}", world.cancelled),
        &doctor.token,
    )
    .await;
    assert_eq!(called_off["cancelationReason"]["text"], "feeling better");

    // Paging: one per page, following next links, covers the same three in order.
    let mut path = Some("/fhir/R4/Appointment?_count=1".to_string());
    let mut paged = Vec::new();
    while let Some(next) = path {
        let page = ok(&app, &mut seen, &next, &patient.token).await;
        assert_eq!(page["total"], 3);
        paged.extend(ids(&entries(&page)));
        path = link(&page, "next");
    }
    let all = rest_appointments(&app, patient, &[]).await;
    assert_eq!(
        paged,
        all.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()
    );

    // Communication: the conversation, as the REST history.
    let rest = expect_status(
        app.get(
            &format!("/api/v1/appointments/{}/messages", world.confirmed),
            &doctor.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let rest_ids: Vec<String> = rest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let messages = ok(
        &app,
        &mut seen,
        &format!(
            "/fhir/R4/Communication?part-of=Appointment/{}",
            world.confirmed
        ),
        &doctor.token,
    )
    .await;
    assert_eq!(ids(&entries(&messages)), rest_ids);
    assert_eq!(
        entries(&messages)[0]["payload"][0]["contentString"],
        "Hello doctor"
    );
    let first_page = ok(
        &app,
        &mut seen,
        &format!(
            "/fhir/R4/Communication?part-of=Appointment/{}&_count=1",
            world.confirmed
        ),
        &doctor.token,
    )
    .await;
    assert_eq!(
        (first_page["total"].clone(), ids(&entries(&first_page))),
        (json!(2), vec![rest_ids[1].clone()])
    );
    let older = ok(
        &app,
        &mut seen,
        &link(&first_page, "next").unwrap(),
        &doctor.token,
    )
    .await;
    assert_eq!(ids(&entries(&older)), vec![rest_ids[0].clone()]);
    assert_eq!(link(&older, "next"), None);
    ok(
        &app,
        &mut seen,
        &format!("/fhir/R4/Communication/{}", rest_ids[0]),
        &patient.token,
    )
    .await;

    validate(&seen).await;
    println!("fhir.resources validated {} FHIR documents", seen.len());
}

#[tokio::test]
async fn fhir_access_rules_and_bad_parameters_answer_operation_outcomes() {
    let app = spawn_app().await;
    let world = World::arrange(&app).await;
    let other = app.register("patient", "Bea Other", "UTC").await;
    let mut seen = Vec::new();
    let (forbidden, not_found, invalid) = (
        (StatusCode::FORBIDDEN, "forbidden"),
        (StatusCode::NOT_FOUND, "not-found"),
        (StatusCode::BAD_REQUEST, "invalid"),
    );

    // Another patient reads nothing of this one, and the attempts are logged.
    let before = app.rows_in("access_log").await;
    let patient = &world.patient.id;
    refused(
        &app,
        &mut seen,
        &format!("/fhir/R4/Patient/{patient}"),
        Some(&other.token),
        not_found,
    )
    .await;
    refused(
        &app,
        &mut seen,
        &format!("/fhir/R4/Appointment/{}", world.confirmed),
        Some(&other.token),
        not_found,
    )
    .await;
    refused(
        &app,
        &mut seen,
        &format!("/fhir/R4/Appointment?patient=Patient/{patient}"),
        Some(&other.token),
        forbidden,
    )
    .await;
    refused(
        &app,
        &mut seen,
        &format!(
            "/fhir/R4/Communication?part-of=Appointment/{}",
            world.confirmed
        ),
        Some(&other.token),
        not_found,
    )
    .await;
    let denied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM access_log WHERE actor_id = $1::uuid AND patient_id = $2::uuid AND outcome = 'denied'",
    )
    .bind(&other.id)
    .bind(patient)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((denied, app.rows_in("access_log").await), (4, before + 4));
    let theirs = expect_status(
        app.get("/fhir/R4/Appointment", &other.token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["total"], 0);
    let doctor = app.doctor().await;
    refused(
        &app,
        &mut seen,
        &format!(
            "/fhir/R4/Appointment?practitioner=Practitioner/{}",
            world.doctor.id
        ),
        Some(&doctor.token),
        forbidden,
    )
    .await;
    refused(
        &app,
        &mut seen,
        &format!("/fhir/R4/Patient/{patient}"),
        Some(&doctor.token),
        not_found,
    )
    .await;

    // Without a token: 401; unknown ids and routes: 404.
    refused(
        &app,
        &mut seen,
        &format!("/fhir/R4/Patient/{patient}"),
        None,
        (StatusCode::UNAUTHORIZED, "login"),
    )
    .await;
    refused(
        &app,
        &mut seen,
        "/fhir/R4/Practitioner/not-a-doctor",
        Some(&other.token),
        not_found,
    )
    .await;
    // A slot id of the right shape but at the edge of time is no slot (and no overflow).
    for start in ["253402300499", "99999999999999999999"] {
        refused(
            &app,
            &mut seen,
            &format!("/fhir/R4/Slot/{}-{start}-5", world.doctor.id),
            Some(&other.token),
            not_found,
        )
        .await;
    }
    refused(
        &app,
        &mut seen,
        "/fhir/R4/Observation",
        Some(&other.token),
        (StatusCode::NOT_FOUND, "not-supported"),
    )
    .await;

    // Bad search parameters: 400 naming the parameter.
    let token = Some(world.patient.token.as_str());
    let schedule = format!("schedule=Schedule/{}", world.doctor.id);
    for (query, parameter) in [
        ("/fhir/R4/Appointment?date=tomorrow".to_string(), "date"),
        ("/fhir/R4/Appointment?date=sa2027-01-01".to_string(), "date"),
        (
            "/fhir/R4/Appointment?status=booked,maybe".to_string(),
            "status",
        ),
        (
            "/fhir/R4/Appointment?patient=Practitioner/x".to_string(),
            "patient",
        ),
        ("/fhir/R4/Appointment?colour=blue".to_string(), "colour"),
        ("/fhir/R4/Appointment?_count=0".to_string(), "_count"),
        ("/fhir/R4/Appointment?_offset=-1".to_string(), "_offset"),
        ("/fhir/R4/Slot".to_string(), "schedule"),
        (format!("/fhir/R4/Slot?{schedule}&duration=2"), "duration"),
        (
            format!("/fhir/R4/Slot?{schedule}&start=ge2027-01-01&start=lt2026-12-01"),
            "start",
        ),
        (
            format!("/fhir/R4/Slot?{schedule}&start=ge2027-01-01&start=lt2027-06-01"),
            "start",
        ),
        ("/fhir/R4/Communication".to_string(), "part-of"),
        (
            format!(
                "/fhir/R4/Communication?part-of=Appointment/{}&_cursor=x",
                world.confirmed
            ),
            "_cursor",
        ),
        ("/fhir/R4/Practitioner?name=a&name=b".to_string(), "name"),
    ] {
        let named = refused(&app, &mut seen, &query, token, invalid).await;
        assert_eq!(named, vec![parameter.to_string()], "{query}");
    }

    validate(&seen).await;
}

/// `GET /api/v1/me/export` as `user`: the download's headers checked, its document parsed.
async fn export(app: &TestApp, user: &User) -> Value {
    let response = app.get("/api/v1/me/export", &user.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/json");
    let disposition = header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"telemed-export-")
            && disposition.ends_with(".json\""),
        "{disposition}"
    );
    response
        .json()
        .await
        .expect("the export is one JSON document")
}

/// How many of the bundle's resources are `kind` (and, for communications, of `category`).
fn count(bundle: &Value, kind: &str, category: Option<&str>) -> i64 {
    entries(bundle)
        .iter()
        .filter(|r| r["resourceType"] == kind)
        .filter(|r| category.is_none_or(|c| r["category"][0]["coding"][0]["code"] == c))
        .count() as i64
}

async fn scalar(app: &TestApp, sql: &str, user: &User) -> i64 {
    sqlx::query_scalar(sql)
        .bind(&user.id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_export_holds_everything_the_store_holds_about_the_user() {
    let db = crate::helpers::TestDb::create().await;
    let app = crate::helpers::spawn_app_on(db, |config| {
        config.booking_min_notice = Duration::ZERO;
    })
    .await;
    let world = World::arrange(&app).await;
    let (doctor, patient) = (&world.doctor, &world.patient);
    // A consultation starting in five minutes, whose call rings now.
    let soon = time::OffsetDateTime::now_utc()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + Duration::minutes(6);
    app.open_window(doctor, soon, soon + Duration::hours(1))
        .await;
    let now_id = app
        .book(patient, &doctor.id, soon, soon + Duration::minutes(30))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect_status(
        app.act(doctor, &now_id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let path = format!("/api/v1/appointments/{now_id}/calls");
    expect_status(
        app.post(&path, Some(&doctor.token), &json!({})).await,
        StatusCode::CREATED,
    )
    .await;
    // A conversation longer than the export's pages of 200, in the order it was written.
    let chat = format!("/api/v1/appointments/{now_id}/messages");
    for n in 0..250 {
        let body = json!({ "content": format!("line {n}") });
        expect_status(
            app.post(&chat, Some(&patient.token), &body).await,
            StatusCode::CREATED,
        )
        .await;
    }
    // The doctor reads the patient's record: an access log entry for both exports.
    expect_status(
        app.get(&format!("/api/v1/patients/{}", patient.id), &doctor.token)
            .await,
        StatusCode::OK,
    )
    .await;
    let admin = app.staff("admin").await;
    let head_before = expect_status(
        app.get("/api/v1/audit/head", &admin.token).await,
        StatusCode::OK,
    )
    .await;

    let mine = export(&app, patient).await;
    assert_eq!(mine["format"], "telemed-export/1");
    assert_eq!(mine["user"]["id"], patient.id.as_str());
    let bundle = &mine["bundle"];
    assert_eq!(bundle["type"], "collection");
    validate(std::slice::from_ref(bundle)).await;
    let resources = entries(bundle);
    assert_eq!(resources[0]["resourceType"], "Patient");
    assert_eq!(resources[0]["id"], patient.id.as_str());
    for (kind, text) in [
        ("Condition", "asthma"),
        ("AllergyIntolerance", "penicillin"),
    ] {
        let found = resources
            .iter()
            .find(|r| r["resourceType"] == kind)
            .unwrap();
        assert_eq!(found["code"]["text"], text);
    }
    let medication = resources
        .iter()
        .find(|r| r["resourceType"] == "MedicationStatement")
        .unwrap();
    assert_eq!(
        medication["medicationCodeableConcept"]["text"],
        "salbutamol"
    );
    let notes = resources
        .iter()
        .find(|r| r["resourceType"] == "Observation")
        .unwrap();
    assert_eq!(notes["valueString"], "Runs daily.");

    // Against the store: appointments, their events, messages, calls, notifications, reads.
    let of_patient = "SELECT count(*) FROM appointments WHERE patient_id = $1::uuid";
    let events = "SELECT count(*) FROM events WHERE aggregate_type = 'appointment'
                    AND aggregate_id IN (SELECT appointment_id::text FROM appointments WHERE patient_id = $1::uuid)";
    let messages = "SELECT count(*) FROM events WHERE aggregate_type = 'chat_message'
                      AND event_type = 'MessagePosted' AND sequence = 1
                      AND payload::text LIKE ANY (SELECT '%' || appointment_id::text || '%' FROM appointments WHERE patient_id = $1::uuid)";
    let calls = "SELECT count(*) FROM calls WHERE patient_id = $1::uuid";
    let notifications = "SELECT count(*) FROM notifications WHERE user_id = $1::uuid";
    let reads = "SELECT count(*) FROM access_log WHERE patient_id = $1::uuid";
    assert_eq!(
        count(bundle, "Appointment", None),
        scalar(&app, of_patient, patient).await
    );
    assert_eq!(count(bundle, "Appointment", None), 4);
    assert_eq!(
        count(bundle, "Provenance", None),
        scalar(&app, events, patient).await
    );
    assert_eq!(
        count(bundle, "Communication", Some("message")),
        scalar(&app, messages, patient).await
    );
    assert_eq!(count(bundle, "Communication", Some("message")), 252);
    let lines: Vec<String> = resources
        .iter()
        .filter(|r| r["partOf"][0]["reference"] == format!("Appointment/{now_id}"))
        .filter(|r| r["category"][0]["coding"][0]["code"] == "message")
        .map(|r| {
            r["payload"][0]["contentString"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        lines,
        (0..250).map(|n| format!("line {n}")).collect::<Vec<_>>()
    );
    assert_eq!(
        count(bundle, "Encounter", None),
        scalar(&app, calls, patient).await
    );
    assert_eq!(count(bundle, "Encounter", None), 1);
    let notified = scalar(&app, notifications, patient).await;
    assert!(notified > 0);
    assert_eq!(
        count(bundle, "Communication", Some("notification")),
        notified
    );
    let access = mine["access_log"].as_array().unwrap();
    assert_eq!(access.len() as i64, scalar(&app, reads, patient).await);
    assert_eq!(access.len(), 1);
    assert_eq!(access[0]["actor_id"], doctor.id.as_str());

    // Every event of the history is there whole, with its type.
    let history = expect_status(
        app.get(
            &format!("/api/v1/appointments/{}/history", world.rescheduled),
            &patient.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let provenance: Vec<Value> = resources
        .iter()
        .filter(|r| {
            r["resourceType"] == "Provenance"
                && r["target"][0]["reference"] == format!("Appointment/{}", world.rescheduled)
        })
        .map(|r| serde_json::from_str(r["extension"][0]["valueString"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(&provenance, history["events"].as_array().unwrap());

    // The audit chain's head, as auditors read it, no older than before the export.
    let head = &mine["audit_head"];
    assert!(
        head["hash"].as_str().unwrap().len() == 64 && head["position"].is_string(),
        "{head}"
    );
    assert!(head["events"].as_i64().unwrap() >= head_before["events"].as_i64().unwrap());

    // The doctor's: their Practitioner, the same appointments, their reads.
    let theirs = export(&app, doctor).await;
    validate(std::slice::from_ref(&theirs["bundle"])).await;
    let resources = entries(&theirs["bundle"]);
    assert_eq!(resources[0]["resourceType"], "Practitioner");
    assert!(resources.iter().all(|r| r["resourceType"] != "Patient"));
    assert_eq!(count(&theirs["bundle"], "Appointment", None), 4);
    assert_eq!(
        count(&theirs["bundle"], "Communication", Some("notification")),
        scalar(&app, notifications, doctor).await
    );
    // Each patient's appointment the doctor exported is an audited read, before it was sent.
    let exported: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT patient_id::text, resource_id, outcome FROM access_log
          WHERE actor_id = $1::uuid AND resource = 'export' ORDER BY entry_id",
    )
    .bind(&doctor.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut listed: Vec<String> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Appointment")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let mut logged: Vec<String> = exported.iter().map(|(_, id, _)| id.clone()).collect();
    listed.sort();
    logged.sort();
    assert_eq!(logged, listed);
    assert!(
        exported
            .iter()
            .all(|(p, _, outcome)| p == &patient.id && outcome == "allowed"),
        "{exported:?}"
    );
    let reads_by_doctor = "SELECT count(*) FROM access_log WHERE actor_id = $1::uuid";
    assert_eq!(
        theirs["access_log"].as_array().unwrap().len() as i64,
        scalar(&app, reads_by_doctor, doctor).await
    );

    // Staff hold no such data.
    let refused = app.get("/api/v1/me/export", &admin.token).await;
    crate::helpers::expect_problem(refused, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn appointment_searches_page_through_all_of_a_long_history() {
    let app = spawn_app().await;
    let doctor = app.register("doctor", "Dr. Busy", "UTC").await;
    let patient = app.patient().await;
    let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "08:00", "end": "18:00" }))
        .collect();
    let days = json!({
        "weekly": weekly,
        "from": days_ahead(2).date().to_string(),
        "to": days_ahead(40).date().to_string(),
    });
    expect_status(
        app.open_availability(&doctor, &days).await,
        StatusCode::CREATED,
    )
    .await;
    // More than a REST list's 500: every half hour of days 2 to 27 (26 × 20 = 520).
    let starts: Vec<_> = (2..=27)
        .flat_map(|day| (16..36).map(move |half| days_ahead(day) + Duration::minutes(30 * half)))
        .collect();
    futures::stream::iter(starts.iter().copied())
        .for_each_concurrent(8, |start| {
            let (app, patient, doctor) = (&app, &patient, &doctor);
            async move {
                app.book(patient, &doctor.id, start, start + Duration::minutes(30))
                    .await;
            }
        })
        .await;

    // Everything, then the last page: the latest appointment is on it.
    let all = expect_status(
        app.get("/fhir/R4/Appointment?_count=200", &patient.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["total"], 520);
    let last = expect_status(
        app.get(
            "/fhir/R4/Appointment?_count=200&_offset=400",
            &patient.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let page = entries(&last);
    assert_eq!(page.len(), 120);
    assert_eq!(
        crate::scheduling::instant(page[119]["start"].as_str().unwrap()),
        *starts.last().unwrap()
    );
    assert!(
        last["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next"),
        "{}",
        last["link"]
    );
    // Conditions past the first 500: from day 26 on (40 appointments), pending, this doctor.
    let query = format!(
        "/fhir/R4/Appointment?date=ge{}&status=pending&practitioner=Practitioner/{}",
        days_ahead(26).date(),
        doctor.id
    );
    let late = expect_status(app.get(&query, &patient.token).await, StatusCode::OK).await;
    assert_eq!(late["total"], 40);
    assert_eq!(entries(&late).len(), 40);
    let none = expect_status(
        app.get("/fhir/R4/Appointment?status=booked", &patient.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(none["total"], 0);
    validate(&[all, last, late, none]).await;
}
