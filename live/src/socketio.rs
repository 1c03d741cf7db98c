//! The Socket.IO transport (socketioxide) at `/socket.io/`, namespace `/`, for the official
//! `socket.io-client` v4: the same [`Session`] as the WebSocket transport, so the same events,
//! payloads and authorization.
//!
//! The token comes in the handshake's `auth: {token}`; a missing or bad one is a connect error
//! whose message names the problem. Client events reach one task per socket through a fallback
//! handler (so both transports share one dispatcher, and events are handled in order); acks are
//! Socket.IO acks whose argument is the ack data, or `{error: problem}`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::{Notify, mpsc};

use crate::hub::Delivery;
use crate::identity::Identity;
use crate::services::Services;
use crate::session::{Ending, Outbound, Session};

/// Client events a socket may have waiting before it is handled.
const INBOUND_QUEUE: usize = 64;

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
        .build_layer();
    let authorize = {
        let state = state.clone();
        move |TryData(auth): TryData<Auth>| {
            let state = state.clone();
            async move { verify(&state, auth.ok()).map(|_| ()) }
        }
    };
    let connect = move |socket: SocketRef, TryData(auth): TryData<Auth>| {
        let state = state.clone();
        async move {
            // The middleware accepted this token a moment ago; verify again for its claims.
            let Ok(verified) = verify(&state, auth.ok()) else {
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
            // Handlers first: events the client sends right after connecting wait in the
            // queue while the session starts.
            let session = match state.session(verified).await {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%error, "socket.io session could not start");
                    let _ = socket.disconnect();
                    return;
                }
            };
            tokio::spawn(serve(socket, session, inbound, gone));
        }
    };
    io.ns("/", connect.with(authorize));
    layer
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
        self.emit(delivery.event, &delivery.data).is_ok()
    }
}

type Inbound = (String, Value, AckSender);

async fn serve(
    mut socket: SocketRef,
    mut session: Session<Services>,
    mut inbound: mpsc::Receiver<Inbound>,
    gone: Arc<Notify>,
) {
    let expiry = tokio::time::sleep(session.time_left());
    tokio::pin!(expiry);
    let ending = loop {
        tokio::select! {
            biased;
            _ = gone.notified() => return,
            received = inbound.recv() => {
                let Some((event, data, ack)) = received else { return };
                let answer = match session.handle(&event, data, &mut socket).await {
                    Ok(data) => data,
                    Err(error) => json!({ "error": error.problem() }),
                };
                // Without an ack id the client asked for no answer: nothing is sent.
                let _ = ack.send(&answer);
            }
            live = session.next_live() => match live {
                Ok(delivery) => {
                    if !socket.deliver(&delivery).await {
                        break Ending::SlowConsumer;
                    }
                }
                Err(ending) => break ending,
            },
            _ = &mut expiry => break Ending::TokenExpired,
        }
    };
    let problem = ending.problem();
    let _ = socket.emit("error", &problem.problem());
    let _ = socket.disconnect();
}
