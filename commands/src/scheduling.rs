//! Scheduling: availability windows, the booking rules, and the appointment lifecycle across
//! the doctor-day and appointment aggregates. Booking and rescheduling (the orchestration from
//! a typed request to a recorded appointment) are in [`booking`]; time off, recorded on every
//! doctor-day it touches, is in [`time_off`].

use std::collections::BTreeMap;

use sqlx::PgPool;
use telemed_domain::appointment::{
    AGGREGATE_TYPE as APPOINTMENT_TYPE, Appointment, AppointmentCommand, AppointmentError,
    AppointmentEvent, AppointmentState, Party, SlotRef,
};
use telemed_domain::availability::{
    AvailabilityCommand, AvailabilityError, DoctorDay, ReleaseReason,
};
use telemed_domain::calendar::{Interval, day_bounds, local_date};
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, DayId, Position, UserId, WindowId};
use time::Duration;
use time_tz::Tz;
use uuid::Uuid;

use crate::clock::Clock;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::executor::Executor;
use crate::store::{Source, Store};

mod booking;
mod time_off;

pub use booking::{Booked, Booking, keyed_appointment_id};
pub use time_off::MAX_TIME_OFF_DAYS;

/// Limits on what may be booked.
#[derive(Clone, Copy, Debug)]
pub struct SchedulingRules {
    /// How far ahead a booking must start.
    pub min_notice: Duration,
    /// How far ahead a booking may start at most.
    pub horizon: Duration,
    /// Shortest appointment.
    pub min_length: Duration,
    /// Longest appointment.
    pub max_length: Duration,
}

impl Default for SchedulingRules {
    fn default() -> Self {
        Self {
            min_notice: Duration::minutes(60),
            horizon: Duration::days(180),
            min_length: Duration::minutes(5),
            max_length: Duration::hours(4),
        }
    }
}

