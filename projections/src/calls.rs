//! The `calls` projection: the call log of each appointment.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::call::{AGGREGATE_TYPE, CallEvent};
use telemed_domain::{AppointmentId, CallId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::fold;
use crate::runner::{Projection, ProjectionError};

/// Builds `calls`.
pub struct CallsProjection;

/// One call of an appointment's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CallView {
    /// The call.
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The appointment.
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// `ringing`, `active`, `ended`, `missed`, `rejected` or `failed`.
    pub status: String,
    /// Who called.
    #[schema(value_type = String, format = Uuid)]
    pub caller_id: UserId,
    /// When it started ringing.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// When the callee answered.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<OffsetDateTime>,
    /// When it ended (also missed, rejected, failed).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it ended (`user_hangup`, `invite_timeout`, `rejected`, `ice_failed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Seconds it was active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// The doctor and the patient.
    #[schema(value_type = Vec<String>)]
    pub participants: Vec<UserId>,
}

#[async_trait]
impl Projection for CallsProjection {
    fn name(&self) -> &'static str {
        "calls"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["calls"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != AGGREGATE_TYPE {
            return Ok(());
        }
        let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
            return Ok(());
        };
        let position = &event.position.to_string();
        match event.decode()? {
            CallEvent::CallStarted {
                appointment_id,
                doctor_id,
                patient_id,
                caller_id,
                at,
            } => {
                let parties = (doctor_id, patient_id);
                call_started(tx, id, position, appointment_id, parties, caller_id, at).await?;
            }
            CallEvent::CallAnswered { at, .. } => update(tx, ANSWERED, id, position, at).await?,
            CallEvent::CallRejected { at, .. } => update(tx, REJECTED, id, position, at).await?,
            CallEvent::CallMissed { at } => update(tx, MISSED, id, position, at).await?,
            CallEvent::CallEnded {
                reason,
                failed,
                duration_seconds,
                at,
                ..
            } => {
                let status = if failed { "failed" } else { "ended" };
                let end = (status, reason.as_str(), duration_seconds);
                call_ended(tx, id, position, end, at).await?;
            }
        }
        Ok(())
    }

    /// Folds the batch into the calls it touches in memory (loaded first when they exist) and
    /// writes each once, in one upsert.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut decoded = Vec::new();
        for event in events {
            if event.aggregate_type != AGGREGATE_TYPE {
                continue;
            }
            let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
                continue;
            };
            decoded.push((
                id,
                (event.position.to_string(), event.decode::<CallEvent>()?),
            ));
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let rows = crate::calls_batch::load(tx, &fold::distinct_ids(&decoded)).await?;
        let changed = fold::changed_rows(rows, decoded, |rows, id, (position, change)| {
            crate::calls_batch::fold(rows, id, position, change)
        });
        crate::calls_batch::store(tx, changed).await?;
        Ok(())
    }
}

/// Call `id` of the appointment rings, called by `caller_id` at `at`.
async fn call_started(
    tx: &mut PgConnection,
    id: Uuid,
    position: &str,
    appointment_id: AppointmentId,
    (doctor_id, patient_id): (UserId, UserId),
    caller_id: UserId,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO calls (call_id, appointment_id, doctor_id, patient_id, caller_id,
                            status, started_at, position)
         VALUES ($1, $2, $3, $4, $5, 'ringing', $6, $7)
         ON CONFLICT (call_id) DO NOTHING",
    )
    .bind(id)
    .bind(appointment_id.as_uuid())
    .bind(doctor_id.as_uuid())
    .bind(patient_id.as_uuid())
    .bind(caller_id.as_uuid())
    .bind(at)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A call answered at `$2`.
const ANSWERED: &str = "UPDATE calls SET status = 'active', answered_at = $2, position = $3
                         WHERE call_id = $1";
/// A call rejected at `$2`.
const REJECTED: &str =
    "UPDATE calls SET status = 'rejected', ended_at = $2, end_reason = 'rejected',
                                         duration_seconds = 0, position = $3
                         WHERE call_id = $1";
/// A call nobody answered before its invitation timed out at `$2`.
const MISSED: &str = "UPDATE calls SET status = 'missed', ended_at = $2,
                                       end_reason = 'invite_timeout', duration_seconds = 0,
                                       position = $3
                       WHERE call_id = $1";

/// Runs one of the statements above for call `id` changed at `at` by the event at `position`.
async fn update(
    tx: &mut PgConnection,
    statement: &'static str,
    id: Uuid,
    position: &str,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .bind(id)
        .bind(at)
        .bind(position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Call `id` ended at `at`: its status (`ended` or `failed`), reason and seconds active.
async fn call_ended(
    tx: &mut PgConnection,
    id: Uuid,
    position: &str,
    (status, reason, duration_seconds): (&str, &str, i64),
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET status = $2, ended_at = $3, end_reason = $4,
                          duration_seconds = $5, position = $6
          WHERE call_id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(at)
    .bind(reason)
    .bind(duration_seconds)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn view_from_row(row: &PgRow) -> Result<CallView, sqlx::Error> {
    Ok(CallView {
        call_id: CallId::from(row.try_get::<Uuid, _>("call_id")?),
        appointment_id: AppointmentId::from(row.try_get::<Uuid, _>("appointment_id")?),
        status: row.try_get("status")?,
        caller_id: UserId::from(row.try_get::<Uuid, _>("caller_id")?),
        started_at: row.try_get("started_at")?,
        answered_at: row.try_get("answered_at")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
        duration_seconds: row.try_get("duration_seconds")?,
        participants: vec![
            UserId::from(row.try_get::<Uuid, _>("doctor_id")?),
            UserId::from(row.try_get::<Uuid, _>("patient_id")?),
        ],
    })
}

const COLUMNS: &str = "call_id, appointment_id, status, caller_id, started_at, answered_at,
    ended_at, end_reason, duration_seconds, doctor_id, patient_id";

/// The calls of `appointment`, oldest first.
pub async fn calls_of(
    db: impl PgExecutor<'_>,
    appointment: AppointmentId,
) -> Result<Vec<CallView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM calls WHERE appointment_id = $1 ORDER BY started_at, call_id"
    ))
    .bind(appointment.as_uuid())
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect()
}

/// The calls among `ids` that the read model holds (any order).
pub async fn calls_by_ids(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<CallView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM calls WHERE call_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect()
}

/// Call `id`.
pub async fn call(db: impl PgExecutor<'_>, id: CallId) -> Result<Option<CallView>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM calls WHERE call_id = $1"))
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(view_from_row)
        .transpose()
}

/// The calls ringing or active now: each call, its appointment and its doctor.
pub async fn live_calls(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(CallId, AppointmentId, UserId)>, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT call_id, appointment_id, doctor_id FROM calls
          WHERE status IN ('ringing', 'active')",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(call, appointment, doctor)| (call.into(), appointment.into(), doctor.into()))
        .collect())
}
