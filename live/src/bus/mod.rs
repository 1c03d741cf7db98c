//! Ephemeral live traffic between server processes: typing indicators, call signaling, the
//! waiting room (on its own channel) and sign-out revocations, which never enter the event
//! store.
//!
//! **Local first**: [`Bus::publish`] hands an event to this process's hub at once (no database
//! or broker round trip before the local recipients have it), then queues it for the other
//! processes and returns. Each message is tagged with the sending process's id, so the sender
//! drops its own copy if the backend echoes it: every entitled connection gets it exactly once.
//! The other processes "publish and drop": each receives every ephemeral message and hands it
//! to its hub, which delivers it to the connections it has in the message's topics (if any).
//!
//! Two backends carry messages between processes:
//!
//! - `notify` (the default): PostgreSQL `NOTIFY`, queued messages sent in batches by one task.
//! - `nats` (with `TELEMED_NATS_URL`): NATS core pub/sub, one subject per channel.
//!
//! Delivery between processes is at most once: a message sent while a process is reconnecting,
//! or while the outgoing queue is full, is lost, which is acceptable for "is typing" and is what
//! signaling's own retries and the waiting room's heartbeats are for. The durable event stream
//! never travels here: each process reads it from the store.

mod nats;
mod notify;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use telemed_tasks::Background;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::hub::{Delivery, Hub};
use super::topic::Topic;
use crate::identity::Tokens;

pub use notify::REVOKED_CHANNEL;

/// The NOTIFY channel of the waiting room's replica traffic (with NATS: subject
/// `telemed.waiting`).
pub const WAITING_CHANNEL: &str = "telemed_waiting";

/// A replica kept on every process from the bus's `Waiting` channel (the waiting room): the bus
/// hands it each message and tells it when listening (re)starts, without knowing what it is.
pub trait Replica: Send + Sync {
    /// Applies a message another process sent.
    fn receive(&self, text: &str);
    /// The bus (re)started listening: the replica asks for the others' state and offers its own.
    fn listening(&self);
}

/// Messages waiting to be sent to the other processes before new ones are dropped.
const OUTGOING_QUEUE: usize = 8_192;
/// Pause before a listener retries after an error.
const RETRY: Duration = Duration::from_millis(500);

/// Ephemeral events the bus carries (their names are `'static` in deliveries).
const EVENTS: &[&str] = &[
    "chat:typing",
    "call:ringing",
    "call:offer",
    "call:answer",
    "call:ice",
    "call:hangup",
];

/// What a message between processes is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    /// Ephemeral events for the hubs.
    Live,
    /// Revoked sign-in sessions (comma-separated ids).
    Revoked,
    /// The waiting room's replica traffic.
    Waiting,
}

/// One message for the other processes.
struct Outgoing {
    channel: Channel,
    text: String,
}

/// The state of the message broker between processes, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerState {
    /// Connected: ephemeral events reach the other processes.
    Connected,
    /// Not connected yet, or reconnecting: ephemeral events reach this process's clients only.
    Disconnected,
}

impl BrokerState {
    /// Its name in `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerState::Connected => "connected",
            BrokerState::Disconnected => "disconnected",
        }
    }
}

/// The bus cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// `TELEMED_NATS_URL` is not a usable NATS URL.
    #[error("TELEMED_NATS_URL: {0}")]
    Nats(String),
}

#[derive(Clone)]
enum Backend {
    Notify,
    Nats(async_nats::Client),
}

/// Publishes ephemeral events: to this process's hub first, then to the other processes.
#[derive(Clone)]
pub struct Bus {
    origin: Uuid,
    hub: Arc<Hub>,
    jwt: Arc<dyn Tokens>,
    outgoing: mpsc::Sender<Outgoing>,
    backend: Backend,
}

impl Bus {
    /// Starts this process's listener (feeding `hub` and `waiting`, and telling `jwt` and `hub`
    /// of revoked sign-in sessions) and sender, over NATS at `nats_url` if given, PostgreSQL
    /// `NOTIFY` otherwise; returns the publisher.
    pub async fn start(
        pool: PgPool,
        hub: Arc<Hub>,
        jwt: Arc<dyn Tokens>,
        waiting: Arc<dyn Replica>,
        nats_url: Option<&str>,
        background: &Background,
    ) -> Result<Self, BusError> {
        let origin = Uuid::new_v4();
        let (outgoing, queued) = mpsc::channel(OUTGOING_QUEUE);
        let receiver = Arc::new(Receiver {
            origin,
            pool: pool.clone(),
            hub: hub.clone(),
            jwt: jwt.clone(),
            waiting,
        });
        let backend = match nats_url {
            None => {
                notify::start(pool, receiver, queued, background);
                Backend::Notify
            }
            Some(url) => Backend::Nats(nats::start(url, receiver, queued, background).await?),
        };
        Ok(Self {
            origin,
            hub,
            jwt,
            outgoing,
            backend,
        })
    }

    /// Sends `event` with `data` to the clients in `topics`: at once to those of this process,
    /// then (queued) to those of the other processes.
    pub fn publish(&self, event: &'static str, data: Value, topics: Vec<Topic>) {
        debug_assert!(EVENTS.contains(&event), "{event} is not an ephemeral event");
        let text = serde_json::to_string(&Envelope {
            origin: Some(self.origin),
            event: Cow::Borrowed(event),
            data: Cow::Borrowed(&data),
            topics: topics.iter().map(Topic::to_string).collect(),
        })
        .unwrap_or_default();
        self.hub
            .publish(&[Arc::new(Delivery::ephemeral(event, data, topics))]);
        self.send(Channel::Live, text);
    }

