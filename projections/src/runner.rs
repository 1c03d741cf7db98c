//! The projection runner: applies the global stream to each projection, exactly once.
//!
//! Each projection has a name, a checkpoint row and tables it alone writes. The runner drives
//! a group of projections from one read of the stream: a step reads a batch after the lowest
//! checkpoint, then in one transaction locks the group's checkpoint rows, checks nobody moved
//! them meanwhile (another process may run the same projections, or a rebuild may have run),
//! gives each projection the events past its own checkpoint and moves the checkpoints. A crash
//! mid-batch rolls the whole batch back. One read and one transaction per batch for the whole
//! group keeps the per-command overhead on the database low.
//!
//! The runner works on a connection of its own, outside the pool: requests never keep it
//! waiting for one, and when that connection breaks and no new one can be opened, the database
//! is unreachable, which [`Progress`] reports at once (a pool would retry refused connections
//! until its acquire timeout, and time out as well when it is merely busy).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, PgExecutor, PgPool, Row};
use telemed_domain::Position;
use telemed_tasks::{Background, CancellationToken};
use tokio::sync::watch;

use crate::event::StoredEvent;
use crate::stream::{position_from_row, read_after};

/// A read model built from the event stream.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Unique, stable name (the checkpoint key).
    fn name(&self) -> &'static str;

    /// The tables this projection alone writes; a rebuild builds fresh twins of them and swaps
    /// them in (see [`crate::rebuild`]).
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event inside the batch's transaction. Events this projection does not care
    /// about are ignored.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies `events`, in order, inside the batch's transaction: the same as [`apply`] on
    /// each in turn (a later event overrides an earlier one), which is what this default does.
    /// Projections override it with set-based SQL where that pays.
    ///
    /// [`apply`]: Projection::apply
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(tx, event).await?;
        }
        Ok(())
    }
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
const LOCK_CHECKPOINTS: &str = "SELECT name, transaction_id::text AS xid, global_position
  FROM projection_checkpoints WHERE name = ANY($1) ORDER BY name FOR UPDATE";
const SAVE_CHECKPOINTS: &str = "UPDATE projection_checkpoints
   SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now()
 WHERE name = ANY($1)";
/// Wakes other readers: this transaction held an xid, which may have held them back.
const NOTIFY: &str = "SELECT pg_notify('telemed_events', '')";

/// Creates the checkpoint row of `name` if missing.
pub async fn ensure_checkpoint(conn: impl PgExecutor<'_>, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(ENSURE_CHECKPOINT)
        .bind(name)
        .execute(conn)
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

/// Locks the checkpoint rows of `names` (in name order, so concurrent lockers cannot
/// deadlock) and returns them by name.
async fn lock_checkpoints(
    tx: &mut PgConnection,
    names: &[&'static str],
) -> Result<HashMap<String, Position>, sqlx::Error> {
    sqlx::query(LOCK_CHECKPOINTS)
        .bind(names)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("name")?, position_from_row(row)?)))
        .collect()
}

/// Moves the checkpoints of `names` (within the caller's transaction) and wakes other readers.
pub async fn save_checkpoint(
    tx: &mut PgConnection,
    names: &[&str],
    position: Position,
) -> Result<(), sqlx::Error> {
    sqlx::query(SAVE_CHECKPOINTS)
        .bind(names)
        .bind(position.transaction_id.to_string())
        .bind(position.global_position)
        .execute(&mut *tx)
        .await?;
    sqlx::query(NOTIFY).execute(&mut *tx).await?;
    Ok(())
}

/// How far each projection of this process has got, and whether the runner can reach the
/// database; used for read-your-writes and readiness.
#[derive(Clone)]
pub struct Progress {
    positions: Arc<HashMap<&'static str, watch::Sender<Position>>>,
    stalled: Arc<HashMap<&'static str, AtomicBool>>,
    /// Whether the runner's last contact with the database succeeded.
    reachable: Arc<watch::Sender<bool>>,
}

