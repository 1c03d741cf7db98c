//! A patient's waitlist seats: which of their entries are open, so that a patient waits at most
//! once per doctor and on at most [`MAX_OPEN_ENTRIES`] waitlists at once.
//!
//! Aggregate id: the patient's [`UserId`]. Every join appends this aggregate's `EntryOpened`
//! and the new entry's `WaitlistJoined` in one statement, so two joins of one patient race on
//! this aggregate's sequence and the loser decides again on fresh state: the limits hold
//! without locks. Entries close on their own aggregate (booked, left) without touching this
//! one; a join names the entries it found closed (`closed`), which then no longer count. An
//! entry that closed after the join looked still counts for that join: the limits may refuse
//! a join at the margin, never let one too many through.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::WaitlistError;
use crate::{Decide, NamedCommand, UserId};

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "waitlist_patient";

/// How many waitlist entries a patient may have open (waiting or offered) at once.
pub const MAX_OPEN_ENTRIES: usize = 10;

/// What can be asked of a patient's seats.
#[derive(Clone, Debug, PartialEq)]
pub enum PatientWaitlistCommand {
    /// Open entry `entry_id` on `doctor_id`'s waitlist.
    Open {
        /// The new entry.
        entry_id: Uuid,
        /// Its doctor.
        doctor_id: UserId,
        /// Entries of this patient known to be closed (booked or left).
        closed: Vec<Uuid>,
        /// When.
        at: OffsetDateTime,
    },
}

/// What happened to a patient's seats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PatientWaitlistEvent {
    /// An entry was opened; the `closed` ones no longer count.
    EntryOpened {
        /// The new entry.
        entry_id: Uuid,
        /// Its doctor.
        doctor_id: UserId,
        /// Earlier entries found closed.
        closed: Vec<Uuid>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// A patient's open entries and their doctors.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PatientWaitlist {
    open: BTreeMap<Uuid, UserId>,
}

impl PatientWaitlist {
    /// Entries counted as open (some may have closed since), with their doctors.
    pub fn open(&self) -> &BTreeMap<Uuid, UserId> {
        &self.open
    }
}

impl Decide for PatientWaitlist {
    fn decide(
        &self,
        command: PatientWaitlistCommand,
    ) -> Result<Vec<PatientWaitlistEvent>, WaitlistError> {
        let PatientWaitlistCommand::Open {
            entry_id,
            doctor_id,
            closed,
            at,
        } = command;
        let mut still_open = self.open.iter().filter(|(id, _)| !closed.contains(id));
        if let Some((waiting, _)) = still_open.clone().find(|(_, d)| **d == doctor_id) {
            return Err(WaitlistError::AlreadyWaiting(*waiting));
        }
        if still_open.by_ref().count() >= MAX_OPEN_ENTRIES {
            return Err(WaitlistError::TooManyEntries(MAX_OPEN_ENTRIES));
        }
        let closed = closed
            .into_iter()
            .filter(|id| self.open.contains_key(id))
            .collect();
        Ok(vec![PatientWaitlistEvent::EntryOpened {
            entry_id,
            doctor_id,
            closed,
            at,
        }])
    }
}

impl Aggregate for PatientWaitlist {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = PatientWaitlistCommand;
    type Event = PatientWaitlistEvent;
    type Error = WaitlistError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PatientWaitlistCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), WaitlistError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: PatientWaitlistEvent) {
        let PatientWaitlistEvent::EntryOpened {
            entry_id,
            doctor_id,
            closed,
            ..
        } = event;
        for id in closed {
            self.open.remove(&id);
        }
        self.open.insert(entry_id, doctor_id);
    }
}

impl NamedCommand for PatientWaitlistCommand {
    fn command_name(&self) -> &'static str {
        match self {
            PatientWaitlistCommand::Open { .. } => "waitlist.open_entry",
        }
    }
}

impl DomainEvent for PatientWaitlistEvent {
    fn event_type(&self) -> String {
        match self {
            PatientWaitlistEvent::EntryOpened { .. } => "WaitlistEntryOpened",
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
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2027-06-01 08:00 UTC);

    fn doctor(n: u128) -> UserId {
        UserId::from(Uuid::from_u128(1000 + n))
    }

    fn opened(entry: u128, doctor_n: u128) -> PatientWaitlistEvent {
        PatientWaitlistEvent::EntryOpened {
            entry_id: Uuid::from_u128(entry),
            doctor_id: doctor(doctor_n),
            closed: vec![],
            at: NOW,
        }
    }

    fn open(entry: u128, doctor_n: u128, closed: Vec<u128>) -> PatientWaitlistCommand {
        PatientWaitlistCommand::Open {
            entry_id: Uuid::from_u128(entry),
            doctor_id: doctor(doctor_n),
            closed: closed.into_iter().map(Uuid::from_u128).collect(),
            at: NOW,
        }
    }

    fn framework() -> TestFramework<PatientWaitlist> {
        TestFramework::with(())
    }

    #[test]
    fn one_open_entry_per_doctor_until_it_closes() {
        framework()
            .given(vec![opened(1, 1)])
            .when(open(2, 1, vec![]))
            .then_expect_error(WaitlistError::AlreadyWaiting(Uuid::from_u128(1)));
        framework()
            .given(vec![opened(1, 1)])
            .when(open(2, 1, vec![1]))
            .then_expect_events(vec![PatientWaitlistEvent::EntryOpened {
                entry_id: Uuid::from_u128(2),
                doctor_id: doctor(1),
                closed: vec![Uuid::from_u128(1)],
                at: NOW,
            }]);
    }

    #[test]
    fn at_most_the_cap_of_open_entries() {
        let full: Vec<_> = (0..10).map(|n| opened(n, n)).collect();
        framework()
            .given(full.clone())
            .when(open(10, 10, vec![]))
            .then_expect_error(WaitlistError::TooManyEntries(MAX_OPEN_ENTRIES));
        // Entries named closed (and unknown ones) are dropped from the count.
        framework()
            .given(full)
            .when(open(10, 10, vec![3, 99]))
            .then_expect_events(vec![PatientWaitlistEvent::EntryOpened {
                entry_id: Uuid::from_u128(10),
                doctor_id: doctor(10),
                closed: vec![Uuid::from_u128(3)],
                at: NOW,
            }]);
    }
}
