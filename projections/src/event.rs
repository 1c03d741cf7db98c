//! One event as stored in the log.

use serde::Serialize;
use serde_json::Value;
use telemed_domain::Position;
use time::OffsetDateTime;

/// A row of the `events` table, as the read side sees it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    /// Commit-safe position (the resume token).
    #[schema(value_type = String)]
    pub position: Position,
    /// Aggregate kind, e.g. `doctor`.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// 1-based sequence within the aggregate.
    pub sequence: i64,
    /// Event name, e.g. `DoctorProfileUpdated`.
    pub event_type: String,
    /// Schema version of the payload.
    pub event_version: String,
    /// The event's data.
    pub payload: Value,
    /// Actor, request id and command that caused it.
    pub metadata: Value,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
}

impl StoredEvent {
    /// The payload as `T`; a payload that does not decode is an error naming this event.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::ProjectionError> {
        // Straight from the borrowed value: no copy of the payload per decode.
        T::deserialize(&self.payload).map_err(|e| crate::ProjectionError::payload(self, e))
    }
}
