//! Tamper evidence: a hash chain over the log in commit-safe order.
//!
//! The database refuses UPDATE and DELETE on `events`, but a superuser can switch the trigger
//! off. The chain makes such a change evident: entry `n` (1-based, in commit-safe order) holds
//!
//! ```text
//! link(0) = 32 zero bytes
//! link(n) = SHA-256( link(n - 1) ‖ canonical(event n) )
//! ```
//!
//! and an auditor who kept a head (hash and position) can later prove that the history up to
//! it is unchanged, even if the `event_chain` table itself was rewritten.
//!
//! # Canonical bytes
//!
//! [`canonical`] is the one definition. Ten fields, in this order, each written as its length
//! (4 bytes, big-endian) followed by its bytes:
//!
//! 1. event type, 2. event version, 3. aggregate type, 4. aggregate id (UTF-8 text);
//! 5. sequence (8 bytes, big-endian two's complement);
//! 6. payload, 7. metadata (canonical JSON, below);
//! 8. recorded_at (microseconds since the Unix epoch, 8 bytes big-endian: PostgreSQL's
//!    precision);
//! 9. transaction id (8 bytes big-endian, unsigned), 10. global position (8 bytes
//!    big-endian): the event's [`Position`].
//!
//! `jsonb` keeps neither key order nor whitespace, so payload and metadata are hashed in a
//! canonical serialisation of the value read back: no whitespace, object keys sorted by their
//! UTF-8 bytes (at every depth), strings, numbers and literals as `serde_json` writes them.
//!
//! # The sealer
//!
//! [`ChainProjection`] (name `chain`) runs in the projection runner with every other
//! projection: it reads the same commit-safe stream behind the writers, so appending never
//! waits for it and writers are not serialised, and its entries move with its checkpoint in
//! the runner's transaction. It owns no rebuildable tables: a rebuild (`telemed rebuild`)
//! leaves sealed entries as they are and only appends events past the head, since
//! recomputing the chain from a changed log would hide the change. The table is append-only,
//! enforced like the log.
//!
//! [`verify`] recomputes the chain from the log and names the first entry that differs;
//! [`head`] is the newest sealed link (served to auditors and included in exports).

use std::fmt;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use telemed_domain::Position;
use time::OffsetDateTime;

use crate::event::StoredEvent;
use crate::runner::{Projection, ProjectionError};
use crate::stream::{position_from_row, read_after};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The link before the first event.
pub const GENESIS: Hash = [0; 32];

/// Events and entries read per query by [`verify`].
const BATCH: i64 = 5_000;

/// The canonical bytes of `event` (see the module documentation).
pub fn canonical(event: &StoredEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    field(&mut out, event.event_type.as_bytes());
    field(&mut out, event.event_version.as_bytes());
    field(&mut out, event.aggregate_type.as_bytes());
    field(&mut out, event.aggregate_id.as_bytes());
    field(&mut out, &event.sequence.to_be_bytes());
    field(&mut out, &canonical_json(&event.payload));
    field(&mut out, &canonical_json(&event.metadata));
    field(&mut out, &micros(event.recorded_at).to_be_bytes());
    field(&mut out, &event.position.transaction_id.to_be_bytes());
    field(&mut out, &event.position.global_position.to_be_bytes());
    out
}

/// The link after `previous` for `event`.
pub fn next_link(previous: &Hash, event: &StoredEvent) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical(event));
    hasher.finalize().into()
}

/// `value` with object keys sorted and no whitespace.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(out, &Value::String(key.clone()));
                out.push(b':');
                write_json(out, value);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        scalar => write_scalar(out, scalar),
    }
}

fn write_scalar(out: &mut Vec<u8>, value: &Value) {
    // Writing a string, number or literal into a Vec cannot fail.
    serde_json::to_writer(&mut *out, value).unwrap_or_default();
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// The newest sealed link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Position of the last sealed event ([`Position::START`] when none is).
    pub position: Position,
    /// Its link ([`GENESIS`] when none is sealed).
    pub hash: Hash,
    /// How many events are sealed.
    pub events: i64,
}

impl Head {
    /// The head of an empty chain.
    pub const EMPTY: Head = Head {
        position: Position::START,
        hash: GENESIS,
        events: 0,
    };
}

const HEAD: &str = "SELECT n, transaction_id::text AS xid, global_position, link
  FROM event_chain ORDER BY n DESC LIMIT 1";

