//! The waitlist entry aggregate: one patient waiting for time with one doctor, and the offers
//! made to them.
//!
//! Aggregate id: the entry's [`WaitlistEntryId`]. An entry waits for a free slot of
//! `duration_minutes` on a date in `[from, to]` (dates in the doctor's zone). When such time
//! frees up, the waitlist matcher offers it: the entry's `OfferMade` and the doctor-day's
//! `SlotHeld` are appended in one statement, so an offer exists exactly when its hold does.
//! The patient accepts (the booking takes the hold; then `OfferAccepted` closes the entry),
//! declines, or lets it expire (`OfferDeclined` / `OfferExpired`, appended with the doctor-day's
//! `HoldEnded`); then the entry waits again, and never gets an offer overlapping a time it
//! passed on.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::calendar::Interval;
use crate::{AppointmentId, DayId, Decide, NamedCommand, ReservationId, UserId};

pub mod patient;

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "waitlist_entry";

/// The id of a waitlist entry.
pub type WaitlistEntryId = Uuid;

/// What an offer holds. The offer's id is also the hold's id on the doctor-day and the id of
/// the appointment that accepting it books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Offer id.
    pub offer_id: Uuid,
    /// The doctor-day holding the time.
    pub day: DayId,
    /// The time.
    pub interval: Interval,
    /// When it lapses.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Offer {
    /// The hold's id on the doctor-day.
    pub fn hold_id(&self) -> ReservationId {
        ReservationId::from(self.offer_id)
    }

    /// The appointment that accepting the offer books.
    pub fn appointment_id(&self) -> AppointmentId {
        AppointmentId::from(self.offer_id)
    }
}

/// What a patient asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The patient.
    pub patient_id: UserId,
    /// The doctor.
    pub doctor_id: UserId,
    /// First acceptable date (doctor's zone).
    pub from: Date,
    /// Last acceptable date (doctor's zone).
    pub to: Date,
    /// Length of the appointment.
    pub duration_minutes: u16,
}

/// Where an entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Waiting for time to free up.
    Waiting,
    /// An offer is open.
    Offered,
    /// An offer was accepted: the entry is closed.
    Booked,
    /// The patient left.
    Left,
}

/// How an offer that was not accepted closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferEnd {
    /// The patient declined it.
    Declined,
    /// It lapsed.
    Expired,
    /// The patient left the waitlist while it was open.
    Withdrawn,
}

/// The entry's last offer that closed without being accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedOffer {
    /// Which offer.
    pub offer_id: Uuid,
    /// How it closed.
    pub end: OfferEnd,
}

