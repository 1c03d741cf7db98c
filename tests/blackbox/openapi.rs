//! The served OpenAPI document describes every route, and only routes.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_problem, expect_status, spawn_app};
use crate::scheduling::expect_invalid;

/// The methods a route can have in the document.
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `template` with every `{parameter}` replaced by a fresh UUID.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                uuid::Uuid::new_v4().to_string()
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `(status, code, detail)` of an anonymous `method` request on `path` with an empty JSON body.
async fn probe(app: &TestApp, method: &str, path: &str) -> (u16, Value, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = app
        .client
        .request(method, app.url(path))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].clone(), body["detail"].clone())
}

#[tokio::test]
async fn the_openapi_document_and_the_router_have_the_same_routes() {
    let app = spawn_app().await;
    let document = app.openapi_document().await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();

    // What the router answers for a path it does not have, and for a method it does not
    // have on a path it has.
    let unrouted = probe(&app, "get", &format!("/api/v1/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(unrouted.0, 404, "{unrouted:?}");
    let wrong_method = probe(&app, "patch", "/healthz").await;
    assert_eq!(
        (wrong_method.0, wrong_method.1.as_str()),
        (405, Some("method_not_allowed"))
    );

    let mut operation_ids = BTreeSet::new();
    let mut operations = 0;
    for (template, item) in paths {
        let path = concrete(template);
        for method in METHODS {
            let answer = probe(&app, method, &path).await;
            let Some(operation) = item.get(method) else {
                // Not documented: not routed either.
                assert_eq!(answer, wrong_method, "{method} {template} is routed");
                continue;
            };
            operations += 1;
            // Documented: routed, to its handler (which may refuse the anonymous probe).
            assert_ne!(answer, unrouted, "{method} {template} is not routed");
            assert_ne!(answer.0, 405, "{method} {template}: {answer:?}");
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {template} has no operationId");
            assert!(
                operation_ids.insert(id.to_string()),
                "operationId {id} twice"
            );
        }
    }
    assert!(operations >= 49, "only {operations} operations documented");
}

/// Routes are added only through utoipa-axum's `routes!` (each module's `router()`), which
/// documents them: no plain axum route hides beside the document. The one exception is the
/// Prometheus `/metrics` route, served on its own listener (`TELEMED_METRICS_BIND`), not the
/// API's.
#[test]
fn every_route_is_added_through_the_documenting_router() {
    let mut sources = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut plain = Vec::new();
    while let Some(path) = sources.pop() {
        if path.is_dir() {
            sources.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        if path.ends_with("telemetry.rs") {
            text = text.replacen(".route(\n        \"/metrics\"", "", 1);
        }
        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            if text.contains(call) {
                plain.push(format!("{} uses {call}", path.display()));
            }
        }
    }
    assert!(plain.is_empty(), "{plain:#?}");
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
    let served = app.openapi_document().await;
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
    let document = app.openapi_document().await;
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
    for (field, range) in [
        ("buffer_before_minutes", (0, 120)),
        ("buffer_after_minutes", (0, 120)),
        ("slot_interval_minutes", (5, 120)),
    ] {
        let property = property(&document, "SlotPolicyRequest", field);
        assert_eq!(
            (&property["minimum"], &property["maximum"]),
            (&range.0.into(), &range.1.into()),
            "{field}: {property}"
        );
    }
    let note = property(&document, "TimeOffRequest", "note");
    assert!(note.to_string().contains("ShortNoteText"), "{note}");
    let short_note = &document["components"]["schemas"]["ShortNoteText"];
    assert_eq!(short_note["maxLength"], 500, "{short_note}");
    let time_off = &document["paths"]["/api/v1/doctors/me/time-off"];
    assert!(
        time_off["post"]["responses"]["201"].is_object(),
        "{time_off}"
    );
    let booking = &document["paths"]["/api/v1/appointments"]["post"]["responses"]["409"];
    assert!(
        booking["description"]
            .as_str()
            .unwrap_or_default()
            .contains("doctor_unavailable"),
        "{booking}"
    );
}
