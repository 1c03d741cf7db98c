//! The sweeper: a background task that frees what a crash in the middle of a booking left
//! behind — slot reservations no appointment holds, and patient claims with no appointment.
//!
//! It lives here, at the composition root, because it reads a read model (`projections`) and
//! acts through the write side (`commands`). Running it in several processes is harmless:
//! releasing an already released slot changes nothing.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use telemed_commands::{Calls, CommandContext, Scheduling};
use telemed_domain::appointment::SlotRef;
use telemed_projections::availability::orphan_reservations;
use telemed_tasks::Background;

/// How often the sweeper looks.
const INTERVAL: Duration = Duration::from_secs(30);

/// Starts the sweeper under `background`: a pass at once and every
/// 30 s (`INTERVAL`).
pub fn spawn(
    background: &Background,
    pool: PgPool,
    scheduling: Arc<Scheduling>,
    timeout: time::Duration,
) {
    background.every(INTERVAL, move || {
        let (pool, scheduling) = (pool.clone(), scheduling.clone());
        async move {
            if let Err(error) = sweep(&pool, &scheduling, timeout).await {
                tracing::warn!(%error, "sweep failed; will retry");
            }
        }
    });
}

/// Starts the ring-timeout loop under `background`: every second, calls that rang longer
/// than the ring timeout become missed.
pub fn spawn_ring_timeouts(background: &Background, calls: Arc<Calls>) {
    background.every(Duration::from_secs(1), move || {
        let calls = calls.clone();
        async move {
            let context = CommandContext::system("ring-timeout");
            if let Err(error) = calls.sweep_ring_timeouts(&context).await {
                tracing::warn!(%error, "ring timeout sweep failed; will retry");
            }
        }
    });
}

/// One pass: releases orphaned reservations and deletes stale claims older than `timeout`.
/// Returns how many of each it removed.
pub async fn sweep(
    pool: &PgPool,
    scheduling: &Scheduling,
    timeout: time::Duration,
) -> anyhow::Result<(usize, u64)> {
    let cutoff = scheduling.clock().now() - timeout;
    let orphans = orphan_reservations(pool, cutoff).await?;
    let context = CommandContext::system("sweeper");
    for orphan in &orphans {
        let slot = SlotRef {
            day: orphan.day,
            reservation_id: orphan.reservation_id,
        };
        scheduling.release_orphan(slot, &context).await?;
        tracing::info!(day = %orphan.day, reservation = %orphan.reservation_id, "released an orphaned reservation");
    }
    let claims = scheduling.sweep_claims(timeout).await?;
    Ok((orphans.len(), claims))
}
