//! Rebuilding a projection from position zero while the service keeps serving.
//!
//! The whole rebuild runs in one transaction that first locks the projection's checkpoint row:
//! live runners wait (they lock every checkpoint of their group), readers keep seeing the old tables (emptied with
//! DELETE, not TRUNCATE, so MVCC shows them the committed version) until the new content
//! commits at once. Clients never see a half-built model.

use sqlx::PgPool;
use telemed_domain::Position;

use crate::runner::{
    Projection, ProjectionError, ensure_checkpoint, lock_checkpoint, save_checkpoint,
};
use crate::stream::{read_after, wait_until_readable};

const BATCH: i64 = 1_000;
/// How long a rebuild waits for older transactions to end before rebuilding what is readable
/// (the live runner applies the rest afterwards).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Rebuilds `projection` from the whole log; returns how many events it applied.
pub async fn rebuild(pool: &PgPool, projection: &dyn Projection) -> Result<u64, ProjectionError> {
    let name = projection.name();
    ensure_checkpoint(pool, name).await?;
    // Everything committed before the rebuild was asked for belongs in it: wait, holding no
    // lock, until transactions older than the newest event have ended.
    wait_until_readable(pool, PATIENCE).await?;
    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, name).await?;
    for table in projection.tables() {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    let mut cursor = Position::START;
    let mut applied = 0u64;
    loop {
        let events = read_after(&mut *tx, cursor, BATCH).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        for event in &events {
            projection.apply(&mut tx, event).await?;
        }
        applied += events.len() as u64;
        cursor = last;
    }
    save_checkpoint(&mut tx, &[name], cursor).await?;
    tx.commit().await?;
    Ok(applied)
}
