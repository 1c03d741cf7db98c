//! Reading the log in commit-safe order.
//!
//! `global_position` alone is not safe to tail: a transaction that took a lower position can
//! commit after one that took a higher position, and a reader that had moved past it would
//! skip it forever. We order by `(transaction_id, global_position)` and only read events
//! whose transaction is older than every transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): those can no longer be joined by an earlier one.

use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use telemed_domain::Position;

use crate::event::StoredEvent;

const READ_AFTER: &str = "
SELECT transaction_id::text AS xid, global_position, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id, global_position
 LIMIT $3";

/// Reads up to `limit` events after `after`, in commit-safe order.
pub async fn read_after<'e>(
    executor: impl PgExecutor<'e>,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query(READ_AFTER)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(executor)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
}

const PAGE_END: &str = "
SELECT transaction_id::text AS xid, global_position FROM (
    SELECT transaction_id, global_position
      FROM events
     WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY transaction_id, global_position
     LIMIT $3) page
 ORDER BY transaction_id DESC, global_position DESC
 LIMIT 1";

/// The position of the `limit`-th event after `after` in commit-safe order, or of the last
/// event readable now if fewer follow; `None` when none does. Reads the index only, not the
/// events: the page up to it can then be read by [`read_between`], concurrently with others.
pub async fn page_end<'e>(
    executor: impl PgExecutor<'e>,
    after: Position,
    limit: i64,
) -> Result<Option<Position>, sqlx::Error> {
    sqlx::query(PAGE_END)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(position_from_row)
        .transpose()
}

const READ_BETWEEN: &str = "
SELECT transaction_id::text AS xid, global_position, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND (transaction_id, global_position) <= ($3::text::xid8, $4)
 ORDER BY transaction_id, global_position";

/// The events after `after` up to and including `until`, in commit-safe order. `until` must
/// have been readable (a position [`read_after`] or [`page_end`] returned): every transaction
/// up to its own had ended then, so no event can join this range later.
pub async fn read_between<'e>(
    executor: impl PgExecutor<'e>,
    after: Position,
    until: Position,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query(READ_BETWEEN)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(until.transaction_id.to_string())
        .bind(until.global_position)
        .fetch(executor)
        .and_then(|row| std::future::ready(event_from_row(&row)))
        .try_collect()
        .await
}

const NEWEST_XID: &str = "SELECT max(transaction_id)::text FROM events";
const SAFE_BEYOND: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8";

/// Waits (at most `patience`) until every event committed now can be read by `read_after`,
/// that is until every transaction older than the newest event's has ended — in any database
/// of the cluster. Call it holding no locks: a transaction waiting on one would be waited for.
/// Returns whether the log is readable to its end.
pub async fn wait_until_readable(
    pool: &sqlx::PgPool,
    patience: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let Some(newest) = sqlx::query_scalar::<_, Option<String>>(NEWEST_XID)
        .fetch_one(pool)
        .await?
    else {
        return Ok(true);
    };
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let readable: bool = sqlx::query_scalar(SAFE_BEYOND)
            .bind(&newest)
            .fetch_one(pool)
            .await?;
        if readable {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Decodes a position from a row's `xid` (text) and `global_position` columns.
pub fn position_from_row(row: &PgRow) -> Result<Position, sqlx::Error> {
    let xid: String = row.try_get("xid")?;
    let xid = xid.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Position::new(xid, row.try_get("global_position")?))
}

pub(crate) fn event_from_row(row: &PgRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        position: position_from_row(row)?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

const AGGREGATE_EVENTS: &str = "
SELECT transaction_id::text AS xid, global_position, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence";

/// Every event of one aggregate, in sequence order.
pub async fn aggregate_events<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query(AGGREGATE_EVENTS)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(executor)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
}
