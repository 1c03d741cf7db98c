//! The projection runner: applies the global stream to each projection, exactly once.
//!
//! Each projection has a name, a checkpoint row and tables it alone writes. A step reads a
//! batch after the checkpoint, then in one transaction locks the checkpoint row, checks nobody
//! moved it meanwhile (another process may run the same projection), applies the batch and
//! moves the checkpoint. A crash mid-batch rolls the whole batch back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use telemed_domain::Position;
use tokio::sync::watch;

use crate::event::StoredEvent;
use crate::stream::{position_from_row, read_after};
use crate::wakeup;

/// A read model built from the event stream.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Unique, stable name (the checkpoint key).
    fn name(&self) -> &'static str;

    /// The tables this projection alone writes; emptied before a rebuild.
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event inside the batch's transaction. Events this projection does not care
    /// about are ignored.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;
}

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed; the batch is retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An event's payload does not decode; the projection stops at it until fixed.
    #[error("event {aggregate_type}/{aggregate_id}#{sequence} has an unreadable payload: {source}")]
    Payload {
        /// Aggregate kind.
        aggregate_type: String,
        /// Aggregate id.
        aggregate_id: String,
        /// Sequence.
        sequence: i64,
        /// Decoding error.
        source: serde_json::Error,
    },
}

impl ProjectionError {
    /// A payload error for `event`.
    pub fn payload(event: &StoredEvent, source: serde_json::Error) -> Self {
        Self::Payload {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            source,
        }
    }
}

const ENSURE_CHECKPOINT: &str =
    "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";
const LOAD_CHECKPOINT: &str = "SELECT transaction_id::text AS xid, global_position
  FROM projection_checkpoints WHERE name = $1";
const LOCK_CHECKPOINT: &str = "SELECT transaction_id::text AS xid, global_position
  FROM projection_checkpoints WHERE name = $1 FOR UPDATE";
const SAVE_CHECKPOINT: &str = "UPDATE projection_checkpoints
   SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now()
 WHERE name = $1";
/// Wakes other readers: this transaction held an xid, which may have held them back.
const NOTIFY: &str = "SELECT pg_notify('telemed_events', '')";

