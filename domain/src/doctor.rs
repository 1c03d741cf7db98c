//! The doctor profile aggregate: who a doctor is, what they treat, and their time zone.
//!
//! Aggregate id: the doctor's [`UserId`](crate::UserId).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::Decide;
use crate::values::{FreeText, LabelList, PersonName, SlotPolicy, TimeZoneName};

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "doctor";

/// A doctor's public profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorProfile {
    /// Display name.
    pub name: PersonName,
    /// Medical specialties, e.g. "Cardiology".
    pub specialties: LabelList,
    /// Free-text introduction.
    pub bio: FreeText,
    /// Languages the doctor consults in.
    pub languages: LabelList,
    /// The zone the doctor's availability is expressed in.
    pub timezone: TimeZoneName,
}

/// What can be asked of a doctor profile.
#[derive(Clone, Debug, PartialEq)]
pub enum DoctorCommand {
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
        /// New specialties.
        specialties: LabelList,
        /// New bio.
        bio: FreeText,
        /// New languages.
        languages: LabelList,
        /// New time zone.
        timezone: TimeZoneName,
    },
    /// Set the buffers around appointments and the slot interval.
    SetSlotPolicy(SlotPolicy),
}

/// What happened to a doctor profile. Each event carries the whole resulting profile fields it
/// touches, so read models never need the aggregate's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DoctorEvent {
    /// A doctor account was registered.
    DoctorRegistered {
        /// Display name.
        name: PersonName,
        /// IANA time zone.
        timezone: TimeZoneName,
    },
    /// The profile was edited; carries the complete new profile.
    DoctorProfileUpdated(DoctorProfile),
    /// The buffers and slot interval were set; carries all of them.
    SlotPolicySet(SlotPolicy),
}

/// Why a doctor command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoctorError {
    /// The profile exists already.
    #[error("this doctor is already registered")]
    AlreadyRegistered,
    /// There is no doctor with this id.
    #[error("no such doctor")]
    NotRegistered,
}

/// The doctor profile aggregate's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Doctor {
    profile: Option<DoctorProfile>,
    policy: SlotPolicy,
}

impl Doctor {
    /// The current profile, if registered.
    pub fn profile(&self) -> Option<&DoctorProfile> {
        self.profile.as_ref()
    }

    /// The buffers and slot interval (none until set).
    pub fn policy(&self) -> SlotPolicy {
        self.policy
    }
}

impl Decide for Doctor {
    fn decide(&self, command: DoctorCommand) -> Result<Vec<DoctorEvent>, DoctorError> {
        match (command, &self.profile) {
            (DoctorCommand::Register { .. }, Some(_)) => Err(DoctorError::AlreadyRegistered),
            (DoctorCommand::Register { name, timezone }, None) => {
                Ok(vec![DoctorEvent::DoctorRegistered { name, timezone }])
            }
            (DoctorCommand::UpdateProfile { .. } | DoctorCommand::SetSlotPolicy(_), None) => {
                Err(DoctorError::NotRegistered)
            }
            (DoctorCommand::SetSlotPolicy(policy), Some(_)) if policy == self.policy => Ok(vec![]),
            (DoctorCommand::SetSlotPolicy(policy), Some(_)) => {
                Ok(vec![DoctorEvent::SlotPolicySet(policy)])
            }
            (
                DoctorCommand::UpdateProfile {
                    name,
                    specialties,
                    bio,
                    languages,
                    timezone,
                },
                Some(current),
            ) => {
                let updated = DoctorProfile {
                    name: name.unwrap_or_else(|| current.name.clone()),
                    specialties,
                    bio,
                    languages,
                    timezone,
                };
                if &updated == current {
                    return Ok(vec![]);
                }
                Ok(vec![DoctorEvent::DoctorProfileUpdated(updated)])
            }
        }
    }
}

impl Aggregate for Doctor {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = DoctorCommand;
    type Event = DoctorEvent;
    type Error = DoctorError;
    type Services = ();

    async fn handle(
        &mut self,
        command: DoctorCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), DoctorError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: DoctorEvent) {
        self.profile = Some(match event {
            DoctorEvent::DoctorRegistered { name, timezone } => DoctorProfile {
                name,
                specialties: LabelList::default(),
                bio: FreeText::default(),
                languages: LabelList::default(),
                timezone,
            },
            DoctorEvent::DoctorProfileUpdated(profile) => profile,
            DoctorEvent::SlotPolicySet(policy) => {
                self.policy = policy;
                return;
            }
        });
    }
}

