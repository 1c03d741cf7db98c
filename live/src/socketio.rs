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
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderValue, Request, Uri};

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::extract::SocketRef as Socket;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::{Notify, mpsc};
use tower::layer::util::Stack;
use tower::{Layer, Service};

use crate::hub::Delivery;
use crate::identity::Identity;
use crate::services::Services;
use crate::session::{Counted, Ending, Outbound, Session};
use crate::telemetry::Transport;

/// Where the Socket.IO transport is served.
const PATH: &str = "/socket.io";

/// tungstenite's initial read buffer per socket.
const WS_READ_BUFFER_BYTES: usize = 1024;

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

/// The Socket.IO layer, serving `/socket.io/` in front of the REST router; its requests'
/// URI and headers are first copied out of the connection's read buffer ([`Detach`]).
pub fn layer(state: Arc<Services>, max_payload: u64) -> Stack<SocketIoLayer, Detach> {
    let (layer, io) = SocketIo::builder()
        .req_path(PATH)
        .max_payload(max_payload)
        // As on the native WebSocket: a larger message ends that connection only, before it
        // is buffered (socketioxide's default is 64 MiB).
        .ws_max_message_size(super::ws::MAX_FRAME_BYTES)
        // tungstenite allocates this much per socket up front and grows it for a larger
        // frame; 1 KiB as on the native WebSocket (engineioxide's default is 4 KiB).
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
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
    Stack::new(layer, Detach)
}

/// Copies a Socket.IO request's URI and headers into allocations of their own before
/// engineioxide sees it.
///
/// hyper parses a request's URI and header values as slices of its connection's read buffer
/// (8 to 16 KiB), and engineioxide keeps the request's parts, extensions included (axum's
/// `OriginalUri`), for as long as the socket lives (`Socket::req_parts`): without the copy,
/// every idle socket kept that whole buffer alive after the upgrade. Other paths pass through
/// untouched.
#[derive(Clone, Copy, Debug)]
pub struct Detach;

impl<S> Layer<S> for Detach {
    type Service = Detached<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Detached(inner)
    }
}

/// The service of [`Detach`].
#[derive(Clone, Debug)]
pub struct Detached<S>(S);

impl<S, B> Service<Request<B>> for Detached<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path().starts_with(PATH) {
            self.0.call(detached(request))
        } else {
            self.0.call(request)
        }
    }
}

/// `request` with its URI and header values copied (the rest moved).
fn detached<B>(request: Request<B>) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = parts.uri.to_string().parse::<Uri>() {
        // axum's router keeps the URI as it came in an extension too.
        if let Some(OriginalUri(original)) = parts.extensions.get_mut::<OriginalUri>() {
            original.clone_from(&uri);
        }
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        // `from_bytes` copies; the value was valid as it came.
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            headers.append(name.clone(), copy);
        }
    }
    parts.headers = headers;
    Request::from_parts(parts, body)
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
                if sender.try_send(Box::new((event, data, ack))).is_err() {
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

/// A client event waiting for its socket's task, boxed: a tokio channel allocates its slots
/// 32 at a time when created, and an idle socket should not hold 32 unboxed events.
type Inbound = Box<(String, Value, AckSender)>;

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
                let Some(received) = received else { return };
                let (event, data, ack) = *received;
                // Boxed: inline, the largest command's future would size this task (and so
                // every idle socket's) for its whole life.
                let answer = match Box::pin(session.handle(&event, data, &mut out)).await {
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

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use axum::extract::OriginalUri;
    use axum::http::{HeaderValue, Request, Uri};

    use super::detached;

    /// A request whose URI, header values and `OriginalUri` are slices of one buffer, as hyper
    /// and axum's router make them.
    fn sliced(buffer: &Bytes) -> Request<()> {
        let text = std::str::from_utf8(buffer).unwrap();
        let slice = |part: &str| {
            let start = text.find(part).unwrap();
            buffer.slice(start..start + part.len())
        };
        let uri = Uri::from_maybe_shared(slice("/socket.io/?EIO=4&transport=websocket")).unwrap();
        let mut request = Request::builder()
            .uri(uri.clone())
            .extension(OriginalUri(uri))
            .body(())
            .unwrap();
        let key = HeaderValue::from_maybe_shared(slice("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        request.headers_mut().insert("sec-websocket-key", key);
        let mut cookie = HeaderValue::from_maybe_shared(slice("a=1; b=2")).unwrap();
        cookie.set_sensitive(true);
        request.headers_mut().append("cookie", cookie);
        request
            .headers_mut()
            .append("cookie", HeaderValue::from_static("c=3"));
        request
    }

    #[test]
    fn a_detached_request_is_the_same_and_shares_nothing_with_the_connection_buffer() {
        let buffer = Bytes::from(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: a=1; b=2\r\n\r\n"
                .to_string(),
        );
        let request = sliced(&buffer);
        assert!(!buffer.is_unique(), "the request borrows the buffer");

        let request = detached(request);

        assert!(
            buffer.is_unique(),
            "the detached request still holds the buffer"
        );
        let uri = "/socket.io/?EIO=4&transport=websocket";
        assert_eq!(request.uri(), uri);
        let original = request.extensions().get::<OriginalUri>();
        assert_eq!(original.map(|o| o.0.to_string()).as_deref(), Some(uri));
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            headers,
            [
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("cookie", "a=1; b=2"),
                ("cookie", "c=3")
            ]
        );
        let cookies: Vec<bool> = request
            .headers()
            .get_all("cookie")
            .iter()
            .map(HeaderValue::is_sensitive)
            .collect();
        assert_eq!(cookies, [true, false]);
    }
}
