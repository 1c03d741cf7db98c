//! The served OpenAPI document describes every route.

use reqwest::StatusCode;

use crate::helpers::{TestApp, expect_problem, expect_status, spawn_app};
use crate::scheduling::expect_invalid;

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    let document = expect_status(response, StatusCode::OK).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/doctors"),
        ("get", "/api/v1/doctors/{doctor_id}"),
        ("put", "/api/v1/doctors/{doctor_id}/profile"),
        ("get", "/api/v1/patients/{patient_id}"),
        ("put", "/api/v1/patients/{patient_id}/profile"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}

/// `telemed openapi` with a database URL that leads nowhere: it must not need one.
async fn telemed_openapi() -> Vec<u8> {
    let output = tokio::process::Command::new(TestApp::binary())
        .arg("openapi")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing")
        .output()
        .await
        .expect("run telemed openapi");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test]
async fn telemed_openapi_prints_the_served_document_the_same_every_time() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    let served = expect_status(response, StatusCode::OK).await;
    let (first, second) = (telemed_openapi().await, telemed_openapi().await);
    assert_eq!(first, second, "two runs printed different bytes");
    let text = String::from_utf8(first).expect("UTF-8");
    assert!(
        text.starts_with("{\n  \""),
        "not pretty JSON: {}",
        &text[..40]
    );
    let printed: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        printed, served,
        "`telemed openapi` differs from the served document"
    );
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let app = spawn_app().await;
    let health = expect_status(
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(health["status"], "ok");
    let ready = expect_status(
        app.client.get(app.url("/readyz")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(ready["status"], "ready");
    let unknown = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_wrong_method_is_405_and_absurd_dates_are_422_not_a_crash() {
    let app = spawn_app().await;
    let wrong = app
        .client
        .delete(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    expect_problem(wrong, StatusCode::METHOD_NOT_ALLOWED).await;

    let viewer = app.patient().await;
    let doctor = app.doctor().await;
    let far = format!(
        "/api/v1/doctors/{}/availability?from=9999-12-30T00:00:00Z",
        doctor.id
    );
    let problem = expect_problem(
        app.get(&far, &viewer.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "from", "{problem}");
}

#[tokio::test]
async fn nul_characters_in_queries_and_feed_urls_are_4xx_not_500() {
    let app = spawn_app().await;
    let viewer = app.patient().await;
    // PostgreSQL text cannot hold NUL: the parameter is named instead of a failed query.
    for path in [
        "/api/v1/doctors?specialty=card%00io",
        "/api/v1/doctors?q=%00",
        "/api/v1/audit/events?aggregate_type=%00",
    ] {
        let response = app.get(path, &viewer.token).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            problem["errors"][0]["message"], "must not contain NUL characters",
            "{path}: {problem}"
        );
    }
    for feed in ["%00.ics", "abc.ics", &format!("{}%00.ics", "a".repeat(63))] {
        let path = format!("/api/v1/calendar/{feed}");
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn instants_and_dates_at_the_calendars_edge_are_422_not_a_crash() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let doctor = app
        .register("doctor", "Dr. Edge", "Pacific/Pago_Pago")
        .await;
    // In UTC these are past the year 9999, which the server cannot represent.
    let (start, end) = ("9999-12-31T23:00:00-23:59", "9999-12-31T23:30:00-23:59");
    let window = app
        .open_availability(&doctor, &serde_json::json!({ "start": start, "end": end }))
        .await;
    expect_invalid(window, "start").await;
    let booking = serde_json::json!({
        "doctor_id": doctor.id, "start": start, "end": end, "reason": "edge"
    });
    let booked = app
        .post("/api/v1/appointments", Some(&patient.token), &booking)
        .await;
    expect_invalid(booked, "start").await;
    let listed = app
        .get_with("/api/v1/appointments", &patient.token, &[("from", start)])
        .await;
    expect_invalid(listed, "from").await;
    // The last day of the calendar, at UTC-11.
    let weekly = serde_json::json!({
        "weekly": [{ "weekday": "fri", "start": "00:00", "end": "23:30" }],
        "from": "9999-12-25", "to": "9999-12-31"
    });
    expect_invalid(app.open_availability(&doctor, &weekly).await, "from").await;
}

/// The property `field` of component `name`, following one `$ref`.
fn property<'a>(document: &'a serde_json::Value, name: &str, field: &str) -> &'a serde_json::Value {
    let schemas = &document["components"]["schemas"];
    let property = &schemas[name]["properties"][field];
    match property["$ref"].as_str() {
        Some(target) => &schemas[target.rsplit('/').next().unwrap()],
        None => property,
    }
}

#[tokio::test]
async fn request_schemas_state_the_limits_the_server_enforces() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    let document = expect_status(response, StatusCode::OK).await;
    // What schemathesis once found the document allowing and the server refusing.
    for (schema, field) in [
        ("RegisterRequest", "email"),
        ("RegisterRequest", "name"),
        ("RegisterRequest", "timezone"),
        ("LoginRequest", "email"),
        ("LoginRequest", "password"),
        ("RefreshRequest", "refresh_token"),
        ("BookRequest", "reason"),
        ("NewMessage", "content"),
    ] {
        let property = property(&document, schema, field);
        assert!(
            property["minLength"].as_u64() >= Some(1),
            "{schema}.{field} may be empty: {property}"
        );
    }
    let role = property(&document, "RegisterRequest", "role");
    assert_eq!(role["enum"], serde_json::json!(["patient", "doctor"]));
    let name = property(&document, "RegisterRequest", "name");
    assert_eq!(name["maxLength"], 200, "{name}");
    let password = property(&document, "RegisterRequest", "password");
    assert_eq!(
        (&password["minLength"], &password["maxLength"]),
        (&10.into(), &128.into())
    );
    let start = property(&document, "BookRequest", "start");
    assert_eq!(start["format"], "date-time", "{start}");
    let status = property(&document, "AppointmentView", "status");
    assert_eq!(status["enum"].as_array().map(Vec::len), Some(6), "{status}");
    let slots = &document["paths"]["/api/v1/doctors/{doctor_id}/availability"]["get"];
    let duration = slots["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "duration")
        .unwrap();
    assert_eq!(
        (
            &duration["schema"]["minimum"],
            &duration["schema"]["maximum"]
        ),
        (&5.into(), &240.into())
    );
    assert!(slots["responses"]["422"].is_object());
}