/// Creates the checkpoint row of `name` if missing.
pub async fn ensure_checkpoint(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(ENSURE_CHECKPOINT)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// The checkpoint of projection `name`.
pub async fn load_checkpoint(
    conn: impl sqlx::PgExecutor<'_>,
    name: &str,
) -> Result<Position, sqlx::Error> {
    let row = sqlx::query(LOAD_CHECKPOINT)
        .bind(name)
        .fetch_one(conn)
        .await?;
    position_from_row(&row)
}

/// Locks the checkpoint row of `name` for the rest of the transaction and returns it.
pub async fn lock_checkpoint(tx: &mut PgConnection, name: &str) -> Result<Position, sqlx::Error> {
    let row = sqlx::query(LOCK_CHECKPOINT)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    position_from_row(&row)
}

/// Moves the checkpoint of `name` (within the caller's transaction) and wakes other readers.
pub async fn save_checkpoint(
    tx: &mut PgConnection,
    name: &str,
    position: Position,
) -> Result<(), sqlx::Error> {
    sqlx::query(SAVE_CHECKPOINT)
        .bind(name)
        .bind(position.transaction_id.to_string())
        .bind(position.global_position)
        .execute(&mut *tx)
        .await?;
    sqlx::query(NOTIFY).execute(&mut *tx).await?;
    Ok(())
}

/// How far each projection of this process has got; used for read-your-writes and readiness.
#[derive(Clone)]
pub struct Progress {
    positions: Arc<HashMap<&'static str, watch::Sender<Position>>>,
    stalled: Arc<HashMap<&'static str, AtomicBool>>,
}

impl Progress {
    fn new(names: &[&'static str]) -> Self {
        Self {
            positions: Arc::new(
                names
                    .iter()
                    .map(|n| (*n, watch::Sender::new(Position::START)))
                    .collect(),
            ),
            stalled: Arc::new(names.iter().map(|n| (*n, AtomicBool::new(false))).collect()),
        }
    }

    fn advance(&self, name: &str, position: Position) {
        if let Some(sender) = self.positions.get(name) {
            sender.send_if_modified(|current| {
                let newer = position > *current;
                if newer {
                    *current = position;
                }
                newer
            });
        }
    }

    fn set_stalled(&self, name: &str, stalled: bool) {
        if let Some(flag) = self.stalled.get(name) {
            flag.store(stalled, Ordering::Relaxed);
        }
    }

    /// The position projection `name` has applied up to, as far as this process knows.
    pub fn position(&self, name: &str) -> Option<Position> {
        self.positions.get(name).map(|s| *s.borrow())
    }

    /// Names of projections whose last step failed.
    pub fn stalled(&self) -> Vec<&'static str> {
        self.stalled
            .iter()
            .filter(|(_, flag)| flag.load(Ordering::Relaxed))
            .map(|(name, _)| *name)
            .collect()
    }

    /// Waits until every projection has applied `position`, at most `timeout`. Returns
    /// whether they got there.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let all = async {
            for sender in self.positions.values() {
                let mut receiver = sender.subscribe();
                if receiver.wait_for(|p| *p >= position).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }
}

/// Settings of the runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Events per transaction.
    pub batch_size: i64,
    /// How often to look for events when no notification arrives.
    pub poll_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Runs a set of projections, one task each, until dropped or the shutdown signal fires.
pub struct ProjectionRunner {
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    config: RunnerConfig,
}

enum Step {
    Applied,
    CaughtUp,
}

impl ProjectionRunner {
    /// A runner for `projections` on `pool`.
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection>>, config: RunnerConfig) -> Self {
        Self {
            pool,
            projections,
            config,
        }
    }

    /// Starts one task per projection; they stop when `shutdown` changes to `true`.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> Progress {
        let names: Vec<&'static str> = self.projections.iter().map(|p| p.name()).collect();
        let progress = Progress::new(&names);
        let wakeups = wakeup::spawn(self.pool.clone());
        for projection in self.projections {
            tokio::spawn(run_one(
                self.pool.clone(),
                projection,
                self.config.clone(),
                progress.clone(),
                wakeups.clone(),
                shutdown.clone(),
            ));
        }
        progress
    }
}

async fn run_one(
    pool: PgPool,
    projection: Arc<dyn Projection>,
    config: RunnerConfig,
    progress: Progress,
    mut wakeups: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = projection.name();
    let mut failures: u32 = 0;
    while !*shutdown.borrow() {
        wakeups.borrow_and_update();
        let pause = match step(&pool, projection.as_ref(), &config, &progress).await {
            Ok(Step::Applied) => {
                failures = 0;
                progress.set_stalled(name, false);
                continue;
            }
            Ok(Step::CaughtUp) => {
                failures = 0;
                progress.set_stalled(name, false);
                config.poll_interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                progress.set_stalled(name, true);
                tracing::error!(projection = name, %error, failures, "projection step failed; retrying");
                Duration::from_millis(100 * u64::from(failures.min(50)))
            }
        };
        tokio::select! {
            _ = wakeups.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn step(
    pool: &PgPool,
    projection: &dyn Projection,
    config: &RunnerConfig,
    progress: &Progress,
) -> Result<Step, ProjectionError> {
    let name = projection.name();
    ensure_checkpoint(pool, name).await?;
    let checkpoint = load_checkpoint(pool, name).await?;
    progress.advance(name, checkpoint);
    // Read outside the transaction: once it holds an xid, that xid would hold back the
    // commit-safe horizon of its own read.
    let events = read_after(pool, checkpoint, config.batch_size).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(Step::CaughtUp);
    };
    let mut tx = pool.begin().await?;
    if lock_checkpoint(&mut tx, name).await? != checkpoint {
        // Another process applied this batch meanwhile; start over from its checkpoint.
        return Ok(Step::Applied);
    }
    for event in &events {
        projection.apply(&mut tx, event).await?;
    }
    save_checkpoint(&mut tx, name, last).await?;
    tx.commit().await?;
    progress.advance(name, last);
    Ok(Step::Applied)
}
