//! Rebuilding projections from position zero while the service keeps serving.
//!
//! A rebuild fills fresh tables beside the live ones, then swaps them in:
//!
//! 1. In a scratch schema ([`SCRATCH`]), each table of the projections is created like its
//!    live twin (columns, defaults, checks, keys and unique indexes under the same names; its
//!    other indexes are built, under their names too, once it is full: one sorted build costs
//!    far less than maintaining them row by row).
//! 2. The log is read once for every projection, in pages of [`BATCH`] events: the next
//!    pages' bounds are found first, so [`READ_AHEAD`] pages are read and decoded at once, each
//!    on a pool connection and a task of its own. Each page, shared (never copied), goes to
//!    every projection. Each projection fills its scratch tables on a connection of its own,
//!    concurrently with the others (they write disjoint tables), a short transaction per page:
//!    that connection puts the scratch schema first on its `search_path`, so the projection's
//!    unchanged SQL writes there (tables it does not own, such as the outbox, still resolve to
//!    the live ones). Then it builds its tables' other indexes and analyses them. No lock the
//!    live runner needs is held: the live read models keep moving and commands'
//!    read-your-writes waits are not held up.
//! 3. The swap, one short transaction: lock the projections' checkpoint rows (the live runner
//!    waits from here), apply the events committed meanwhile, drop each live table and move
//!    its scratch twin into its place, move the checkpoints. Readers see the old tables until
//!    the commit and the complete new ones after it, never a half-built model.
//!
//! Rebuilds of one database run one at a time (a session advisory lock); a scratch schema left
//! by a rebuild that died is dropped by the next one.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use futures::future::try_join_all;
use sqlx::{Connection, PgConnection, PgPool};
use telemed_domain::Position;
use tokio::sync::mpsc;

use crate::StoredEvent;
use crate::runner::{
    Projection, ProjectionError, ensure_checkpoint, lock_checkpoint, save_checkpoint,
};
use crate::stream::{page_end, read_after, read_between, wait_until_readable};

/// Events read and applied per transaction while filling the scratch tables.
pub const BATCH: i64 = 10_000;
/// Pages of the log read at once while filling.
pub const READ_AHEAD: usize = 2;
/// Pages a projection may have waiting while it applies one.
const QUEUED: usize = 2;
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
    let indexes = create_scratch(conn, &live, &tables).await?;
    sqlx::query(&format!("SET search_path = {SCRATCH}, \"{live}\""))
        .execute(&mut *conn)
        .await?;

    let started = Instant::now();
    let (events, cursor) = fill(pool, &live, projections, &indexes).await?;
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

/// Replays the log into the scratch tables: one reader shares each page with every
/// projection, each applying it on its own connection in a short transaction, holding no lock
/// the live runner takes. Returns how many events were read and the position of the last.
async fn fill(
    pool: &PgPool,
    live: &str,
    projections: &[&dyn Projection],
    indexes: &HashMap<String, Vec<String>>,
) -> Result<(u64, Position), ProjectionError> {
    let mut senders = Vec::with_capacity(projections.len());
    let mut appliers = Vec::with_capacity(projections.len());
    for projection in projections {
        let conn = scratch_connection(pool, live).await?;
        let (sender, pages) = mpsc::channel::<Page>(QUEUED);
        senders.push(sender);
        let indexes: Vec<&str> = projection
            .tables()
            .iter()
            .flat_map(|table| indexes.get(*table).into_iter().flatten())
            .map(String::as_str)
            .collect();
        appliers.push(apply_pages(conn, *projection, pages, indexes));
    }
    let (read, _) = tokio::try_join!(read_pages(pool, senders), try_join_all(appliers))?;
    Ok(read)
}

/// A page of the log, shared by every projection.
type Page = Arc<Vec<StoredEvent>>;

