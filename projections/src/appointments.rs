//! The `appointments` projection: one row per appointment with its current state, and the
//! lists and dashboards served from it.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::appointment::{AppointmentEvent, Party, SlotRef, Status};
use telemed_domain::calendar::Interval;
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, Position, Role, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::fold;
use crate::runner::{Projection, ProjectionError};

/// Builds `appointments`.
pub struct AppointmentsProjection;

const INSERT: &str = "INSERT INTO appointments
    (appointment_id, doctor_id, patient_id, start_at, end_at, status, awaiting, reason, day_id,
     reservation_id, created_at, updated_at, sequence, position)
VALUES ($1, $2, $3, $4, $5, 'pending', 'doctor', $6, $7, $8, $9, $9, $10, $11)";

const TOUCH: &str = "UPDATE appointments SET updated_at = $2, sequence = $3, position = $4
 WHERE appointment_id = $1";

fn party(by: Party) -> &'static str {
    match by {
        Party::Doctor => "doctor",
        Party::Patient => "patient",
    }
}

#[async_trait]
impl Projection for AppointmentsProjection {
    fn name(&self) -> &'static str {
        "appointments"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["appointments"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != telemed_domain::appointment::AGGREGATE_TYPE {
            return Ok(());
        }
        let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
            return Ok(());
        };
        let target = Target {
            id,
            sequence: event.sequence,
            position: event.position.to_string(),
        };
        let at = match event.decode()? {
            AppointmentEvent::AppointmentRequested {
                doctor_id,
                patient_id,
                interval,
                reason,
                slot,
                at,
            } => {
                let parties = (doctor_id, patient_id);
                return Ok(requested(tx, &target, parties, interval, &reason, slot, at).await?);
            }
            AppointmentEvent::AppointmentConfirmed { at, .. } => {
                confirmed(tx, id).await?;
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
                rescheduled(tx, id, (previous, interval), slot, by).await?;
                at
            }
            AppointmentEvent::AppointmentCancelled { by, reason, at, .. } => {
                cancelled(tx, id, by, &reason, at).await?;
                at
            }
            AppointmentEvent::AppointmentCompleted { at, .. } => {
                closed(tx, id, Status::Completed).await?;
                at
            }
            AppointmentEvent::AppointmentMarkedNoShow { at, .. } => {
                closed(tx, id, Status::NoShow).await?;
                at
            }
        };
        touch(tx, &target, at).await?;
        Ok(())
    }

    /// Folds the batch into the rows it touches in memory (loaded first when they exist) and
    /// writes each once, in one upsert.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut decoded = Vec::new();
        for event in events {
            if event.aggregate_type != telemed_domain::appointment::AGGREGATE_TYPE {
                continue;
            }
            let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
                continue;
            };
            decoded.push((id, (event, event.decode::<AppointmentEvent>()?)));
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let rows = crate::appointments_batch::load(tx, &fold::distinct_ids(&decoded)).await?;
        let changed = fold::changed_rows(rows, decoded, |rows, id, (event, change)| {
            crate::appointments_batch::fold(rows, id, event, change)
        });
        crate::appointments_batch::store(tx, changed).await?;
        Ok(())
    }
}

/// The row an event changes, and where that event stands: its sequence in the appointment
/// (the row's revision) and its position in the log.
struct Target {
    id: Uuid,
    sequence: i64,
    position: String,
}

