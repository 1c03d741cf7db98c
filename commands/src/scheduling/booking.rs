//! Booking and rescheduling: the whole orchestration from a typed request to a recorded
//! appointment.
//!
//! Booking = check the time against the rules → find the doctor-day whose window holds it (from
//! the availability read model) → claim the patient's time (no overlapping appointments per
//! patient) → reserve the slot on the doctor-day (where concurrent bookings race and exactly one
//! wins) → record the appointment. A failure after the reservation is compensated by releasing
//! it; what a crash leaves behind (a reservation or claim with no appointment) is swept. A keyed
//! retry of a recorded booking finds it and succeeds, unless it asks for something else.

use telemed_domain::appointment::{
    AppointmentCommand, AppointmentError, AppointmentEvent, AppointmentState, Party, SlotRef,
};
use telemed_domain::availability::{AvailabilityCommand, AvailabilityError, ReleaseReason};
use telemed_domain::calendar::Interval;
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, DayId, Position, ReservationId, UserId};
use telemed_projections::{availability, profiles};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CLAIM_DROP, CLAIMS_OF_EXCEPT, Result, Scheduling, SchedulingError, rejected};
use crate::context::CommandContext;
use crate::error::CommandError;

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

/// A claimed and reserved time, not yet recorded on the appointment.
struct Held {
    claim: Uuid,
    slot: SlotRef,
    position: Position,
}

impl Scheduling {
    /// The doctor-day whose window holds `interval` after checking it against the rules:
    /// `SlotUnavailable` when no window does, `NoSuchDoctor` when there is no such doctor.
    async fn bookable_day(&self, doctor: UserId, interval: Interval) -> Result<DayId> {
        self.check_time(&interval).map_err(rejected)?;
        if let Some(day) = availability::day_containing(&self.pool, doctor, interval).await? {
            return Ok(day);
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
        id: AppointmentId,
        patient: UserId,
        day: DayId,
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

    /// Books a consultation: checks the time, finds the doctor-day, claims, reserves, records;
    /// compensates on failure. Booking an id that is already recorded for the same patient,
    /// doctor and time succeeds without a change (a retry); for anything else it is refused
    /// with [`SchedulingError::KeyReused`].
    pub async fn book(&self, booking: Booking, context: &CommandContext) -> Result<Booked> {
        let id = booking.appointment_id;
        let day = self
            .bookable_day(booking.doctor_id, booking.interval)
            .await?;
        let held = self
            .hold(id, booking.patient_id, day, booking.interval, context)
            .await?;
        let at = self.clock.now();
        let request = AppointmentCommand::Request {
            doctor_id: booking.doctor_id,
            patient_id: booking.patient_id,
            interval: booking.interval,
            reason: booking.reason.clone(),
            slot: held.slot,
            at,
        };
        let recorded = self
            .executor
            .create(&self.appointments, &id.to_string(), request, context)
            .await
            .map_err(|e| e.map_rejected(SchedulingError::from));
        match recorded {
            Ok(position) => Ok(Booked {
                position: position.max(held.position),
                at,
            }),
            Err(error) => {
                self.unhold(id, &held, &error, context).await;
                match error {
                    // The caller chose the id of a booking recorded before: this is a retry of
                    // it (its claim and reservation may overlap our own; ours are released).
                    CommandError::Rejected(SchedulingError::Appointment(
                        AppointmentError::AlreadyRequested,
                    )) => self.retried(&booking).await,
                    error => Err(error),
                }
            }
        }
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
            .hold(id, state.patient_id, day, interval, context)
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
