//! The roles a user can hold.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user is allowed to do in general; ownership rules come on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Books consultations and owns their medical profile.
    Patient,
    /// Offers availability and runs consultations.
    Doctor,
    /// Operates the service; sees everything.
    Admin,
    /// Reads the audit history; changes nothing.
    Auditor,
}

impl Role {
    /// The stable lowercase name used in tokens, the database and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Doctor => "doctor",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// The aggregate type of the profile that goes with this role.
    pub fn profile_aggregate_type(&self) -> &'static str {
        use cqrs_es::Aggregate;
        match self {
            Role::Patient => crate::patient::Patient::TYPE,
            Role::Doctor => crate::doctor::Doctor::TYPE,
            Role::Admin | Role::Auditor => crate::staff::Staff::TYPE,
        }
    }

    /// Whether this role is an operator role (created from the command line only).
    pub fn is_staff(&self) -> bool {
        matches!(self, Role::Admin | Role::Auditor)
    }
}

/// The text was not one of the four role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of patient, doctor, admin, auditor")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "patient" => Ok(Role::Patient),
            "doctor" => Ok(Role::Doctor),
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            _ => Err(UnknownRole),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in [Role::Patient, Role::Doctor, Role::Admin, Role::Auditor] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn role_names_are_case_sensitive() {
        assert_eq!("Doctor".parse::<Role>(), Err(UnknownRole));
    }
}