/// The newest sealed link (the head of an empty chain when nothing is sealed yet).
pub async fn head(executor: impl PgExecutor<'_>) -> Result<Head, sqlx::Error> {
    match sqlx::query(HEAD).fetch_optional(executor).await? {
        None => Ok(Head::EMPTY),
        Some(row) => Ok(Head {
            position: position_from_row(&row)?,
            hash: hash_column(&row, "link")?,
            events: row.try_get("n")?,
        }),
    }
}

fn hash_column(row: &PgRow, column: &str) -> Result<Hash, sqlx::Error> {
    let bytes: Vec<u8> = row.try_get(column)?;
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        sqlx::Error::Decode(format!("{column} has {} bytes, not 32", bytes.len()).into())
    })
}

const UNSEALED: &str = "SELECT count(*) FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)";

/// How many events of the log are past `head` (not sealed yet).
pub async fn unsealed(executor: impl PgExecutor<'_>, head: Head) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(UNSEALED)
        .bind(head.position.transaction_id.to_string())
        .bind(head.position.global_position)
        .fetch_one(executor)
        .await
}

/// Appends entry `$1`, only onto the entry `$1 - 1` with link `$12` (the head the sealer
/// believes in; none for the first entry) and only if the chain does not hold `$1` (or the
/// event) yet. Equality lookups only: the plan stays an index probe however the table grows
/// within one transaction (a range test such as `n >= $1` was planned as a scan of the then
/// empty table and made a rebuild quadratic).
const SEAL: &str = "INSERT INTO event_chain (n, transaction_id, global_position, aggregate_type,
    aggregate_id, sequence, event_type, recorded_at, payload_sha256, metadata_sha256, link)
  SELECT $1, $2::text::xid8, $3, $4, $5, $6, $7, $8, $9, $10, $11
   WHERE $1 = 1 OR EXISTS (SELECT 1 FROM event_chain WHERE n = $1 - 1 AND link = $12)
  ON CONFLICT DO NOTHING";

/// Appends `event` onto `onto`, if `onto` is still the head; whether it did.
async fn append(
    conn: &mut PgConnection,
    onto: &Head,
    event: &StoredEvent,
    link: &Hash,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(SEAL)
        .bind(onto.events + 1)
        .bind(event.position.transaction_id.to_string())
        .bind(event.position.global_position)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .bind(event.sequence)
        .bind(&event.event_type)
        .bind(event.recorded_at)
        .bind(sha256(&canonical_json(&event.payload)).as_slice())
        .bind(sha256(&canonical_json(&event.metadata)).as_slice())
        .bind(link.as_slice())
        .bind(onto.hash.as_slice())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

const HOLDS: &str = "SELECT EXISTS (SELECT 1 FROM event_chain WHERE n = $1 AND link = $2)";

/// Whether the chain holds `head` (as of this transaction).
async fn holds(conn: &mut PgConnection, head: &Head) -> Result<bool, sqlx::Error> {
    if head.events == 0 {
        return Ok(false);
    }
    sqlx::query_scalar(HOLDS)
        .bind(head.events)
        .bind(head.hash.as_slice())
        .fetch_one(conn)
        .await
}

/// Appends `event` to the chain, unless it is sealed already (at or before the head), and
/// returns the head after it. `believed` is the head after the previous call, if known: it
/// saves reading the head per event, and a stale one (another process sealed on, or the
/// transaction that sealed it rolled back) is noticed by the append and read afresh.
pub async fn seal(
    conn: &mut PgConnection,
    event: &StoredEvent,
    believed: Option<Head>,
) -> Result<Head, sqlx::Error> {
    let (mut current, mut fresh) = match believed {
        Some(head) if event.position > head.position => (head, false),
        // Sealed already (a rebuild replays the log), if the believed head is really there.
        Some(head) if holds(&mut *conn, &head).await? => return Ok(head),
        _ => (head(&mut *conn).await?, true),
    };
    loop {
        if current.events > 0 && event.position <= current.position {
            return Ok(current);
        }
        let link = next_link(&current.hash, event);
        if append(conn, &current, event, &link).await? {
            return Ok(Head {
                position: event.position,
                hash: link,
                events: current.events + 1,
            });
        }
        if fresh {
            return Err(sqlx::Error::Protocol(
                "the chain's head moved while sealing (a sealer outside the runner?)".into(),
            ));
        }
        current = head(&mut *conn).await?;
        fresh = true;
    }
}

/// The sealer, run by the projection runner (see the module documentation).
#[derive(Default)]
pub struct ChainProjection {
    /// The head after the last event sealed by this instance.
    believed: std::sync::Mutex<Option<Head>>,
}

impl ChainProjection {
    fn believed(&self) -> std::sync::MutexGuard<'_, Option<Head>> {
        self.believed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Projection for ChainProjection {
    fn name(&self) -> &'static str {
        "chain"
    }

    /// None: a rebuild must not recompute (and so whitewash) sealed entries.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let believed = *self.believed();
        let sealed = seal(tx, event, believed).await;
        *self.believed() = sealed.as_ref().ok().copied();
        Ok(sealed.map(|_| ())?)
    }

    /// As [`apply`](Projection::apply) on each event in turn, but the events at or before the
    /// head (all of them when a rebuild replays the sealed log) cost one check of that head for
    /// the whole batch rather than one each.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        // Forgotten until the batch succeeds, as `apply` forgets it on an error.
        let believed = self.believed().take();
        let current = match believed {
            // The usual case when serving: every event is past the head; `seal` notices a
            // stale head by its append failing.
            Some(head) if first.position > head.position => head,
            Some(head) if holds(&mut *tx, &head).await? => head,
            _ => head(&mut *tx).await?,
        };
        let sealed = events.partition_point(|e| e.position <= current.position);
        let mut believed = Some(current);
        for event in &events[sealed..] {
            believed = Some(seal(&mut *tx, event, believed).await?);
        }
        *self.believed() = believed;
        Ok(())
    }
}

