//! The live tier's metrics, through the `metrics` facade: recorded only once `telemed-api` has
//! installed its Prometheus recorder (`TELEMED_METRICS_BIND`), cheap no-ops otherwise.
//!
//! - [`CONNECTIONS`] (gauge, `transport`): connections open now. A [`Connection`] guard is
//!   held by each transport's serving task (in `crate::session::Counted`), so every way a connection ends (the client leaves,
//!   a protocol error, a slow consumer, an expired token, a sign-out, a panic) takes it off.
//! - [`EVENTS_SENT`] (counter, `transport`): event frames handed to a client's transport
//!   (live, replayed and pending ones alike; acks and errors are not events).
//! - [`EVENTS_DROPPED`] (counter, `reason`): events a connection was to get and never will:
//!   `queue_full` when the hub found its queue full (the slow consumer is then dropped),
//!   `closed` when the connection was going away (its queue closed, the transport refused
//!   the frame, or events were still queued when it ended).

use metrics::{Counter, Gauge};

/// Gauge: live connections open now, by `transport`.
pub const CONNECTIONS: &str = "telemed_live_connections";
/// Counter: event frames sent to clients, by `transport`.
pub const EVENTS_SENT: &str = "telemed_live_events_sent_total";
/// Counter: events that never reached a connection entitled to them, by `reason`.
pub const EVENTS_DROPPED: &str = "telemed_live_events_dropped_total";

/// A live transport (the `transport` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The native WebSocket, `GET /api/v1/ws`.
    WebSocket,
    /// Socket.IO at `/socket.io/`.
    SocketIo,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 2] = [Transport::WebSocket, Transport::SocketIo];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::SocketIo => "socketio",
        }
    }
}

/// Why an event was dropped (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The connection's queue was full: it is a slow consumer, and is dropped.
    QueueFull,
    /// The connection was going away.
    Closed,
}

impl Dropped {
    /// Every reason.
    pub const ALL: [Dropped; 2] = [Dropped::QueueFull, Dropped::Closed];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::Closed => "closed",
        }
    }
}

/// Counts `count` events dropped for `reason`.
pub(crate) fn dropped(reason: Dropped, count: u64) {
    if count > 0 {
        metrics::counter!(EVENTS_DROPPED, "reason" => reason.label()).increment(count);
    }
}

/// Describes the live metrics and creates each series at zero, so that a scrape shows them
/// before the first connection. Called once the recorder is installed.
pub fn describe() {
    metrics::describe_gauge!(CONNECTIONS, "Live connections open now, by transport.");
    metrics::describe_counter!(
        EVENTS_SENT,
        "Live event frames sent to clients, by transport."
    );
    metrics::describe_counter!(
        EVENTS_DROPPED,
        "Live events that never reached a connection entitled to them, by reason."
    );
    for transport in Transport::ALL {
        metrics::gauge!(CONNECTIONS, "transport" => transport.label()).increment(0.0);
        metrics::counter!(EVENTS_SENT, "transport" => transport.label()).increment(0);
    }
    for reason in Dropped::ALL {
        metrics::counter!(EVENTS_DROPPED, "reason" => reason.label()).increment(0);
    }
}

/// One open connection: counted in [`CONNECTIONS`] from [`Connection::open`] until dropped.
pub struct Connection {
    open: Gauge,
    sent: Counter,
    closed: Counter,
}

impl Connection {
    /// Counts a connection of `transport` as open.
    pub fn open(transport: Transport) -> Self {
        let open = metrics::gauge!(CONNECTIONS, "transport" => transport.label());
        open.increment(1.0);
        Self {
            open,
            sent: metrics::counter!(EVENTS_SENT, "transport" => transport.label()),
            closed: metrics::counter!(EVENTS_DROPPED, "reason" => Dropped::Closed.label()),
        }
    }
}

impl Connection {
    /// Counts an event sent to the client.
    pub fn sent(&self) {
        self.sent.increment(1);
    }

    /// Counts an event the client's transport refused (it is going away).
    pub fn lost(&self) {
        self.closed.increment(1);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}
