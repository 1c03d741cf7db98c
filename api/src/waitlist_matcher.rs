//! The waitlist matcher's task: rounds of [`telemed_commands::waitlist::matcher::round`] on a
//! connection of its own, woken by the log's notifications and every half second (which is
//! how soon a lapsed offer expires). Several processes may run it: the round's advisory lock
//! lets one at a time through.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use telemed_commands::Waitlist;
use telemed_commands::waitlist::matcher;
use telemed_tasks::{Background, CancellationToken};
use tokio::sync::watch;

/// The longest pause between rounds.
const POLL: Duration = Duration::from_millis(500);

/// Starts the matcher under `background`.
pub fn spawn(
    background: &Background,
    pool: PgPool,
    waitlist: Arc<Waitlist>,
    wakeups: watch::Receiver<u64>,
) {
    background.spawn(run(pool, waitlist, wakeups, background.token()));
}

async fn run(
    pool: PgPool,
    waitlist: Arc<Waitlist>,
    mut wakeups: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let mut connection: Option<PoolConnection<sqlx::Postgres>> = None;
    while !stop.is_cancelled() {
        wakeups.borrow_and_update();
        let more = match rounds(&pool, &waitlist, &mut connection).await {
            Ok(more) => more,
            Err(error) => {
                // The lock goes with the session: close it rather than return it to the pool.
                if let Some(conn) = connection.take() {
                    drop(conn.detach());
                }
                tracing::warn!(%error, "waitlist matcher round failed; will retry");
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = wakeups.changed() => {}
            () = tokio::time::sleep(POLL) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// One round; whether it read a full batch (so another should follow at once).
async fn rounds(
    pool: &PgPool,
    waitlist: &Waitlist,
    connection: &mut Option<PoolConnection<sqlx::Postgres>>,
) -> Result<bool, telemed_commands::error::BoxError> {
    if connection.is_none() {
        *connection = Some(pool.acquire().await?);
    }
    let conn = connection.as_mut().expect("acquired above");
    let round = matcher::round(waitlist, conn).await?;
    if round.offered > 0 || round.expired > 0 {
        tracing::info!(
            offered = round.offered,
            expired = round.expired,
            events = round.events,
            "waitlist matcher round"
        );
    }
    Ok(round.events >= 500)
}
