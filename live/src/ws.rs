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
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::FromRef;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, header};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::sync::Arc;
use telemed_problem::{ApiError, FieldError, Problem};

use crate::context::Context;
use crate::hub::Delivery;
use crate::services::Services;
use crate::session::{Counted, Ending, Outbound, Session};
use crate::telemetry::Transport;

/// Largest client frame or message accepted.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// How often the server pings.
pub const PING_EVERY: Duration = Duration::from_secs(25);
/// How long a client may stay silent (no pong, no frame) before it is dropped.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(60);

/// The WebSocket route, `GET /api/v1/ws`; `telemed-api` merges it into its router (the state
/// `S` gives the live [`Services`]).
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Services>: FromRef<S>,
{
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
        (status = 400, body = Problem, content_type = "application/problem+json", description = "not a WebSocket upgrade"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "missing, invalid or expired token")))]
async fn connect(
    State(services): State<Arc<Services>>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query = connect_query(parts.uri.query())?;
    let token = match &query.access_token {
        Some(token) => token.as_str(),
        None => bearer_token(&parts.headers)?,
    };
    let identity = services.tokens.verify(token)?;
    let upgrade = upgrade.map_err(|rejection| ApiError::BadRequest {
        detail: format!("not a WebSocket upgrade: {rejection}"),
        errors: vec![],
    })?;
    let session = services.session(identity).await?;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(Socket(socket), session)))
}

/// The query string of the upgrade request; a bad one is a 400 problem.
fn connect_query(query: Option<&str>) -> Result<Connect, ApiError> {
    let uri: axum::http::Uri =
        format!("/?{}", query.unwrap_or_default())
            .parse()
            .map_err(|_| ApiError::BadRequest {
                detail: "the query string is not valid".into(),
                errors: vec![],
            })?;
    axum::extract::Query::<Connect>::try_from_uri(&uri)
        .map(|axum::extract::Query(query)| query)
        .map_err(|rejection| ApiError::BadRequest {
            detail: rejection.body_text(),
            errors: vec![],
        })
}

/// Reads the token from `Authorization: Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let header = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthenticated("an Authorization: Bearer token is required".into())
    })?;
    let text = header.to_str().map_err(|_| {
        ApiError::Unauthenticated("the Authorization header is not valid text".into())
    })?;
    let (scheme, token) = text.split_once(' ').ok_or_else(|| {
        ApiError::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthenticated(
            "the Authorization header must be `Bearer <token>`".into(),
        ));
    }
    Ok(token.trim())
}

/// A WebSocket as a pair of in-memory halves: any `Sink` of messages and `Stream` of
/// received ones (axum's `WebSocket`, or channels in tests).
pub struct Socket<T>(pub T);

impl<T, E> Outbound for Socket<T>
where
    T: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin + Send,
{
    async fn deliver(&mut self, delivery: &Delivery) -> bool {
        self.0.send(Message::Text(delivery.frame())).await.is_ok()
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

/// Serves one connection until it ends: live events, client frames, pings, token expiry.
pub async fn serve<C, T, E>(socket: Socket<T>, mut session: Session<C>)
where
    C: Context,
    T: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin + Send,
{
    // Counted as open until this returns, however it returns.
    let mut socket = Counted::new(socket, Transport::WebSocket);
    let expiry = tokio::time::sleep(session.time_left());
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    let ending = loop {
        // A client frame first: a `resume` is replayed before the live events waiting meanwhile
        // (the session drops those the replay covers); before any other client event the
        // session sends the live events already waiting, so its answer follows them.
        tokio::select! {
            biased;
            received = socket.inner.0.next() => {
                let message = match received {
                    Some(Ok(message)) => message,
                    // Closed, or a protocol violation (e.g. an oversized frame).
                    Some(Err(_)) | None => return,
                };
                heard = Instant::now();
                let reply = match message {
                    // Boxed: inline, the largest command's future would size this task (and
                    // so every idle connection's) for its whole life.
                    Message::Text(text) => Box::pin(client_frame(&mut session, text.as_str(), &mut socket)).await,
                    Message::Binary(_) => Some(error_frame(&ApiError::BadRequest {
                        detail: "binary frames are not supported; send JSON text frames".into(),
                        errors: vec![],
                    })),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply
                    && socket.inner.0.send(Message::text(reply)).await.is_err()
                {
                    return;
                }
            }
            live = session.next_live() => match live {
                Ok(delivery) => {
                    if !socket.deliver(&delivery).await {
                        return;
                    }
                }
                Err(ending) => break ending,
            },
            _ = ping.tick() => {
                if heard.elapsed() > PONG_TIMEOUT {
                    tracing::debug!(user = %session.user(), "live client stopped answering pings");
                    return;
                }
                if socket.inner.0.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            _ = &mut expiry => break Ending::TokenExpired,
        }
    };
    close(&mut socket.inner.0, ending).await;
}

/// Tells the client why its session ends, then closes with that reason.
async fn close<T: Sink<Message> + Unpin>(socket: &mut T, ending: Ending) {
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
async fn client_frame<C: Context>(
    session: &mut Session<C>,
    text: &str,
    socket: &mut impl Outbound,
) -> Option<String> {
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
