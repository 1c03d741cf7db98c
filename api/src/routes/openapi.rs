//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, OpenApiBuilder};
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
