//! The `availability` projection: open windows, live reservations, waitlist holds and time
//! off per doctor, and the free-slot computation over them.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::availability::AvailabilityEvent;
use telemed_domain::calendar::Interval;
use telemed_domain::values::{ShortNote, SlotPolicy};
use telemed_domain::{AppointmentId, DayId, ReservationId, TimeOffId, UserId, WindowId};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::runner::{Projection, ProjectionError};

/// Builds `availability_windows`, `reservations`, `slot_holds` and `time_off`.
pub struct AvailabilityProjection;

#[async_trait]
impl Projection for AvailabilityProjection {
    fn name(&self) -> &'static str {
        "availability"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "availability_windows",
            "reservations",
            "slot_holds",
            "time_off",
        ]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != telemed_domain::availability::AGGREGATE_TYPE {
            return Ok(());
        }
        match event.decode()? {
            AvailabilityEvent::WindowOpened {
                day,
                window_id,
                interval,
            } => window_opened(tx, day, window_id, interval).await?,
            AvailabilityEvent::WindowChanged {
                window_id,
                interval,
                ..
            } => window_changed(tx, window_id, interval).await?,
            AvailabilityEvent::WindowRemoved { window_id, .. } => {
                window_removed(tx, window_id).await?;
            }
            AvailabilityEvent::SlotReserved {
                day,
                reservation_id,
                appointment_id,
                patient_id,
                interval,
            } => {
                slot_reserved(
                    tx,
                    day,
                    reservation_id,
                    appointment_id,
                    patient_id,
                    interval,
                    event.recorded_at,
                )
                .await?;
            }
            AvailabilityEvent::SlotReleased { reservation_id, .. } => {
                slot_released(tx, reservation_id).await?;
            }
            held @ AvailabilityEvent::SlotHeld { .. } => slot_held(tx, held).await?,
            AvailabilityEvent::HoldEnded { hold_id, .. } => {
                sqlx::query("DELETE FROM slot_holds WHERE hold_id = $1")
                    .bind(hold_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            AvailabilityEvent::TimeOffBlocked {
                day,
                time_off_id,
                interval,
                note,
            } => {
                time_off_blocked(tx, (day, time_off_id), interval, &note, event.recorded_at)
                    .await?;
            }
            AvailabilityEvent::TimeOffUnblocked { time_off_id, .. } => {
                time_off_lifted(tx, time_off_id).await?;
            }
        }
        Ok(())
    }

    /// New windows and reservations go in multi-row INSERTs, one per table; a change, removal
    /// or release first writes the table's pending rows, so each table sees its events in order.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut windows = NewWindows::default();
        let mut reservations = NewReservations::default();
        for event in events {
            if event.aggregate_type != telemed_domain::availability::AGGREGATE_TYPE {
                continue;
            }
            match event.decode()? {
                AvailabilityEvent::WindowOpened {
                    day,
                    window_id,
                    interval,
                } => windows.push(&day, window_id, interval),
                AvailabilityEvent::SlotReserved {
                    day,
                    reservation_id,
                    appointment_id,
                    patient_id,
                    interval,
                } => reservations.push(
                    &day,
                    (reservation_id, appointment_id, patient_id),
                    interval,
                    event.recorded_at,
                ),
                AvailabilityEvent::WindowChanged { .. }
                | AvailabilityEvent::WindowRemoved { .. } => {
                    windows.flush(tx).await?;
                    self.apply(tx, event).await?;
                }
                AvailabilityEvent::SlotReleased { .. } => {
                    reservations.flush(tx).await?;
                    self.apply(tx, event).await?;
                }
                // Rare (waitlist offers): their own table, one row at a time.
                AvailabilityEvent::SlotHeld { .. } | AvailabilityEvent::HoldEnded { .. } => {
                    self.apply(tx, event).await?;
                }
                AvailabilityEvent::TimeOffBlocked { .. }
                | AvailabilityEvent::TimeOffUnblocked { .. } => self.apply(tx, event).await?,
            }
        }
        windows.flush(tx).await?;
        reservations.flush(tx).await?;
        Ok(())
    }
}

