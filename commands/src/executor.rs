//! Executes commands against event-sourced aggregates stored on the postgres-es `events`
//! table (see [`crate::store`]): load, decide, append, with bounded retry of lost races.
//!
//! Read models come from the global stream reader, not from cqrs-es queries, so nothing is
//! dispatched in-process after a commit.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use sqlx::{PgPool, Row};
use telemed_domain::{NamedCommand, Position};

use crate::context::CommandContext;
use crate::error::{BoxError, CommandError, is_unavailable};
use crate::store::{AppendError, Source, Store};

/// How often a command is tried when another writer commits to the same aggregate first.
/// Each round lets at least one writer through, so this bounds the contention a command
/// survives (20 simultaneous edits of one profile all succeed; see the black-box tests).
pub(crate) const MAX_ATTEMPTS: u32 = 30;

const LAST_POSITION: &str = "
SELECT transaction_id::text AS xid, global_position
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence DESC
 LIMIT 1";

/// Runs commands with retry and reports where their events landed.
#[derive(Clone)]
pub struct Executor {
    pool: PgPool,
}

impl Executor {
    /// An executor on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Executes `command` on aggregate `id`, retrying lost optimistic-concurrency races, and
    /// returns the position of the aggregate's latest event (what read models must reach for
    /// the caller to see the effect). A command that emits nothing returns the aggregate's
    /// current position ([`Position::START`] if it has none).
    ///
    /// The aggregate may come from the store's cache. Appends from a stale state conflict and
    /// are retried; refusals and no-ops decided on a cached state are decided again on a fresh
    /// load, so a stale cache never changes an answer.
    pub async fn execute<A>(
        &self,
        store: &Store<A>,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Position, CommandError<A::Error>>
    where
        A: Aggregate + Clone,
        A::Command: Clone + NamedCommand,
    {
        self.run(store, id, command, context, Source::Cache).await
    }

    /// [`Executor::execute`] for an aggregate whose id was just generated: the first attempt
    /// decides on the empty aggregate without reading the database.
    pub async fn create<A>(
        &self,
        store: &Store<A>,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Position, CommandError<A::Error>>
    where
        A: Aggregate + Clone,
        A::Command: Clone + NamedCommand,
    {
        self.run(store, id, command, context, Source::AssumeNew)
            .await
    }

    async fn run<A>(
        &self,
        store: &Store<A>,
        id: &str,
        command: A::Command,
        context: &CommandContext,
        mut source: Source,
    ) -> Result<Position, CommandError<A::Error>>
    where
        A: Aggregate + Clone,
        A::Command: Clone + NamedCommand,
    {
        let metadata = context.metadata(command.command_name());
        let mut attempt = 1;
        loop {
            let mut loaded = store.load(id, source).await?;
            let decided = decide(store.services(), &mut loaded.aggregate, command.clone()).await;
            match decided {
                Err(_) if loaded.cached => source = Source::Database,
                Err(e) => return Err(CommandError::Rejected(e)),
                Ok(events) if events.is_empty() && loaded.cached => source = Source::Database,
                Ok(events) if events.is_empty() => {
                    return Ok(match loaded.sequence {
                        0 => Position::START,
                        _ => self.position_after_commit(A::TYPE, id).await,
                    });
                }
                Ok(events) => match store.append(id, loaded, events, &metadata).await {
                    Ok(position) => return Ok(position),
                    Err(AppendError::Conflict) if attempt < MAX_ATTEMPTS => {
                        store.forget(id);
                        source = Source::Cache;
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(AppendError::Conflict) => {
                        store.forget(id);
                        return Err(CommandError::Contention);
                    }
                    Err(AppendError::Database(e)) => {
                        store.forget(id);
                        return Err(CommandError::from(e));
                    }
                    Err(AppendError::Batch(e)) => {
                        store.forget(id);
                        return Err(shared_error(&e));
                    }
                    Err(AppendError::Serialization(e)) => return Err(CommandError::Internal(e)),
                },
            }
        }
    }
}

impl Executor {
    /// The aggregate's current position, read after a command that emitted nothing (or found
    /// its effect recorded by an earlier attempt). A failure to read it must not turn a
    /// successful command into an error: after a few tries it answers [`Position::START`],
    /// and the caller only loses read-your-writes.
    pub(crate) async fn position_after_commit(&self, aggregate_type: &str, id: &str) -> Position {
        for attempt in 1..=3u64 {
            match last_position(&self.pool, aggregate_type, id).await {
                Ok(position) => return position.unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(%error, attempt, aggregate_type, id, "cannot read the position of an aggregate");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
            }
        }
        Position::START
    }
}

/// The position of the latest event of aggregate `aggregate_type`/`id`, if it has any.
pub async fn last_position(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
) -> Result<Option<Position>, sqlx::Error> {
    let row = sqlx::query(LAST_POSITION)
        .bind(aggregate_type)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let xid: String = row.try_get("xid")?;
    let xid = xid.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Some(Position::new(xid, row.try_get("global_position")?)))
}

/// Decides `command` on `aggregate`, which applies the events decided (as cqrs-es's
/// `EventSink` does), and returns them.
pub(crate) async fn decide<A: Aggregate>(
    services: &A::Services,
    aggregate: &mut A,
    command: A::Command,
) -> Result<Vec<A::Event>, A::Error> {
    let sink = EventSink::default();
    aggregate.handle(command, services, &sink).await?;
    Ok(sink.collect().await)
}

/// A database failure shared by the appends of a group commit, sorted like any other.
fn shared_error<E: std::error::Error>(error: &Arc<sqlx::Error>) -> CommandError<E> {
    let source: BoxError = Box::new(Arc::clone(error));
    if is_unavailable(error) {
        CommandError::Unavailable(source)
    } else {
        CommandError::Internal(source)
    }
}

/// A short, growing pause with full jitter between attempts (at most ~40 ms), so that the
/// losers of one round do not collide again in the next.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ceiling = u64::from(attempt.min(10)) * 4;
    let random: u64 = rand::random();
    Duration::from_millis(1 + random % ceiling.max(1))
}
