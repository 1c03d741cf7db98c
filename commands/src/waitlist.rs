//! The waitlist: joining and leaving, offers of freed time, and what happens to them.
//!
//! An offer lives on two aggregates: the entry's `OfferMade` and the doctor-day's `SlotHeld`
//! (a reservation-like claim only the offer's appointment may take). Both are appended in one
//! statement ([`Waitlist::offer`]), as are a decline, an expiry or a withdrawal with the
//! doctor-day's `HoldEnded`: an offer is open exactly while its hold is. Accepting books
//! through [`Scheduling::book`] with the offer's appointment id, whose reservation takes the
//! hold on the doctor-day in the same append (so no other booking can slip in) and is refused
//! when the hold is gone (the offer was declined, withdrawn or expired meanwhile: then nothing
//! is booked), then records `OfferAccepted` on the entry. Once the hold is taken, nothing else
//! can close the offer (each of them must end the hold in the same append), so that record
//! cannot be refused; if it is lost, the expiry finds the hold taken and records the acceptance
//! instead. [`matcher`] decides who is offered what.

use std::sync::Arc;

use sqlx::PgPool;
use telemed_domain::availability::{AvailabilityCommand, AvailabilityError, DoctorDay, HoldEnd};
use telemed_domain::calendar::Interval;
use telemed_domain::values::{FreeText, SlotPolicy};
use telemed_domain::waitlist::patient::{PatientWaitlist, PatientWaitlistCommand};
use telemed_domain::waitlist::{
    EntryState, EntryStatus, Offer, Request, WaitlistCommand, WaitlistEntry, WaitlistError,
};
use telemed_domain::{AppointmentId, DayId, Decide, NamedCommand, Position, UserId};
use telemed_projections::profiles;
use time::Duration;
use uuid::Uuid;

use crate::context::CommandContext;
use crate::error::CommandError;
use crate::executor::{Executor, MAX_ATTEMPTS, backoff, decide};
use crate::scheduling::{Booking, Scheduling, SchedulingError};
use crate::store::{AppendError, Source, Store, insert};

pub mod matcher;