/// Windows opened in a batch, not yet written.
#[derive(Default)]
struct NewWindows {
    ids: Vec<Uuid>,
    doctors: Vec<Uuid>,
    days: Vec<String>,
    dates: Vec<Date>,
    starts: Vec<OffsetDateTime>,
    ends: Vec<OffsetDateTime>,
}

impl NewWindows {
    fn push(&mut self, day: &DayId, window_id: WindowId, interval: Interval) {
        self.ids.push(window_id.as_uuid());
        self.doctors.push(day.doctor.as_uuid());
        self.days.push(day.to_string());
        self.dates.push(day.date);
        self.starts.push(interval.start);
        self.ends.push(interval.end);
    }

    async fn flush(&mut self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(self);
        sqlx::query(
            "INSERT INTO availability_windows (window_id, doctor_id, day_id, local_date, start_at, end_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::date[],
                                  $5::timestamptz[], $6::timestamptz[])",
        )
        .bind(rows.ids)
        .bind(rows.doctors)
        .bind(rows.days)
        .bind(rows.dates)
        .bind(rows.starts)
        .bind(rows.ends)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Reservations made in a batch, not yet written.
#[derive(Default)]
struct NewReservations {
    ids: Vec<Uuid>,
    appointments: Vec<Uuid>,
    doctors: Vec<Uuid>,
    patients: Vec<Uuid>,
    days: Vec<String>,
    dates: Vec<Date>,
    starts: Vec<OffsetDateTime>,
    ends: Vec<OffsetDateTime>,
    reserved: Vec<OffsetDateTime>,
}

impl NewReservations {
    fn push(
        &mut self,
        day: &DayId,
        (id, appointment, patient): (ReservationId, AppointmentId, UserId),
        interval: Interval,
        reserved_at: OffsetDateTime,
    ) {
        self.ids.push(id.as_uuid());
        self.appointments.push(appointment.as_uuid());
        self.doctors.push(day.doctor.as_uuid());
        self.patients.push(patient.as_uuid());
        self.days.push(day.to_string());
        self.dates.push(day.date);
        self.starts.push(interval.start);
        self.ends.push(interval.end);
        self.reserved.push(reserved_at);
    }