/// One sealed entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based place in the chain.
    pub n: i64,
    /// The sealed event's position.
    pub position: Position,
    /// Its aggregate type.
    pub aggregate_type: String,
    /// Its aggregate id.
    pub aggregate_id: String,
    /// Its sequence.
    pub sequence: i64,
    /// Its type.
    pub event_type: String,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// SHA-256 of its canonical payload.
    pub payload_sha256: Hash,
    /// SHA-256 of its canonical metadata.
    pub metadata_sha256: Hash,
    /// The link after it.
    pub link: Hash,
}

const ENTRIES: &str = "SELECT n, transaction_id::text AS xid, global_position, aggregate_type,
       aggregate_id, sequence, event_type, recorded_at, payload_sha256, metadata_sha256, link
  FROM event_chain WHERE n > $1 AND n <= $2 ORDER BY n LIMIT $3";

fn entry_from_row(row: &PgRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        n: row.try_get("n")?,
        position: position_from_row(row)?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        recorded_at: row.try_get("recorded_at")?,
        payload_sha256: hash_column(row, "payload_sha256")?,
        metadata_sha256: hash_column(row, "metadata_sha256")?,
        link: hash_column(row, "link")?,
    })
}

/// A head an auditor kept: the link they were given at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptHead {
    /// The link.
    pub hash: Hash,
    /// The position of the event it follows.
    pub at: Position,
}

/// An event as the log holds it now, for naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its position.
    pub position: Position,
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence.
    pub sequence: i64,
    /// Event type.
    pub event_type: String,
}

impl From<&StoredEvent> for Found {
    fn from(event: &StoredEvent) -> Self {
        Self {
            position: event.position,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
        }
    }
}

impl From<&Entry> for Found {
    fn from(entry: &Entry) -> Self {
        Self {
            position: entry.position,
            aggregate_type: entry.aggregate_type.clone(),
            aggregate_id: entry.aggregate_id.clone(),
            sequence: entry.sequence,
            event_type: entry.event_type.clone(),
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "position {}, {} {} sequence {}, {}",
            self.position, self.aggregate_type, self.aggregate_id, self.sequence, self.event_type
        )
    }
}

