//! The patient profile aggregate: identity, contact details and medical history.
//!
//! Aggregate id: the patient's [`UserId`](crate::UserId). Every change is an event, so the
//! history of a patient's medical record is auditable.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::Decide;
use crate::values::{FreeText, LabelList, PersonName, PhoneNumber, TimeZoneName};

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "patient";

/// How to reach a patient.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Phone number, if given.
    pub phone: Option<PhoneNumber>,
    /// Postal address, if given.
    pub address: Option<FreeText>,
}

/// What a doctor needs to know before a consultation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicalHistory {
    /// Known conditions.
    pub conditions: LabelList,
    /// Known allergies.
    pub allergies: LabelList,
    /// Current medications.
    pub medications: LabelList,
    /// Free-text notes.
    pub notes: FreeText,
}

/// A patient's profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientProfile {
    /// Display name.
    pub name: PersonName,
    /// IANA time zone.
    pub timezone: TimeZoneName,
    /// Contact details.
    pub contact: Contact,
    /// Medical history.
    pub medical_history: MedicalHistory,
}

/// What can be asked of a patient profile.
#[derive(Clone, Debug, PartialEq)]
pub enum PatientCommand {
    /// Create the profile when the account is registered.
    Register {
        /// Display name.
        name: PersonName,
        /// IANA time zone.
        timezone: TimeZoneName,
    },
    /// Replace the editable fields; `name: None` keeps the current name.
    UpdateProfile {
        /// New display name, or keep the current one.
        name: Option<PersonName>,
        /// New time zone.
        timezone: TimeZoneName,
        /// New contact details.
        contact: Contact,
        /// New medical history.
        medical_history: MedicalHistory,
    },
}

/// What happened to a patient profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PatientEvent {
    /// A patient account was registered.
    PatientRegistered {
        /// Display name.
        name: PersonName,
        /// IANA time zone.
        timezone: TimeZoneName,
    },
    /// The profile was edited; carries the complete new profile.
    PatientProfileUpdated(PatientProfile),
}

/// Why a patient command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatientError {
    /// The profile exists already.
    #[error("this patient is already registered")]
    AlreadyRegistered,
    /// There is no patient with this id.
    #[error("no such patient")]
    NotRegistered,
}

/// The patient profile aggregate's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Patient {
    profile: Option<PatientProfile>,
}

impl Patient {
    /// The current profile, if registered.
    pub fn profile(&self) -> Option<&PatientProfile> {
        self.profile.as_ref()
    }
}

impl Decide for Patient {
    fn decide(&self, command: PatientCommand) -> Result<Vec<PatientEvent>, PatientError> {
        match (command, &self.profile) {
            (PatientCommand::Register { .. }, Some(_)) => Err(PatientError::AlreadyRegistered),
            (PatientCommand::Register { name, timezone }, None) => {
                Ok(vec![PatientEvent::PatientRegistered { name, timezone }])
            }
            (PatientCommand::UpdateProfile { .. }, None) => Err(PatientError::NotRegistered),
            (
                PatientCommand::UpdateProfile {
                    name,
                    timezone,
                    contact,
                    medical_history,
                },
                Some(current),
            ) => {
                let updated = PatientProfile {
                    name: name.unwrap_or_else(|| current.name.clone()),
                    timezone,
                    contact,
                    medical_history,
                };
                if &updated == current {
                    return Ok(vec![]);
                }
                Ok(vec![PatientEvent::PatientProfileUpdated(updated)])
            }
        }
    }
}

impl Aggregate for Patient {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = PatientCommand;
    type Event = PatientEvent;
    type Error = PatientError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PatientCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PatientError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: PatientEvent) {
        self.profile = Some(match event {
            PatientEvent::PatientRegistered { name, timezone } => PatientProfile {
                name,
                timezone,
                contact: Contact::default(),
                medical_history: MedicalHistory::default(),
            },
            PatientEvent::PatientProfileUpdated(profile) => profile,
        });
    }
}

impl crate::NamedCommand for PatientCommand {
    fn command_name(&self) -> &'static str {
        match self {
            PatientCommand::Register { .. } => "patient.register",
            PatientCommand::UpdateProfile { .. } => "patient.update_profile",
        }
    }
}

impl DomainEvent for PatientEvent {
    fn event_type(&self) -> String {
        match self {
            PatientEvent::PatientRegistered { .. } => "PatientRegistered",
            PatientEvent::PatientProfileUpdated(_) => "PatientProfileUpdated",
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

    use super::*;

    fn name(text: &str) -> PersonName {
        PersonName::parse(text).unwrap()
    }

    fn zone(text: &str) -> TimeZoneName {
        TimeZoneName::parse(text).unwrap()
    }

    fn registered() -> PatientEvent {
        PatientEvent::PatientRegistered {
            name: name("Ada"),
            timezone: zone("Asia/Kolkata"),
        }
    }

    fn history() -> MedicalHistory {
        MedicalHistory {
            conditions: LabelList::parse(&["asthma"]).unwrap(),
            allergies: LabelList::parse(&["penicillin"]).unwrap(),
            medications: LabelList::parse(&["salbutamol"]).unwrap(),
            notes: FreeText::parse("Seasonal flare-ups.").unwrap(),
        }
    }

    fn contact() -> Contact {
        Contact {
            phone: Some(PhoneNumber::parse("+91 22 1234 5678").unwrap()),
            address: None,
        }
    }

    fn update(name: Option<PersonName>) -> PatientCommand {
        PatientCommand::UpdateProfile {
            name,
            timezone: zone("Asia/Kolkata"),
            contact: contact(),
            medical_history: history(),
        }
    }

    fn profile(name_text: &str) -> PatientProfile {
        PatientProfile {
            name: name(name_text),
            timezone: zone("Asia/Kolkata"),
            contact: contact(),
            medical_history: history(),
        }
    }

    #[test]
    fn registering_a_new_patient_records_it() {
        TestFramework::<Patient>::with(())
            .given_no_previous_events()
            .when(PatientCommand::Register {
                name: name("Ada"),
                timezone: zone("Asia/Kolkata"),
            })
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn registering_twice_is_refused() {
        TestFramework::<Patient>::with(())
            .given(vec![registered()])
            .when(PatientCommand::Register {
                name: name("Ada"),
                timezone: zone("Asia/Kolkata"),
            })
            .then_expect_error(PatientError::AlreadyRegistered);
    }

    #[test]
    fn updating_an_unknown_patient_is_refused() {
        TestFramework::<Patient>::with(())
            .given_no_previous_events()
            .when(update(None))
            .then_expect_error(PatientError::NotRegistered);
    }

    #[test]
    fn updating_records_the_whole_new_profile() {
        TestFramework::<Patient>::with(())
            .given(vec![registered()])
            .when(update(None))
            .then_expect_events(vec![PatientEvent::PatientProfileUpdated(profile("Ada"))]);
    }

    #[test]
    fn updating_with_a_name_renames_the_patient() {
        TestFramework::<Patient>::with(())
            .given(vec![registered()])
            .when(update(Some(name("Ada Lovelace"))))
            .then_expect_events(vec![PatientEvent::PatientProfileUpdated(profile(
                "Ada Lovelace",
            ))]);
    }

    #[test]
    fn an_update_that_changes_nothing_records_nothing() {
        TestFramework::<Patient>::with(())
            .given(vec![
                registered(),
                PatientEvent::PatientProfileUpdated(profile("Ada")),
            ])
            .when(update(None))
            .then_expect_events(vec![]);
    }
}
