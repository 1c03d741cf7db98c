//! Schemathesis fuzzes the served OpenAPI document against a real `telemed serve`: no answer
//! may be a server error, every answer must be documented (status, content type, schema,
//! headers), and every request the document allows must be accepted (`positive_data_acceptance`)
//! but for the few rules listed in [`RULES_BEYOND_THE_SCHEMA`]. It runs anonymously and as a
//! patient, a doctor and an admin, with the ids of real records mixed into the generated ones so
//! that requests get past the 404s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, TestDb, User, expect_status, spawn_process_with};
use crate::scheduling::days_ahead;

/// Test cases per operation and run: enough to find the malformed-input answers, small enough
/// that the four runs take about a minute (the coverage phase alone tries every documented
/// boundary).
const EXAMPLES: &str = "10";

/// The checks that fail the test.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance,\
                      positive_data_acceptance";

/// What `positive_data_acceptance` accepts of a request its schema allows, besides the
/// operation's own exception below.
const ACCEPTED: &str = r#""2xx", "3xx", "401", "403", "404", "409", "429", "5xx""#;

/// Operations whose schema-valid requests the server may refuse, with the status, for a rule
/// the OpenAPI document cannot state (the document lists that status for the operation). Every
/// other operation must accept any request its schema allows.
const RULES_BEYOND_THE_SCHEMA: [(&str, &str, &str); 21] = [
    (
        "POST /api/v1/doctors/{id}/waitlist",
        "422",
        "dates from today, from <= to, within the booking horizon",
    ),
    (
        "POST /api/v1/auth/register",
        "422",
        "a real time zone; a password without the e-mail's name",
    ),
    (
        "PUT /api/v1/doctors/{doctor_id}/profile",
        "422",
        "a real time zone",
    ),
    (
        "PUT /api/v1/patients/{patient_id}/profile",
        "422",
        "a real time zone",
    ),
    (
        "POST /api/v1/appointments",
        "422",
        "a future time after the notice; end after start; a doctor",
    ),
    (
        "POST /api/v1/appointments/{id}/reschedule",
        "422",
        "a future time, a new one; end after start",
    ),
    (
        "POST /api/v1/doctors/{doctor_id}/availability",
        "422",
        "one window or a template; future; from <= to",
    ),
    (
        "PUT /api/v1/doctors/{doctor_id}/availability/{window_id}",
        "422",
        "future; end after start; same day",
    ),
    (
        "GET /api/v1/doctors/{doctor_id}/availability",
        "422",
        "to after from, within 62 days; a real zone",
    ),
    (
        "POST /api/v1/doctors/me/time-off",
        "422",
        "end after start, in the future, within 366 days",
    ),
    (
        "GET /api/v1/doctors/{doctor_id}/availability/windows",
        "422",
        "to after from, within 62 days",
    ),
    (
        "PUT /api/v1/notifications/preferences",
        "422",
        "a phone number when sms is on",
    ),
    (
        "POST /api/v1/notifications/push-subscriptions",
        "422",
        "a key on the P-256 curve; 20 devices at most",
    ),
    (
        "GET /api/v1/appointments/{id}/messages",
        "422",
        "`before` is a message of this conversation",
    ),
    (
        "POST /api/v1/appointments/{id}/messages/read",
        "422",
        "`up_to` is a message of this conversation",
    ),
    (
        "GET /fhir/R4/Practitioner",
        "400",
        "a name of at most 100 characters",
    ),
    (
        "GET /fhir/R4/Schedule",
        "400",
        "actor references a Practitioner by id",
    ),
    (
        "GET /fhir/R4/Slot",
        "400",
        "schedule references a Schedule by id; FHIR dates; a range of at most 62 days",
    ),
    (
        "GET /fhir/R4/Appointment",
        "400",
        "references by id; FHIR dates; FHIR appointment statuses",
    ),
    (
        "GET /fhir/R4/Communication",
        "400",
        "part-of references an Appointment by id; _cursor from a next link",
    ),
    (
        "GET /api/v1/ws",
        "400",
        "a WebSocket handshake (Upgrade headers), which OpenAPI cannot describe",
    ),
];

