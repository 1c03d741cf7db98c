//! The Socket.IO transport (socketioxide) at `/socket.io/`, namespace `/`, for the official
//! `socket.io-client` v4: the same [`Session`] as the WebSocket transport, so the same events,
//! payloads and authorization.
//!
//! The token comes in the handshake's `auth: {token}`; a missing or bad one is a connect error
//! whose message names the problem. Client events reach one task per socket through a fallback
//! handler (so both transports share one dispatcher, and events are handled in order); acks are
//! Socket.IO acks whose argument is the ack data, or `{error: problem}`.
//!
//! The session is started (the hub joined, the live floor read) in the connect middleware,
//! before the CONNECT packet goes out, so an event committed once the client is connected
//! reaches it. Each socket's Engine.IO buffer holds the hub's per-connection queue and some
//! more; a delivery waits for room in it (backpressure, like the WebSocket's send) rather than
//! failing, and a session that ends (a slow consumer the hub dropped, an expired token) is
//! told why before it is disconnected.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::extract::SocketRef as Socket;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::{Notify, mpsc};

use crate::hub::Delivery;
use crate::identity::Identity;
use crate::services::Services;
use crate::session::{Counted, Ending, Outbound, Session};
use crate::telemetry::Transport;

/// Client events a socket may have waiting before it is handled.
const INBOUND_QUEUE: usize = 64;

/// Packets a socket's Engine.IO buffer holds beyond the hub's queue: acks, the ending's
/// error and disconnect, pings.
const BUFFER_SLACK: usize = INBOUND_QUEUE + 16;
/// How often a delivery waiting for room in a full buffer tries again (engineioxide has no
/// way to await room).
const ROOM_POLL: Duration = Duration::from_millis(1);
/// How long the ending's error and disconnect may wait for room.
const ENDING_PATIENCE: Duration = Duration::from_secs(10);

/// A session started by the connect middleware, taken by the connect handler.
#[derive(Clone)]
struct Started(Arc<Mutex<Option<Session<Services>>>>);

/// The handshake's `auth` payload.
#[derive(Deserialize)]
struct Auth {
    token: String,
}

/// Why a connection is refused (the client's `connect_error` message).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The Socket.IO layer, serving `/socket.io/` in front of the REST router.
pub fn layer(state: Arc<Services>, max_payload: u64) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        .req_path("/socket.io")
        .max_payload(max_payload)
        // As on the native WebSocket: a larger message ends that connection only, before it
        // is buffered (socketioxide's default is 64 MiB).
        .ws_max_message_size(super::ws::MAX_FRAME_BYTES)
        // engineioxide's default (128 packets) is far below what the hub lets a connection
        // fall behind; the hub's queue is the one limit.
        .max_buffer_size(state.hub.queue() + BUFFER_SLACK)
        .build_layer();
    let authorize = move |socket: SocketRef, TryData(auth): TryData<Auth>| {
        let state = state.clone();
        async move {
            let identity = verify(&state, auth.ok())?;
            // Joined before the CONNECT packet: no window in which the client's events pass by.
            let session = state.session(identity).await.map_err(|error| match error {
                telemed_problem::ApiError::Unauthenticated(detail) => {
                    Refused(format!("unauthenticated: {detail}"))
                }
                other => {
                    tracing::warn!(error = %other, "socket.io session could not start");
                    Refused(format!("unavailable: {other}"))
                }
            })?;
            socket
                .extensions
                .insert(Started(Arc::new(Mutex::new(Some(session)))));
            Ok::<(), Refused>(())
        }
    };
    io.ns("/", connect.with(authorize));
    layer
}

/// The connect handler: the session the middleware started, served by its own task.
async fn connect(socket: SocketRef) {
    let session = socket
        .extensions
        .remove::<Started>()
        .and_then(|Started(slot)| slot.lock().ok()?.take());
    let Some(session) = session else {
        let _ = socket.disconnect();
        return;
    };
    let (sender, inbound) = mpsc::channel(INBOUND_QUEUE);
    socket.on_fallback(
        move |Event(event): Event, TryData(data): TryData<Value>, ack: AckSender| {
            let sender = sender.clone();
            async move {
                let data = data.unwrap_or(Value::Null);
                // A client flooding faster than it is served loses the excess.
                if sender.try_send((event, data, ack)).is_err() {
                    tracing::debug!("socket.io client event dropped: queue full");
                }
            }
        },
    );
    let gone = Arc::new(Notify::new());
    socket.on_disconnect({
        let gone = gone.clone();
        move || {
            let gone = gone.clone();
            async move { gone.notify_one() }
        }
    });
    tokio::spawn(serve(socket, session, inbound, gone));
}

fn verify(state: &Services, auth: Option<Auth>) -> Result<Identity, Refused> {
    let auth = auth
        .ok_or_else(|| Refused("unauthenticated: the handshake must carry auth: {token}".into()))?;
    state
        .tokens
        .verify(&auth.token)
        .map_err(|error| Refused(format!("unauthenticated: {error}")))
}

impl Outbound for SocketRef {
    async fn deliver(&mut self, delivery: &Delivery) -> bool {
        emit_when_room(self, delivery.event, &delivery.data, None).await
    }
}

/// Emits `event`, waiting while the socket's buffer is full (at most `patience`, if given);
/// `false` once the socket is closed or the wait is over.
async fn emit_when_room<T: serde::Serialize + ?Sized>(
    socket: &Socket,
    event: &str,
    data: &T,
    patience: Option<Duration>,
) -> bool {
    let deadline = patience.map(|patience| tokio::time::Instant::now() + patience);
    loop {
        match socket.emit(event, data) {
            Ok(()) => return true,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
                    tracing::debug!(event, "socket.io buffer stayed full: giving up");
                    return false;
                }
                tokio::time::sleep(ROOM_POLL).await;
            }
            Err(error) => {
                tracing::debug!(event, %error, "socket.io emit failed");
                return false;
            }
        }
    }
}

type Inbound = (String, Value, AckSender);

async fn serve(
    socket: SocketRef,
    mut session: Session<Services>,
    mut inbound: mpsc::Receiver<Inbound>,
    gone: Arc<Notify>,
) {
    // Counted as open until this returns, however it returns.
    let mut out = Counted::new(socket, Transport::SocketIo);
    let expiry = tokio::time::sleep(session.time_left());
    tokio::pin!(expiry);
    let ending = loop {
        tokio::select! {
            biased;
            _ = gone.notified() => return,
            received = inbound.recv() => {
                let Some((event, data, ack)) = received else { return };
                let answer = match session.handle(&event, data, &mut out).await {
                    Ok(data) => data,
                    Err(error) => json!({ "error": error.problem() }),
                };
                // Without an ack id the client asked for no answer: nothing is sent.
                let _ = ack.send(&answer);
            }
            live = session.next_live() => match live {
                Ok(delivery) => {
                    if !out.deliver(&delivery).await {
                        break Ending::SlowConsumer;
                    }
                }
                Err(ending) => break ending,
            },
            _ = &mut expiry => break Ending::TokenExpired,
        }
    };
    // Told why, then disconnected: both wait (bounded) for room behind the events before them.
    let socket = &out.inner;
    let problem = ending.problem().problem();
    if !emit_when_room(socket, "error", &problem, Some(ENDING_PATIENCE)).await {
        return;
    }
    let deadline = tokio::time::Instant::now() + ENDING_PATIENCE;
    while let Err(SocketError::InternalChannelFull) = socket.clone().disconnect() {
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(ROOM_POLL).await;
    }
}
