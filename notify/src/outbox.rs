//! The outbox as metrics: its backlog by channel and state (queried when `/metrics` is
//! scraped), and the outcome of each delivery attempt (counted by the dispatcher).

use sqlx::{PgPool, Row};

/// Gauge: outbox deliveries not finished yet, by `channel` and `state`.
pub const BACKLOG: &str = "telemed_notify_outbox_deliveries";
/// Counter: delivery attempts by `channel` and `outcome` (`sent`, `cancelled`, `retrying`,
/// `failed`).
pub const ATTEMPTS: &str = "telemed_notify_deliveries_total";

/// The channels of the outbox.
pub const CHANNELS: [&str; 3] = ["email", "push", "sms"];
/// The states of a delivery still to be worked off.
pub const PENDING: [&str; 3] = ["scheduled", "retrying", "sending"];
/// The outcomes of an attempt (the states it leaves a delivery in).
pub const OUTCOMES: [&str; 4] = ["sent", "cancelled", "retrying", "failed"];

/// Each state by itself, so that each count reads one of the partial indexes' rows.
const BACKLOG_QUERY: &str = "
SELECT channel, state, count(*) AS deliveries FROM notification_deliveries
 WHERE state IN ('scheduled', 'retrying') GROUP BY channel, state
UNION ALL
SELECT channel, state, count(*) FROM notification_deliveries
 WHERE state = 'sending' GROUP BY channel, state";

/// How many deliveries of each channel are in each pending state (every pair, zeros too).
pub async fn backlog(pool: &PgPool) -> Result<Vec<(&'static str, &'static str, i64)>, sqlx::Error> {
    let rows = sqlx::query(BACKLOG_QUERY).fetch_all(pool).await?;
    let mut counts = Vec::with_capacity(CHANNELS.len() * PENDING.len());
    for channel in CHANNELS {
        for state in PENDING {
            let mut count = 0;
            for row in &rows {
                if row.try_get::<&str, _>("channel")? == channel
                    && row.try_get::<&str, _>("state")? == state
                {
                    count = row.try_get("deliveries")?;
                }
            }
            counts.push((channel, state, count));
        }
    }
    Ok(counts)
}

/// Describes the outbox metrics and creates each attempt series at zero.
pub fn describe() {
    metrics::describe_gauge!(
        BACKLOG,
        "Notification deliveries still to be worked off, by channel and state."
    );
    metrics::describe_counter!(
        ATTEMPTS,
        "Notification delivery attempts, by channel and outcome."
    );
    for channel in CHANNELS {
        for outcome in OUTCOMES {
            metrics::counter!(ATTEMPTS, "channel" => channel, "outcome" => outcome).increment(0);
        }
    }
}

/// Counts one attempt on `channel` that left its delivery `outcome`.
pub(crate) fn attempted(channel: &str, outcome: &'static str) {
    let channel = CHANNELS
        .into_iter()
        .find(|known| *known == channel)
        .unwrap_or("other");
    metrics::counter!(ATTEMPTS, "channel" => channel, "outcome" => outcome).increment(1);
}
