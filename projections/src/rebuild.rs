//! Rebuilding projections from position zero while the service keeps serving.
//!
//! A rebuild fills fresh tables beside the live ones, then swaps them in:
//!
//! 1. In a scratch schema ([`SCRATCH`]), each table of the projections is created like its
//!    live twin (columns, defaults, checks, keys and indexes under the same names).
//! 2. The rebuild's own connection puts the scratch schema first on its `search_path`, so the
//!    projections' unchanged SQL writes there (tables they do not own, such as the outbox,
//!    still resolve to the live ones), and replays the log in short transactions of
//!    [`BATCH`] events each (the next batch read ahead on a pool connection meanwhile), holding
//!    no lock the live runner needs: the live read models keep moving and commands'
//!    read-your-writes waits are not held up.
//! 3. The swap, one short transaction: lock the projections' checkpoint rows (the live runner
//!    waits from here), apply the events committed meanwhile, drop each live table and move
//!    its scratch twin into its place, move the checkpoints. Readers see the old tables until
//!    the commit and the complete new ones after it, never a half-built model.
//!
//! Rebuilds of one database run one at a time (a session advisory lock); a scratch schema left
//! by a rebuild that died is dropped by the next one.

use std::sync::Arc;
use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};
use telemed_domain::Position;

use crate::StoredEvent;
use crate::runner::{
    Projection, ProjectionError, ensure_checkpoint, lock_checkpoint, save_checkpoint,
};
use crate::stream::{read_after, wait_until_readable};

/// Events read and applied per transaction while filling the scratch tables.
pub const BATCH: i64 = 10_000;
/// The schema the new tables are built in.
pub const SCRATCH: &str = "telemed_rebuild";
/// How long a rebuild waits for older transactions to end before rebuilding what is readable
/// (the live runner applies the rest afterwards).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// Key of the advisory lock that lets one rebuild run at a time.
const REBUILD_LOCK: i64 = 0x7465_6c65_6d65_6401;

/// How a rebuild runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Tests only: before the swap, wait until this advisory lock key can be taken (shared), so
    /// a test can hold a rebuild with its scratch tables full and the live ones still serving.
    pub hold_before_swap: Option<i64>,
}

/// What a rebuild did.
#[derive(Clone, Copy, Debug)]
pub struct Rebuilt {
    /// Events replayed (every projection saw each of them).
    pub events: u64,
    /// Of those, the events that arrived while the scratch tables were filling and were
    /// applied in the swap's transaction.
    pub caught_up: u64,
    /// Time spent filling the scratch tables.
    pub fill: std::time::Duration,
    /// Time the swap's transaction held the checkpoints.
    pub swap: std::time::Duration,
}

/// Rebuilds `projection` from the whole log; returns how many events it applied.
pub async fn rebuild(pool: &PgPool, projection: &dyn Projection) -> Result<u64, ProjectionError> {
    Ok(rebuild_all(pool, &[projection], Options::default())
        .await?
        .events)
}

/// Rebuilds `projections` together from one read of the log, and swaps them in at once.
pub async fn rebuild_all(
    pool: &PgPool,
    projections: &[&dyn Projection],
    options: Options,
) -> Result<Rebuilt, ProjectionError> {
    for projection in projections {
        ensure_checkpoint(pool, projection.name()).await?;
    }
    // Everything committed before the rebuild was asked for belongs in it: wait, holding no
    // lock, until transactions older than the newest event have ended.
    wait_until_readable(pool, PATIENCE).await?;
    // A connection of its own (taken out of the pool): its search_path must not leak.
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(REBUILD_LOCK)
        .execute(&mut conn)
        .await?;
    let outcome = rebuild_on(pool, &mut conn, projections, options).await;
    // Best effort: the session's end releases the lock anyway.
    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCRATCH} CASCADE"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    outcome
}

