//! Executes commands against event-sourced aggregates stored by postgres-es.
//!
//! We use cqrs-es's plain event store (no snapshots, no aggregate store: both re-apply events
//! in 0.5) and no cqrs-es queries (read models come from the global stream reader instead).

use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use postgres_es::PostgresEventRepository;
use sqlx::{PgPool, Row};
use telemed_domain::{NamedCommand, Position};

use crate::context::CommandContext;
use crate::error::CommandError;

/// A cqrs-es framework for aggregate `A` over the PostgreSQL event store.
pub type Cqrs<A> = CqrsFramework<A, PersistedEventStore<PostgresEventRepository, A>>;

/// How often a command is tried when another writer commits to the same aggregate first.
/// Each round lets at least one writer through, so this bounds the contention a command
/// survives (20 simultaneous edits of one profile all succeed; see the black-box tests).
const MAX_ATTEMPTS: u32 = 30;

/// Builds a framework for aggregate `A` on `pool`.
pub fn cqrs<A>(pool: &PgPool, services: A::Services) -> Cqrs<A>
where
    A: Aggregate,
{
    let repository = PostgresEventRepository::new(pool.clone());
    CqrsFramework::new(
        PersistedEventStore::new_event_store(repository),
        vec![],
        services,
    )
}

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
    pub async fn execute<A>(
        &self,
        cqrs: &Cqrs<A>,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Position, CommandError<A::Error>>
    where
        A: Aggregate,
        A::Command: Clone + NamedCommand,
    {
        let metadata = context.metadata(command.command_name());
        for attempt in 1..=MAX_ATTEMPTS {
            match cqrs
                .execute_with_metadata(id, command.clone(), metadata.clone())
                .await
            {
                Ok(()) => return Ok(self.position_after_commit(A::TYPE, id).await),
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AggregateError::AggregateConflict) => return Err(CommandError::Contention),
                Err(AggregateError::UserError(e)) => return Err(CommandError::Rejected(e)),
                Err(AggregateError::DatabaseConnectionError(e)) => {
                    return Err(CommandError::Unavailable(e));
                }
                Err(AggregateError::DeserializationError(e))
                | Err(AggregateError::UnexpectedError(e)) => {
                    return Err(unexpected_or_unavailable(e));
                }
            }
        }
        Err(CommandError::Contention)
    }
}

impl Executor {
    /// The aggregate's position once its command has committed. The command succeeded, so a
    /// failure to read the position must not turn into an error (a caller would compensate a
    /// change that did happen): after a few tries it answers [`Position::START`], and the caller
    /// only loses read-your-writes.
    async fn position_after_commit(&self, aggregate_type: &str, id: &str) -> Position {
        for attempt in 1..=3u64 {
            match last_position(&self.pool, aggregate_type, id).await {
                Ok(position) => return position.unwrap_or_default(),
                Err(error) => {
                    tracing::warn!(%error, attempt, aggregate_type, id, "cannot read the position of a committed command");
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

/// postgres-es reports pool timeouts and I/O errors as "unexpected"; recover that distinction.
fn unexpected_or_unavailable<E: std::error::Error>(
    error: crate::error::BoxError,
) -> CommandError<E> {
    match error.downcast::<sqlx::Error>() {
        Ok(sqlx_error) => CommandError::from(*sqlx_error),
        Err(other) => CommandError::Internal(other),
    }
}

/// A short, growing pause with full jitter between attempts (at most ~40 ms), so that the
/// losers of one round do not collide again in the next.
fn backoff(attempt: u32) -> Duration {
    let ceiling = u64::from(attempt.min(10)) * 4;
    let random = u64::from(u16::from_le_bytes([
        uuid::Uuid::new_v4().as_bytes()[0],
        uuid::Uuid::new_v4().as_bytes()[1],
    ]));
    Duration::from_millis(1 + random % ceiling.max(1))
}