/// A new appointment, pending the doctor's confirmation.
async fn requested(
    tx: &mut PgConnection,
    target: &Target,
    (doctor_id, patient_id): (UserId, UserId),
    interval: Interval,
    reason: &FreeText,
    slot: SlotRef,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT)
        .bind(target.id)
        .bind(doctor_id.as_uuid())
        .bind(patient_id.as_uuid())
        .bind(interval.start)
        .bind(interval.end)
        .bind(reason.as_str())
        .bind(slot.day.to_string())
        .bind(slot.reservation_id.as_uuid())
        .bind(at)
        .bind(target.sequence)
        .bind(&target.position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn confirmed(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET status = 'confirmed', awaiting = NULL WHERE appointment_id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moved from `previous` to `interval` (and its new slot) by `by`; the other party confirms.
async fn rescheduled(
    tx: &mut PgConnection,
    id: Uuid,
    (previous, interval): (Interval, Interval),
    slot: SlotRef,
    by: Party,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments
            SET status = 'rescheduled', awaiting = $2, start_at = $3, end_at = $4,
                rescheduled_from_start = $5, rescheduled_from_end = $6,
                day_id = $7, reservation_id = $8
          WHERE appointment_id = $1",
    )
    .bind(id)
    .bind(party(by.other()))
    .bind(interval.start)
    .bind(interval.end)
    .bind(previous.start)
    .bind(previous.end)
    .bind(slot.day.to_string())
    .bind(slot.reservation_id.as_uuid())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Called off by `by` (recorded as that party's user id) for `reason` at `at`.
async fn cancelled(
    tx: &mut PgConnection,
    id: Uuid,
    by: Party,
    reason: &FreeText,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let by_column = match by {
        Party::Doctor => "doctor_id",
        Party::Patient => "patient_id",
    };
    sqlx::query(&format!(
        "UPDATE appointments
            SET status = 'cancelled', awaiting = NULL, cancelled_by = {by_column},
                cancel_reason = $2, cancelled_at = $3
          WHERE appointment_id = $1"
    ))
    .bind(id)
    .bind(reason.as_str())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Over: `completed` or `no_show`.
async fn closed(tx: &mut PgConnection, id: Uuid, status: Status) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE appointments SET status = $2, awaiting = NULL WHERE appointment_id = $1")
        .bind(id)
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Records that the row changed at `at`, by the event `target` names.
async fn touch(
    tx: &mut PgConnection,
    target: &Target,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(TOUCH)
        .bind(target.id)
        .bind(at)
        .bind(target.sequence)
        .bind(&target.position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A previous time of a rescheduled appointment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TimeRangeView {
    /// Start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// End (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end: OffsetDateTime,
}

/// Who cancelled, why and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CancellationView {
    /// The user who cancelled.
    #[schema(value_type = String, format = Uuid)]
    pub by: UserId,
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// An appointment as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AppointmentView {
    /// Appointment id.
    #[schema(value_type = String, format = Uuid)]
    pub id: AppointmentId,
    /// The doctor.
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: UserId,
    /// The patient.
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: UserId,
    /// Start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// End (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end: OffsetDateTime,
    /// `pending`, `confirmed`, `rescheduled`, `cancelled`, `completed` or `no_show`.
    pub status: String,
    /// Who must confirm next (`doctor` or `patient`), while pending or rescheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting_confirmation_by: Option<String>,
    /// Why the patient consults.
    pub reason: String,
    /// When it was requested.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The time before the latest reschedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescheduled_from: Option<TimeRangeView>,
    /// Set when cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationView>,
    /// Resume token of the last event applied.
    pub position: String,
    /// Number of changes (the iCal SEQUENCE).
    #[serde(skip)]
    pub revision: i64,
}

impl AppointmentView {
    /// What this projection makes of a booking just recorded (`AppointmentRequested` at
    /// `position`): for answering before the read model has caught up (a rebuild may run).
    pub fn requested(
        id: AppointmentId,
        (doctor_id, patient_id): (UserId, UserId),
        interval: Interval,
        reason: &str,
        at: OffsetDateTime,
        position: Position,
    ) -> Self {
        Self {
            id,
            doctor_id,
            patient_id,
            start: interval.start,
            end: interval.end,
            status: Status::Pending.as_str().to_string(),
            awaiting_confirmation_by: Some(party(Party::Doctor).to_string()),
            reason: reason.to_string(),
            created_at: at,
            updated_at: at,
            rescheduled_from: None,
            cancellation: None,
            position: position.to_string(),
            revision: 0,
        }
    }
}

const COLUMNS: &str = "appointment_id, doctor_id, patient_id, start_at, end_at, status, awaiting,
    reason, created_at, updated_at, rescheduled_from_start, rescheduled_from_end, cancelled_by,
    cancel_reason, cancelled_at, sequence, position";

fn view_from_row(row: &PgRow) -> Result<AppointmentView, sqlx::Error> {
    let rescheduled_from = match (
        row.try_get::<Option<OffsetDateTime>, _>("rescheduled_from_start")?,
        row.try_get::<Option<OffsetDateTime>, _>("rescheduled_from_end")?,
    ) {
        (Some(start), Some(end)) => Some(TimeRangeView { start, end }),
        _ => None,
    };
    let cancellation = match (
        row.try_get::<Option<Uuid>, _>("cancelled_by")?,
        row.try_get::<Option<String>, _>("cancel_reason")?,
        row.try_get::<Option<OffsetDateTime>, _>("cancelled_at")?,
    ) {
        (Some(by), Some(reason), Some(at)) => Some(CancellationView {
            by: by.into(),
            reason,
            at,
        }),
        _ => None,
    };
    Ok(AppointmentView {
        id: AppointmentId::from(row.try_get::<Uuid, _>("appointment_id")?),
        doctor_id: UserId::from(row.try_get::<Uuid, _>("doctor_id")?),
        patient_id: UserId::from(row.try_get::<Uuid, _>("patient_id")?),
        start: row.try_get("start_at")?,
        end: row.try_get("end_at")?,
        status: row.try_get("status")?,
        awaiting_confirmation_by: row.try_get("awaiting")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        rescheduled_from,
        cancellation,
        position: row.try_get("position")?,
        revision: row.try_get::<i64, _>("sequence")? - 1,
    })
}

/// Appointment `id`.
pub async fn appointment(
    db: impl PgExecutor<'_>,
    id: AppointmentId,
) -> Result<Option<AppointmentView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM appointments WHERE appointment_id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(view_from_row)
    .transpose()
}

/// The appointments among `ids` that the read model holds (any order).
pub async fn appointments_by_ids(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<AppointmentView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM appointments WHERE appointment_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect()
}

/// Filters of an appointment list.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only ending after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only starting before this instant.
    pub to: Option<OffsetDateTime>,
    /// Only after this one in the list's order (start, id): the next page of a long list.
    pub after: Option<(OffsetDateTime, AppointmentId)>,
}

/// The SQL condition on `$1` (the user) of the appointments `role` may list.
fn owner(role: Role) -> &'static str {
    match role {
        Role::Patient => "patient_id = $1",
        Role::Doctor => "doctor_id = $1",
        Role::Admin => "($1::uuid IS NOT NULL)",
        // Auditors take part in no consultation; they read history through the audit API.
        Role::Auditor => "false",
    }
}

/// Most appointments one list returns.
pub const LIST_LIMIT: i64 = 500;

/// The appointments `user` takes part in (admins: all), by start.
pub async fn list(
    db: impl PgExecutor<'_>,
    user: UserId,
    role: Role,
    filter: &ListFilter,
) -> Result<Vec<AppointmentView>, sqlx::Error> {
    let owner = owner(role);
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM appointments
          WHERE {owner}
            AND ($2::text IS NULL OR status = $2)
            AND ($3::timestamptz IS NULL OR end_at > $3)
            AND ($4::timestamptz IS NULL OR start_at < $4)
            AND ($5::timestamptz IS NULL OR (start_at, appointment_id) > ($5, $6))
          ORDER BY start_at, appointment_id
          LIMIT {LIST_LIMIT}"
    ))
    .bind(user.as_uuid())
    .bind(filter.status.map(|s| s.as_str()))
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.after.map(|(start, _)| start))
    .bind(filter.after.map(|(_, id)| id.as_uuid()))
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect()
}

