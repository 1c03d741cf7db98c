//! Booking and rescheduling: the whole orchestration from a typed request to a recorded
//! appointment.
//!
//! Booking = check the time against the rules → find the doctor-day whose window holds it (from
//! the availability read model) → decide the request on the new appointment and the reservation
//! on the doctor-day (where concurrent bookings race and exactly one wins) → write the patient's
//! claim (no overlapping appointments per patient) and both aggregates' events in one statement,
//! so in one transaction and one round trip. A booking is therefore recorded whole or not at
//! all: it has nothing to compensate and a crash leaves nothing of it behind. A keyed retry of a
//! recorded booking finds it and succeeds, unless it asks for something else.
//!
//! Rescheduling still goes step by step (claim, reserve, record the move, release the old slot,
//! several commits): what can fail half-way there is compensated (the new slot and claim given
//! back when the move is refused), and what a crash leaves behind (a reservation or claim that
//! no appointment holds, an old slot not yet released) is freed by the sweeper, which also
//! covers cancellations whose release failed.

use telemed_domain::NamedCommand;
use telemed_domain::appointment::Appointment;
use telemed_domain::appointment::{
    AppointmentCommand, AppointmentError, AppointmentEvent, AppointmentState, Party, SlotRef,
};
use telemed_domain::availability::{
    AvailabilityCommand, AvailabilityError, DoctorDay, ReleaseReason,
};
use telemed_domain::calendar::Interval;
use telemed_domain::values::{FreeText, SlotPolicy};
use telemed_domain::{AppointmentId, DayId, Position, ReservationId, UserId};
use telemed_projections::{availability, profiles};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    CLAIM_DROP, CLAIMS_OF_EXCEPT, EXCLUSION_VIOLATION, Result, Scheduling, SchedulingError,
    rejected,
};
use crate::context::CommandContext;
use crate::error::{BoxError, CommandError};
use crate::executor::{MAX_ATTEMPTS, backoff, decide};
use crate::store::{
    AppendError, Columns, Loaded, Rows, Source, append_error, append_events, positions,
};

/// A validated booking request.
#[derive(Clone, Debug)]
pub struct Booking {
    /// Id of the new appointment: fresh, or [`keyed_appointment_id`] so that a retry of a
    /// recorded booking finds it (and succeeds) instead of booking twice.
    pub appointment_id: AppointmentId,
    /// The doctor.
    pub doctor_id: UserId,
    /// The patient.
    pub patient_id: UserId,
    /// When.
    pub interval: Interval,
    /// Why.
    pub reason: FreeText,
    /// The waitlist hold the booking takes (an accepted offer's): it is refused with
    /// `NoSuchHold` unless that hold is still open.
    pub hold: Option<ReservationId>,
}

/// A recorded booking.
#[derive(Clone, Copy, Debug)]
pub struct Booked {
    /// Where the read models hold it once they reach this position.
    pub position: Position,
    /// When it was requested (for a retry of a recorded booking: now).
    pub at: OffsetDateTime,
}

/// The id of a keyed booking, derived from the user and key (UUID v5): a retry whose first
/// attempt was recorded, but not answered (the database went away), finds that booking.
pub fn keyed_appointment_id(user: UserId, key: &str) -> AppointmentId {
    const KEYED_BOOKINGS: Uuid = Uuid::from_u128(0x5d2b_8f6e_3c1a_4e57_9b0d_7a64_e2c1_f938);
    let name = format!("{user}/{key}");
    AppointmentId::from(Uuid::new_v5(&KEYED_BOOKINGS, name.as_bytes()))
}

/// The claim and the events of a booking, in one statement (one transaction): the claim is
/// inserted first (the events are selected from it), so an overlapping claim of the patient
/// refuses the booking (exclusion violation) before any event is written.
const BOOK: &str = append_events!(
    "WITH claim AS (
    INSERT INTO patient_time_claims (claim_id, appointment_id, patient_id, start_at, end_at)
    VALUES ($8, $9, $10, $11, $12)
    RETURNING claim_id)",
    "claim,"
);

/// Whether the patient holds a claim of another appointment that overlaps the time.
const PATIENT_BUSY: &str = "SELECT EXISTS (SELECT 1 FROM patient_time_claims
 WHERE patient_id = $1 AND appointment_id <> $2 AND tstzrange(start_at, end_at) && tstzrange($3, $4))";

/// A booking decided on its two aggregates (whose states have applied the events), not yet
/// written.
struct DecidedBooking {
    day: Loaded<DoctorDay>,
    appointment: Loaded<Appointment>,
    /// The doctor-day's events, then the appointment's.
    rows: [Rows; 2],
}