/// The first way the log differs from its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The sealed event is in its place but its contents changed (`what`: e.g. `payload`).
    Changed {
        /// The sealed entry.
        entry: Found,
        /// Its place.
        n: i64,
        /// What changed.
        what: Vec<&'static str>,
    },
    /// The sealed event is no longer in the log.
    Missing {
        /// The sealed entry.
        entry: Found,
        /// Its place.
        n: i64,
    },
    /// The sealed event is still in the log, but another event now comes in its place.
    OutOfOrder {
        /// The sealed entry.
        entry: Found,
        /// Its place.
        n: i64,
        /// The event now in its place.
        found: Found,
    },
    /// The log holds an event, within the sealed range, that the chain never sealed.
    Extra {
        /// The event.
        found: Found,
        /// The place it takes.
        n: i64,
    },
    /// The log up to a kept head's position no longer leads to that head.
    KeptHead {
        /// The head kept.
        kept: KeptHead,
        /// The link recomputed there (none: no event at that position any more).
        recomputed: Option<Hash>,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Changed { entry, n, what } => {
                write!(f, "entry {n}, {entry}: {}", what.join(", "))
            }
            Self::Missing { entry, n } => {
                write!(
                    f,
                    "entry {n}, {entry}: missing event (no longer in the log)"
                )
            }
            Self::OutOfOrder { entry, n, found } => write!(
                f,
                "entry {n}, {entry}: out of order (the log now has {found} in its place)"
            ),
            Self::Extra { found, n } => {
                write!(f, "entry {n}: extra event the chain never sealed: {found}")
            }
            Self::KeptHead {
                kept,
                recomputed: None,
            } => write!(
                f,
                "kept head at position {}: no event at that position any more",
                kept.at
            ),
            Self::KeptHead {
                kept,
                recomputed: Some(hash),
            } => write!(
                f,
                "kept head at position {}: the log up to it leads to {}, not the kept {} (the history before it, and the chain, were rewritten)",
                kept.at,
                hex::encode(hash),
                hex::encode(kept.hash)
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every sealed entry matches the log (and the kept head, if given).
    Intact(Head),
    /// The first difference.
    Differs(Difference),
}

/// Reads a sequence in batches.
struct Batches<T> {
    items: std::collections::VecDeque<T>,
    done: bool,
}

impl<T> Batches<T> {
    fn new() -> Self {
        Self {
            items: std::collections::VecDeque::new(),
            done: false,
        }
    }
}

/// The stored entries and the log, walked side by side.
struct Walk<'p> {
    pool: &'p PgPool,
    head: Head,
    entries: Batches<Entry>,
    last_entry: i64,
    events: Batches<StoredEvent>,
    last_event: Position,
}

impl<'p> Walk<'p> {
    fn new(pool: &'p PgPool, head: Head) -> Self {
        Self {
            pool,
            head,
            entries: Batches::new(),
            last_entry: 0,
            events: Batches::new(),
            last_event: Position::START,
        }
    }