/// Real records of every kind, for the fuzzer's dictionaries.
struct World {
    patient: User,
    doctor: User,
    admin: User,
    /// `(dictionary name, values)`.
    dictionaries: Vec<(&'static str, Vec<String>)>,
}

impl World {
    /// A doctor (in UTC) with two windows; a patient with a pending appointment three days
    /// ahead and a confirmed one within the hour after next, in which a message was posted and
    /// a call rings; the patient's calendar feed; an admin.
    async fn arrange(app: &TestApp) -> Self {
        let doctor = app.register("doctor", "Dr. Fuzz", "UTC").await;
        let patient = app.patient().await;
        let admin = app.staff("admin").await;

        let later = days_ahead(3) + time::Duration::hours(10);
        app.open_window(&doctor, later, later + time::Duration::hours(2))
            .await;
        let pending = app
            .book(
                &patient,
                &doctor.id,
                later,
                later + time::Duration::minutes(30),
            )
            .await;

        // On the hour, two to three hours ahead: inside the call join window the server is
        // started with, and never across midnight.
        let now = time::OffsetDateTime::now_utc();
        let soon =
            now.replace_minute(0).unwrap().replace_second(0).unwrap() + time::Duration::hours(3);
        let window = app
            .open_window(&doctor, soon, soon + time::Duration::minutes(30))
            .await;
        let confirmed = app
            .book(
                &patient,
                &doctor.id,
                soon,
                soon + time::Duration::minutes(30),
            )
            .await;
        let confirmed = confirmed["id"].as_str().unwrap().to_string();
        expect_status(
            app.act(&doctor, &confirmed, "confirm", &json!({})).await,
            StatusCode::OK,
        )
        .await;
        let messages = format!("/api/v1/appointments/{confirmed}/messages");
        let message = expect_status(
            app.post(
                &messages,
                Some(&patient.token),
                &json!({ "content": "hello" }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let calls = format!("/api/v1/appointments/{confirmed}/calls");
        let call = expect_status(
            app.post(&calls, Some(&doctor.token), &json!({})).await,
            StatusCode::CREATED,
        )
        .await;
        let feed = expect_status(
            app.get("/api/v1/me/calendar-feed", &patient.token).await,
            StatusCode::OK,
        )
        .await;
        let feed = feed["url"].as_str().unwrap().rsplit('/').next().unwrap();

        let text = |value: &serde_json::Value| value.as_str().unwrap().to_string();
        let dictionaries = vec![
            ("appointments", vec![text(&pending["id"]), confirmed]),
            ("doctors", vec![doctor.id.clone()]),
            ("patients", vec![patient.id.clone()]),
            ("windows", vec![text(&window["id"])]),
            ("messages", vec![text(&message["id"])]),
            ("calls", vec![text(&call["call_id"])]),
            ("feeds", vec![feed.to_string()]),
        ];
        Self {
            patient,
            doctor,
            admin,
            dictionaries,
        }
    }

    /// `schemathesis.toml`: real ids in half of the generated values of the parameters and
    /// fields that name records.
    fn config(&self) -> String {
        // No sign-up of its own: each run is anonymous or uses the token it is given.
        let mut toml = String::from("[auth]\nauto-signup = false\n\n");
        for (name, values) in &self.dictionaries {
            let values: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            toml += &format!(
                "[dictionaries.{name}]\nvalues = [{}]\n\n",
                values.join(", ")
            );
        }
        toml += "[parameters]\n";
        for (parameter, dictionary) in [
            ("path.id", "appointments"),
            ("path.doctor_id", "doctors"),
            ("path.patient_id", "patients"),
            ("path.window_id", "windows"),
            ("path.call_id", "calls"),
            ("path.feed", "feeds"),
            ("query.patient_id", "patients"),
            ("query.aggregate_id", "appointments"),
            ("body.doctor_id", "doctors"),
            ("body.appointment_id", "appointments"),
            ("body.up_to", "messages"),
        ] {
            toml += &format!(
                "{parameter:?} = {{ dictionary = \"{dictionary}\", probability = 0.5 }}\n"
            );
        }
        for (operation, status, _rule) in RULES_BEYOND_THE_SCHEMA {
            toml += &format!(
                "\n[[operations]]\ninclude-name = {operation:?}\n\
                 checks.positive_data_acceptance.expected-statuses = [{ACCEPTED}, {status:?}]\n"
            );
        }
        toml
    }
}

/// Runs schemathesis against `app` with `token` (none: anonymously); the report on failure.
async fn schemathesis(app: &TestApp, dir: &Path, token: Option<&str>) -> Result<String, String> {
    let python = std::env::var("TELEMED_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut command = tokio::process::Command::new(python);
    command
        .current_dir(dir)
        .args([
            "-m",
            "schemathesis.cli",
            "--config-file",
            "schemathesis.toml",
        ])
        .args(["run", &app.url("/api/v1/openapi.json")])
        .args(["--checks", CHECKS, "--max-examples", EXAMPLES])
        // Reproducible: the same cases every run (and no example database between runs).
        .arg("--generation-deterministic")
        .args(["--workers", "1", "--request-timeout", "10", "--no-color"])
        .args(["--max-failures", "50", "--output-truncate", "false"])
        .kill_on_drop(true);
    if let Some(token) = token {
        // Signing out would end the run's session half-way: the anonymous run fuzzes it.
        command
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--exclude-path", "/api/v1/auth/logout"]);
    }
    // About a minute and a half per run on an idle machine (64 operations); the bound leaves
    // room for the 2 shared cores under a parallel build.
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .map_err(|_| "schemathesis took longer than 5 minutes".to_string())?
        .map_err(|e| {
            format!("cannot run schemathesis (scripts/test provides it in .venv-test): {e}")
        })?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && tested_operations(&report) >= 35 {
        Ok(report)
    } else {
        Err(report)
    }
}

/// The `Tested: N` count of schemathesis's summary.
fn tested_operations(report: &str) -> usize {
    report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A scratch directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("telemed-fuzz-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Each operation of [`RULES_BEYOND_THE_SCHEMA`] documents the status it may answer.
async fn documents_the_exceptions(app: &TestApp) {
    let document = app.openapi_document().await;
    for (operation, status, rule) in RULES_BEYOND_THE_SCHEMA {
        let (method, path) = operation.split_once(' ').unwrap();
        let answers = &document["paths"][path][method.to_lowercase()]["responses"];
        assert!(
            answers[status].is_object(),
            "{operation} does not document {status} ({rule})"
        );
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let db = TestDb::create().await;
    let (_server, app) =
        spawn_process_with(&db.url, &[("TELEMED_CALL_EARLY_JOIN_MINUTES", "1440")]).await;
    let world = World::arrange(&app).await;
    documents_the_exceptions(&app).await;
    let dir = ScratchDir::new();
    std::fs::write(dir.0.join("schemathesis.toml"), world.config()).unwrap();

    let mut failures = Vec::new();
    for (who, token) in [
        ("anonymous", None),
        ("patient", Some(&world.patient.token)),
        ("doctor", Some(&world.doctor.token)),
        ("admin", Some(&world.admin.token)),
    ] {
        match schemathesis(&app, &dir.0, token.map(String::as_str)).await {
            Ok(report) => println!("==== schemathesis as {who} ====\n{report}"),
            Err(report) => failures.push(format!("==== schemathesis as {who} ====\n{report}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