/// How a wait for the read models ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Every projection has applied the position.
    Reached,
    /// The time allowed ran out first.
    TimedOut,
    /// The runner cannot reach the database, so the projections cannot move.
    Unreachable,
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
            reachable: Arc::new(watch::Sender::new(true)),
        }
    }

    fn set_reachable(&self, reachable: bool) {
        self.reachable.send_if_modified(|current| {
            let changed = *current != reachable;
            *current = reachable;
            changed
        });
    }

    /// Whether the runner's last contact with the database succeeded.
    pub fn database_reachable(&self) -> bool {
        *self.reachable.borrow()
    }

    /// Resolves as soon as the runner reports that it cannot reach the database (at once if
    /// that is so now).
    pub async fn database_unreachable(&self) {
        let mut reachable = self.reachable.subscribe();
        if reachable.wait_for(|reachable| !*reachable).await.is_err() {
            std::future::pending::<()>().await;
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

    fn set_all_stalled(&self, stalled: bool) {
        for flag in self.stalled.values() {
            flag.store(stalled, Ordering::Relaxed);
        }
    }

    /// Names of projections whose last step failed.
    pub fn stalled(&self) -> Vec<&'static str> {
        self.stalled
            .iter()
            .filter(|(_, flag)| flag.load(Ordering::Relaxed))
            .map(|(name, _)| *name)
            .collect()
    }

    /// Waits until every projection has applied `position`, at most `timeout`, and no longer
    /// than the runner can reach the database.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Settled {
        let all = async {
            for sender in self.positions.values() {
                let mut receiver = sender.subscribe();
                if receiver.wait_for(|p| *p >= position).await.is_err() {
                    return Settled::TimedOut;
                }
            }
            Settled::Reached
        };
        tokio::select! {
            biased;
            settled = all => settled,
            () = self.database_unreachable() => Settled::Unreachable,
            () = tokio::time::sleep(timeout) => Settled::TimedOut,
        }
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

/// Runs a set of projections in one task, until the process stops.
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

    /// Starts the runner task under `background`, woken by `wakeups` (see [`crate::wakeup`]);
    /// when the process stops it finishes the batch in hand and returns.
    pub fn spawn(self, wakeups: watch::Receiver<u64>, background: &Background) -> Progress {
        let names: Vec<&'static str> = self.projections.iter().map(|p| p.name()).collect();
        let progress = Progress::new(&names);
        background.spawn(run(
            self.pool,
            self.projections,
            self.config,
            progress.clone(),
            wakeups,
            background.token(),
        ));
        progress
    }
}

/// Why a step of the runner failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The runner's connection could not be opened.
    #[error("cannot connect: {0}")]
    Connect(sqlx::Error),
    /// The step itself failed.
    #[error(transparent)]
    Step(ProjectionError),
}

async fn run(
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    config: RunnerConfig,
    progress: Progress,
    mut wakeups: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let mut connection: Option<PgConnection> = None;
    let mut known: Option<Vec<Position>> = None;
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        wakeups.borrow_and_update();
        let outcome = match connected(&pool, &mut connection).await {
            Ok(conn) => step(conn, &projections, &config, &progress, &mut known)
                .await
                .map_err(Failure::Step),
            Err(error) => Err(Failure::Connect(error)),
        };
        let pause = match outcome {
            Ok(done) => {
                failures = 0;
                progress.set_all_stalled(false);
                progress.set_reachable(true);
                match done {
                    Step::Applied => continue,
                    Step::CaughtUp => config.poll_interval,
                }
            }
            Err(failure) => {
                known = None;
                failures = failures.saturating_add(1);
                progress.set_all_stalled(true);
                tracing::error!(error = %failure, failures, "projection step failed; retrying");
                match failure {
                    // Only when no connection can be opened is the database unreachable.
                    Failure::Connect(cause) if cannot_reach(&cause) => {
                        progress.set_reachable(false);
                    }
                    Failure::Connect(_) | Failure::Step(ProjectionError::Payload { .. }) => {}
                    // A session ended (or left in an unknown state): a new connection, at
                    // once the first time, as the database may have ended only this session.
                    Failure::Step(ProjectionError::Database(_)) => {
                        connection = None;
                        if failures == 1 {
                            continue;
                        }
                    }
                }
                Duration::from_millis(100 * u64::from(failures.min(10)))
            }
        };
        tokio::select! {
            _ = wakeups.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// How long the runner waits to open its connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The runner's own connection, opened with the pool's settings if it has none.
async fn connected<'c>(
    pool: &PgPool,
    connection: &'c mut Option<PgConnection>,
) -> Result<&'c mut PgConnection, sqlx::Error> {
    if connection.is_none() {
        let options = pool.connect_options();
        // A timeout is no proof of an outage (the machine may only be slow): PoolTimedOut,
        // which [`cannot_reach`] does not count for the runner's own connection.
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        *connection = Some(opened);
    }
    Ok(connection.as_mut().expect("opened above"))
}