    async fn flush(&mut self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(self);
        sqlx::query(
            "INSERT INTO reservations (reservation_id, appointment_id, doctor_id, patient_id, day_id,
                                       local_date, start_at, end_at, reserved_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
                                  $6::date[], $7::timestamptz[], $8::timestamptz[],
                                  $9::timestamptz[])",
        )
        .bind(rows.ids)
        .bind(rows.appointments)
        .bind(rows.doctors)
        .bind(rows.patients)
        .bind(rows.days)
        .bind(rows.dates)
        .bind(rows.starts)
        .bind(rows.ends)
        .bind(rows.reserved)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

async fn window_opened(
    tx: &mut PgConnection,
    day: DayId,
    window_id: WindowId,
    interval: Interval,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO availability_windows (window_id, doctor_id, day_id, local_date, start_at, end_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(window_id.as_uuid())
    .bind(day.doctor.as_uuid())
    .bind(day.to_string())
    .bind(day.date)
    .bind(interval.start)
    .bind(interval.end)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn window_changed(
    tx: &mut PgConnection,
    window_id: WindowId,
    interval: Interval,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE availability_windows SET start_at = $2, end_at = $3 WHERE window_id = $1")
        .bind(window_id.as_uuid())
        .bind(interval.start)
        .bind(interval.end)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn window_removed(tx: &mut PgConnection, window_id: WindowId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM availability_windows WHERE window_id = $1")
        .bind(window_id.as_uuid())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Reservation `reservation_id` of `interval` on `day` for the appointment and its patient,
/// recorded at `reserved_at`.
async fn slot_reserved(
    tx: &mut PgConnection,
    day: DayId,
    reservation_id: ReservationId,
    appointment_id: AppointmentId,
    patient_id: UserId,
    interval: Interval,
    reserved_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reservations (reservation_id, appointment_id, doctor_id, patient_id, day_id,
                                   local_date, start_at, end_at, reserved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(reservation_id.as_uuid())
    .bind(appointment_id.as_uuid())
    .bind(day.doctor.as_uuid())
    .bind(patient_id.as_uuid())
    .bind(day.to_string())
    .bind(day.date)
    .bind(interval.start)
    .bind(interval.end)
    .bind(reserved_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A waitlist hold, into `slot_holds`.
async fn slot_held(tx: &mut PgConnection, event: AvailabilityEvent) -> Result<(), sqlx::Error> {
    let AvailabilityEvent::SlotHeld {
        day,
        hold_id,
        appointment_id,
        patient_id,
        interval,
        expires_at,
    } = event
    else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO slot_holds (hold_id, appointment_id, doctor_id, patient_id, day_id,
                                 start_at, end_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(hold_id.as_uuid())
    .bind(appointment_id.as_uuid())
    .bind(day.doctor.as_uuid())
    .bind(patient_id.as_uuid())
    .bind(day.to_string())
    .bind(interval.start)
    .bind(interval.end)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn slot_released(
    tx: &mut PgConnection,
    reservation_id: ReservationId,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reservations WHERE reservation_id = $1")
        .bind(reservation_id.as_uuid())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Time off `time_off_id` of the day's doctor (recorded on several days: the first one
/// inserts it).
async fn time_off_blocked(
    tx: &mut PgConnection,
    (day, time_off_id): (DayId, TimeOffId),
    interval: Interval,
    note: &ShortNote,
    created_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO time_off (time_off_id, doctor_id, start_at, end_at, note, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (time_off_id) DO NOTHING",
    )
    .bind(time_off_id.as_uuid())
    .bind(day.doctor.as_uuid())
    .bind(interval.start)
    .bind(interval.end)
    .bind(note.as_str())
    .bind(created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn time_off_lifted(tx: &mut PgConnection, time_off_id: TimeOffId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM time_off WHERE time_off_id = $1")
        .bind(time_off_id.as_uuid())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An open availability window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    /// Window id.
    #[schema(value_type = String, format = Uuid)]
    pub id: WindowId,
    /// First instant (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// First instant after (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end: OffsetDateTime,
}

/// A window with the day it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRow {
    /// The window.
    pub window: WindowView,
    /// Its doctor-day.
    pub day: DayId,
}

fn window_from_row(row: &PgRow) -> Result<WindowRow, sqlx::Error> {
    let day: String = row.try_get("day_id")?;
    Ok(WindowRow {
        window: WindowView {
            id: WindowId::from(row.try_get::<Uuid, _>("window_id")?),
            start: row.try_get("start_at")?,
            end: row.try_get("end_at")?,
        },
        day: day.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

/// Window `id` of `doctor`.
pub async fn window(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    id: WindowId,
) -> Result<Option<WindowRow>, sqlx::Error> {
    sqlx::query(
        "SELECT window_id, day_id, start_at, end_at FROM availability_windows WHERE window_id = $1 AND doctor_id = $2",
    )
    .bind(id.as_uuid())
    .bind(doctor.as_uuid())
    .fetch_optional(db)
    .await?
    .as_ref()
    .map(window_from_row)
    .transpose()
}

/// The doctor-day whose window contains `interval`, if any, with the doctor's slot policy
/// (one query).
pub async fn day_containing(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    interval: Interval,
) -> Result<Option<(DayId, SlotPolicy)>, sqlx::Error> {
    let row: Option<(String, i32, i32, Option<i32>)> = sqlx::query_as(
        "SELECT w.day_id, p.buffer_before_minutes, p.buffer_after_minutes, p.slot_interval_minutes
           FROM availability_windows w JOIN doctor_profiles p ON p.doctor_id = w.doctor_id
          WHERE w.doctor_id = $1 AND w.start_at <= $2 AND w.end_at >= $3
            AND w.start_at > $2 - interval '26 hours'
          ORDER BY w.start_at LIMIT 1",
    )
    .bind(doctor.as_uuid())
    .bind(interval.start)
    .bind(interval.end)
    .fetch_optional(db)
    .await?;
    row.map(|(day, before, after, step)| {
        let day = day.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok((day, policy_of(before, after, step)?))
    })
    .transpose()
}

/// A policy as stored (the projection only stores valid ones).
fn policy_of(before: i32, after: i32, step: Option<i32>) -> Result<SlotPolicy, sqlx::Error> {
    SlotPolicy::parse(before.into(), after.into(), step.map(i64::from)).map_err(|invalid| {
        let fields: Vec<_> = invalid.iter().map(|i| i.field).collect();
        sqlx::Error::Decode(format!("a stored slot policy is out of range: {fields:?}").into())
    })
}

/// The slot policy of `doctor` (the default when there is no such doctor).
pub async fn slot_policy(
    db: impl PgExecutor<'_>,
    doctor: UserId,
) -> Result<SlotPolicy, sqlx::Error> {
    let row: Option<(i32, i32, Option<i32>)> = sqlx::query_as(
        "SELECT buffer_before_minutes, buffer_after_minutes, slot_interval_minutes
           FROM doctor_profiles WHERE doctor_id = $1",
    )
    .bind(doctor.as_uuid())
    .fetch_optional(db)
    .await?;
    match row {
        Some((before, after, step)) => policy_of(before, after, step),
        None => Ok(SlotPolicy::default()),
    }
}

/// A doctor's time off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeOffRow {
    /// Its id.
    pub id: TimeOffId,
    /// When.
    pub interval: Interval,
    /// The doctor's note.
    pub note: String,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
}

fn time_off_from_row(row: &PgRow) -> Result<TimeOffRow, sqlx::Error> {
    Ok(TimeOffRow {
        id: TimeOffId::from(row.try_get::<Uuid, _>("time_off_id")?),
        interval: Interval {
            start: row.try_get("start_at")?,
            end: row.try_get("end_at")?,
        },
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
    })
}

const TIME_OFF_COLUMNS: &str = "time_off_id, start_at, end_at, note, created_at";

/// Time off of `doctor` ending after `from`, by start (at most 500).
pub async fn time_off_after(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    from: OffsetDateTime,
) -> Result<Vec<TimeOffRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TIME_OFF_COLUMNS} FROM time_off WHERE doctor_id = $1 AND end_at > $2
          ORDER BY start_at, time_off_id LIMIT 500"
    );
    sqlx::query(&sql)
        .bind(doctor.as_uuid())
        .bind(from)
        .fetch_all(db)
        .await?
        .iter()
        .map(time_off_from_row)
        .collect()
}

/// Time off `id` of `doctor`.
pub async fn time_off(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    id: TimeOffId,
) -> Result<Option<TimeOffRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TIME_OFF_COLUMNS} FROM time_off WHERE doctor_id = $1 AND time_off_id = $2"
    );
    sqlx::query(&sql)
        .bind(doctor.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(time_off_from_row)
        .transpose()
}

/// Time off of `doctor` overlapping `[from, to)`.
pub async fn time_off_between(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Interval>, sqlx::Error> {
    let rows: Vec<(OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT start_at, end_at FROM time_off
          WHERE doctor_id = $1 AND start_at < $3 AND end_at > $2 ORDER BY start_at",
    )
    .bind(doctor.as_uuid())
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(start, end)| Interval { start, end })
        .collect())
}

/// Whether `doctor` has windows ending after `now`.
pub async fn has_future_windows(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM availability_windows WHERE doctor_id = $1 AND end_at > $2)",
    )
    .bind(doctor.as_uuid())
    .bind(now)
    .fetch_one(db)
    .await
}

/// Windows of `doctor` overlapping `[from, to)`, by start.
pub async fn windows_between(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<WindowRow>, sqlx::Error> {
    sqlx::query(
        "SELECT window_id, day_id, start_at, end_at FROM availability_windows
          WHERE doctor_id = $1 AND start_at < $3 AND end_at > $2 ORDER BY start_at",
    )
    .bind(doctor.as_uuid())
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?
    .iter()
    .map(window_from_row)
    .collect()
}

/// Live reservations and waitlist holds of `doctor` overlapping `[from, to)`: time nobody
/// else may book.
pub async fn reserved_between(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Interval>, sqlx::Error> {
    let rows: Vec<(OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT start_at, end_at FROM reservations
          WHERE doctor_id = $1 AND start_at < $3 AND end_at > $2
         UNION ALL
         SELECT start_at, end_at FROM slot_holds
          WHERE doctor_id = $1 AND start_at < $3 AND end_at > $2
         ORDER BY 1",
    )
    .bind(doctor.as_uuid())
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(start, end)| Interval { start, end })
        .collect())
}

/// Free minutes (open, not reserved and not in time off) and reserved minutes per local date
/// of `doctor`, for dates in `[first, last]`.
pub async fn minutes_per_day(
    db: impl PgExecutor<'_>,
    doctor: UserId,
    first: Date,
    last: Date,
) -> Result<Vec<(Date, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d::date AS local_date,
                COALESCE((SELECT sum(extract(epoch FROM upper(free) - lower(free)))::bigint / 60
                            FROM unnest(
                                   (SELECT range_agg(tstzrange(w.start_at, w.end_at))
                                      FROM availability_windows w
                                     WHERE w.doctor_id = $1 AND w.local_date = d::date)
                                   - COALESCE((SELECT range_agg(tstzrange(t.start_at, t.end_at))
                                                 FROM time_off t WHERE t.doctor_id = $1),
                                              '{}'::tstzmultirange)
                                   - COALESCE((SELECT range_agg(tstzrange(r.start_at, r.end_at))
                                                 FROM reservations r
                                                WHERE r.doctor_id = $1 AND r.local_date = d::date),
                                              '{}'::tstzmultirange)) AS free), 0),
                COALESCE((SELECT sum(extract(epoch FROM end_at - start_at))::bigint / 60
                            FROM reservations r WHERE r.doctor_id = $1 AND r.local_date = d::date), 0)
           FROM generate_series($2::date, $3::date, interval '1 day') AS d
          ORDER BY 1",
    )
    .bind(doctor.as_uuid())
    .bind(first)
    .bind(last)
    .fetch_all(db)
    .await
}

/// A reservation no appointment holds any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanReservation {
    /// Its doctor-day.
    pub day: DayId,
    /// Its id.
    pub reservation_id: telemed_domain::ReservationId,
}

/// Reservations older than `before` that are not the current slot of a non-cancelled
/// appointment.
pub async fn orphan_reservations(
    db: impl PgExecutor<'_>,
    before: OffsetDateTime,
) -> Result<Vec<OrphanReservation>, sqlx::Error> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT r.day_id, r.reservation_id FROM reservations r
          WHERE r.reserved_at < $1
            AND NOT EXISTS (SELECT 1 FROM appointments a
                             WHERE a.reservation_id = r.reservation_id AND a.status <> 'cancelled')
          LIMIT 100",
    )
    .bind(before)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(day, id)| {
            Ok(OrphanReservation {
                day: day.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                reservation_id: id.into(),
            })
        })
        .collect()
}

/// What a slot must keep clear of: the doctor's reservations (with the policy's buffers)
/// and time off.
#[derive(Clone, Copy, Debug)]
pub struct Busy<'a> {
    /// Live reservations.
    pub reserved: &'a [Interval],
    /// Time off.
    pub time_off: &'a [Interval],
    /// Buffers and slot interval.
    pub policy: SlotPolicy,
}

/// Free slots of `length`, starting every `policy.step(length)` from each window's start, that
/// keep the buffers from every reservation, overlap no time off and start within
/// `[not_before, not_after]`.
pub fn free_slots(
    windows: &[Interval],
    busy: Busy<'_>,
    length: Duration,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Vec<Interval> {
    let mut slots = Vec::new();
    if length <= Duration::ZERO {
        return slots;
    }
    let step = busy.policy.step(length);
    for window in windows {
        let mut start = window.start;
        while start + length <= window.end {
            let slot = Interval {
                start,
                end: start + length,
            };
            let free = !busy.reserved.iter().any(|r| busy.policy.clash(r, &slot))
                && !busy.time_off.iter().any(|t| t.overlaps(&slot));
            if free && start >= not_before && start <= not_after {
                slots.push(slot);
            }
            start += step;
        }
    }
    slots.sort();
    slots
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn busy<'a>(
        reserved: &'a [Interval],
        time_off: &'a [Interval],
        policy: SlotPolicy,
    ) -> Busy<'a> {
        Busy {
            reserved,
            time_off,
            policy,
        }
    }

