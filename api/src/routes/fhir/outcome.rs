//! FHIR answers: resources as `application/fhir+json`, errors as `OperationOutcome`, and the
//! authenticated user whose refusal is an `OperationOutcome` too.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

use super::model::{Issue, OperationOutcome, Resource};
use crate::auth::jwt::JwtKeys;
use crate::error::ApiError;
use crate::extract::AuthUser;

/// FHIR's JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// A FHIR resource answer (200).
pub struct Fhir<T>(pub T);

impl<T: Serialize> IntoResponse for Fhir<T> {
    fn into_response(self) -> Response {
        fhir_json(StatusCode::OK, &self.0)
    }
}

fn fhir_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
            response
        }
        Err(error) => FhirError(ApiError::internal(error)).into_response(),
    }
}

/// An error answered as an `OperationOutcome` with the status the REST API gives it.
#[derive(Debug)]
pub struct FhirError(pub ApiError);

impl From<ApiError> for FhirError {
    fn from(error: ApiError) -> Self {
        FhirError(error)
    }
}

impl From<sqlx::Error> for FhirError {
    fn from(error: sqlx::Error) -> Self {
        FhirError(error.into())
    }
}

impl FhirError {
    /// 400 naming search parameter `parameter`.
    pub fn parameter(parameter: &str, message: impl std::fmt::Display) -> Self {
        FhirError(ApiError::BadRequest {
            detail: format!("search parameter {parameter} {message}"),
            errors: vec![crate::error::FieldError::new(
                parameter,
                message.to_string(),
            )],
        })
    }

    /// 404 for `kind/id`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        FhirError(ApiError::NotFound(format!("no {kind} {id}")))
    }
}

/// The `issue-type` code of an HTTP status.
fn issue_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 => "not-supported",
        409 => "conflict",
        413 => "too-costly",
        429 => "throttled",
        503 => "transient",
        _ => "exception",
    }
}

/// The `OperationOutcome` of `error`: one issue per field at fault (its `expression`), or one.
pub fn outcome(error: &ApiError) -> OperationOutcome {
    let problem = error.problem();
    let code = issue_code(error.status());
    let issue = |diagnostics: String, expression: Vec<String>| Issue {
        severity: "error".into(),
        code: code.into(),
        diagnostics: Some(diagnostics),
        expression,
    };
    let mut issues: Vec<Issue> = problem
        .errors
        .iter()
        .map(|e| match &e.field {
            Some(field) => issue(format!("{field} {}", e.message), vec![field.clone()]),
            None => issue(e.message.clone(), vec![]),
        })
        .collect();
    if issues.is_empty() {
        issues.push(issue(problem.detail, vec![]));
    }
    OperationOutcome { issue: issues }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if let ApiError::Internal(cause) = &self.0 {
            tracing::error!(error = ?cause, "internal error");
        }
        let mut response = fhir_json(status, &Resource::OperationOutcome(outcome(&self.0)));
        let headers = response.headers_mut();
        match self.0 {
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// [`AuthUser`] whose refusal (401) is an `OperationOutcome`.
pub struct FhirUser(pub AuthUser);

impl<S> FromRequestParts<S> for FhirUser
where
    S: Send + Sync,
    Arc<JwtKeys>: FromRef<S>,
{
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AuthUser::from_request_parts(parts, state)
            .await
            .map(FhirUser)
            .map_err(FhirError)
    }
}

/// Any FHIR resource (the OpenAPI document describes FHIR's JSON only loosely; FHIR's own
/// definitions are the schema).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = FhirResource)]
#[allow(dead_code)]
pub struct ResourceDoc {
    /// `Practitioner`, `Patient`, `Schedule`, `Slot`, `Appointment`, `Communication`, …
    #[serde(rename = "resourceType")]
    resource_type: String,
}

/// A FHIR `Bundle` of type `searchset`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = FhirBundle)]
#[allow(dead_code)]
pub struct BundleDoc {
    /// `Bundle`.
    #[serde(rename = "resourceType")]
    resource_type: String,
    /// `searchset`.
    #[serde(rename = "type")]
    kind: String,
    /// Matches in all pages.
    total: i64,
    /// `self`, `next`, `previous`.
    link: Vec<serde_json::Value>,
    /// The page's resources (`fullUrl`, `resource`, `search`).
    #[schema(required = false)]
    entry: Vec<serde_json::Value>,
}

/// A FHIR `OperationOutcome`: what went wrong, and the search parameter at fault in
/// `issue[].expression`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = FhirOperationOutcome)]
#[allow(dead_code)]
pub struct OutcomeDoc {
    /// `OperationOutcome`.
    #[serde(rename = "resourceType")]
    resource_type: String,
    /// `severity`, `code` (`invalid`, `login`, `forbidden`, `not-found`, …), `diagnostics`,
    /// `expression`.
    issue: Vec<serde_json::Value>,
}