/// Why a waitlist request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitlistFailure {
    /// Refused by the entry.
    #[error(transparent)]
    Entry(#[from] WaitlistError),
    /// Refused by the doctor-day.
    #[error(transparent)]
    Day(#[from] AvailabilityError),
    /// The booking of an accepted offer was refused.
    #[error(transparent)]
    Booking(#[from] SchedulingError),
    /// There is no such doctor.
    #[error("no such doctor")]
    NoSuchDoctor,
}

type Result<T> = std::result::Result<T, CommandError<WaitlistFailure>>;

fn rejected(error: impl Into<WaitlistFailure>) -> CommandError<WaitlistFailure> {
    CommandError::Rejected(error.into())
}

/// A failed append, sorted like any append's.
fn append_failure(error: AppendError) -> CommandError<WaitlistFailure> {
    match error {
        AppendError::Conflict => CommandError::Contention,
        AppendError::Database(error) => error.into(),
        AppendError::Batch(error) => CommandError::Internal(Box::new(error)),
        AppendError::Serialization(error) => CommandError::Internal(error),
    }
}

/// What an accepted offer booked.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    /// The appointment.
    pub appointment_id: AppointmentId,
    /// Where the read models show it.
    pub position: Position,
}

/// Waitlist commands.
pub struct Waitlist {
    pool: PgPool,
    executor: Executor,
    entries: Store<WaitlistEntry>,
    patients: Store<PatientWaitlist>,
    days: Store<DoctorDay>,
    scheduling: Arc<Scheduling>,
    hold_for: Duration,
}

impl Waitlist {
    /// The waitlist on `pool`; offers hold time for `hold_for`; bookings go through
    /// `scheduling` (whose clock and rules it shares).
    pub fn new(pool: &PgPool, scheduling: Arc<Scheduling>, hold_for: Duration) -> Self {
        Self {
            pool: pool.clone(),
            executor: Executor::new(pool.clone()),
            entries: Store::new(pool, ()),
            patients: Store::new(pool, ()),
            days: Store::new(pool, ()),
            scheduling,
            hold_for,
        }
    }

    /// How long an offer holds its time.
    pub fn hold_for(&self) -> Duration {
        self.hold_for
    }

    /// The scheduling service bookings go through.
    pub fn scheduling(&self) -> &Scheduling {
        &self.scheduling
    }

    /// The state of entry `id`, from its events.
    pub async fn entry(&self, id: Uuid) -> Result<Option<EntryState>> {
        let loaded = self.entries.load(&id.to_string(), Source::Database).await?;
        Ok(loaded.aggregate.state().cloned())
    }

    /// Entry `id` when it belongs to `patient` (otherwise it does not exist for them).
    async fn own_entry(&self, id: Uuid, patient: UserId) -> Result<EntryState> {
        match self.entry(id).await? {
            Some(state) if state.request.patient_id == patient => Ok(state),
            _ => Err(rejected(WaitlistError::NotFound)),
        }
    }

    /// A patient joins a doctor's waitlist; returns the new entry's id. Refused when the
    /// patient waits for that doctor already ([`WaitlistError::AlreadyWaiting`]) or has as many
    /// open entries as allowed ([`WaitlistError::TooManyEntries`]): decided by the patient's
    /// seats (see [`telemed_domain::waitlist::patient`]), appended with the entry's
    /// `WaitlistJoined` in one statement, so concurrent joins of one patient are serialised.
    pub async fn join(
        &self,
        request: Request,
        context: &CommandContext,
    ) -> Result<(Uuid, Position)> {
        if profiles::doctor(&self.pool, request.doctor_id)
            .await?
            .is_none()
        {
            return Err(rejected(WaitlistFailure::NoSuchDoctor));
        }
        let id = Uuid::new_v4();
        let at = self.scheduling.clock().now();
        let (entry_id, patient_id) = (id.to_string(), request.patient_id.to_string());
        let join = WaitlistCommand::Join { request, at };
        for attempt in 1..=MAX_ATTEMPTS {
            let mut seats = self.patients.load(&patient_id, Source::Database).await?;
            let closed = self.closed_entries(seats.aggregate.open().keys()).await?;
            let open = PatientWaitlistCommand::Open {
                entry_id: id,
                doctor_id: request.doctor_id,
                closed,
                at,
            };
            let names = (open.command_name(), join.command_name());
            let seated = decide(&(), &mut seats.aggregate, open)
                .await
                .map_err(rejected)?;
            let joined = decide(&(), &mut WaitlistEntry::default(), join.clone())
                .await
                .map_err(rejected)?;
            let rows = [
                self.patients
                    .rows(
                        &patient_id,
                        seats.sequence,
                        seated,
                        &context.metadata(names.0),
                    )
                    .map_err(append_failure)?,
                self.entries
                    .rows(&entry_id, 0, joined, &context.metadata(names.1))
                    .map_err(append_failure)?,
            ];
            match insert(&self.pool, &rows).await {
                Ok(positions) => return Ok((id, positions.into_iter().max().unwrap_or_default())),
                Err(AppendError::Conflict) => tokio::time::sleep(backoff(attempt)).await,
                Err(other) => return Err(append_failure(other)),
            }
        }
        Err(CommandError::Contention)
    }

    /// Which of `entries` are closed (booked or left), from their events.
    async fn closed_entries(&self, entries: impl Iterator<Item = &Uuid>) -> Result<Vec<Uuid>> {
        let mut closed = Vec::new();
        for id in entries {
            let status = self.entry(*id).await?.map(|state| state.status);
            if !matches!(status, Some(EntryStatus::Waiting | EntryStatus::Offered)) {
                closed.push(*id);
            }
        }
        Ok(closed)
    }

    /// The patient leaves; an open offer is withdrawn and its time given back with it.
    pub async fn leave(
        &self,
        id: Uuid,
        patient: UserId,
        context: &CommandContext,
    ) -> Result<Position> {
        let state = self.own_entry(id, patient).await?;
        let at = self.scheduling.clock().now();
        match state.offer.filter(|_| state.status == EntryStatus::Offered) {
            Some(offer) => {
                let end = AvailabilityCommand::EndHold {
                    hold_id: offer.hold_id(),
                    reason: HoldEnd::Withdrawn,
                };
                self.together(id, WaitlistCommand::Leave { at }, offer.day, end, context)
                    .await
            }
            None => self
                .executor
                .execute(
                    &self.entries,
                    &id.to_string(),
                    WaitlistCommand::Leave { at },
                    context,
                )
                .await
                .map_err(|e| e.map_rejected(WaitlistFailure::from)),
        }
        .map_err(|error| match error {
            // The open offer's hold is gone: its appointment took it (an accept is under way).
            CommandError::Rejected(WaitlistFailure::Day(AvailabilityError::NoSuchHold)) => {
                rejected(WaitlistError::Closed)
            }
            other => other,
        })
    }

    /// Offers `interval` on `day` to entry `id` and holds it there under the doctor's slot
    /// `policy` (the matcher).
    pub async fn offer(
        &self,
        id: Uuid,
        patient: UserId,
        (day, policy): (DayId, SlotPolicy),
        interval: Interval,
        context: &CommandContext,
    ) -> Result<Position> {
        let now = self.scheduling.clock().now();
        let offer = Offer {
            offer_id: Uuid::new_v4(),
            day,
            interval,
            expires_at: now + self.hold_for,
        };
        let hold = AvailabilityCommand::Hold {
            day,
            hold_id: offer.hold_id(),
            appointment_id: offer.appointment_id(),
            patient_id: patient,
            interval,
            expires_at: offer.expires_at,
            policy,
        };
        let made = WaitlistCommand::Offer { offer, at: now };
        self.together(id, made, day, hold, context).await
    }

    /// The patient accepts offer `offer_id` of entry `id`: its appointment is booked through
    /// the normal booking path (taking the held time), then the entry records it.
    pub async fn accept(
        &self,
        id: Uuid,
        offer_id: Uuid,
        patient: UserId,
        context: &CommandContext,
    ) -> Result<Accepted> {
        let state = self.own_entry(id, patient).await?;
        let now = self.scheduling.clock().now();
        let offer = match state.offer {
            // Accepted already: a retry, answered with the same booking.
            Some(offer) if offer.offer_id == offer_id && state.status == EntryStatus::Booked => {
                offer
            }
            _ => {
                let offer = *state.open_offer(offer_id).map_err(rejected)?;
                if now >= offer.expires_at {
                    return Err(rejected(WaitlistError::OfferExpired));
                }
                offer
            }
        };
        let booking = Booking {
            appointment_id: offer.appointment_id(),
            doctor_id: state.request.doctor_id,
            patient_id: patient,
            interval: offer.interval,
            reason: FreeText::parse("Booked from the waitlist")
                .map_err(|e| CommandError::Internal(e.0.into()))?,
            hold: Some(offer.hold_id()),
        };
        let booked = match self.scheduling.book(booking.clone(), context).await {
            Ok(booked) => booked,
            Err(CommandError::Rejected(SchedulingError::Availability(
                AvailabilityError::NoSuchHold,
            ))) => {
                let taken = self
                    .scheduling
                    .appointment(offer.appointment_id())
                    .await
                    .map_err(|e| e.map_rejected(WaitlistFailure::from))?;
                if taken.is_none() {
                    // The offer closed since we looked (its hold ended with it): nothing was
                    // booked.
                    return Err(self.closed_offer(id, offer_id, now).await);
                }
                // A concurrent accept of this offer booked it: this is a retry of that booking.
                self.scheduling
                    .book(booking, context)
                    .await
                    .map_err(|e| e.map_rejected(WaitlistFailure::from))?
            }
            Err(error) => return Err(error.map_rejected(WaitlistFailure::from)),
        };
        let recorded = self
            .executor
            .execute(
                &self.entries,
                &id.to_string(),
                WaitlistCommand::Accept { offer_id, at: now },
                context,
            )
            .await
            .map_err(|e| e.map_rejected(WaitlistFailure::from))?;
        Ok(Accepted {
            appointment_id: offer.appointment_id(),
            position: booked.position.max(recorded),
        })
    }

    /// Why offer `offer_id` of entry `id` can no longer be accepted, from the entry's events.
    async fn closed_offer(
        &self,
        id: Uuid,
        offer_id: Uuid,
        at: time::OffsetDateTime,
    ) -> CommandError<WaitlistFailure> {
        let loaded = match self.entries.load(&id.to_string(), Source::Database).await {
            Ok(loaded) => loaded,
            Err(error) => return error,
        };
        match loaded
            .aggregate
            .decide(WaitlistCommand::Accept { offer_id, at })
        {
            Err(error) => rejected(error),
            Ok(_) => rejected(WaitlistError::OfferNotOpen),
        }
    }

    /// The patient turns offer `offer_id` down; its time is given back and the entry waits
    /// again.
    pub async fn decline(
        &self,
        id: Uuid,
        offer_id: Uuid,
        patient: UserId,
        context: &CommandContext,
    ) -> Result<Position> {
        let state = self.own_entry(id, patient).await?;
        let offer = *state.open_offer(offer_id).map_err(rejected)?;
        let at = self.scheduling.clock().now();
        let end = AvailabilityCommand::EndHold {
            hold_id: offer.hold_id(),
            reason: HoldEnd::Declined,
        };
        self.together(
            id,
            WaitlistCommand::Decline { offer_id, at },
            offer.day,
            end,
            context,
        )
        .await
    }

    /// Offer `offer_id` of entry `id` lapsed: its time is given back. If its hold was taken
    /// meanwhile (the patient accepted, and the entry's record of it was lost), records the
    /// acceptance instead.
    pub async fn expire(
        &self,
        id: Uuid,
        offer_id: Uuid,
        context: &CommandContext,
    ) -> Result<Position> {
        let Some(state) = self.entry(id).await? else {
            return Err(rejected(WaitlistError::NotFound));
        };
        let offer = match state.offer {
            Some(offer) if offer.offer_id == offer_id && state.status == EntryStatus::Offered => {
                offer
            }
            _ => return Err(rejected(WaitlistError::OfferNotOpen)),
        };
        let at = self.scheduling.clock().now();
        let end = AvailabilityCommand::EndHold {
            hold_id: offer.hold_id(),
            reason: HoldEnd::Expired,
        };
        let expired = self
            .together(
                id,
                WaitlistCommand::Expire { offer_id, at },
                offer.day,
                end,
                context,
            )
            .await;
        match expired {
            Err(CommandError::Rejected(WaitlistFailure::Day(AvailabilityError::NoSuchHold)))
                if self
                    .scheduling
                    .appointment(offer.appointment_id())
                    .await
                    .map_err(|e| e.map_rejected(WaitlistFailure::from))?
                    .is_some() =>
            {
                self.executor
                    .execute(
                        &self.entries,
                        &id.to_string(),
                        WaitlistCommand::Accept { offer_id, at },
                        context,
                    )
                    .await
                    .map_err(|e| e.map_rejected(WaitlistFailure::from))
            }
            other => other,
        }
    }

    /// Decides `command` on entry `id` and `on_day` on `day` and appends both in one statement
    /// (all or nothing); a lost race is decided again on fresh state.
    async fn together(
        &self,
        id: Uuid,
        command: WaitlistCommand,
        day: DayId,
        on_day: AvailabilityCommand,
        context: &CommandContext,
    ) -> Result<Position> {
        let (entry_id, day_id) = (id.to_string(), day.to_string());
        let names = (command.command_name(), on_day.command_name());
        for attempt in 1..=MAX_ATTEMPTS {
            let (mut entry, mut doctor_day) = tokio::try_join!(
                self.entries.load(&entry_id, Source::Database),
                self.days.load(&day_id, Source::Database),
            )?;
            let entry_events = decide(&(), &mut entry.aggregate, command.clone())
                .await
                .map_err(rejected)?;
            let day_events = decide(&(), &mut doctor_day.aggregate, on_day.clone())
                .await
                .map_err(rejected)?;
            if entry_events.is_empty() || day_events.is_empty() {
                return Err(CommandError::Internal(
                    "a paired waitlist decision was empty".into(),
                ));
            }
            let append = append_failure;
            let rows = [
                self.days
                    .rows(
                        &day_id,
                        doctor_day.sequence,
                        day_events,
                        &context.metadata(names.1),
                    )
                    .map_err(append)?,
                self.entries
                    .rows(
                        &entry_id,
                        entry.sequence,
                        entry_events,
                        &context.metadata(names.0),
                    )
                    .map_err(append)?,
            ];
            match insert(&self.pool, &rows).await {
                Ok(positions) => {
                    // The scheduling service caches doctor-days too: it proposes from a state
                    // this append made stale, conflicts and reloads.
                    return Ok(positions.into_iter().max().unwrap_or_default());
                }
                Err(AppendError::Conflict) => tokio::time::sleep(backoff(attempt)).await,
                Err(other) => return Err(append(other)),
            }
        }
        Err(CommandError::Contention)
    }
}
