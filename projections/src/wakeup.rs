//! Wake-ups from PostgreSQL NOTIFY, with reconnection.
//!
//! The `events` table notifies channel `telemed_events` on every committed insert. A listener
//! task turns notifications into a counter on a `watch` channel; readers wait on it with a
//! polling fallback, so a lost notification (e.g. during a reconnect) only delays them.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use telemed_tasks::Background;
use tokio::sync::watch;

/// The channel the event store notifies.
pub const CHANNEL: &str = "telemed_events";

/// Starts the listener task under `background`; the receiver's value changes on every
/// wake-up. It ends when the process stops or every receiver is gone.
pub fn spawn(pool: PgPool, background: &Background) -> watch::Receiver<u64> {
    let (sender, receiver) = watch::channel(0u64);
    let stop = background.token();
    background.spawn(async move {
        stop.run_until_cancelled(listen(pool, sender)).await;
    });
    receiver
}

async fn listen(pool: PgPool, sender: watch::Sender<u64>) {
    let bump = |sender: &watch::Sender<u64>| sender.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        if sender.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "event wake-up listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // Anything may have been missed while disconnected.
        bump(&sender);
        loop {
            match listener.recv().await {
                Ok(_) => bump(&sender),
                Err(error) => {
                    tracing::warn!(%error, "event wake-up listener lost its connection");
                    bump(&sender);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
            if sender.is_closed() {
                return;
            }
        }
    }
}
