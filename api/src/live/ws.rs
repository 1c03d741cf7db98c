//! The native WebSocket transport: `GET /api/v1/ws`.
//!
//! Frames are JSON text `{"event", "data", "ack"?}`. The token comes from `?access_token=` or
//! the `Authorization` header and is checked before the upgrade (401 problem). A malformed or
//! unknown frame gets an `error` frame (or an error ack) and the connection stays usable.
//! The server pings every [`PING_EVERY`] and closes a connection that has not answered for
//! [`PONG_TIMEOUT`]; it closes with a reason when the token expires or the client falls too
//! far behind its events.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::hub::Delivery;
use super::session::{Ending, Outbound, Session};
use crate::error::{ApiError, FieldError};
use crate::extract::{ApiQuery, bearer_token};
use crate::state::AppState;

/// Largest client frame or message accepted.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// How often the server pings.
pub const PING_EVERY: Duration = Duration::from_secs(25);
/// How long a client may stay silent (no pong, no frame) before it is dropped.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(60);

/// The WebSocket route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(connect))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Connect {
    /// The access token (alternatively the `Authorization: Bearer` header).
    access_token: Option<String>,
}

/// Opens the live event stream (WebSocket upgrade). Frames are JSON text
/// `{"event", "data", "ack"?}`; see the contract's "Live events".
#[utoipa::path(get, path = "/api/v1/ws", tag = "live", params(Connect),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, body = crate::error::Problem, content_type = "application/problem+json", description = "not a WebSocket upgrade"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json", description = "missing, invalid or expired token")))]
async fn connect(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<Connect>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = match &query.access_token {
        Some(token) => token.as_str(),
        None => bearer_token(&parts.headers)?,
    };
    let verified = state.jwt.verify(token)?;
    let upgrade = upgrade.map_err(|rejection| ApiError::BadRequest {
        detail: format!("not a WebSocket upgrade: {rejection}"),
        errors: vec![],
    })?;
    let session = Session::start(state.clone(), &verified).await?;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, session)))
}

impl Outbound for WebSocket {
    async fn deliver(&mut self, delivery: &Delivery) -> bool {
        self.send(Message::Text(delivery.frame())).await.is_ok()
    }
}

/// A client frame.
#[derive(Deserialize)]
struct Frame {
    event: String,
    #[serde(default)]
    data: Value,
    ack: Option<u64>,
}

async fn serve(mut socket: WebSocket, mut session: Session) {
    let expiry = tokio::time::sleep(session.time_left());
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    let ending = loop {
        // Live events first: an event published before a client frame is handled reaches the
        // client before that frame's answer.
        tokio::select! {
            biased;
            live = session.next_live() => match live {
                Ok(delivery) => {
                    if !socket.deliver(&delivery).await {
                        return;
                    }
                }
                Err(ending) => break ending,
            },
            received = socket.recv() => {
                let message = match received {
                    Some(Ok(message)) => message,
                    // Closed, or a protocol violation (e.g. an oversized frame).
                    Some(Err(_)) | None => return,
                };
                heard = Instant::now();
                let reply = match message {
                    Message::Text(text) => client_frame(&mut session, text.as_str(), &mut socket).await,
                    Message::Binary(_) => Some(error_frame(&ApiError::BadRequest {
                        detail: "binary frames are not supported; send JSON text frames".into(),
                        errors: vec![],
                    })),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply
                    && socket.send(Message::text(reply)).await.is_err()
                {
                    return;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > PONG_TIMEOUT {
                    tracing::debug!(user = %session.user(), "live client stopped answering pings");
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            _ = &mut expiry => break Ending::TokenExpired,
        }
    };
    let problem = ending.problem();
    let _ = socket.send(Message::text(error_frame(&problem))).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: ending.close_code(),
            reason: ending.reason().into(),
        })))
        .await;
}

/// Handles one text frame; the answer frame, if any.
async fn client_frame(session: &mut Session, text: &str, socket: &mut WebSocket) -> Option<String> {
    let frame: Frame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(error) => {
            return Some(error_frame(&ApiError::BadRequest {
                detail: format!("malformed frame: {error}"),
                errors: vec![FieldError::new(
                    "frame",
                    "must be a JSON object {\"event\": string, \"data\": object, \"ack\"?: number}",
                )],
            }));
        }
    };
    let outcome = session.handle(&frame.event, frame.data, socket).await;
    match (frame.ack, outcome) {
        (Some(ack), Ok(data)) => {
            Some(json!({ "event": "ack", "ack": ack, "data": data }).to_string())
        }
        (Some(ack), Err(error)) => {
            Some(json!({ "event": "ack", "ack": ack, "error": error.problem() }).to_string())
        }
        (None, Ok(_)) => None,
        (None, Err(error)) => Some(error_frame(&error)),
    }
}

fn error_frame(error: &ApiError) -> String {
    json!({ "event": "error", "data": error.problem() }).to_string()
}
