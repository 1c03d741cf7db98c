//! The `calls` projection's batches: each call the batch touches is loaded once, its events
//! are folded into it in memory exactly as [`crate::calls`]' per-event statements change it,
//! and all rows are written in one upsert.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};
use telemed_domain::call::CallEvent;
use time::OffsetDateTime;
use uuid::Uuid;

/// One row of `calls`.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    id: Uuid,
    appointment_id: Uuid,
    doctor_id: Uuid,
    patient_id: Uuid,
    caller_id: Uuid,
    status: String,
    started_at: OffsetDateTime,
    answered_at: Option<OffsetDateTime>,
    ended_at: Option<OffsetDateTime>,
    end_reason: Option<String>,
    duration_seconds: Option<i64>,
    position: String,
}

/// The existing rows of `ids`.
pub(crate) async fn load(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Call>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT call_id, appointment_id, doctor_id, patient_id, caller_id, status, started_at,
                answered_at, ended_at, end_reason, duration_seconds, position
           FROM calls WHERE call_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|row| {
            let call = Call {
                id: row.try_get("call_id")?,
                appointment_id: row.try_get("appointment_id")?,
                doctor_id: row.try_get("doctor_id")?,
                patient_id: row.try_get("patient_id")?,
                caller_id: row.try_get("caller_id")?,
                status: row.try_get("status")?,
                started_at: row.try_get("started_at")?,
                answered_at: row.try_get("answered_at")?,
                ended_at: row.try_get("ended_at")?,
                end_reason: row.try_get("end_reason")?,
                duration_seconds: row.try_get("duration_seconds")?,
                position: row.try_get("position")?,
            };
            Ok((call.id, call))
        })
        .collect()
}

/// Applies one event of call `id` at `position` to `rows`; returns whether a row changed.
pub(crate) fn fold(
    rows: &mut HashMap<Uuid, Call>,
    id: Uuid,
    position: String,
    change: CallEvent,
) -> bool {
    if let CallEvent::CallStarted {
        appointment_id,
        doctor_id,
        patient_id,
        caller_id,
        at,
    } = change
    {
        // INSERT … ON CONFLICT DO NOTHING.
        if rows.contains_key(&id) {
            return false;
        }
        rows.insert(
            id,
            Call {
                id,
                appointment_id: appointment_id.as_uuid(),
                doctor_id: doctor_id.as_uuid(),
                patient_id: patient_id.as_uuid(),
                caller_id: caller_id.as_uuid(),
                status: "ringing".to_string(),
                started_at: at,
                answered_at: None,
                ended_at: None,
                end_reason: None,
                duration_seconds: None,
                position,
            },
        );
        return true;
    }
    // An UPDATE of a row that does not exist changes nothing.
    let Some(row) = rows.get_mut(&id) else {
        return false;
    };
    let ended = |row: &mut Call, status: &str, at, reason: &str, seconds| {
        row.status = status.to_string();
        row.ended_at = Some(at);
        row.end_reason = Some(reason.to_string());
        row.duration_seconds = Some(seconds);
    };
    match change {
        CallEvent::CallStarted { .. } => return false,
        CallEvent::CallAnswered { at, .. } => {
            row.status = "active".to_string();
            row.answered_at = Some(at);
        }
        CallEvent::CallRejected { at, .. } => ended(row, "rejected", at, "rejected", 0),
        CallEvent::CallMissed { at } => ended(row, "missed", at, "invite_timeout", 0),
        CallEvent::CallEnded {
            reason,
            failed,
            duration_seconds,
            at,
            ..
        } => {
            let status = if failed { "failed" } else { "ended" };
            ended(row, status, at, reason.as_str(), duration_seconds);
        }
    }
    row.position = position;
    true
}

const UPSERT: &str = "INSERT INTO calls (call_id, appointment_id, doctor_id, patient_id,
    caller_id, status, started_at, answered_at, ended_at, end_reason, duration_seconds, position)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[],
    $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::bigint[],
    $12::text[])
ON CONFLICT (call_id) DO UPDATE SET
    appointment_id = EXCLUDED.appointment_id, doctor_id = EXCLUDED.doctor_id,
    patient_id = EXCLUDED.patient_id, caller_id = EXCLUDED.caller_id, status = EXCLUDED.status,
    started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at,
    ended_at = EXCLUDED.ended_at, end_reason = EXCLUDED.end_reason,
    duration_seconds = EXCLUDED.duration_seconds, position = EXCLUDED.position";

/// Writes `rows` (new or changed) in one statement.
pub(crate) async fn store(tx: &mut PgConnection, rows: Vec<Call>) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(UPSERT)
        .bind(column!(id))
        .bind(column!(appointment_id))
        .bind(column!(doctor_id))
        .bind(column!(patient_id))
        .bind(column!(caller_id))
        .bind(column!(status))
        .bind(column!(started_at))
        .bind(column!(answered_at))
        .bind(column!(ended_at))
        .bind(column!(end_reason))
        .bind(column!(duration_seconds))
        .bind(column!(position))
        .execute(&mut *tx)
        .await?;
    Ok(())
}