/// How writing a decided booking ended.
enum Written {
    /// Committed; the position of its last event.
    Committed(Position),
    /// Another writer changed one of the aggregates first: decide again.
    Lost,
    /// Refused or failed; nothing was written, or (the database went away during the commit)
    /// all of it, which a keyed retry finds.
    Failed(CommandError<SchedulingError>),
}

/// The appointment's request and the doctor-day's reservation of a booking.
fn booking_commands(
    booking: &Booking,
    (slot, policy): (SlotRef, SlotPolicy),
    at: OffsetDateTime,
) -> (AppointmentCommand, AvailabilityCommand) {
    let request = AppointmentCommand::Request {
        doctor_id: booking.doctor_id,
        patient_id: booking.patient_id,
        interval: booking.interval,
        reason: booking.reason.clone(),
        slot,
        at,
    };
    let reserve = AvailabilityCommand::Reserve {
        day: slot.day,
        reservation_id: slot.reservation_id,
        appointment_id: booking.appointment_id,
        patient_id: booking.patient_id,
        interval: booking.interval,
        policy,
        hold: booking.hold,
    };
    (request, reserve)
}

fn internal(error: impl Into<BoxError>) -> CommandError<SchedulingError> {
    CommandError::Internal(error.into())
}

/// A failed write, sorted like any append's.
fn append_failure(error: AppendError) -> CommandError<SchedulingError> {
    match error {
        AppendError::Conflict => CommandError::Contention,
        AppendError::Database(error) => error.into(),
        AppendError::Batch(error) => CommandError::Internal(Box::new(error)),
        AppendError::Serialization(error) => CommandError::Internal(error),
    }
}

/// A claimed and reserved time, not yet recorded on the appointment.
struct Held {
    claim: Uuid,
    slot: SlotRef,
    position: Position,
}

impl Scheduling {
    /// The doctor-day whose window holds `interval` after checking it against the rules, with
    /// the doctor's slot policy (which the doctor-day applies): `SlotUnavailable` when no
    /// window holds it, `NoSuchDoctor` when there is no such doctor.
    async fn bookable_day(
        &self,
        doctor: UserId,
        interval: Interval,
    ) -> Result<(DayId, SlotPolicy)> {
        self.check_time(&interval).map_err(rejected)?;
        if let Some(found) = availability::day_containing(&self.pool, doctor, interval).await? {
            return Ok(found);
        }
        match profiles::doctor(&self.pool, doctor).await? {
            Some(_) => Err(rejected(AvailabilityError::SlotUnavailable)),
            None => Err(rejected(SchedulingError::NoSuchDoctor)),
        }
    }

    /// Claims `interval` for `patient` and reserves it on `day` for appointment `id`; the claim
    /// is dropped again when the reservation is refused.
    async fn hold(
        &self,
        (id, patient): (AppointmentId, UserId),
        (day, policy): (DayId, SlotPolicy),
        interval: Interval,
        context: &CommandContext,
    ) -> Result<Held> {
        let claim = self.claim(id, patient, interval).await?;
        let slot = SlotRef {
            day,
            reservation_id: ReservationId::new(),
        };
        let reserve = AvailabilityCommand::Reserve {
            day,
            reservation_id: slot.reservation_id,
            appointment_id: id,
            patient_id: patient,
            interval,
            policy,
            hold: None,
        };
        match self.on_day(day, reserve, context).await {
            Ok(position) => Ok(Held {
                claim,
                slot,
                position,
            }),
            Err(error) => {
                self.forget_claims(CLAIM_DROP, claim, None).await;
                Err(error)
            }
        }
    }

    /// Gives back what [`Self::hold`] took after the appointment command failed, unless it was
    /// recorded despite the failure.
    async fn unhold(
        &self,
        id: AppointmentId,
        held: &Held,
        error: &CommandError<SchedulingError>,
        context: &CommandContext,
    ) {
        if !self.recorded_despite(id, error).await {
            self.release_or_log(held.slot, ReleaseReason::BookingFailed, context)
                .await;
            self.forget_claims(CLAIM_DROP, held.claim, None).await;
        }
    }

