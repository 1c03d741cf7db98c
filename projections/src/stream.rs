//! Reading the log in commit-safe order.
//!
//! `global_position` alone is not safe to tail: a transaction that took a lower position can
//! commit after one that took a higher position, and a reader that had moved past it would
//! skip it forever. We order by `(transaction_id, global_position)` and only read events
//! whose transaction is older than every transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): those can no longer be joined by an earlier one.

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

/// Decodes a position from a row's `xid` (text) and `global_position` columns.
pub fn position_from_row(row: &PgRow) -> Result<Position, sqlx::Error> {
    let xid: String = row.try_get("xid")?;
    let xid = xid.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Position::new(xid, row.try_get("global_position")?))
}

fn event_from_row(row: &PgRow) -> Result<StoredEvent, sqlx::Error> {
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