    async fn next_entry(&mut self) -> Result<Option<Entry>, sqlx::Error> {
        if self.entries.items.is_empty() && !self.entries.done {
            let rows = sqlx::query(ENTRIES)
                .bind(self.last_entry)
                .bind(self.head.events)
                .bind(BATCH)
                .fetch_all(self.pool)
                .await?;
            let batch = rows
                .iter()
                .map(entry_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            self.entries.done = batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
            self.last_entry = batch.last().map_or(self.last_entry, |e| e.n);
            self.entries.items.extend(batch);
        }
        Ok(self.entries.items.pop_front())
    }

    async fn next_event(&mut self) -> Result<Option<StoredEvent>, sqlx::Error> {
        if self.events.items.is_empty() && !self.events.done {
            let batch = read_after(self.pool, self.last_event, BATCH).await?;
            self.events.done = batch.len() < usize::try_from(BATCH).unwrap_or(usize::MAX);
            self.last_event = batch.last().map_or(self.last_event, |e| e.position);
            self.events.items.extend(batch);
        }
        Ok(self.events.items.pop_front())
    }
}

/// Recomputes the chain from the log and compares it with the stored entries (and with
/// `kept`, a head an auditor kept). Events past the stored head are not sealed yet and not
/// compared, except to reach a kept head beyond it.
pub async fn verify(pool: &PgPool, kept: Option<KeptHead>) -> Result<Verdict, sqlx::Error> {
    let stored = head(pool).await?;
    let mut walk = Walk::new(pool, stored);
    let mut pending = kept;
    let mut link = GENESIS;
    let mut beyond = None;
    loop {
        let (entry, event) = match (walk.next_entry().await?, walk.next_event().await?) {
            (None, None) => break,
            (None, Some(event)) if event.position > stored.position => {
                beyond = Some(event);
                break;
            }
            (None, Some(event)) => {
                return Ok(Verdict::Differs(Difference::Extra {
                    found: Found::from(&event),
                    n: stored.events + 1,
                }));
            }
            (Some(entry), event) => (entry, event),
        };
        let event = match event {
            Some(event) if same_place(&entry, &event) => event,
            other => {
                return Ok(Verdict::Differs(
                    misplaced(pool, &entry, other.as_ref()).await?,
                ));
            }
        };
        link = next_link(&link, &event);
        if link != entry.link {
            return Ok(Verdict::Differs(Difference::Changed {
                entry: Found::from(&entry),
                n: entry.n,
                what: changes(&entry, &event),
            }));
        }
        if let Some(difference) = check_kept(&mut pending, &event, &link) {
            return Ok(Verdict::Differs(difference));
        }
    }
    match reach_kept(&mut walk, pending, beyond, link).await? {
        Some(difference) => Ok(Verdict::Differs(difference)),
        None => Ok(Verdict::Intact(stored)),
    }
}

/// A kept head not met within the stored chain (which lost entries, or lags): walks on
/// from `next` (with the link so far) to its position.
async fn reach_kept(
    walk: &mut Walk<'_>,
    mut pending: Option<KeptHead>,
    mut next: Option<StoredEvent>,
    mut link: Hash,
) -> Result<Option<Difference>, sqlx::Error> {
    while let (Some(_), Some(event)) = (pending, next) {
        link = next_link(&link, &event);
        if let Some(difference) = check_kept(&mut pending, &event, &link) {
            return Ok(Some(difference));
        }
        next = if pending.is_some() {
            walk.next_event().await?
        } else {
            None
        };
    }
    Ok(pending.map(|kept| Difference::KeptHead {
        kept,
        recomputed: None,
    }))
}

/// Whether `event` is the one `entry` sealed (its place may still hold changed contents).
fn same_place(entry: &Entry, event: &StoredEvent) -> bool {
    entry.position.global_position == event.position.global_position
}

/// Checks a kept head not met yet against `event` and the link after it: once the walk
/// reaches the kept position it is met (`pending` becomes none), matching or not.
fn check_kept(
    pending: &mut Option<KeptHead>,
    event: &StoredEvent,
    link: &Hash,
) -> Option<Difference> {
    let kept = (*pending)?;
    if event.position < kept.at {
        return None;
    }
    *pending = None;
    if event.position > kept.at {
        // Stepped past the kept position without meeting it: its event is gone.
        return Some(Difference::KeptHead {
            kept,
            recomputed: None,
        });
    }
    (*link != kept.hash).then_some(Difference::KeptHead {
        kept,
        recomputed: Some(*link),
    })
}

/// Names what changed in a sealed event that is still in its place.
fn changes(entry: &Entry, event: &StoredEvent) -> Vec<&'static str> {
    let checks = [
        (entry.event_type != event.event_type, "event type changed"),
        (
            entry.aggregate_type != event.aggregate_type
                || entry.aggregate_id != event.aggregate_id,
            "aggregate changed",
        ),
        (entry.sequence != event.sequence, "sequence changed"),
        (
            entry.payload_sha256 != sha256(&canonical_json(&event.payload)),
            "payload changed",
        ),
        (
            entry.metadata_sha256 != sha256(&canonical_json(&event.metadata)),
            "metadata changed",
        ),
        (
            entry.recorded_at != event.recorded_at,
            "recorded_at changed",
        ),
        (
            entry.position.transaction_id != event.position.transaction_id,
            "transaction id changed",
        ),
    ];
    let what: Vec<&'static str> = checks
        .into_iter()
        .filter(|(changed, _)| *changed)
        .map(|(_, what)| what)
        .collect();
    if what.is_empty() {
        vec!["event version changed, or the stored link was altered"]
    } else {
        what
    }
}

const IN_LOG: &str = "SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1)";
const IN_CHAIN: &str = "SELECT EXISTS (SELECT 1 FROM event_chain WHERE global_position = $1)";

