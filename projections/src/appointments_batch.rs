//! The `appointments` projection's batches: each row the batch touches is loaded once, the
//! batch's events are folded into it in memory exactly as [`crate::appointments`]' per-event
//! statements change it, and it is written once, all rows in one upsert.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use telemed_domain::appointment::{AppointmentEvent, Party, Status};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::StoredEvent;

/// One row of `appointments`.
#[derive(Clone, Debug)]
pub(crate) struct Appointment {
    id: Uuid,
    doctor_id: Uuid,
    patient_id: Uuid,
    start_at: OffsetDateTime,
    end_at: OffsetDateTime,
    status: String,
    awaiting: Option<String>,
    reason: String,
    day_id: String,
    reservation_id: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    rescheduled_from_start: Option<OffsetDateTime>,
    rescheduled_from_end: Option<OffsetDateTime>,
    cancelled_by: Option<Uuid>,
    cancel_reason: Option<String>,
    cancelled_at: Option<OffsetDateTime>,
    sequence: i64,
    position: String,
}

const COLUMNS: &str = "appointment_id, doctor_id, patient_id, start_at, end_at, status, awaiting,
    reason, day_id, reservation_id, created_at, updated_at, rescheduled_from_start,
    rescheduled_from_end, cancelled_by, cancel_reason, cancelled_at, sequence, position";

fn from_row(row: &PgRow) -> Result<Appointment, sqlx::Error> {
    Ok(Appointment {
        id: row.try_get("appointment_id")?,
        doctor_id: row.try_get("doctor_id")?,
        patient_id: row.try_get("patient_id")?,
        start_at: row.try_get("start_at")?,
        end_at: row.try_get("end_at")?,
        status: row.try_get("status")?,
        awaiting: row.try_get("awaiting")?,
        reason: row.try_get("reason")?,
        day_id: row.try_get("day_id")?,
        reservation_id: row.try_get("reservation_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        rescheduled_from_start: row.try_get("rescheduled_from_start")?,
        rescheduled_from_end: row.try_get("rescheduled_from_end")?,
        cancelled_by: row.try_get("cancelled_by")?,
        cancel_reason: row.try_get("cancel_reason")?,
        cancelled_at: row.try_get("cancelled_at")?,
        sequence: row.try_get("sequence")?,
        position: row.try_get("position")?,
    })
}

/// The existing rows of `ids`.
pub(crate) async fn load(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Appointment>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM appointments WHERE appointment_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| from_row(row).map(|a| (a.id, a)))
    .collect()
}

fn party(by: Party) -> &'static str {
    match by {
        Party::Doctor => "doctor",
        Party::Patient => "patient",
    }
}

/// Applies one event of appointment `id` to `rows`; returns whether a row changed. An event
/// at or below the row's sequence was applied already and changes nothing.
pub(crate) fn fold(
    rows: &mut HashMap<Uuid, Appointment>,
    id: Uuid,
    event: &StoredEvent,
    change: AppointmentEvent,
) -> bool {
    if rows
        .get(&id)
        .is_some_and(|row| row.sequence >= event.sequence)
    {
        return false;
    }
    let position = event.position.to_string();
    if let AppointmentEvent::AppointmentRequested { .. } = change {
        if let Some(row) = requested(id, event.sequence, position, change) {
            rows.insert(id, row);
            return true;
        }
        return false;
    }
    // An UPDATE of a row that does not exist changes nothing.
    let Some(row) = rows.get_mut(&id) else {
        return false;
    };
    let Some(at) = changed(row, change) else {
        return false;
    };
    row.updated_at = at;
    row.sequence = event.sequence;
    row.position = position;
    true
}

/// The new row of a request.
fn requested(
    id: Uuid,
    sequence: i64,
    position: String,
    change: AppointmentEvent,
) -> Option<Appointment> {
    let AppointmentEvent::AppointmentRequested {
        doctor_id,
        patient_id,
        interval,
        reason,
        slot,
        at,
    } = change
    else {
        return None;
    };
    Some(Appointment {
        id,
        doctor_id: doctor_id.as_uuid(),
        patient_id: patient_id.as_uuid(),
        start_at: interval.start,
        end_at: interval.end,
        status: "pending".to_string(),
        awaiting: Some("doctor".to_string()),
        reason: reason.as_str().to_string(),
        day_id: slot.day.to_string(),
        reservation_id: slot.reservation_id.as_uuid(),
        created_at: at,
        updated_at: at,
        rescheduled_from_start: None,
        rescheduled_from_end: None,
        cancelled_by: None,
        cancel_reason: None,
        cancelled_at: None,
        sequence,
        position,
    })
}

