//! Ephemeral live traffic between server processes: typing indicators, call signaling and the
//! waiting room (on its own channel), which never enter the event store.
//!
//! A message is published with PostgreSQL `NOTIFY` on channel `telemed_live` and every
//! process (the sender's too) hands it to its own hub. NOTIFY payloads are limited to 8 000
//! bytes; a larger message is parked in `live_relay` and only its id is notified. Delivery is
//! at most once: a process that is reconnecting to PostgreSQL misses what is sent meanwhile,
//! which is acceptable for "is typing" and is what signaling's own retries are for.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use telemed_tasks::{Background, CancellationToken};

use super::hub::{Delivery, Hub};
use super::topic::Topic;
use super::waiting::{self, WaitingRoom};
use crate::identity::Tokens;

/// The NOTIFY channel.
pub const CHANNEL: &str = "telemed_live";
/// The NOTIFY channel of revoked sign-in sessions (comma-separated session ids).
pub const REVOKED_CHANNEL: &str = "telemed_revoked_sessions";
/// Largest payload sent inline (NOTIFY allows just under 8 000 bytes).
const INLINE_LIMIT: usize = 7_000;
/// Prefix of a notification that refers to a parked payload.
const PARKED: &str = "relay:";

/// Ephemeral events the bus carries (their names are `'static` in deliveries).
const EVENTS: &[&str] = &[
    "chat:typing",
    "call:ringing",
    "call:offer",
    "call:answer",
    "call:ice",
    "call:hangup",
];

#[derive(Serialize, Deserialize)]
struct Envelope {
    event: String,
    data: Value,
    topics: Vec<String>,
}

/// Publishes ephemeral events to every process's hub.
#[derive(Clone)]
pub struct Bus {
    pool: PgPool,
}

impl Bus {
    /// Starts this process's listener (feeding `hub` and `waiting`, and telling `jwt` and `hub`
    /// of revoked sign-in sessions) under `background`, and returns the publisher.
    pub fn start(
        pool: PgPool,
        hub: Arc<Hub>,
        jwt: Arc<dyn Tokens>,
        waiting: Arc<WaitingRoom>,
        background: &Background,
    ) -> Self {
        background.spawn(listen(pool.clone(), hub, jwt, waiting, background.token()));
        Self { pool }
    }

    /// Sends `event` with `data` to the clients in `topics`, on every process.
    pub async fn publish(
        &self,
        event: &'static str,
        data: Value,
        topics: Vec<Topic>,
    ) -> Result<(), sqlx::Error> {
        debug_assert!(EVENTS.contains(&event), "{event} is not an ephemeral event");
        let envelope = Envelope {
            event: event.to_string(),
            data,
            topics: topics.iter().map(Topic::to_string).collect(),
        };
        let text = serde_json::to_string(&envelope).unwrap_or_default();
        self.notify(CHANNEL, text).await
    }

    /// Sends `text` on NOTIFY `channel`; a text too large for NOTIFY is parked in `live_relay`
    /// and only its id is sent.
    pub async fn notify(&self, channel: &str, text: String) -> Result<(), sqlx::Error> {
        let payload = if text.len() <= INLINE_LIMIT {
            text
        } else {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO live_relay (payload) VALUES ($1::jsonb) RETURNING relay_id",
            )
            .bind(&text)
            .fetch_one(&self.pool)
            .await?;
            sqlx::query("DELETE FROM live_relay WHERE created_at < now() - interval '1 minute'")
                .execute(&self.pool)
                .await?;
            format!("{PARKED}{id}")
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Forgets the sessions in `sids` on this process: their tokens are refused, their live
/// connections end.
pub fn sign_out(jwt: &dyn Tokens, hub: &Hub, sids: &[uuid::Uuid]) {
    jwt.revoke(sids);
    let closed = hub.sign_out(sids);
    tracing::debug!(sessions = sids.len(), closed, "sessions signed out");
}

async fn listen(
    pool: PgPool,
    hub: Arc<Hub>,
    jwt: Arc<dyn Tokens>,
    waiting: Arc<WaitingRoom>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "live bus cannot connect; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Err(error) = listener
            .listen_all([CHANNEL, REVOKED_CHANNEL, waiting::CHANNEL])
            .await
        {
            tracing::warn!(%error, "live bus LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // Revocations sent while this process was not listening (or before it started).
        match jwt.reload(&pool).await {
            Ok(sids) => sign_out(&*jwt, &hub, &sids),
            Err(error) => {
                tracing::warn!(%error, "cannot load revoked sessions; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        // What was said while this process was not listening.
        waiting.listening();
        loop {
            let notification = tokio::select! {
                received = listener.recv() => received,
                () = stop.cancelled() => return,
            };
            let notification = match notification {
                Ok(notification) => notification,
                Err(error) => {
                    tracing::warn!(%error, "live bus lost its connection");
                    break;
                }
            };
            let payload = notification.payload();
            if notification.channel() == REVOKED_CHANNEL {
                sign_out(&*jwt, &hub, &parse_revoked(payload));
                continue;
            }
            let text = match payload.strip_prefix(PARKED) {
                None => payload.to_string(),
                Some(id) => match parked(&pool, id).await {
                    Some(text) => text,
                    None => continue,
                },
            };
            if notification.channel() == waiting::CHANNEL {
                waiting.receive(&text);
            } else if let Some(delivery) = decode(&text) {
                hub.publish(&[Arc::new(delivery)]);
            }
        }
    }
}

async fn parked(pool: &PgPool, id: &str) -> Option<String> {
    let id: i64 = id.parse().ok()?;
    match sqlx::query_scalar::<_, Value>("SELECT payload FROM live_relay WHERE relay_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
    {
        Ok(Some(payload)) => Some(payload.to_string()),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, "live bus cannot read a parked message");
            None
        }
    }
}

fn decode(text: &str) -> Option<Delivery> {
    let envelope: Envelope = serde_json::from_str(text).ok()?;
    let event = EVENTS.iter().find(|e| **e == envelope.event)?;
    let topics = envelope
        .topics
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    Some(Delivery::ephemeral(event, envelope.data, topics))
}

/// Session ids of a revocation notification.
pub fn parse_revoked(payload: &str) -> Vec<uuid::Uuid> {
    payload
        .split(',')
        .filter_map(|sid| sid.trim().parse().ok())
        .collect()
}
