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
use tokio::sync::watch;

/// How often the sweeper looks.
const INTERVAL: Duration = Duration::from_secs(30);

/// Starts the sweeper; it stops when `stop` turns `true`.
pub fn spawn(
    pool: PgPool,
    scheduling: Arc<Scheduling>,
    timeout: time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Err(error) = sweep(&pool, &scheduling, timeout).await {
                tracing::warn!(%error, "sweep failed; will retry");
            }
        }
    });
}

/// Starts the ring-timeout loop: every second, calls that rang longer than the ring timeout
/// become missed.
pub fn spawn_ring_timeouts(calls: Arc<Calls>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let context = CommandContext::system("ring-timeout");
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
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
