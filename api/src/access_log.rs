//! The access log: every read of patient data (profile and record, appointment details and
//! history, messages) by anyone but the patient, allowed or denied, in an append-only table.
//!
//! A read is logged before its data is returned; if the entry cannot be written the read fails
//! (503) rather than go unrecorded.

use serde::Serialize;
use sqlx::{PgExecutor, PgPool, Row};
use telemed_domain::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::AuthUser;

/// Whether the read was let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The data was returned.
    Allowed,
    /// The reader was refused (404 to them).
    Denied,
}

impl Outcome {
    /// `Allowed` if the read was let through, else `Denied`.
    pub fn of(allowed: bool) -> Self {
        if allowed { Self::Allowed } else { Self::Denied }
    }
}

/// Records that `reader` read (or tried to read) `resource` `resource_id` of `patient`.
/// Reads by the patient themselves are not recorded.
pub async fn record(
    pool: &PgPool,
    reader: &AuthUser,
    patient: UserId,
    resource: &'static str,
    resource_id: &str,
    outcome: Outcome,
) -> Result<(), ApiError> {
    if reader.id == patient {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO access_log (actor_id, actor_role, patient_id, resource, resource_id, outcome, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(reader.id.as_uuid())
    .bind(reader.role.as_str())
    .bind(patient.as_uuid())
    .bind(resource)
    .bind(resource_id)
    .bind(match outcome {
        Outcome::Allowed => "allowed",
        Outcome::Denied => "denied",
    })
    .bind(&reader.request_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// One entry of the access log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessEntry {
    /// Its number (entries are numbered in the order they were written).
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Who read.
    #[schema(value_type = String, format = Uuid)]
    pub actor_id: Uuid,
    /// Their role.
    pub actor_role: String,
    /// Whose data.
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: Uuid,
    /// `patient_profile`, `appointment`, `appointment_history`, `messages`, `appointments`
    /// (a refused FHIR search of another patient's appointments), or `export` (an appointment
    /// with its history and messages in a doctor's `GET /api/v1/me/export`).
    pub resource: String,
    /// Which one.
    pub resource_id: String,
    /// `allowed` or `denied`.
    pub outcome: String,
    /// The request (`X-Request-Id`).
    pub request_id: String,
}

/// Up to `limit` entries after entry `after` of the reads by `actor`, oldest first (a
/// doctor's export).
pub async fn page_by_actor(
    db: impl PgExecutor<'_>,
    after: i64,
    actor: UserId,
    limit: i64,
) -> Result<Vec<AccessEntry>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM access_log WHERE entry_id > $1 AND actor_id = $2
          ORDER BY entry_id LIMIT $3"
    ))
    .bind(after)
    .bind(actor.as_uuid())
    .bind(limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(entry_from_row)
    .collect()
}

const COLUMNS: &str =
    "entry_id, at, actor_id, actor_role, patient_id, resource, resource_id, outcome, request_id";

fn entry_from_row(row: &sqlx::postgres::PgRow) -> Result<AccessEntry, sqlx::Error> {
    Ok(AccessEntry {
        id: row.try_get("entry_id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get("actor_id")?,
        actor_role: row.try_get("actor_role")?,
        patient_id: row.try_get("patient_id")?,
        resource: row.try_get("resource")?,
        resource_id: row.try_get("resource_id")?,
        outcome: row.try_get("outcome")?,
        request_id: row.try_get("request_id")?,
    })
}

/// Up to `limit` entries after entry `after`, oldest first, optionally of one patient.
pub async fn page(
    db: impl PgExecutor<'_>,
    after: i64,
    patient: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AccessEntry>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM access_log
          WHERE entry_id > $1 AND ($2::uuid IS NULL OR patient_id = $2)
          ORDER BY entry_id
          LIMIT $3"
    ))
    .bind(after)
    .bind(patient)
    .bind(limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(entry_from_row)
    .collect()
}