/// One condition on an appointment's start: `low <= start < high` (an absent bound is open),
/// or, when `negated`, its opposite.
#[derive(Clone, Copy, Debug)]
pub struct StartCondition {
    /// Inclusive lower bound.
    pub low: Option<OffsetDateTime>,
    /// Exclusive upper bound.
    pub high: Option<OffsetDateTime>,
    /// Whether the condition is that the start is outside the bounds.
    pub negated: bool,
}

/// A search of the appointments a user may list (as [`list`]), every condition in SQL, so
/// that paging and the total count cover all of them (no limit but the page's).
#[derive(Clone, Debug, Default)]
pub struct AppointmentSearch {
    /// Only this patient's.
    pub patient: Option<UserId>,
    /// Only this doctor's.
    pub doctor: Option<UserId>,
    /// Only in one of these statuses (`None`: any).
    pub statuses: Option<Vec<Status>>,
    /// Every one of these holds for the start.
    pub starts: Vec<StartCondition>,
}

/// A page of [`AppointmentSearch`]'s matches, by start, and how many match in all.
pub async fn search(
    pool: &sqlx::PgPool,
    user: UserId,
    role: Role,
    search: &AppointmentSearch,
    (offset, limit): (i64, i64),
) -> Result<(i64, Vec<AppointmentView>), sqlx::Error> {
    let owner = owner(role);
    let conditions = format!(
        "{owner}
            AND ($2::uuid IS NULL OR patient_id = $2)
            AND ($3::uuid IS NULL OR doctor_id = $3)
            AND ($4::text[] IS NULL OR status = ANY($4))
            AND NOT EXISTS (
                SELECT 1 FROM unnest($5::timestamptz[], $6::timestamptz[], $7::bool[]) AS c(low, high, negated)
                 WHERE ((c.low IS NULL OR start_at >= c.low) AND (c.high IS NULL OR start_at < c.high)) = c.negated)"
    );
    let statuses: Option<Vec<&str>> = search
        .statuses
        .as_ref()
        .map(|all| all.iter().map(Status::as_str).collect());
    let lows: Vec<Option<OffsetDateTime>> = search.starts.iter().map(|c| c.low).collect();
    let highs: Vec<Option<OffsetDateTime>> = search.starts.iter().map(|c| c.high).collect();
    let negated: Vec<bool> = search.starts.iter().map(|c| c.negated).collect();
    let count = format!("SELECT count(*) FROM appointments WHERE {conditions}");
    let page = format!(
        "SELECT {COLUMNS} FROM appointments WHERE {conditions}
          ORDER BY start_at, appointment_id LIMIT $8 OFFSET $9"
    );
    let total: i64 = sqlx::query_scalar(&count)
        .bind(user.as_uuid())
        .bind(search.patient.map(|p| p.as_uuid()))
        .bind(search.doctor.map(|d| d.as_uuid()))
        .bind(&statuses)
        .bind(&lows)
        .bind(&highs)
        .bind(&negated)
        .fetch_one(pool)
        .await?;
    let views = sqlx::query(&page)
        .bind(user.as_uuid())
        .bind(search.patient.map(|p| p.as_uuid()))
        .bind(search.doctor.map(|d| d.as_uuid()))
        .bind(&statuses)
        .bind(&lows)
        .bind(&highs)
        .bind(&negated)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?
        .iter()
        .map(view_from_row)
        .collect::<Result<_, _>>()?;
    Ok((total, views))
}

