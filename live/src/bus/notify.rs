//! The default backend: PostgreSQL `NOTIFY`, so one process or a few need nothing else.
//!
//! Queued messages are sent by one task, as many as are waiting in one statement. `NOTIFY`
//! payloads are limited to 8 000 bytes; a larger message is parked in `live_relay` and only its
//! id is notified. Every process (the sender's too) `LISTEN`s; the sender drops its own
//! ephemeral events (see [`super::decode`]).

use std::sync::Arc;

use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use telemed_tasks::{Background, CancellationToken};
use tokio::sync::mpsc;

use super::{Channel, Outgoing, RETRY, Receiver};

/// The NOTIFY channel of ephemeral events.
pub const CHANNEL: &str = "telemed_live";
/// The NOTIFY channel of revoked sign-in sessions (comma-separated session ids).
pub const REVOKED_CHANNEL: &str = "telemed_revoked_sessions";
/// Largest payload sent inline (NOTIFY allows just under 8 000 bytes).
const INLINE_LIMIT: usize = 7_000;
/// Prefix of a notification that refers to a parked payload.
const PARKED: &str = "relay:";
/// Most messages sent in one statement.
const BATCH: usize = 256;

fn name(channel: Channel) -> &'static str {
    match channel {
        Channel::Live => CHANNEL,
        Channel::Revoked => REVOKED_CHANNEL,
        Channel::Waiting => super::WAITING_CHANNEL,
    }
}

/// Starts the listener and the sender.
pub(super) fn start(
    pool: PgPool,
    receiver: Arc<Receiver>,
    queued: mpsc::Receiver<Outgoing>,
    background: &Background,
) {
    background.spawn(send(pool.clone(), queued, background.token()));
    background.spawn(listen(pool, receiver, background.token()));
}

async fn send(pool: PgPool, mut queued: mpsc::Receiver<Outgoing>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            received = queued.recv_many(&mut batch, BATCH) => received,
            () = stop.cancelled() => return,
        };
        if received == 0 {
            return;
        }
        if let Err(error) = notify(&pool, &batch).await {
            tracing::warn!(%error, lost = batch.len(), "live bus cannot notify the other processes");
        }
        batch.clear();
    }
}

/// Sends `batch` in order with one statement (after parking the large ones).
async fn notify(pool: &PgPool, batch: &[Outgoing]) -> Result<(), sqlx::Error> {
    let mut channels = Vec::with_capacity(batch.len());
    let mut payloads = Vec::with_capacity(batch.len());
    for message in batch {
        channels.push(name(message.channel));
        payloads.push(if message.text.len() <= INLINE_LIMIT {
            message.text.clone()
        } else {
            format!("{PARKED}{}", park(pool, &message.text).await?)
        });
    }
    // unnest yields the rows in the arrays' order: the notifications go out in the queue's.
    sqlx::query("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS m(c, p)")
        .bind(channels)
        .bind(payloads)
        .execute(pool)
        .await?;
    Ok(())
}

async fn park(pool: &PgPool, text: &str) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO live_relay (payload) VALUES ($1::jsonb) RETURNING relay_id",
    )
    .bind(text)
    .fetch_one(pool)
    .await?;
    sqlx::query("DELETE FROM live_relay WHERE created_at < now() - interval '1 minute'")
        .execute(pool)
        .await?;
    Ok(id)
}

async fn listen(pool: PgPool, receiver: Arc<Receiver>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "live bus cannot connect; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(error) = listener
            .listen_all([CHANNEL, REVOKED_CHANNEL, super::WAITING_CHANNEL])
            .await
        {
            tracing::warn!(%error, "live bus LISTEN failed; retrying");
            tokio::time::sleep(RETRY).await;
            continue;
        }
        // What was revoked or said while this process was not listening.
        if let Err(error) = receiver.resync().await {
            tracing::warn!(%error, "cannot load revoked sessions; retrying");
            tokio::time::sleep(RETRY).await;
            continue;
        }
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
            let channel = match notification.channel() {
                CHANNEL => Channel::Live,
                REVOKED_CHANNEL => Channel::Revoked,
                _ => Channel::Waiting,
            };
            let payload = notification.payload();
            match payload.strip_prefix(PARKED) {
                None => receiver.receive(channel, payload),
                Some(id) => {
                    if let Some(text) = parked(&pool, id).await {
                        receiver.receive(channel, &text);
                    }
                }
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
