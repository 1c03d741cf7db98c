//! Loads and appends aggregates on the postgres-es `events` table, with a bounded in-process
//! cache of aggregate states.
//!
//! Why not `CqrsFramework` + `PersistedEventStore` (see `docs/decisions.md`, "aggregate
//! cache"): in cqrs-es 0.5 every command re-reads and re-applies the aggregate's whole history,
//! and `persist` neither returns the appended events' positions nor appends in one statement,
//! so a booking cost two extra position queries and a doctor-day replay of up to a hundred
//! reservations. Here:
//!
//! - loading goes through postgres-es's repository and cqrs-es's (de)serialisation, as before;
//! - appending is one `INSERT … SELECT FROM unnest(…) RETURNING` statement (atomic without an
//!   explicit transaction), which reports the commit-safe position of the last event;
//! - the state after each successful append is cached (LRU, per process). A cached state is
//!   only ever *proposed*: an append from a stale state violates the primary key
//!   `(aggregate_type, aggregate_id, sequence)` and is retried from the database like any
//!   optimistic-concurrency conflict, and a refusal or no-op decided on a cached state is
//!   decided again on a fresh load before it is answered. Several processes therefore stay
//!   correct; the cache only saves work.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope};
use lru::LruCache;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgPool, Row};
use telemed_domain::Position;

use crate::error::{BoxError, CommandError};

/// How many aggregates one process keeps in memory per aggregate type.
const CACHE_CAPACITY: usize = 4096;

/// SQLSTATE of a unique violation: another writer appended this sequence first.
const UNIQUE_VIOLATION: &str = "23505";

const APPEND: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
  FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
       AS e(sequence, event_type, event_version, payload, metadata)
RETURNING transaction_id::text AS xid, global_position";

/// Where [`Store::load`] takes an aggregate from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The cache if it holds the aggregate, else the database.
    Cache,
    /// The database.
    Database,
    /// Nowhere: the id was just generated, so the aggregate has no events. Treated like a
    /// cached state (a wrong guess conflicts on append, or is decided again).
    AssumeNew,
}

/// An aggregate as loaded: its state, the sequence of its last event, and that event's
/// position when known.
pub struct Loaded<A> {
    /// The state.
    pub aggregate: A,
    /// Sequence of the last applied event (0 for a new aggregate).
    pub sequence: usize,
    /// Where the last event sits in the global order, when the cache knows it.
    pub position: Option<Position>,
    /// Whether this did not come from the database (and may be stale).
    pub cached: bool,
}

struct Entry<A> {
    aggregate: A,
    sequence: usize,
    position: Position,
}

/// Why an append did not happen.
pub enum AppendError {
    /// Another writer appended to the aggregate first.
    Conflict,
    /// The database failed.
    Database(sqlx::Error),
    /// An event could not be serialised.
    Serialization(BoxError),
}

/// The event store of aggregate type `A`.
pub struct Store<A: Aggregate> {
    pool: PgPool,
    repository: PostgresEventRepository,
    services: A::Services,
    cache: Mutex<LruCache<String, Entry<A>>>,
    aggregate: PhantomData<A>,
}