/// Whether doctor `doctor` shares a non-cancelled appointment with `patient`.
pub async fn doctor_treats_patient(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    patient: UserId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM appointments
                         WHERE doctor_id = $1 AND patient_id = $2 AND status <> 'cancelled')",
    )
    .bind(doctor.as_uuid())
    .bind(patient.as_uuid())
    .fetch_one(db)
    .await
}

/// A doctor's requests awaiting their confirmation, by start.
pub async fn pending_for_doctor(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    now: OffsetDateTime,
) -> Result<Vec<AppointmentView>, sqlx::Error> {
    select_where(
        db,
        "doctor_id = $1 AND status IN ('pending', 'rescheduled') AND awaiting = 'doctor' AND end_at > $2",
        doctor,
        now,
        None,
    )
    .await
}

/// A user's open appointments (pending, confirmed, rescheduled) ending in `[from, to)`.
pub async fn open_between(
    db: impl PgExecutor<'_>,
    column: &'static str,
    user: UserId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<AppointmentView>, sqlx::Error> {
    select_where(
        db,
        &format!("{column} = $1 AND status IN ('pending', 'confirmed', 'rescheduled') AND end_at > $2 AND start_at < $3"),
        user,
        from,
        Some(to),
    )
    .await
}

/// A patient's past appointments: ended, or closed (cancelled, completed, no-show), newest first.
pub async fn past_for_patient(
    db: impl PgExecutor<'_>,
    patient: UserId,
    now: OffsetDateTime,
) -> Result<Vec<AppointmentView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM appointments
          WHERE patient_id = $1 AND (end_at <= $2 OR status IN ('cancelled', 'completed', 'no_show'))
          ORDER BY start_at DESC LIMIT 100"
    ))
    .bind(patient.as_uuid())
    .bind(now)
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect()
}

async fn select_where(
    db: impl PgExecutor<'_>,
    condition: &str,
    user: UserId,
    from: OffsetDateTime,
    to: Option<OffsetDateTime>,
) -> Result<Vec<AppointmentView>, sqlx::Error> {
    let mut query = String::from("SELECT ");
    query.push_str(COLUMNS);
    query.push_str(" FROM appointments WHERE ");
    query.push_str(condition);
    query.push_str(" ORDER BY start_at LIMIT 100");
    let mut statement = sqlx::query(&query).bind(user.as_uuid()).bind(from);
    if let Some(to) = to {
        statement = statement.bind(to);
    }
    statement
        .fetch_all(db)
        .await?
        .iter()
        .map(view_from_row)
        .collect()
}
