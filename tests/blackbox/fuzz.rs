//! Schemathesis fuzzes the served OpenAPI document against a real `telemed serve`: no answer
//! may be a server error, and every answer must be documented (status, content type, schema,
//! headers). It runs anonymously and as a patient, a doctor and an admin, with the ids of real
//! records mixed into the generated ones so that requests get past the 404s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, TestDb, User, expect_status, spawn_process_with};
use crate::scheduling::days_ahead;

/// Test cases per operation and run: enough to find the malformed-input answers, small enough
/// that the four runs take well under a minute.
const EXAMPLES: &str = "25";

/// The checks that fail the test.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

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
        let mut toml = String::new();
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
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .map_err(|_| "schemathesis took longer than 2 minutes".to_string())?
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

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let db = TestDb::create().await;
    let (_server, app) =
        spawn_process_with(&db.url, &[("TELEMED_CALL_EARLY_JOIN_MINUTES", "1440")]).await;
    let world = World::arrange(&app).await;
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