impl crate::NamedCommand for DoctorCommand {
    fn command_name(&self) -> &'static str {
        match self {
            DoctorCommand::Register { .. } => "doctor.register",
            DoctorCommand::UpdateProfile { .. } => "doctor.update_profile",
            DoctorCommand::SetSlotPolicy(_) => "doctor.set_slot_policy",
        }
    }
}

impl DomainEvent for DoctorEvent {
    fn event_type(&self) -> String {
        match self {
            DoctorEvent::DoctorRegistered { .. } => "DoctorRegistered",
            DoctorEvent::DoctorProfileUpdated(_) => "DoctorProfileUpdated",
            DoctorEvent::SlotPolicySet(_) => "SlotPolicySet",
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

    fn registered() -> DoctorEvent {
        DoctorEvent::DoctorRegistered {
            name: name("Dr. Grey"),
            timezone: zone("Europe/Paris"),
        }
    }

    fn update(name: Option<PersonName>, specialty: &str) -> DoctorCommand {
        DoctorCommand::UpdateProfile {
            name,
            specialties: LabelList::parse(&[specialty]).unwrap(),
            bio: FreeText::parse("Twenty years in practice.").unwrap(),
            languages: LabelList::parse(&["en", "fr"]).unwrap(),
            timezone: zone("America/New_York"),
        }
    }

    fn profile(name_text: &str, specialty: &str) -> DoctorProfile {
        DoctorProfile {
            name: name(name_text),
            specialties: LabelList::parse(&[specialty]).unwrap(),
            bio: FreeText::parse("Twenty years in practice.").unwrap(),
            languages: LabelList::parse(&["en", "fr"]).unwrap(),
            timezone: zone("America/New_York"),
        }
    }

    #[test]
    fn registering_a_new_doctor_records_it() {
        TestFramework::<Doctor>::with(())
            .given_no_previous_events()
            .when(DoctorCommand::Register {
                name: name("Dr. Grey"),
                timezone: zone("Europe/Paris"),
            })
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn registering_twice_is_refused() {
        TestFramework::<Doctor>::with(())
            .given(vec![registered()])
            .when(DoctorCommand::Register {
                name: name("Dr. Grey"),
                timezone: zone("Europe/Paris"),
            })
            .then_expect_error(DoctorError::AlreadyRegistered);
    }

    #[test]
    fn updating_an_unknown_doctor_is_refused() {
        TestFramework::<Doctor>::with(())
            .given_no_previous_events()
            .when(update(None, "Cardiology"))
            .then_expect_error(DoctorError::NotRegistered);
    }

    #[test]
    fn updating_without_a_name_keeps_the_registered_name() {
        TestFramework::<Doctor>::with(())
            .given(vec![registered()])
            .when(update(None, "Cardiology"))
            .then_expect_events(vec![DoctorEvent::DoctorProfileUpdated(profile(
                "Dr. Grey",
                "Cardiology",
            ))]);
    }

    #[test]
    fn updating_with_a_name_renames_the_doctor() {
        TestFramework::<Doctor>::with(())
            .given(vec![registered()])
            .when(update(Some(name("Dr. Meredith Grey")), "Cardiology"))
            .then_expect_events(vec![DoctorEvent::DoctorProfileUpdated(profile(
                "Dr. Meredith Grey",
                "Cardiology",
            ))]);
    }

    #[test]
    fn an_update_that_changes_nothing_records_nothing() {
        TestFramework::<Doctor>::with(())
            .given(vec![
                registered(),
                DoctorEvent::DoctorProfileUpdated(profile("Dr. Grey", "Cardiology")),
            ])
            .when(update(None, "Cardiology"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn setting_the_slot_policy_records_it_once() {
        let policy = SlotPolicy::parse(10, 5, Some(15)).unwrap();
        TestFramework::<Doctor>::with(())
            .given(vec![registered()])
            .when(DoctorCommand::SetSlotPolicy(policy))
            .then_expect_events(vec![DoctorEvent::SlotPolicySet(policy)]);
        TestFramework::<Doctor>::with(())
            .given(vec![registered(), DoctorEvent::SlotPolicySet(policy)])
            .when(DoctorCommand::SetSlotPolicy(policy))
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_unknown_doctor_has_no_slot_policy_to_set() {
        TestFramework::<Doctor>::with(())
            .given_no_previous_events()
            .when(DoctorCommand::SetSlotPolicy(SlotPolicy::default()))
            .then_expect_error(DoctorError::NotRegistered);
    }
}
