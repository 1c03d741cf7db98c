//! The staff profile aggregate: admins and auditors, created from the command line.
//!
//! Aggregate id: the staff member's [`UserId`](crate::UserId).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::values::{PersonName, TimeZoneName};
use crate::{Decide, Role};

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "staff";

/// What can be asked of a staff profile.
#[derive(Clone, Debug, PartialEq)]
pub enum StaffCommand {
    /// Create the profile when the account is created.
    Register {
        /// Admin or auditor.
        role: Role,
        /// Display name.
        name: PersonName,
        /// IANA time zone.
        timezone: TimeZoneName,
    },
}

/// What happened to a staff profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StaffEvent {
    /// An admin or auditor account was created.
    StaffRegistered {
        /// Admin or auditor.
        role: Role,
        /// Display name.
        name: PersonName,
        /// IANA time zone.
        timezone: TimeZoneName,
    },
}

/// Why a staff command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    /// The profile exists already.
    #[error("this staff member is already registered")]
    AlreadyRegistered,
    /// Only admins and auditors are staff.
    #[error("{0} is not a staff role (admin or auditor)")]
    NotAStaffRole(Role),
}

/// The staff profile aggregate's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Staff {
    registered: bool,
}

impl Decide for Staff {
    fn decide(&self, command: StaffCommand) -> Result<Vec<StaffEvent>, StaffError> {
        let StaffCommand::Register {
            role,
            name,
            timezone,
        } = command;
        if self.registered {
            return Err(StaffError::AlreadyRegistered);
        }
        if !role.is_staff() {
            return Err(StaffError::NotAStaffRole(role));
        }
        Ok(vec![StaffEvent::StaffRegistered {
            role,
            name,
            timezone,
        }])
    }
}

impl Aggregate for Staff {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = StaffCommand;
    type Event = StaffEvent;
    type Error = StaffError;
    type Services = ();

    async fn handle(
        &mut self,
        command: StaffCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), StaffError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: StaffEvent) {
        match event {
            StaffEvent::StaffRegistered { .. } => self.registered = true,
        }
    }
}

impl crate::NamedCommand for StaffCommand {
    fn command_name(&self) -> &'static str {
        match self {
            StaffCommand::Register { .. } => "staff.register",
        }
    }
}

impl DomainEvent for StaffEvent {
    fn event_type(&self) -> String {
        match self {
            StaffEvent::StaffRegistered { .. } => "StaffRegistered".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn register(role: Role) -> StaffCommand {
        StaffCommand::Register {
            role,
            name: PersonName::parse("Root").unwrap(),
            timezone: TimeZoneName::utc(),
        }
    }

    fn registered(role: Role) -> StaffEvent {
        StaffEvent::StaffRegistered {
            role,
            name: PersonName::parse("Root").unwrap(),
            timezone: TimeZoneName::utc(),
        }
    }

    #[test]
    fn registering_an_admin_records_it() {
        TestFramework::<Staff>::with(())
            .given_no_previous_events()
            .when(register(Role::Admin))
            .then_expect_events(vec![registered(Role::Admin)]);
    }

    #[test]
    fn registering_an_auditor_records_it() {
        TestFramework::<Staff>::with(())
            .given_no_previous_events()
            .when(register(Role::Auditor))
            .then_expect_events(vec![registered(Role::Auditor)]);
    }

    #[test]
    fn registering_twice_is_refused() {
        TestFramework::<Staff>::with(())
            .given(vec![registered(Role::Admin)])
            .when(register(Role::Admin))
            .then_expect_error(StaffError::AlreadyRegistered);
    }

    #[test]
    fn a_patient_is_not_staff() {
        TestFramework::<Staff>::with(())
            .given_no_previous_events()
            .when(register(Role::Patient))
            .then_expect_error(StaffError::NotAStaffRole(Role::Patient));
    }
}
