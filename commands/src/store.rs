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
//!   explicit transaction), which reports the commit-safe position of the last event. The same
//!   statement takes the events of several aggregates ([`insert`], [`append_events`]): a
//!   booking writes its two aggregates together, and a [`Store::batched`] store group-commits
//!   concurrent appends ([`batcher`]);
//! - the state after each successful append is cached (LRU, per process). A cached state is
//!   only ever *proposed*: an append from a stale state violates the primary key
//!   `(aggregate_type, aggregate_id, sequence)` and is retried from the database like any
//!   optimistic-concurrency conflict, and a refusal or no-op decided on a cached state is
//!   decided again on a fresh load before it is answered. Several processes therefore stay
//!   correct; the cache only saves work.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope};
use lru::LruCache;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use telemed_domain::Position;

use crate::error::{BoxError, CommandError};

pub mod batcher;

use batcher::Batcher;

/// How many aggregates one process keeps in memory per aggregate type.
const CACHE_CAPACITY: usize = 4096;

/// SQLSTATE of a unique violation: another writer appended this sequence first.
const UNIQUE_VIOLATION: &str = "23505";

/// `INSERT INTO events … RETURNING` the events of several appends from seven arrays bound at
/// `$1`..`$7` (see [`Columns`]), in array order, so the positions the rows get follow it.
/// `$with` goes before the statement (a `WITH` clause, or nothing) and `$from` before the
/// `unnest` in its `FROM` list (another item and a comma, or nothing). Each row returns what
/// [`positions`] reads.
macro_rules! append_events {
    ($with:literal, $from:literal) => {
        concat!(
            $with,
            "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
  FROM ",
            $from,
            " unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
       WITH ORDINALITY
       AS e(aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, n)
 ORDER BY e.n
RETURNING aggregate_type, aggregate_id, sequence, transaction_id::text AS xid, global_position"
        )
    };
}
pub(crate) use append_events;

const APPEND: &str = append_events!("", "");

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
#[derive(Debug)]
pub enum AppendError {
    /// Another writer appended to the aggregate first.
    Conflict,
    /// The database failed.
    Database(sqlx::Error),
    /// An event could not be serialised.
    Serialization(BoxError),
    /// The database failed a group commit that this append was part of (the error is shared
    /// by every append of the batch).
    Batch(Arc<sqlx::Error>),
}