/// Why `entry`'s place holds `event` (or nothing) instead of its own event.
async fn misplaced(
    pool: &PgPool,
    entry: &Entry,
    event: Option<&StoredEvent>,
) -> Result<Difference, sqlx::Error> {
    let sealed = Found::from(entry);
    let still_there: bool = sqlx::query_scalar(IN_LOG)
        .bind(entry.position.global_position)
        .fetch_one(pool)
        .await?;
    let Some(event) = event.filter(|_| still_there) else {
        return Ok(Difference::Missing {
            entry: sealed,
            n: entry.n,
        });
    };
    let sealed_elsewhere: bool = sqlx::query_scalar(IN_CHAIN)
        .bind(event.position.global_position)
        .fetch_one(pool)
        .await?;
    Ok(if sealed_elsewhere {
        Difference::OutOfOrder {
            entry: sealed,
            n: entry.n,
            found: Found::from(event),
        }
    } else {
        Difference::Extra {
            found: Found::from(event),
            n: entry.n,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> StoredEvent {
        StoredEvent {
            position: Position::new(812, 7),
            aggregate_type: "appointment".into(),
            aggregate_id: "3f2b6c1e-0000-4000-8000-000000000001".into(),
            sequence: 2,
            event_type: "AppointmentConfirmed".into(),
            event_version: "1".into(),
            payload: json!({ "by": "doctor", "at": "2026-12-01T10:00:00Z", "n": [1, 2.5, null] }),
            metadata: json!({ "actor": { "id": "u1", "role": "doctor" }, "request_id": "r1" }),
            recorded_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_583_200_123_456_000)
                .expect("a valid time"),
        }
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let one: Value =
            serde_json::from_str(r#"{"b": {"y": 1, "x": [true, "s"]}, "a": "é\n"}"#).expect("json");
        let other: Value =
            serde_json::from_str(r#"{ "a":"é\n","b":{"x":[true,"s"],"y":1} }"#).expect("json");
        assert_eq!(canonical_json(&one), canonical_json(&other));
        assert_eq!(
            String::from_utf8(canonical_json(&one)).expect("utf-8"),
            r#"{"a":"é\n","b":{"x":[true,"s"],"y":1}}"#
        );
        let mut reordered = event();
        reordered.payload = serde_json::from_str(
            r#"{"n": [1, 2.5, null], "at": "2026-12-01T10:00:00Z", "by": "doctor"}"#,
        )
        .expect("json");
        assert_eq!(canonical(&reordered), canonical(&event()));
    }

    /// One change to an event.
    type Change = fn(&mut StoredEvent);

    #[test]
    fn every_field_changes_the_canonical_bytes() {
        let original = canonical(&event());
        let changes: [(&str, Change); 11] = [
            ("event type", |e| e.event_type.push('X')),
            ("event version", |e| e.event_version = "2".into()),
            ("aggregate type", |e| {
                e.aggregate_type = "appointmenT".into()
            }),
            ("aggregate id", |e| e.aggregate_id.push('0')),
            ("sequence", |e| e.sequence += 1),
            ("payload", |e| e.payload["by"] = json!("patient")),
            ("payload number", |e| e.payload["n"][1] = json!(2.6)),
            ("metadata", |e| e.metadata["request_id"] = json!("r2")),
            ("recorded_at", |e| {
                e.recorded_at += time::Duration::microseconds(1)
            }),
            ("transaction id", |e| e.position.transaction_id += 1),
            ("global position", |e| e.position.global_position += 1),
        ];
        for (what, change) in changes {
            let mut changed = event();
            change(&mut changed);
            assert_ne!(
                canonical(&changed),
                original,
                "{what} must change the bytes"
            );
            assert_ne!(
                next_link(&GENESIS, &changed),
                next_link(&GENESIS, &event()),
                "{what} must change the link"
            );
        }
    }

    #[test]
    fn fields_are_length_prefixed_so_text_cannot_slide_between_them() {
        let mut one = event();
        one.aggregate_type = "ab".into();
        one.aggregate_id = "c".into();
        let mut other = event();
        other.aggregate_type = "a".into();
        other.aggregate_id = "bc".into();
        assert_ne!(canonical(&one), canonical(&other));
    }

    #[test]
    fn the_link_depends_on_the_previous_link() {
        let first = next_link(&GENESIS, &event());
        assert_ne!(next_link(&first, &event()), first);
        assert_eq!(first, next_link(&GENESIS, &event()), "deterministic");
    }

    #[test]
    fn the_canonical_layout_is_stable() {
        // A fixed vector: changing the layout changes every chain ever sealed, so it must be
        // a deliberate (versioned) change. Computed independently with Python: struct.pack
        // for the fields, json.dumps(sort_keys=True, separators=(",", ":"),
        // ensure_ascii=False) for the JSON, hashlib.sha256(bytes(32) + canonical).
        let bytes = canonical(&event());
        assert_eq!(&bytes[..4], &20u32.to_be_bytes(), "event type length");
        assert_eq!(&bytes[4..24], b"AppointmentConfirmed");
        assert_eq!(
            hex::encode(next_link(&GENESIS, &event())),
            "1c696bab7c6a55e120a4e7b33192c7b062256bae6ef490550c59b01356410dcf"
        );
    }
}
