//! The `CapabilityStatement`: what this FHIR server serves (no sign-in needed).

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::directory::fhir_base;
use super::outcome::{Fhir, ResourceDoc};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metadata))
}

/// A search parameter of the statement.
fn param(name: &str, kind: &str, documentation: &str) -> Value {
    json!({"name": name, "type": kind, "documentation": documentation})
}

fn paging() -> [Value; 2] {
    [
        param("_count", "number", "page size, 1 to 200 (default 50)"),
        param(
            "_offset",
            "number",
            "matches to skip (follow the next link)",
        ),
    ]
}

/// A resource the server reads (and searches with `params`, when any).
fn resource(kind: &str, profile: &str, params: Vec<Value>) -> Value {
    let mut interactions = vec![json!({"code": "read"})];
    if !params.is_empty() {
        interactions.push(json!({"code": "search-type"}));
    }
    let mut resource = json!({
        "type": kind,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{profile}"),
        "interaction": interactions,
    });
    // FHIR's JSON has no empty arrays.
    if !params.is_empty() {
        resource["searchParam"] = Value::Array(params);
    }
    resource
}

fn resources() -> Vec<Value> {
    let with_paging = |mut params: Vec<Value>| {
        params.extend(paging());
        params
    };
    vec![
        resource(
            "Practitioner",
            "Practitioner",
            with_paging(vec![param("name", "string", "text the name contains")]),
        ),
        resource("Patient", "Patient", vec![]),
        resource(
            "Schedule",
            "Schedule",
            with_paging(vec![param("actor", "reference", "Practitioner/{id}")]),
        ),
        resource(
            "Slot",
            "Slot",
            with_paging(vec![
                param("schedule", "reference", "Schedule/{id} (required)"),
                param(
                    "start",
                    "date",
                    "ge/gt/lt/le/eq; default the next 14 days, at most 62",
                ),
                param("duration", "number", "minutes, 5 to 240 (default 30)"),
            ]),
        ),
        resource(
            "Appointment",
            "Appointment",
            with_paging(vec![
                param("patient", "reference", "Patient/{id}"),
                param("practitioner", "reference", "Practitioner/{id}"),
                param("date", "date", "the start"),
                param(
                    "status",
                    "token",
                    "pending, booked, cancelled, fulfilled, noshow",
                ),
            ]),
        ),
        resource(
            "Communication",
            "Communication",
            vec![
                param("part-of", "reference", "Appointment/{id} (required)"),
                param("_count", "number", "page size, 1 to 200 (default 50)"),
                param("_cursor", "string", "from a next link"),
            ],
        ),
    ]
}

/// What this server serves (FHIR R4, JSON, read and search of six resources).
#[utoipa::path(get, path = "/fhir/R4/metadata", operation_id = "fhir_capabilities", tag = "fhir",
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "CapabilityStatement")))]
async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Fhir<Value> {
    let base = fhir_base(&state, &headers);
    Fhir(json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "publisher": "Telemed",
        "kind": "instance",
        "software": {"name": "Telemed", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Telemed's FHIR R4 read API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Read-only. Sign in with the REST API (POST /api/v1/auth/login) and send the access token as Authorization: Bearer. The same access rules as the REST API; reads of patient data are in the access log.",
            "security": {
                "service": [{"text": "Bearer access token (JWT) from /api/v1/auth/login"}]
            },
            "resource": resources(),
        }],
    }))
}