/// The event store of aggregate type `A`.
pub struct Store<A: Aggregate> {
    pool: PgPool,
    repository: PostgresEventRepository,
    services: A::Services,
    cache: Mutex<LruCache<String, Entry<A>>>,
    batcher: Option<Batcher>,
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
            batcher: None,
            aggregate: PhantomData,
        }
    }

    /// The store of `A` on `pool` whose appends are group-committed: concurrent appends go
    /// into one statement (see [`batcher`]). For aggregates appended to by many concurrent
    /// commands, each to its own aggregate (chat messages).
    pub fn batched(pool: &PgPool, services: A::Services) -> Self {
        Self {
            batcher: Some(Batcher::new(pool)),
            ..Self::new(pool, services)
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

    /// Appends `events` after `loaded.sequence` in one statement (through the batcher when
    /// this store has one), and caches `loaded.aggregate` (which has already applied them, as
    /// cqrs-es's `EventSink` does). Returns the position of the last appended event.
    pub async fn append(
        &self,
        id: &str,
        loaded: Loaded<A>,
        events: Vec<A::Event>,
        metadata: &HashMap<String, String>,
    ) -> Result<Position, AppendError> {
        let rows = self.rows(id, loaded.sequence, events, metadata)?;
        let sequence = loaded.sequence + rows.len();
        let position = match &self.batcher {
            Some(batcher) => batcher.append(rows).await?,
            None => {
                let positions = insert(&self.pool, std::slice::from_ref(&rows)).await?;
                positions.first().copied().unwrap_or_default()
            }
        };
        self.remember(id, loaded.aggregate, sequence, position);
        Ok(position)
    }

    /// `events` of aggregate `id`, numbered after `sequence` and serialised as stored.
    pub fn rows(
        &self,
        id: &str,
        sequence: usize,
        events: Vec<A::Event>,
        metadata: &HashMap<String, String>,
    ) -> Result<Rows, AppendError> {
        let mut rows = Rows::new(A::TYPE, id);
        for (offset, event) in events.into_iter().enumerate() {
            let envelope = EventEnvelope::<A> {
                aggregate_id: id.to_string(),
                sequence: sequence + offset + 1,
                payload: event,
                metadata: metadata.clone(),
            };
            let serialized = SerializedEvent::try_from(&envelope)
                .map_err(|e| AppendError::Serialization(Box::new(e)))?;
            rows.push(serialized);
        }
        Ok(rows)
    }

    /// Caches `aggregate` as the state of `id` after `sequence` (at `position`), unless the
    /// cache already holds a later state.
    pub fn remember(&self, id: &str, aggregate: A, sequence: usize, position: Position) {
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
    }
}

/// The serialised events that one append adds to one aggregate.
#[derive(Clone, Debug)]
pub struct Rows {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequences: Vec<i64>,
    types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<Value>,
    metadatas: Vec<Value>,
}

impl Rows {
    fn new(aggregate_type: &'static str, aggregate_id: &str) -> Self {
        Self {
            aggregate_type,
            aggregate_id: aggregate_id.to_string(),
            sequences: Vec::new(),
            types: Vec::new(),
            versions: Vec::new(),
            payloads: Vec::new(),
            metadatas: Vec::new(),
        }
    }

    fn push(&mut self, event: SerializedEvent) {
        self.sequences.push(event.sequence as i64);
        self.types.push(event.event_type);
        self.versions.push(event.event_version);
        self.payloads.push(event.payload);
        self.metadatas.push(event.metadata);
    }

    /// The aggregate's id.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// The key of the last event (where the append's position is read from).
    fn last_key(&self) -> Option<(&str, &str, i64)> {
        let sequence = *self.sequences.last()?;
        Some((self.aggregate_type, &self.aggregate_id, sequence))
    }
}

/// The columns of several appends, flattened into the arrays that [`append_events`] unnests.
#[derive(Default)]
pub struct Columns {
    aggregate_types: Vec<&'static str>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<Value>,
    metadatas: Vec<Value>,
}

impl Columns {
    /// The columns of `appends`, in order.
    pub fn of<'a>(appends: impl IntoIterator<Item = &'a Rows>) -> Self {
        let mut columns = Self::default();
        for rows in appends {
            for _ in 0..rows.len() {
                columns.aggregate_types.push(rows.aggregate_type);
                columns.aggregate_ids.push(rows.aggregate_id.clone());
            }
            columns.sequences.extend_from_slice(&rows.sequences);
            columns.types.extend_from_slice(&rows.types);
            columns.versions.extend_from_slice(&rows.versions);
            columns.payloads.extend_from_slice(&rows.payloads);
            columns.metadatas.extend_from_slice(&rows.metadatas);
        }
        columns
    }

    /// Binds the seven arrays as `$1`..`$7` (bind them first).
    pub fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.aggregate_types)
            .bind(&self.aggregate_ids)
            .bind(&self.sequences)
            .bind(&self.types)
            .bind(&self.versions)
            .bind(&self.payloads)
            .bind(&self.metadatas)
    }
}

/// Appends `appends` (of any aggregates) in one statement, so in one transaction: all or none.
/// Returns the position of each append's last event, in order.
pub async fn insert(pool: &PgPool, appends: &[Rows]) -> Result<Vec<Position>, AppendError> {
    let columns = Columns::of(appends);
    let rows = columns
        .bind(sqlx::query(APPEND))
        .fetch_all(pool)
        .await
        .map_err(append_error)?;
    positions(appends, &rows)
}

/// Sorts a failed append: a unique violation is a lost race ([`AppendError::Conflict`]).
pub fn append_error(error: sqlx::Error) -> AppendError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            AppendError::Conflict
        }
        _ => AppendError::Database(error),
    }
}

/// The position of each append's last event, from the rows an insert returned
/// (`aggregate_type`, `aggregate_id`, `sequence`, `xid`, `global_position`).
pub fn positions(appends: &[Rows], returned: &[PgRow]) -> Result<Vec<Position>, AppendError> {
    let mut by_key = HashMap::with_capacity(returned.len());
    for row in returned {
        let position = position_of(row).map_err(AppendError::Database)?;
        let key: (String, String, i64) = (
            row.try_get("aggregate_type")
                .map_err(AppendError::Database)?,
            row.try_get("aggregate_id").map_err(AppendError::Database)?,
            row.try_get("sequence").map_err(AppendError::Database)?,
        );
        by_key.insert(key, position);
    }
    appends
        .iter()
        .map(|rows| {
            let (kind, id, sequence) = rows
                .last_key()
                .ok_or_else(|| AppendError::Serialization("an append without events".into()))?;
            by_key
                .get(&(kind.to_string(), id.to_string(), sequence))
                .copied()
                .ok_or_else(|| {
                    AppendError::Serialization("an appended event was not returned".into())
                })
        })
        .collect()
}

fn position_of(row: &PgRow) -> Result<Position, sqlx::Error> {
    let xid: String = row.try_get("xid")?;
    let xid = xid.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Position::new(xid, row.try_get("global_position")?))
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
