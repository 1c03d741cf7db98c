//! Calls of an appointment: start (or join the live one), the call log, hanging up; and the
//! WebRTC signaling the live transports relay (`call:offer`, `call:answer`, `call:ice`,
//! `call:hangup`). Signaling goes only to the call's other participant, stamped with `from`,
//! through the bus (so across processes), and is never stored; answering and hanging up are
//! recorded on the call.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use telemed_domain::call::EndReason;
use telemed_domain::{AppointmentId, CallId, Role};
use telemed_projections::calls::{CallView, call, calls_of};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, AuthUser};
use crate::routes::ice::{IceServer, ice_servers_for};
use crate::state::AppState;

/// The call routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_call, call_log))
        .routes(routes!(end_call))
}

/// A started or joined call.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallStarted {
    /// The call.
    pub call_id: String,
    /// Pass as `iceServers` to `RTCPeerConnection`.
    pub ice_servers: Vec<IceServer>,
}

/// An appointment's calls.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallLog {
    /// Oldest first.
    pub calls: Vec<CallView>,
}

/// Why the caller hangs up.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hangup {
    /// `user_hangup` (default), `ice_failed`, … (1–40 of `a-z`, `0-9`, `_`).
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub reason: Option<String>,
}

fn end_reason(reason: Option<&str>, field: &str) -> Result<EndReason, ApiError> {
    match reason {
        None => Ok(EndReason::user_hangup()),
        Some(text) => EndReason::parse(text).ok_or_else(|| {
            ApiError::invalid(
                field,
                "must be 1 to 40 of a-z, 0-9 and _ (e.g. user_hangup)",
            )
        }),
    }
}

/// Checks that `user` takes part in appointment `id` (404 otherwise).
async fn participant(state: &AppState, user: &AuthUser, id: AppointmentId) -> Result<(), ApiError> {
    state.chat.conversation_of(user.id, id).await?;
    Ok(())
}

/// Starts a call, or returns the one already ringing or active.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/calls", tag = "calls",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 201, body = CallStarted),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "not a participant"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "not_confirmed or outside_join_window")))]
async fn start_call(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<(StatusCode, Json<CallStarted>), ApiError> {
    participant(&state, &user, id).await?;
    let started = state.calls.start(id, user.id, &user.context()).await?;
    state.settle(started.position).await?;
    Ok((
        StatusCode::CREATED,
        Json(CallStarted {
            call_id: started.id.to_string(),
            ice_servers: ice_servers_for(&state, user.id)?.ice_servers,
        }),
    ))
}

/// The appointment's call log (participants, auditors, admins).
#[utoipa::path(get, path = "/api/v1/appointments/{id}/calls", tag = "calls",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = CallLog),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn call_log(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<Json<CallLog>, ApiError> {
    if !matches!(user.role, Role::Admin | Role::Auditor) {
        participant(&state, &user, id).await?;
    } else if telemed_projections::appointments::appointment(&state.pool, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such appointment".into()));
    }
    Ok(Json(CallLog {
        calls: calls_of(&state.pool, id).await?,
    }))
}

/// Ends a call (hang up, or report why it failed).
#[utoipa::path(post, path = "/api/v1/calls/{call_id}/end", tag = "calls",
    params(("call_id" = String, Path, format = Uuid)), request_body = Hangup, security(("bearer" = [])),
    responses((status = 200, body = CallView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn end_call(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(call_id): ApiPath<CallId>,
    body: axum::body::Bytes,
) -> Result<Json<CallView>, ApiError> {
    // The body is optional: none means `user_hangup`.
    let body: Hangup = if body.iter().all(u8::is_ascii_whitespace) {
        Hangup::default()
    } else {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            ApiError::invalid(&field, error.inner().to_string())
        })?
    };
    let reason = end_reason(body.reason.as_deref(), "reason")?;
    let position = state
        .calls
        .end(call_id, user.id, reason, &user.context())
        .await?;
    state.settle(position).await?;
    call(&state.pool, call_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no such call".into()))
}