    /// Books a consultation: checks the time, finds the doctor-day, then decides the
    /// reservation and the appointment and commits them with the patient's claim in one
    /// statement (see [`Self::record`]). Booking an id that is already recorded for the same
    /// patient, doctor and time succeeds without a change (a retry); for anything else it is
    /// refused with [`SchedulingError::KeyReused`].
    pub async fn book(&self, booking: Booking, context: &CommandContext) -> Result<Booked> {
        let day = self
            .bookable_day(booking.doctor_id, booking.interval)
            .await?;
        let at = self.clock.now();
        match self.record(&booking, day, at, context).await {
            Ok(position) => Ok(Booked { position, at }),
            // The caller chose the id of a booking recorded before: this is a retry of it.
            Err(CommandError::Rejected(SchedulingError::Appointment(
                AppointmentError::AlreadyRequested,
            ))) => self.retried(&booking).await,
            Err(error) => Err(error),
        }
    }

    /// Records a booking: the patient's claim, the doctor-day's reservation and the new
    /// appointment's request in one statement, so in one transaction: all of it or none, and
    /// nothing to compensate. Each aggregate's sequence is checked by the events' primary key
    /// as in any append; a lost race (or a refusal decided on cached state) is decided again
    /// on fresh state, a bounded number of times.
    async fn record(
        &self,
        booking: &Booking,
        day: (DayId, SlotPolicy),
        at: OffsetDateTime,
        context: &CommandContext,
    ) -> Result<Position> {
        let mut fresh = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let Some(decided) = self
                .decide_booking(booking, day, at, fresh, context)
                .await?
            else {
                fresh = true;
                continue;
            };
            match self.write_booking(booking, decided).await {
                Written::Committed(position) => return Ok(position),
                Written::Failed(error) => return Err(error),
                Written::Lost => {
                    fresh = true;
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Err(CommandError::Contention)
    }

    /// Decides the request on the new appointment and the reservation on `day`, from the
    /// caches (the appointment assumed new) unless `fresh`. `None`: refused on state that may
    /// be stale, to be decided again on fresh state.
    async fn decide_booking(
        &self,
        booking: &Booking,
        (day, policy): (DayId, SlotPolicy),
        at: OffsetDateTime,
        fresh: bool,
        context: &CommandContext,
    ) -> Result<Option<DecidedBooking>> {
        let (appointment_id, day_id) = (booking.appointment_id.to_string(), day.to_string());
        let (from_day, from_appointment) = if fresh {
            (Source::Database, Source::Database)
        } else {
            (Source::Cache, Source::AssumeNew)
        };
        let (mut appointment, mut doctor_day) = tokio::try_join!(
            self.appointments.load(&appointment_id, from_appointment),
            self.days.load(&day_id, from_day),
        )?;
        let slot = SlotRef {
            day,
            reservation_id: ReservationId::new(),
        };
        let (request, reserve) = booking_commands(booking, (slot, policy), at);
        let (request_name, reserve_name) = (request.command_name(), reserve.command_name());
        let requested = match decide(&(), &mut appointment.aggregate, request).await {
            Ok(events) => events,
            Err(_) if appointment.cached => return Ok(None),
            Err(error) => return Err(rejected(error)),
        };
        let reserved = match decide(&(), &mut doctor_day.aggregate, reserve).await {
            Ok(events) => events,
            Err(_) if doctor_day.cached => return Ok(None),
            // The hold may have been taken by this very appointment (a retry of an accepted
            // offer): decide again with the appointment as it is, not as assumed.
            Err(AvailabilityError::NoSuchHold) if appointment.cached => return Ok(None),
            Err(error) => return Err(self.refused_slot(booking, error).await),
        };
        let rows = [
            self.days
                .rows(
                    &day_id,
                    doctor_day.sequence,
                    reserved,
                    &context.metadata(reserve_name),
                )
                .map_err(append_failure)?,
            self.appointments
                .rows(
                    &appointment_id,
                    appointment.sequence,
                    requested,
                    &context.metadata(request_name),
                )
                .map_err(append_failure)?,
        ];
        Ok(Some(DecidedBooking {
            day: doctor_day,
            appointment,
            rows,
        }))
    }

    /// The answer to a refused reservation. As when the claim was written first, a patient
    /// who holds an overlapping appointment is told so rather than that the slot is taken.
    async fn refused_slot(
        &self,
        booking: &Booking,
        error: AvailabilityError,
    ) -> CommandError<SchedulingError> {
        if error != AvailabilityError::SlotUnavailable {
            return rejected(error);
        }
        let busy = sqlx::query_scalar::<_, bool>(PATIENT_BUSY)
            .bind(booking.patient_id.as_uuid())
            .bind(booking.appointment_id.as_uuid())
            .bind(booking.interval.start)
            .bind(booking.interval.end)
            .fetch_one(&self.pool)
            .await;
        match busy {
            Ok(true) => rejected(SchedulingError::PatientBusy),
            Ok(false) => rejected(error),
            Err(error) => error.into(),
        }
    }

    /// Writes a decided booking with the patient's claim (one statement), and caches the two
    /// aggregates' new states.
    async fn write_booking(&self, booking: &Booking, decided: DecidedBooking) -> Written {
        let DecidedBooking {
            day,
            appointment,
            rows,
        } = decided;
        let [day_key, appointment_key] = [&rows[0], &rows[1]].map(|r| r.aggregate_id().to_string());
        let columns = Columns::of(&rows);
        let written = columns
            .bind(sqlx::query(BOOK))
            .bind(Uuid::new_v4())
            .bind(booking.appointment_id.as_uuid())
            .bind(booking.patient_id.as_uuid())
            .bind(booking.interval.start)
            .bind(booking.interval.end)
            .fetch_all(&self.pool)
            .await;
        let returned = match written {
            Ok(returned) => returned,
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(EXCLUSION_VIOLATION) => {
                return Written::Failed(rejected(SchedulingError::PatientBusy));
            }
            Err(error) => {
                self.days.forget(&day_key);
                self.appointments.forget(&appointment_key);
                return match append_error(error) {
                    AppendError::Conflict => Written::Lost,
                    other => Written::Failed(append_failure(other)),
                };
            }
        };
        let [at_day, at_appointment] = match positions(&rows, &returned).as_deref() {
            Ok(&[a, b]) => [a, b],
            _ => return Written::Failed(internal("a booking's positions were not returned")),
        };
        let day_sequence = day.sequence + rows[0].len();
        let appointment_sequence = appointment.sequence + rows[1].len();
        self.days
            .remember(&day_key, day.aggregate, day_sequence, at_day);
        self.appointments.remember(
            &appointment_key,
            appointment.aggregate,
            appointment_sequence,
            at_appointment,
        );
        Written::Committed(at_day.max(at_appointment))
    }

    /// A booking whose id was recorded before: the same request again, or a reused key.
    async fn retried(&self, booking: &Booking) -> Result<Booked> {
        let state = self.appointment(booking.appointment_id).await?;
        let same = state.is_some_and(|s: AppointmentState| {
            (s.patient_id, s.doctor_id, s.interval)
                == (booking.patient_id, booking.doctor_id, booking.interval)
        });
        if !same {
            return Err(rejected(SchedulingError::KeyReused));
        }
        // Its answer waits for read models that show that booking.
        let position = self
            .executor
            .position_after_commit(
                telemed_domain::appointment::AGGREGATE_TYPE,
                &booking.appointment_id.to_string(),
            )
            .await;
        Ok(Booked {
            position,
            at: self.clock.now(),
        })
    }

    /// Moves an appointment: the new time is checked, claimed and reserved before the old one
    /// is released.
    pub async fn reschedule(
        &self,
        id: AppointmentId,
        by: Party,
        interval: Interval,
        reason: FreeText,
        context: &CommandContext,
    ) -> Result<Position> {
        let state = self
            .appointment(id)
            .await?
            .ok_or_else(|| rejected(AppointmentError::NotFound))?;
        if interval == state.interval {
            return Err(rejected(AppointmentError::SameTime));
        }
        let day = self.bookable_day(state.doctor_id, interval).await?;
        if !state.status.is_open() {
            return Err(rejected(AppointmentError::InvalidTransition {
                status: state.status,
                action: telemed_domain::appointment::Action::Reschedule,
            }));
        }
        let held = self
            .hold((id, state.patient_id), day, interval, context)
            .await?;
        let command = AppointmentCommand::Reschedule {
            interval,
            reason,
            slot: held.slot,
            by,
            at: self.clock.now(),
        };
        let moved = match self.on_appointment(id, command, context).await {
            Ok(position) => position,
            Err(error) => {
                self.unhold(id, &held, &error, context).await;
                return Err(error);
            }
        };
        let released = self.release_previous(id, &held, state.slot, context).await;
        Ok(moved.max(held.position).max(released))
    }

    /// After a reschedule: drops the appointment's other claims and releases the slot the event
    /// says it moved from (a concurrent reschedule may have changed it since we looked).
    async fn release_previous(
        &self,
        id: AppointmentId,
        held: &Held,
        looked_at: SlotRef,
        context: &CommandContext,
    ) -> Position {
        self.forget_claims(CLAIMS_OF_EXCEPT, id.as_uuid(), Some(held.claim))
            .await;
        let previous = match self.last_event(id).await {
            Ok(Some(AppointmentEvent::AppointmentRescheduled { previous_slot, .. })) => {
                previous_slot
            }
            _ => looked_at,
        };
        self.release_or_log(previous, ReleaseReason::Rescheduled, context)
            .await
    }
}
