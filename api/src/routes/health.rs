//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Health answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
    /// `/readyz` with `TELEMED_NATS_URL` set: the NATS broker between processes, `connected`
    /// or `disconnected` (the process stays ready meanwhile: its own clients are served, and
    /// ephemeral events reach other processes' clients again once NATS is back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<&'static str>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        broker: None,
    })
}

/// The database answers and every projection is running (and, with NATS, how the broker is).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    let stalled = state.progress.stalled();
    if !stalled.is_empty() {
        return Err(ApiError::Unavailable(Some(
            format!("projections stalled: {}", stalled.join(", ")).into(),
        )));
    }
    Ok(Json(Health {
        status: "ready",
        broker: state.bus.broker().map(|broker| broker.as_str()),
    }))
}
