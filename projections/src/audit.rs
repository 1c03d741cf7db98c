//! The audit view of the log: the global history in commit-safe order, with filters.

use sqlx::PgExecutor;
use telemed_domain::Position;

use crate::event::StoredEvent;
use crate::stream::event_from_row;

const PAGE: &str = "
SELECT transaction_id::text AS xid, global_position, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
   AND ($3::text IS NULL OR aggregate_type = $3)
   AND ($4::text IS NULL OR aggregate_id = $4)
 ORDER BY transaction_id, global_position
 LIMIT $5";

/// Which events an audit page holds.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this aggregate type.
    pub aggregate_type: Option<String>,
    /// Only this aggregate id.
    pub aggregate_id: Option<String>,
}

/// Up to `limit` events after `after` that pass `filter`, in commit-safe order.
pub async fn page<'e>(
    executor: impl PgExecutor<'e>,
    after: Position,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query(PAGE)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(filter.aggregate_type.as_deref())
        .bind(filter.aggregate_id.as_deref())
        .bind(limit)
        .fetch_all(executor)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
}