/// Whether a failure to connect says the database cannot be reached: refused, reset, or
/// "shutting down" / "starting up" (rather than, say, too many clients or slowness).
fn cannot_reach(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
        _ => false,
    }
}

/// The checkpoints of `projections`, creating missing rows.
async fn load_all(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
    progress: &Progress,
) -> Result<Vec<Position>, sqlx::Error> {
    let mut checkpoints = Vec::with_capacity(projections.len());
    for projection in projections {
        ensure_checkpoint(&mut *conn, projection.name()).await?;
        let checkpoint = load_checkpoint(&mut *conn, projection.name()).await?;
        progress.advance(projection.name(), checkpoint);
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}

async fn step(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
    config: &RunnerConfig,
    progress: &Progress,
    known: &mut Option<Vec<Position>>,
) -> Result<Step, ProjectionError> {
    let checkpoints = match known.take() {
        Some(checkpoints) => checkpoints,
        None => load_all(conn, projections, progress).await?,
    };
    let Some(from) = checkpoints.iter().min().copied() else {
        return Ok(Step::CaughtUp);
    };
    // Read outside the transaction: once it holds an xid, that xid would hold back the
    // commit-safe horizon of its own read.
    let events = read_after(&mut *conn, from, config.batch_size).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        *known = Some(checkpoints);
        return Ok(Step::CaughtUp);
    };
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    let mut tx = conn.begin().await?;
    // Read models are derived from the log: a batch lost to a crash before its commit reached
    // the disk is simply applied again from the checkpoint, which is in the same transaction.
    // So the batch need not wait for the WAL flush (events themselves are committed durably).
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let locked = lock_checkpoints(&mut tx, &names).await?;
    let unchanged = names
        .iter()
        .zip(&checkpoints)
        .all(|(name, checkpoint)| locked.get(*name) == Some(checkpoint));
    if !unchanged {
        // Another process (or a rebuild) moved a checkpoint; start over from the table.
        return Ok(Step::Applied);
    }
    // Projections write only their own tables, so each can take its part of the batch at once.
    for (projection, checkpoint) in projections.iter().zip(&checkpoints) {
        let past = events.partition_point(|e| e.position <= *checkpoint);
        projection.apply_batch(&mut tx, &events[past..]).await?;
    }
    let behind: Vec<&str> = names
        .iter()
        .zip(&checkpoints)
        .filter(|(_, checkpoint)| **checkpoint < last)
        .map(|(name, _)| *name)
        .collect();
    save_checkpoint(&mut tx, &behind, last).await?;
    tx.commit().await?;
    let moved: Vec<Position> = checkpoints.iter().map(|c| (*c).max(last)).collect();
    for (name, position) in names.iter().zip(&moved) {
        progress.advance(name, *position);
    }
    *known = Some(moved);
    Ok(Step::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATER: Position = Position {
        transaction_id: 10,
        global_position: 10,
    };

    #[tokio::test]
    async fn a_wait_ends_as_soon_as_the_database_is_reported_unreachable() {
        let progress = Progress::new(&["a", "b"]);
        let waiting = tokio::spawn({
            let progress = progress.clone();
            async move { progress.wait_for(LATER, Duration::from_secs(60)).await }
        });
        progress.advance("a", LATER);
        progress.set_reachable(false);
        let settled = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(settled.unwrap().unwrap(), Settled::Unreachable);
        // While it is unreachable, a new wait ends at once too.
        let again = progress.wait_for(LATER, Duration::from_secs(60)).await;
        assert_eq!(again, Settled::Unreachable);
    }

    #[tokio::test]
    async fn a_position_already_applied_is_reached_even_when_the_database_is_unreachable() {
        let progress = Progress::new(&["a"]);
        progress.advance("a", LATER);
        progress.set_reachable(false);
        assert_eq!(
            progress.wait_for(LATER, Duration::from_secs(60)).await,
            Settled::Reached
        );
        progress.set_reachable(true);
        assert!(progress.database_reachable());
    }

    #[tokio::test]
    async fn a_wait_times_out_while_the_database_is_reachable() {
        let progress = Progress::new(&["a"]);
        assert_eq!(
            progress.wait_for(LATER, Duration::from_millis(20)).await,
            Settled::TimedOut
        );
    }

    #[test]
    fn refused_connections_are_unreachable_and_timeouts_or_refused_statements_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(cannot_reach(&sqlx::Error::Io(refused)));
        assert!(!cannot_reach(&sqlx::Error::PoolTimedOut));
        assert!(!cannot_reach(&sqlx::Error::RowNotFound));
        assert!(!cannot_reach(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