/// What can be asked of a waitlist entry.
#[derive(Clone, Debug, PartialEq)]
pub enum WaitlistCommand {
    /// Join (creates the entry).
    Join {
        /// What is asked for.
        request: Request,
        /// When.
        at: OffsetDateTime,
    },
    /// Offer freed time (the matcher; appended with the doctor-day's hold).
    Offer {
        /// The offer.
        offer: Offer,
        /// When.
        at: OffsetDateTime,
    },
    /// Record that the offer's appointment was booked.
    Accept {
        /// Which offer.
        offer_id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// The patient turns the offer down.
    Decline {
        /// Which offer.
        offer_id: Uuid,
        /// When.
        at: OffsetDateTime,
    },
    /// The offer lapsed (refused before its expiry time).
    Expire {
        /// Which offer.
        offer_id: Uuid,
        /// Now.
        at: OffsetDateTime,
    },
    /// The patient leaves the waitlist (an open offer is withdrawn with it).
    Leave {
        /// When.
        at: OffsetDateTime,
    },
}

/// What happened to a waitlist entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WaitlistEvent {
    /// A patient joined a doctor's waitlist.
    WaitlistJoined {
        /// What is asked for.
        request: Request,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Freed time was offered (and held on the doctor-day).
    OfferMade {
        /// The offer.
        offer: Offer,
        /// The patient it is for.
        patient_id: UserId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The offer was accepted: its appointment is booked.
    OfferAccepted {
        /// Which offer.
        offer_id: Uuid,
        /// The appointment.
        appointment_id: AppointmentId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The patient declined; the entry waits again.
    OfferDeclined {
        /// Which offer.
        offer_id: Uuid,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The offer lapsed; the entry waits again.
    OfferExpired {
        /// Which offer.
        offer_id: Uuid,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The patient left the waitlist.
    WaitlistLeft {
        /// The offer withdrawn with it, if one was open.
        withdrawn: Option<Uuid>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// Why a waitlist command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitlistError {
    /// The entry exists already.
    #[error("this waitlist entry exists already")]
    AlreadyJoined,
    /// No such entry.
    #[error("no such waitlist entry")]
    NotFound,
    /// The entry is not waiting (an offer is open, or it is closed).
    #[error("the waitlist entry is not waiting")]
    NotWaiting,
    /// The patient passed on an overlapping time before.
    #[error("this time was declined before")]
    PassedBefore,
    /// No such open offer.
    #[error("the offer is no longer open")]
    OfferNotOpen,
    /// The offer lapsed.
    #[error("the offer has expired")]
    OfferExpired,
    /// The offer has not lapsed yet.
    #[error("the offer has not expired yet")]
    NotExpired,
    /// The entry is closed.
    #[error("the waitlist entry is closed")]
    Closed,
    /// The patient waits for this doctor already, with this entry.
    #[error("you are on this doctor's waitlist already (entry {0}): leave it to join again")]
    AlreadyWaiting(Uuid),
    /// The patient has as many open entries as a patient may.
    #[error("a patient may wait on at most {0} waitlists at once: leave one to join another")]
    TooManyEntries(usize),
}

/// The state of an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryState {
    /// What is asked for.
    pub request: Request,
    /// Where it stands.
    pub status: EntryStatus,
    /// The open offer.
    pub offer: Option<Offer>,
    /// Times offered and declined or let lapse.
    pub passed: Vec<Interval>,
    /// The last offer that closed without being accepted (so that a late answer to it is told
    /// how it closed).
    #[serde(default)]
    pub closed: Option<ClosedOffer>,
}

impl EntryState {
    /// Offer `offer_id` while it is open; otherwise why it cannot be answered: it expired
    /// ([`WaitlistError::OfferExpired`]) or is closed or unknown ([`WaitlistError::OfferNotOpen`]).
    pub fn open_offer(&self, offer_id: Uuid) -> Result<&Offer, WaitlistError> {
        match &self.offer {
            Some(offer) if offer.offer_id == offer_id && self.status == EntryStatus::Offered => {
                Ok(offer)
            }
            _ => match self.closed {
                Some(ClosedOffer {
                    offer_id: closed,
                    end: OfferEnd::Expired,
                }) if closed == offer_id => Err(WaitlistError::OfferExpired),
                _ => Err(WaitlistError::OfferNotOpen),
            },
        }
    }
}

/// A waitlist entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WaitlistEntry {
    state: Option<EntryState>,
}

type Decided = Result<Vec<WaitlistEvent>, WaitlistError>;

impl WaitlistEntry {
    /// The entry's state, once joined.
    pub fn state(&self) -> Option<&EntryState> {
        self.state.as_ref()
    }

    fn open_offer(&self, offer_id: Uuid) -> Result<&Offer, WaitlistError> {
        self.state
            .as_ref()
            .ok_or(WaitlistError::NotFound)?
            .open_offer(offer_id)
    }

    fn offer(&self, offer: Offer, at: OffsetDateTime) -> Decided {
        let state = self.state.as_ref().ok_or(WaitlistError::NotFound)?;
        if state.status != EntryStatus::Waiting {
            return Err(WaitlistError::NotWaiting);
        }
        if state.passed.iter().any(|p| p.overlaps(&offer.interval)) {
            return Err(WaitlistError::PassedBefore);
        }
        Ok(vec![WaitlistEvent::OfferMade {
            offer,
            patient_id: state.request.patient_id,
            at,
        }])
    }

    fn accept(&self, offer_id: Uuid, at: OffsetDateTime) -> Decided {
        if let Some(state) = &self.state
            && state.status == EntryStatus::Booked
            && state.offer.is_some_and(|o| o.offer_id == offer_id)
        {
            return Ok(vec![]);
        }
        let offer = self.open_offer(offer_id)?;
        Ok(vec![WaitlistEvent::OfferAccepted {
            offer_id,
            appointment_id: offer.appointment_id(),
            at,
        }])
    }

    fn leave(&self, at: OffsetDateTime) -> Decided {
        let state = self.state.as_ref().ok_or(WaitlistError::NotFound)?;
        match state.status {
            EntryStatus::Waiting | EntryStatus::Offered => Ok(vec![WaitlistEvent::WaitlistLeft {
                withdrawn: state.offer.map(|o| o.offer_id),
                at,
            }]),
            EntryStatus::Left => Ok(vec![]),
            EntryStatus::Booked => Err(WaitlistError::Closed),
        }
    }
}

impl Decide for WaitlistEntry {
    fn decide(&self, command: WaitlistCommand) -> Decided {
        match command {
            WaitlistCommand::Join { request, at } => match self.state {
                Some(_) => Err(WaitlistError::AlreadyJoined),
                None => Ok(vec![WaitlistEvent::WaitlistJoined { request, at }]),
            },
            WaitlistCommand::Offer { offer, at } => self.offer(offer, at),
            WaitlistCommand::Accept { offer_id, at } => self.accept(offer_id, at),
            WaitlistCommand::Decline { offer_id, at } => {
                self.open_offer(offer_id)?;
                Ok(vec![WaitlistEvent::OfferDeclined { offer_id, at }])
            }
            WaitlistCommand::Expire { offer_id, at } => {
                if at < self.open_offer(offer_id)?.expires_at {
                    return Err(WaitlistError::NotExpired);
                }
                Ok(vec![WaitlistEvent::OfferExpired { offer_id, at }])
            }
            WaitlistCommand::Leave { at } => self.leave(at),
        }
    }
}

impl Aggregate for WaitlistEntry {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = WaitlistCommand;
    type Event = WaitlistEvent;
    type Error = WaitlistError;
    type Services = ();

    async fn handle(
        &mut self,
        command: WaitlistCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WaitlistError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: WaitlistEvent) {
        if let WaitlistEvent::WaitlistJoined { request, .. } = event {
            self.state = Some(EntryState {
                request,
                status: EntryStatus::Waiting,
                offer: None,
                passed: Vec::new(),
                closed: None,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            WaitlistEvent::WaitlistJoined { .. } => {}
            WaitlistEvent::OfferMade { offer, .. } => {
                state.status = EntryStatus::Offered;
                state.offer = Some(offer);
            }
            WaitlistEvent::OfferAccepted { .. } => state.status = EntryStatus::Booked,
            WaitlistEvent::OfferDeclined { offer_id, .. } => {
                state.pass(offer_id, OfferEnd::Declined);
            }
            WaitlistEvent::OfferExpired { offer_id, .. } => {
                state.pass(offer_id, OfferEnd::Expired);
            }
            WaitlistEvent::WaitlistLeft { withdrawn, .. } => {
                state.status = EntryStatus::Left;
                state.offer = None;
                if let Some(offer_id) = withdrawn {
                    state.closed = Some(ClosedOffer {
                        offer_id,
                        end: OfferEnd::Withdrawn,
                    });
                }
            }
        }
    }
}

impl EntryState {
    /// The open offer `offer_id` closed unaccepted (`end`): the entry waits again.
    fn pass(&mut self, offer_id: Uuid, end: OfferEnd) {
        self.status = EntryStatus::Waiting;
        if let Some(offer) = self.offer.take() {
            self.passed.push(offer.interval);
        }
        self.closed = Some(ClosedOffer { offer_id, end });
    }
}

impl NamedCommand for WaitlistCommand {
    fn command_name(&self) -> &'static str {
        match self {
            WaitlistCommand::Join { .. } => "waitlist.join",
            WaitlistCommand::Offer { .. } => "waitlist.offer",
            WaitlistCommand::Accept { .. } => "waitlist.accept",
            WaitlistCommand::Decline { .. } => "waitlist.decline",
            WaitlistCommand::Expire { .. } => "waitlist.expire",
            WaitlistCommand::Leave { .. } => "waitlist.leave",
        }
    }
}

impl DomainEvent for WaitlistEvent {
    fn event_type(&self) -> String {
        match self {
            WaitlistEvent::WaitlistJoined { .. } => "WaitlistJoined",
            WaitlistEvent::OfferMade { .. } => "OfferMade",
            WaitlistEvent::OfferAccepted { .. } => "OfferAccepted",
            WaitlistEvent::OfferDeclined { .. } => "OfferDeclined",
            WaitlistEvent::OfferExpired { .. } => "OfferExpired",
            WaitlistEvent::WaitlistLeft { .. } => "WaitlistLeft",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use time::macros::{date, datetime};

    use super::*;

    const NOW: OffsetDateTime = datetime!(2027-06-01 08:00 UTC);

    fn request() -> Request {
        Request {
            patient_id: UserId::from(Uuid::from_u128(1)),
            doctor_id: UserId::from(Uuid::from_u128(2)),
            from: date!(2027 - 06 - 01),
            to: date!(2027 - 06 - 03),
            duration_minutes: 30,
        }
    }

    fn offer(id: u128, from_minute: i64) -> Offer {
        let nine = datetime!(2027-06-01 09:00 UTC);
        Offer {
            offer_id: Uuid::from_u128(id),
            day: DayId::new(request().doctor_id, date!(2027 - 06 - 01)),
            interval: Interval::new(
                nine + time::Duration::minutes(from_minute),
                nine + time::Duration::minutes(from_minute + 30),
            )
            .unwrap(),
            expires_at: NOW + time::Duration::minutes(15),
        }
    }

    fn joined() -> WaitlistEvent {
        WaitlistEvent::WaitlistJoined {
            request: request(),
            at: NOW,
        }
    }

    fn made(offer: Offer) -> WaitlistEvent {
        WaitlistEvent::OfferMade {
            offer,
            patient_id: request().patient_id,
            at: NOW,
        }
    }

    fn framework() -> TestFramework<WaitlistEntry> {
        TestFramework::with(())
    }

    #[test]
    fn a_waiting_entry_is_offered_time() {
        framework()
            .given(vec![joined()])
            .when(WaitlistCommand::Offer {
                offer: offer(7, 0),
                at: NOW,
            })
            .then_expect_events(vec![made(offer(7, 0))]);
    }

    #[test]
    fn an_entry_with_an_open_offer_gets_no_second_one() {
        framework()
            .given(vec![joined(), made(offer(7, 0))])
            .when(WaitlistCommand::Offer {
                offer: offer(8, 60),
                at: NOW,
            })
            .then_expect_error(WaitlistError::NotWaiting);
    }

    #[test]
    fn a_declined_time_is_not_offered_again_but_other_times_are() {
        let declined = WaitlistEvent::OfferDeclined {
            offer_id: Uuid::from_u128(7),
            at: NOW,
        };
        framework()
            .given(vec![joined(), made(offer(7, 0)), declined.clone()])
            .when(WaitlistCommand::Offer {
                offer: offer(8, 15),
                at: NOW,
            })
            .then_expect_error(WaitlistError::PassedBefore);
        framework()
            .given(vec![joined(), made(offer(7, 0)), declined])
            .when(WaitlistCommand::Offer {
                offer: offer(8, 60),
                at: NOW,
            })
            .then_expect_events(vec![made(offer(8, 60))]);
    }

    #[test]
    fn an_offer_expires_only_after_its_time() {
        framework()
            .given(vec![joined(), made(offer(7, 0))])
            .when(WaitlistCommand::Expire {
                offer_id: Uuid::from_u128(7),
                at: NOW,
            })
            .then_expect_error(WaitlistError::NotExpired);
        let later = NOW + time::Duration::minutes(15);
        framework()
            .given(vec![joined(), made(offer(7, 0))])
            .when(WaitlistCommand::Expire {
                offer_id: Uuid::from_u128(7),
                at: later,
            })
            .then_expect_events(vec![WaitlistEvent::OfferExpired {
                offer_id: Uuid::from_u128(7),
                at: later,
            }]);
    }

    #[test]
    fn accepting_records_the_appointment_once() {
        let accepted = WaitlistEvent::OfferAccepted {
            offer_id: Uuid::from_u128(7),
            appointment_id: AppointmentId::from(Uuid::from_u128(7)),
            at: NOW,
        };
        framework()
            .given(vec![joined(), made(offer(7, 0))])
            .when(WaitlistCommand::Accept {
                offer_id: Uuid::from_u128(7),
                at: NOW,
            })
            .then_expect_events(vec![accepted.clone()]);
        framework()
            .given(vec![joined(), made(offer(7, 0)), accepted])
            .when(WaitlistCommand::Accept {
                offer_id: Uuid::from_u128(7),
                at: NOW,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_late_answer_is_told_how_the_offer_closed() {
        let expired = WaitlistEvent::OfferExpired {
            offer_id: Uuid::from_u128(7),
            at: NOW,
        };
        let declined = WaitlistEvent::OfferDeclined {
            offer_id: Uuid::from_u128(7),
            at: NOW,
        };
        for command in [
            WaitlistCommand::Accept {
                offer_id: Uuid::from_u128(7),
                at: NOW,
            },
            WaitlistCommand::Decline {
                offer_id: Uuid::from_u128(7),
                at: NOW,
            },
        ] {
            framework()
                .given(vec![joined(), made(offer(7, 0)), expired.clone()])
                .when(command.clone())
                .then_expect_error(WaitlistError::OfferExpired);
            framework()
                .given(vec![joined(), made(offer(7, 0)), declined.clone()])
                .when(command.clone())
                .then_expect_error(WaitlistError::OfferNotOpen);
            // After a newer offer, the old one is still known to have expired.
            framework()
                .given(vec![
                    joined(),
                    made(offer(7, 0)),
                    expired.clone(),
                    made(offer(8, 60)),
                ])
                .when(command)
                .then_expect_error(WaitlistError::OfferExpired);
        }
    }

    #[test]
    fn leaving_withdraws_the_open_offer() {
        framework()
            .given(vec![joined(), made(offer(7, 0))])
            .when(WaitlistCommand::Leave { at: NOW })
            .then_expect_events(vec![WaitlistEvent::WaitlistLeft {
                withdrawn: Some(Uuid::from_u128(7)),
                at: NOW,
            }]);
    }

    #[test]
    fn a_booked_entry_cannot_be_left() {
        let accepted = WaitlistEvent::OfferAccepted {
            offer_id: Uuid::from_u128(7),
            appointment_id: AppointmentId::from(Uuid::from_u128(7)),
            at: NOW,
        };
        framework()
            .given(vec![joined(), made(offer(7, 0)), accepted])
            .when(WaitlistCommand::Leave { at: NOW })
            .then_expect_error(WaitlistError::Closed);
    }
}
