//! The event store itself: append-only, metadata on every event, no secrets.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, expect_status, spawn_app};

#[tokio::test]
async fn the_event_log_refuses_update_delete_and_truncate() {
    let app = spawn_app().await;
    app.patient().await;
    for statement in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        let refusal = error.as_database_error().expect("refused by the database");
        let operation = statement.split_whitespace().next().unwrap();
        assert_eq!(
            (refusal.code().as_deref(), refusal.message()),
            (
                Some("42501"),
                format!("the event log is append-only: {operation} on events is not allowed")
                    .as_str()
            ),
            "{statement}"
        );
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn every_event_records_actor_request_and_command_and_never_a_secret() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("x-request-id", "trace-42")
        .json(&json!({
            "email": "meta@example.org", "password": PASSWORD, "role": "doctor",
            "name": "Dr. Meta", "timezone": "UTC"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-request-id").unwrap(), "trace-42");
    let body = expect_status(response, StatusCode::CREATED).await;
    let id = body["user"]["id"].as_str().unwrap();
    let token = body["access_token"].as_str().unwrap();
    expect_status(
        app.put(
            &format!("/api/v1/doctors/{id}/profile"),
            token,
            &crate::helpers::doctor_profile("bio"),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let rows: Vec<(String, serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT event_type, payload, metadata FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    let (first_type, _, first_meta) = &rows[0];
    assert_eq!(first_type, "DoctorRegistered");
    assert_eq!(first_meta["actor_id"], id);
    assert_eq!(first_meta["actor_role"], "doctor");
    assert_eq!(first_meta["request_id"], "trace-42");
    assert_eq!(first_meta["command"], "doctor.register");
    let (second_type, _, second_meta) = &rows[1];
    assert_eq!(second_type, "DoctorProfileUpdated");
    assert_eq!(second_meta["command"], "doctor.update_profile");
    assert_ne!(second_meta["request_id"], "trace-42");

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM credentials")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    for (_, payload, metadata) in &rows {
        let text = format!("{payload}{metadata}");
        for secret in [PASSWORD, hash.as_str(), token, "meta@example.org"] {
            assert!(!text.contains(secret), "an event contains a secret: {text}");
        }
    }
}