/// Reads the log from the start in pages (up to [`READ_AHEAD`] of them at once, each read and
/// decoded on its own task) and hands each, in order, to every projection.
async fn read_pages(
    pool: &PgPool,
    projections: Vec<mpsc::Sender<Page>>,
) -> Result<(u64, Position), ProjectionError> {
    let mut reading = VecDeque::new();
    let mut bound = Position::START;
    let mut end = false;
    let mut events = 0u64;
    loop {
        while !end && reading.len() < READ_AHEAD {
            match page_end(pool, bound, BATCH).await? {
                Some(next) => {
                    let pool = pool.clone();
                    let after = bound;
                    reading.push_back(tokio::spawn(async move {
                        read_between(&pool, after, next).await
                    }));
                    bound = next;
                }
                None => end = true,
            }
        }
        let Some(read) = reading.pop_front() else {
            return Ok((events, bound));
        };
        let page = read
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("a log reader stopped: {e}")))??;
        events += page.len() as u64;
        let page = Arc::new(page);
        for projection in &projections {
            // A projection that stopped has failed: its error ends the rebuild.
            if projection.send(Arc::clone(&page)).await.is_err() {
                return Ok((events, bound));
            }
        }
    }
}

/// Applies `pages` to `projection` on `conn`, a transaction per page, then builds the other
/// `indexes` of its tables and analyses them.
async fn apply_pages(
    mut conn: PgConnection,
    projection: &dyn Projection,
    mut pages: mpsc::Receiver<Page>,
    indexes: Vec<&str>,
) -> Result<(), ProjectionError> {
    while let Some(page) = pages.recv().await {
        let mut tx = conn.begin().await?;
        // Like the runner's batches: a crash loses nothing that cannot be replayed.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        projection.apply_batch(&mut tx, &page).await?;
        tx.commit().await?;
    }
    for statement in indexes {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    for table in projection.tables() {
        sqlx::query(&format!("ANALYZE {SCRATCH}.{table}"))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// A connection of its own (not the pool's: its search_path must not leak) that writes the
/// projections' tables in the scratch schema.
async fn scratch_connection(pool: &PgPool, live: &str) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    sqlx::query(&format!("SET search_path = {SCRATCH}, \"{live}\""))
        .execute(&mut conn)
        .await?;
    Ok(conn)
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

/// The constraints (primary keys, unique and exclusion constraints) and the unique indexes
/// of a live table (what `ON CONFLICT` may need), as statements that give its scratch twin the
/// same under the same names.
const TWIN_KEYS: &str = "
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
 WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)";

/// The other indexes of a live table, likewise: built once its scratch twin is full (one
/// sorted build is much cheaper than maintaining the index row by row while filling).
const TWIN_INDEXES: &str = "
SELECT regexp_replace(pg_get_indexdef(i.indexrelid), ' ON (ONLY )?\\S+ USING ',
                      format(' ON %s.%I USING ', $3::text, c.relname))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2 AND NOT i.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)";

/// A fresh scratch schema with an empty twin of each of `tables`, with its keys; returns the
/// statements that build the twins' other indexes, by table.
async fn create_scratch(
    conn: &mut PgConnection,
    live: &str,
    tables: &[&str],
) -> Result<HashMap<String, Vec<String>>, sqlx::Error> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCRATCH} CASCADE"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {SCRATCH}"))
        .execute(&mut *conn)
        .await?;
    let mut later = HashMap::new();
    for table in tables {
        sqlx::query(&format!(
            "CREATE TABLE {SCRATCH}.{table} (LIKE \"{live}\".{table} INCLUDING ALL EXCLUDING INDEXES)"
        ))
        .execute(&mut *conn)
        .await?;
        let keys: Vec<String> = sqlx::query_scalar(TWIN_KEYS)
            .bind(live)
            .bind(table)
            .bind(SCRATCH)
            .fetch_all(&mut *conn)
            .await?;
        for statement in keys {
            sqlx::query(&statement).execute(&mut *conn).await?;
        }
        let indexes: Vec<String> = sqlx::query_scalar(TWIN_INDEXES)
            .bind(live)
            .bind(table)
            .bind(SCRATCH)
            .fetch_all(&mut *conn)
            .await?;
        later.insert((*table).to_string(), indexes);
    }
    Ok(later)
}

/// Every projection the service runs, as the rebuild takes them.
pub fn refs(projections: &[Arc<dyn Projection>]) -> Vec<&dyn Projection> {
    projections.iter().map(AsRef::as_ref).collect()
}