impl<A> Store<A>
where
    A: Aggregate + Clone,
{
    /// The store of `A` on `pool`, deciding with `services`.
    pub fn new(pool: &PgPool, services: A::Services) -> Self {
        Self {
            pool: pool.clone(),
            repository: PostgresEventRepository::new(pool.clone()),
            services,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN),
            )),
            aggregate: PhantomData,
        }
    }

    /// What the aggregate's command handler is given.
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, Entry<A>>> {
        // A panic while holding this lock cannot leave an entry half-written (every update is
        // one `put`), so a poisoned lock is still sound.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Aggregate `id`, from where `source` says.
    pub async fn load<E: std::error::Error>(
        &self,
        id: &str,
        source: Source,
    ) -> Result<Loaded<A>, CommandError<E>> {
        if source == Source::AssumeNew {
            return Ok(Loaded {
                aggregate: A::default(),
                sequence: 0,
                position: None,
                cached: true,
            });
        }
        if source == Source::Cache
            && let Some(entry) = self.cache().get(id)
        {
            return Ok(Loaded {
                aggregate: entry.aggregate.clone(),
                sequence: entry.sequence,
                position: Some(entry.position),
                cached: true,
            });
        }
        let events = self
            .repository
            .get_events::<A>(id)
            .await
            .map_err(persistence_error)?;
        let mut loaded = Loaded {
            aggregate: A::default(),
            sequence: 0,
            position: None,
            cached: false,
        };
        for event in events {
            let envelope = EventEnvelope::<A>::try_from(event).map_err(persistence_error)?;
            loaded.sequence = envelope.sequence;
            loaded.aggregate.apply(envelope.payload);
        }
        Ok(loaded)
    }

    /// Forgets the cached state of `id` (it lost a race, or may be stale).
    pub fn forget(&self, id: &str) {
        self.cache().pop(id);
    }

    /// Appends `events` after `loaded.sequence` in one statement, and caches `loaded.aggregate`
    /// (which has already applied them, as cqrs-es's `EventSink` does). Returns the position of
    /// the last appended event.
    #[expect(clippy::too_many_lines, reason = "to be split (issue 12)")]
    pub async fn append(
        &self,
        id: &str,
        loaded: Loaded<A>,
        events: Vec<A::Event>,
        metadata: &HashMap<String, String>,
    ) -> Result<Position, AppendError> {
        let mut sequences: Vec<i64> = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads: Vec<Value> = Vec::with_capacity(events.len());
        let mut metadatas: Vec<Value> = Vec::with_capacity(events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let envelope = EventEnvelope::<A> {
                aggregate_id: id.to_string(),
                sequence: loaded.sequence + offset + 1,
                payload: event,
                metadata: metadata.clone(),
            };
            let serialized = SerializedEvent::try_from(&envelope)
                .map_err(|e| AppendError::Serialization(Box::new(e)))?;
            sequences.push(serialized.sequence as i64);
            types.push(serialized.event_type);
            versions.push(serialized.event_version);
            payloads.push(serialized.payload);
            metadatas.push(serialized.metadata);
        }
        let rows = sqlx::query(APPEND)
            .bind(A::TYPE)
            .bind(id)
            .bind(&sequences)
            .bind(&types)
            .bind(&versions)
            .bind(&payloads)
            .bind(&metadatas)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                    AppendError::Conflict
                }
                _ => AppendError::Database(error),
            })?;
        let mut position = Position::START;
        for row in rows {
            let xid: String = row.try_get("xid").map_err(AppendError::Database)?;
            let xid = xid
                .parse()
                .map_err(|e| AppendError::Database(sqlx::Error::Decode(Box::new(e))))?;
            position = position.max(Position::new(
                xid,
                row.try_get("global_position")
                    .map_err(AppendError::Database)?,
            ));
        }
        let aggregate = loaded.aggregate;
        let sequence = loaded.sequence + sequences.len();
        let mut cache = self.cache();
        if cache.peek(id).is_none_or(|entry| entry.sequence < sequence) {
            cache.put(
                id.to_string(),
                Entry {
                    aggregate,
                    sequence,
                    position,
                },
            );
        }
        Ok(position)
    }
}

/// A postgres-es or cqrs-es failure, sorted into "unavailable" and "internal".
fn persistence_error<E: std::error::Error>(
    error: cqrs_es::persist::PersistenceError,
) -> CommandError<E> {
    use cqrs_es::persist::PersistenceError;
    match error {
        PersistenceError::ConnectionError(e) | PersistenceError::UnknownError(e) => {
            match e.downcast::<sqlx::Error>() {
                Ok(sqlx_error) => CommandError::from(*sqlx_error),
                Err(other) => CommandError::Internal(other),
            }
        }
        other => CommandError::Internal(Box::new(other)),
    }
}