async fn rebuild_on(
    pool: &PgPool,
    conn: &mut PgConnection,
    projections: &[&dyn Projection],
    options: Options,
) -> Result<Rebuilt, ProjectionError> {
    let live: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await?;
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    create_scratch(conn, &live, &tables).await?;
    sqlx::query(&format!("SET search_path = {SCRATCH}, \"{live}\""))
        .execute(&mut *conn)
        .await?;

    let started = Instant::now();
    let (events, cursor) = fill(pool, conn, projections).await?;
    for table in &tables {
        sqlx::query(&format!("ANALYZE {SCRATCH}.{table}"))
            .execute(&mut *conn)
            .await?;
    }
    let fill = started.elapsed();

    if let Some(key) = options.hold_before_swap {
        sqlx::query("SELECT pg_advisory_lock_shared($1), pg_advisory_unlock_shared($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }

    let started = Instant::now();
    let caught_up = swap(conn, projections, &live, &tables, cursor).await?;
    Ok(Rebuilt {
        events: events + caught_up,
        caught_up,
        fill,
        swap: started.elapsed(),
    })
}

/// Replays the log into the scratch tables, a short transaction per batch, holding no lock the
/// live runner takes; returns how many events it applied and the position of the last.
async fn fill(
    pool: &PgPool,
    conn: &mut PgConnection,
    projections: &[&dyn Projection],
) -> Result<(u64, Position), ProjectionError> {
    // Reads ahead on a pool connection: the next batch is read and decoded while this one is
    // applied.
    let read = |after: Position| {
        let pool = pool.clone();
        tokio::spawn(async move { read_after(&pool, after, BATCH).await })
    };
    let mut cursor = Position::START;
    let mut events = 0u64;
    let mut next = read(cursor);
    loop {
        let batch = next
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("the log reader stopped: {e}")))??;
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok((events, cursor));
        };
        next = read(last);
        let mut tx = conn.begin().await?;
        // Like the runner's batches: a crash loses nothing that cannot be replayed.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        apply(&mut tx, projections, &batch).await?;
        tx.commit().await?;
        events += batch.len() as u64;
        cursor = last;
    }
}

/// In one transaction: locks the checkpoints, applies the events past `cursor`, puts the
/// scratch tables in place of the live ones and moves the checkpoints. Returns how many events
/// it applied.
async fn swap(
    conn: &mut PgConnection,
    projections: &[&dyn Projection],
    live: &str,
    tables: &[&str],
    mut cursor: Position,
) -> Result<u64, ProjectionError> {
    let mut tx = conn.begin().await?;
    let mut names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    // The runner locks checkpoints in name order; so do we.
    names.sort_unstable();
    for name in &names {
        lock_checkpoint(&mut tx, name).await?;
    }
    let mut caught_up = 0u64;
    loop {
        let batch = read_after(&mut *tx, cursor, BATCH).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        apply(&mut tx, projections, &batch).await?;
        caught_up += batch.len() as u64;
        cursor = last;
    }
    for table in tables {
        sqlx::query(&format!("DROP TABLE \"{live}\".{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {SCRATCH}.{table} SET SCHEMA \"{live}\""
        ))
        .execute(&mut *tx)
        .await?;
    }
    save_checkpoint(&mut tx, &names, cursor).await?;
    tx.commit().await?;
    Ok(caught_up)
}

/// Gives every projection the whole batch, in order.
async fn apply(
    tx: &mut PgConnection,
    projections: &[&dyn Projection],
    batch: &[StoredEvent],
) -> Result<(), ProjectionError> {
    for projection in projections {
        projection.apply_batch(tx, batch).await?;
    }
    Ok(())
}

/// The constraints (primary keys, unique and exclusion constraints) and then the other
/// indexes of a live table, as statements that give its scratch twin the same under the same
/// names.
const TWIN_DDL: &str = "
SELECT format('ALTER TABLE %s.%I ADD CONSTRAINT %I %s', $3::text, c.relname, k.conname,
              pg_get_constraintdef(k.oid))
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2 AND k.contype IN ('p', 'u', 'x')
UNION ALL
SELECT regexp_replace(pg_get_indexdef(i.indexrelid), ' ON (ONLY )?\\S+ USING ',
                      format(' ON %s.%I USING ', $3::text, c.relname))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)";

/// A fresh scratch schema with an empty twin of each of `tables`.
async fn create_scratch(
    conn: &mut PgConnection,
    live: &str,
    tables: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCRATCH} CASCADE"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {SCRATCH}"))
        .execute(&mut *conn)
        .await?;
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {SCRATCH}.{table} (LIKE \"{live}\".{table} INCLUDING ALL EXCLUDING INDEXES)"
        ))
        .execute(&mut *conn)
        .await?;
        let statements: Vec<String> = sqlx::query_scalar(TWIN_DDL)
            .bind(live)
            .bind(table)
            .bind(SCRATCH)
            .fetch_all(&mut *conn)
            .await?;
        for statement in statements {
            sqlx::query(&statement).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Every projection the service runs, as the rebuild takes them.
pub fn refs(projections: &[Arc<dyn Projection>]) -> Vec<&dyn Projection> {
    projections.iter().map(AsRef::as_ref).collect()
}