/// Applies a change after the request to `row`; returns when it happened.
fn changed(row: &mut Appointment, change: AppointmentEvent) -> Option<OffsetDateTime> {
    let at = match change {
        AppointmentEvent::AppointmentRequested { .. } => return None,
        AppointmentEvent::AppointmentConfirmed { at, .. } => {
            row.status = "confirmed".to_string();
            at
        }
        AppointmentEvent::AppointmentRescheduled {
            previous,
            interval,
            slot,
            by,
            at,
            ..
        } => {
            row.status = "rescheduled".to_string();
            row.start_at = interval.start;
            row.end_at = interval.end;
            row.rescheduled_from_start = Some(previous.start);
            row.rescheduled_from_end = Some(previous.end);
            row.day_id = slot.day.to_string();
            row.reservation_id = slot.reservation_id.as_uuid();
            row.awaiting = Some(party(by.other()).to_string());
            return Some(at);
        }
        AppointmentEvent::AppointmentCancelled { by, reason, at, .. } => {
            row.status = "cancelled".to_string();
            row.cancelled_by = Some(match by {
                Party::Doctor => row.doctor_id,
                Party::Patient => row.patient_id,
            });
            row.cancel_reason = Some(reason.as_str().to_string());
            row.cancelled_at = Some(at);
            at
        }
        AppointmentEvent::AppointmentCompleted { at, .. } => {
            row.status = Status::Completed.as_str().to_string();
            at
        }
        AppointmentEvent::AppointmentMarkedNoShow { at, .. } => {
            row.status = Status::NoShow.as_str().to_string();
            at
        }
    };
    // Every change but a reschedule leaves nobody to confirm.
    row.awaiting = None;
    Some(at)
}

const UPSERT: &str = "INSERT INTO appointments (appointment_id, doctor_id, patient_id, start_at,
    end_at, status, awaiting, reason, day_id, reservation_id, created_at, updated_at,
    rescheduled_from_start, rescheduled_from_end, cancelled_by, cancel_reason, cancelled_at,
    sequence, position)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[],
    $6::text[], $7::text[], $8::text[], $9::text[], $10::uuid[], $11::timestamptz[],
    $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::uuid[], $16::text[],
    $17::timestamptz[], $18::bigint[], $19::text[])
ON CONFLICT (appointment_id) DO UPDATE SET
    doctor_id = EXCLUDED.doctor_id, patient_id = EXCLUDED.patient_id,
    start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at, status = EXCLUDED.status,
    awaiting = EXCLUDED.awaiting, reason = EXCLUDED.reason, day_id = EXCLUDED.day_id,
    reservation_id = EXCLUDED.reservation_id, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, rescheduled_from_start = EXCLUDED.rescheduled_from_start,
    rescheduled_from_end = EXCLUDED.rescheduled_from_end, cancelled_by = EXCLUDED.cancelled_by,
    cancel_reason = EXCLUDED.cancel_reason, cancelled_at = EXCLUDED.cancelled_at,
    sequence = EXCLUDED.sequence, position = EXCLUDED.position";

/// Writes `rows` (new or changed) in one statement.
pub(crate) async fn store(
    tx: &mut PgConnection,
    rows: Vec<Appointment>,
) -> Result<(), sqlx::Error> {
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
        .bind(column!(doctor_id))
        .bind(column!(patient_id))
        .bind(column!(start_at))
        .bind(column!(end_at))
        .bind(column!(status))
        .bind(column!(awaiting))
        .bind(column!(reason))
        .bind(column!(day_id))
        .bind(column!(reservation_id))
        .bind(column!(created_at))
        .bind(column!(updated_at))
        .bind(column!(rescheduled_from_start))
        .bind(column!(rescheduled_from_end))
        .bind(column!(cancelled_by))
        .bind(column!(cancel_reason))
        .bind(column!(cancelled_at))
        .bind(column!(sequence))
        .bind(column!(position))
        .execute(&mut *tx)
        .await?;
    Ok(())
}