/// Why a scheduling request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulingError {
    /// Refused by the doctor-day.
    #[error(transparent)]
    Availability(#[from] AvailabilityError),
    /// Refused by the appointment.
    #[error(transparent)]
    Appointment(#[from] AppointmentError),
    /// The start is in the past.
    #[error("the appointment must start in the future")]
    InThePast,
    /// The start is too close.
    #[error("the appointment must start at least {0} minutes from now")]
    TooSoon(i64),
    /// The start is too far ahead.
    #[error("the appointment must start within {0} days from now")]
    TooFar(i64),
    /// Too short or too long.
    #[error("an appointment must last between {0} and {1} minutes")]
    BadLength(i64, i64),
    /// The patient has another appointment at an overlapping time.
    #[error("you already have an appointment at an overlapping time")]
    PatientBusy,
    /// No window holds the time and there is no such doctor at all.
    #[error("no such doctor")]
    NoSuchDoctor,
    /// A keyed booking's id is recorded for a different request (its idempotency key was
    /// reused).
    #[error("was already used for a different request")]
    KeyReused,
}

type Result<T> = std::result::Result<T, CommandError<SchedulingError>>;

fn rejected(error: impl Into<SchedulingError>) -> CommandError<SchedulingError> {
    CommandError::Rejected(error.into())
}

const CLAIM_INSERT: &str = "INSERT INTO patient_time_claims
       (claim_id, appointment_id, patient_id, start_at, end_at) VALUES ($1, $2, $3, $4, $5)";
/// SQLSTATE of an exclusion-constraint violation.
const EXCLUSION_VIOLATION: &str = "23P01";
const CLAIM_DROP: &str = "DELETE FROM patient_time_claims WHERE claim_id = $1";
const CLAIMS_OF: &str = "DELETE FROM patient_time_claims WHERE appointment_id = $1";
const CLAIMS_OF_EXCEPT: &str =
    "DELETE FROM patient_time_claims WHERE appointment_id = $1 AND claim_id <> $2";
/// Claims older than the cutoff that no open appointment's current time matches (a crash
/// mid-booking, or a cancel whose clean-up failed). Reads the appointments read model, which
/// is at most seconds behind a cutoff of minutes.
const STALE_CLAIMS: &str = "DELETE FROM patient_time_claims c
 WHERE c.claimed_at < $1
   AND NOT EXISTS (SELECT 1 FROM appointments a
                    WHERE a.appointment_id = c.appointment_id
                      AND a.status IN ('pending', 'confirmed', 'rescheduled')
                      AND a.start_at = c.start_at AND a.end_at = c.end_at)";
const LAST_EVENT: &str = "SELECT payload FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1";

/// Availability and appointment commands.
pub struct Scheduling {
    pool: PgPool,
    executor: Executor,
    days: Store<DoctorDay>,
    appointments: Store<Appointment>,
    clock: Clock,
    rules: SchedulingRules,
}

impl Scheduling {
    /// Scheduling on `pool`.
    pub fn new(pool: &PgPool, clock: Clock, rules: SchedulingRules) -> Self {
        Self {
            pool: pool.clone(),
            executor: Executor::new(pool.clone()),
            days: Store::new(pool, ()),
            appointments: Store::new(pool, ()),
            clock,
            rules,
        }
    }

    /// The service's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The booking rules.
    pub fn rules(&self) -> SchedulingRules {
        self.rules
    }

    async fn on_day(
        &self,
        day: DayId,
        command: AvailabilityCommand,
        context: &CommandContext,
    ) -> Result<Position> {
        self.executor
            .execute(&self.days, &day.to_string(), command, context)
            .await
            .map_err(|e| e.map_rejected(SchedulingError::from))
    }

    async fn on_appointment(
        &self,
        id: AppointmentId,
        command: AppointmentCommand,
        context: &CommandContext,
    ) -> Result<Position> {
        self.executor
            .execute(&self.appointments, &id.to_string(), command, context)
            .await
            .map_err(|e| e.map_rejected(SchedulingError::from))
    }

    /// The current state of an appointment, from its events.
    pub async fn appointment(&self, id: AppointmentId) -> Result<Option<AppointmentState>> {
        let loaded = self
            .appointments
            .load(&id.to_string(), Source::Database)
            .await?;
        Ok(loaded.aggregate.state().cloned())
    }

    /// Opens windows for `doctor` (in zone `tz`), grouped by local day; all or none: if a later
    /// day refuses, the windows already opened on earlier days are removed again.
    pub async fn open_windows(
        &self,
        doctor: UserId,
        tz: &Tz,
        intervals: &[Interval],
        context: &CommandContext,
    ) -> Result<(Vec<(WindowId, Interval)>, Position)> {
        let mut by_day: BTreeMap<DayId, Vec<(WindowId, Interval)>> = BTreeMap::new();
        for interval in intervals {
            let day = DayId::new(doctor, local_date(interval.start, tz));
            by_day
                .entry(day)
                .or_default()
                .push((WindowId::new(), *interval));
        }
        let mut opened: Vec<(DayId, Vec<(WindowId, Interval)>)> = Vec::new();
        let mut position = Position::START;
        for (day, windows) in by_day {
            let command = AvailabilityCommand::OpenWindows {
                day,
                day_bounds: day_bounds(day.date, tz),
                windows: windows.clone(),
            };
            match self.on_day(day, command, context).await {
                Ok(at) => {
                    position = position.max(at);
                    opened.push((day, windows));
                }
                Err(error) => {
                    for (day, windows) in opened {
                        for (window_id, _) in windows {
                            let undo = AvailabilityCommand::RemoveWindow { window_id };
                            if let Err(undo_error) = self.on_day(day, undo, context).await {
                                tracing::error!(%day, %window_id, error = %undo_error, "could not undo an opened window");
                            }
                        }
                    }
                    return Err(error);
                }
            }
        }
        let windows = {
            let mut all: Vec<(WindowId, Interval)> = Vec::new();
            for (_, windows) in &opened {
                all.extend(windows.iter().copied());
            }
            all.sort_by_key(|(_, interval)| interval.start);
            all
        };
        Ok((windows, position))
    }

    /// Moves or resizes a window within its day.
    pub async fn change_window(
        &self,
        day: DayId,
        tz: &Tz,
        window_id: WindowId,
        interval: Interval,
        context: &CommandContext,
    ) -> Result<Position> {
        let command = AvailabilityCommand::ChangeWindow {
            day_bounds: day_bounds(day.date, tz),
            window_id,
            interval,
        };
        self.on_day(day, command, context).await
    }

    /// Removes a window that holds no appointment.
    pub async fn remove_window(
        &self,
        day: DayId,
        window_id: WindowId,
        context: &CommandContext,
    ) -> Result<Position> {
        self.on_day(
            day,
            AvailabilityCommand::RemoveWindow { window_id },
            context,
        )
        .await
    }

    /// Checks a booking time against the rules: length, in the future, notice, horizon.
    fn check_time(&self, interval: &Interval) -> std::result::Result<(), SchedulingError> {
        let now = self.clock.now();
        let length = interval.duration();
        if length < self.rules.min_length || length > self.rules.max_length {
            return Err(SchedulingError::BadLength(
                self.rules.min_length.whole_minutes(),
                self.rules.max_length.whole_minutes(),
            ));
        }
        if interval.start <= now {
            return Err(SchedulingError::InThePast);
        }
        if interval.start < now + self.rules.min_notice {
            return Err(SchedulingError::TooSoon(
                self.rules.min_notice.whole_minutes(),
            ));
        }
        if interval.start > now + self.rules.horizon {
            return Err(SchedulingError::TooFar(self.rules.horizon.whole_days()));
        }
        Ok(())
    }

    /// Claims `interval` for the patient of `appointment`, refusing overlaps with their other
    /// open appointments (the table's exclusion constraint decides, across processes).
    async fn claim(
        &self,
        appointment: AppointmentId,
        patient: UserId,
        interval: Interval,
    ) -> Result<Uuid> {
        let claim = Uuid::new_v4();
        let inserted = sqlx::query(CLAIM_INSERT)
            .bind(claim)
            .bind(appointment.as_uuid())
            .bind(patient.as_uuid())
            .bind(interval.start)
            .bind(interval.end)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(claim),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(EXCLUSION_VIOLATION) => {
                Err(rejected(SchedulingError::PatientBusy))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Runs a claim clean-up statement; a failure is left to the sweeper.
    async fn forget_claims(&self, statement: &'static str, id: Uuid, except: Option<Uuid>) {
        let mut query = sqlx::query(statement).bind(id);
        if let Some(except) = except {
            query = query.bind(except);
        }
        if let Err(error) = query.execute(&self.pool).await {
            tracing::warn!(%id, %error, "could not remove a patient claim; the sweeper will");
        }
    }

    /// The last event of appointment `id`, as written.
    async fn last_event(&self, id: AppointmentId) -> Result<Option<AppointmentEvent>> {
        let payload: Option<serde_json::Value> = sqlx::query_scalar(LAST_EVENT)
            .bind(APPOINTMENT_TYPE)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        payload
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| CommandError::Internal(Box::new(e)))
    }

    /// After an infrastructure failure of the appointment command, whether it was recorded
    /// anyway (the commit may have succeeded before the connection dropped). Unknown counts
    /// as recorded: the sweeper frees what turns out to be orphaned, whereas releasing a slot
    /// that is held could double-book it.
    async fn recorded_despite(
        &self,
        id: AppointmentId,
        error: &CommandError<SchedulingError>,
    ) -> bool {
        match error {
            CommandError::Rejected(_) | CommandError::Contention => false,
            CommandError::Unavailable(_) | CommandError::Internal(_) => {
                !matches!(self.appointment(id).await, Ok(None))
            }
        }
    }

    /// Releases a slot; a failure is logged and left to the sweeper.
    async fn release_or_log(
        &self,
        slot: SlotRef,
        reason: ReleaseReason,
        context: &CommandContext,
    ) -> Position {
        self.release(slot, reason, context).await.unwrap_or_else(|error| {
            tracing::warn!(day = %slot.day, reservation = %slot.reservation_id, %error, "could not release a slot; the sweeper will");
            Position::START
        })
    }

    async fn release(
        &self,
        slot: SlotRef,
        reason: ReleaseReason,
        context: &CommandContext,
    ) -> Result<Position> {
        let command = AvailabilityCommand::Release {
            reservation_id: slot.reservation_id,
            reason,
        };
        self.on_day(slot.day, command, context).await
    }

    /// Cancels an appointment and frees the slot it held at that moment.
    pub async fn cancel(
        &self,
        id: AppointmentId,
        by: Party,
        reason: FreeText,
        context: &CommandContext,
    ) -> Result<Position> {
        let command = AppointmentCommand::Cancel {
            by,
            reason,
            at: self.clock.now(),
        };
        let cancelled = self.on_appointment(id, command, context).await?;
        self.forget_claims(CLAIMS_OF, id.as_uuid(), None).await;
        let released = match self.last_event(id).await {
            Ok(Some(AppointmentEvent::AppointmentCancelled { slot, .. })) => {
                self.release_or_log(slot, ReleaseReason::Cancelled, context)
                    .await
            }
            _ => Position::START,
        };
        Ok(cancelled.max(released))
    }

    /// Confirms the current time of an appointment.
    pub async fn confirm(
        &self,
        id: AppointmentId,
        by: Party,
        context: &CommandContext,
    ) -> Result<Position> {
        self.on_appointment(
            id,
            AppointmentCommand::Confirm {
                by,
                at: self.clock.now(),
            },
            context,
        )
        .await
    }

    /// Records that the consultation took place.
    pub async fn complete(
        &self,
        id: AppointmentId,
        by: Party,
        context: &CommandContext,
    ) -> Result<Position> {
        let at = self.clock.now();
        self.close(id, AppointmentCommand::Complete { by, at }, context)
            .await
    }

    /// Records that the patient did not come.
    pub async fn no_show(
        &self,
        id: AppointmentId,
        by: Party,
        context: &CommandContext,
    ) -> Result<Position> {
        let at = self.clock.now();
        self.close(id, AppointmentCommand::MarkNoShow { by, at }, context)
            .await
    }

    /// Records an outcome; the appointment no longer holds the patient's time.
    async fn close(
        &self,
        id: AppointmentId,
        outcome: AppointmentCommand,
        context: &CommandContext,
    ) -> Result<Position> {
        let position = self.on_appointment(id, outcome, context).await?;
        self.forget_claims(CLAIMS_OF, id.as_uuid(), None).await;
        Ok(position)
    }

    /// Releases a reservation that no appointment holds (found by the sweeper).
    pub async fn release_orphan(
        &self,
        slot: SlotRef,
        context: &CommandContext,
    ) -> Result<Position> {
        self.release(slot, ReleaseReason::Orphaned, context).await
    }

    /// Deletes patient claims older than `older_than` whose appointment was never recorded.
    pub async fn sweep_claims(&self, older_than: Duration) -> Result<u64> {
        let cutoff = self.clock.now() - older_than;
        let deleted = sqlx::query(STALE_CLAIMS)
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}