    /// Sends a message of the waiting room to the other processes.
    pub fn send_waiting(&self, text: String) {
        self.send(Channel::Waiting, text);
    }

    /// Signs the sessions in `sids` out on every process: at once on this one, then on the
    /// others (with `NOTIFY`, the transaction that revoked them already told the others).
    pub fn sign_out(&self, sids: &[Uuid]) {
        sign_out(&*self.jwt, &self.hub, sids);
        if matches!(self.backend, Backend::Nats(_)) {
            for chunk in sids.chunks(1_000) {
                self.send(Channel::Revoked, join_revoked(chunk));
            }
        }
    }

    /// The broker's state; `None` when the processes talk through PostgreSQL.
    pub fn broker(&self) -> Option<BrokerState> {
        match &self.backend {
            Backend::Notify => None,
            Backend::Nats(client) => Some(match client.connection_state() {
                async_nats::connection::State::Connected => BrokerState::Connected,
                _ => BrokerState::Disconnected,
            }),
        }
    }

    fn send(&self, channel: Channel, text: String) {
        if let Err(error) = self.outgoing.try_send(Outgoing { channel, text }) {
            match error {
                mpsc::error::TrySendError::Full(_) => {
                    tracing::warn!(
                        "live bus: outgoing queue full; a message to the other processes is dropped"
                    );
                }
                // The sender ends only with the process.
                mpsc::error::TrySendError::Closed(_) => {}
            }
        }
    }
}

/// Forgets the sessions in `sids` on this process: their tokens are refused, their live
/// connections end.
fn sign_out(jwt: &dyn Tokens, hub: &Hub, sids: &[Uuid]) {
    jwt.revoke(sids);
    let closed = hub.sign_out(sids);
    tracing::debug!(sessions = sids.len(), closed, "sessions signed out");
}

/// What a process does with the messages of the others, whatever carried them.
struct Receiver {
    origin: Uuid,
    pool: PgPool,
    hub: Arc<Hub>,
    jwt: Arc<dyn Tokens>,
    waiting: Arc<dyn Replica>,
}

impl Receiver {
    fn receive(&self, channel: Channel, text: &str) {
        match channel {
            Channel::Live => {
                if let Some(delivery) = decode(text, self.origin) {
                    self.hub.publish(&[Arc::new(delivery)]);
                }
            }
            Channel::Revoked => sign_out(&*self.jwt, &self.hub, &parse_revoked(text)),
            Channel::Waiting => self.waiting.receive(text),
        }
    }

    /// The listener (re)connected: applies the revocations it may have missed, and asks the
    /// other processes for their share of the waiting room.
    async fn resync(&self) -> Result<(), sqlx::Error> {
        self.reload_revocations().await?;
        self.waiting.listening();
        Ok(())
    }

    /// Signs out, on this process, every session revoked in the database.
    async fn reload_revocations(&self) -> Result<(), sqlx::Error> {
        let sids = self.jwt.reload(&self.pool).await?;
        sign_out(&*self.jwt, &self.hub, &sids);
        Ok(())
    }
}

/// An ephemeral event between processes (`origin`: the sending process).
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    origin: Option<Uuid>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    data: Cow<'a, Value>,
    topics: Vec<String>,
}

/// The delivery in `text`, unless it is unreadable or was sent by process `origin` itself.
fn decode(text: &str, origin: Uuid) -> Option<Delivery> {
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    if envelope.origin == Some(origin) {
        return None;
    }
    let event = EVENTS.iter().find(|e| **e == envelope.event.as_ref())?;
    let topics = envelope
        .topics
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    Some(Delivery::ephemeral(
        event,
        envelope.data.into_owned(),
        topics,
    ))
}

fn join_revoked(sids: &[Uuid]) -> String {
    sids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Session ids of a revocation message.
pub fn parse_revoked(payload: &str) -> Vec<Uuid> {
    payload
        .split(',')
        .filter_map(|sid| sid.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telemed_domain::UserId;

    use super::*;

    #[test]
    fn a_process_drops_its_own_messages_and_reads_the_others() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let user = UserId::new();
        let text = |origin: Uuid| {
            json!({
                "origin": origin,
                "event": "call:ice",
                "data": { "n": 1 },
                "topics": [Topic::User(user).to_string()],
            })
            .to_string()
        };
        assert!(decode(&text(me), me).is_none());
        let delivery = decode(&text(other), me).expect("another process's message");
        assert_eq!(delivery.event, "call:ice");
        assert_eq!(delivery.topics, vec![Topic::User(user)]);
    }

    #[test]
    fn unknown_events_and_garbage_are_dropped() {
        let me = Uuid::new_v4();
        assert!(decode("not json", me).is_none());
        let stored = json!({ "event": "appointment:updated", "data": {}, "topics": [] });
        assert!(decode(&stored.to_string(), me).is_none());
    }

    #[test]
    fn revocations_round_trip() {
        let sids = vec![Uuid::new_v4(), Uuid::new_v4()];
        assert_eq!(parse_revoked(&join_revoked(&sids)), sids);
    }
}