    fn starts(slots: &[Interval], from: OffsetDateTime) -> Vec<i64> {
        slots
            .iter()
            .map(|s| (s.start - from).whole_minutes())
            .collect()
    }

    #[test]
    fn slots_start_on_the_interval_and_keep_the_buffers_and_time_off() {
        let nine = datetime!(2027-06-01 09:00 UTC);
        let policy = SlotPolicy::parse(10, 5, Some(15)).unwrap();
        let reserved = [span(nine + Duration::minutes(60), 30)];
        let time_off = [span(nine + Duration::minutes(150), 30)];
        let slots = free_slots(
            &[span(nine, 240)],
            busy(&reserved, &time_off, policy),
            Duration::minutes(30),
            nine,
            nine + Duration::days(1),
        );
        // Taken 60–90: between two appointments go 5 minutes after the first and 10 before
        // the second, so a slot ends by 45 or starts from 105; time off 150–180 takes the
        // slots that overlap it, not their buffers.
        assert_eq!(starts(&slots, nine), vec![0, 15, 105, 120, 180, 195, 210]);
    }

    fn span(from: OffsetDateTime, minutes: i64) -> Interval {
        Interval {
            start: from,
            end: from + Duration::minutes(minutes),
        }
    }

    #[test]
    fn slots_run_back_to_back_from_the_window_start_and_skip_reservations() {
        let nine = datetime!(2027-06-01 09:00 UTC);
        let windows = [span(nine, 120)];
        let reserved = [span(nine + Duration::minutes(40), 30)];
        let slots = free_slots(
            &windows,
            busy(&reserved, &[], SlotPolicy::default()),
            Duration::minutes(30),
            nine,
            nine + Duration::days(1),
        );
        let starts: Vec<_> = slots
            .iter()
            .map(|s| (s.start - nine).whole_minutes())
            .collect();
        assert_eq!(starts, vec![0, 90]);
    }

    #[test]
    fn a_slot_must_fit_in_the_window() {
        let nine = datetime!(2027-06-01 09:00 UTC);
        let slots = free_slots(
            &[span(nine, 50)],
            busy(&[], &[], SlotPolicy::default()),
            Duration::minutes(30),
            nine,
            nine + Duration::days(1),
        );
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn slots_before_the_notice_period_are_not_offered() {
        let nine = datetime!(2027-06-01 09:00 UTC);
        let slots = free_slots(
            &[span(nine, 120)],
            busy(&[], &[], SlotPolicy::default()),
            Duration::minutes(30),
            nine + Duration::minutes(45),
            nine + Duration::days(1),
        );
        assert_eq!(
            slots.first().map(|s| s.start),
            Some(nine + Duration::minutes(60))
        );
    }
}
