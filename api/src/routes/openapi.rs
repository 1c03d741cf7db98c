//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, OpenApiBuilder, Ref, ResponseBuilder, Type,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// The serialised document, shared by requests.
#[derive(Clone)]
pub struct Document(Arc<String>);

impl Document {
    /// Serialises `api` once.
    pub fn new(api: OpenApi) -> Self {
        Self(Arc::new(api.to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot serialise the OpenAPI document");
            "{}".to_string()
        })))
    }
}

/// Title, version and the bearer security scheme; routes add their paths.
pub fn base() -> OpenApi {
    let mut api = OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Telemed API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Free doctor–patient video consultations. Errors are RFC 9457 problem+json.",
                ))
                .build(),
        )
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    api
}

/// Documents on every operation the answers that come from the request's shape, the
/// extractors and the middleware rather than from its handler: 400 for a malformed path, query
/// or body, 401 without a valid token, 404 for an unknown id, 413/415/422 for bodies, 422 for
/// query values, 429 over a rate limit and 503 while the database is unreachable (both with
/// `Retry-After`). An operation's own description of a status wins.
pub fn document_common_answers(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let needs_database = path != "/healthz" && path != "/api/v1/openapi.json";
            for (status, description) in common_answers(operation, needs_database) {
                let retry = matches!(status, "429" | "503");
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem_response(description, retry).into());
            }
        }
    }
}

/// The statuses `operation` can answer besides its handler's, with their descriptions.
fn common_answers(
    operation: &Operation,
    needs_database: bool,
) -> Vec<(&'static str, &'static str)> {
    let has = |place: ParameterIn| {
        operation
            .parameters
            .iter()
            .flatten()
            .any(|p| p.parameter_in == place)
    };
    let mut answers = vec![("429", "rate limited; retry after `Retry-After` seconds")];
    if needs_database {
        answers.push((
            "503",
            "the database is unreachable; retry after `Retry-After` seconds",
        ));
    }
    if operation.security.is_some() {
        answers.push(("401", "missing, invalid or expired token"));
    }
    if has(ParameterIn::Path) {
        answers.push(("400", "malformed path parameter"));
        answers.push(("404", "unknown, or not yours"));
    }
    if has(ParameterIn::Query) {
        answers.push(("400", "malformed query string"));
        answers.push(("422", "invalid query parameter"));
    }
    if operation.request_body.is_some() {
        answers.push(("400", "the body is not valid JSON"));
        answers.push(("413", "the body is larger than the limit"));
        answers.push((
            "415",
            "the body is not JSON (Content-Type: application/json)",
        ));
        answers.push(("422", "invalid, missing or unknown fields"));
    }
    answers
}

/// A problem+json response, with `Retry-After` when `retry`.
fn problem_response(description: &str, retry: bool) -> utoipa::openapi::Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("whole seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.as_str().to_string(),
    )
}
