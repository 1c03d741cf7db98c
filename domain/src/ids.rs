//! Identifier newtypes. Ids are UUIDs, rendered as lowercase strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a user account (patient, doctor, admin or auditor); also the id of their profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for UserId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl FromStr for UserId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The id of an appointment (and of its conversation).
    AppointmentId
);
uuid_id!(
    /// The id of an availability window.
    WindowId
);
uuid_id!(
    /// The id of a chat message.
    MessageId
);
uuid_id!(
    /// The id of a call session.
    CallId
);
uuid_id!(
    /// The id of one slot reservation on a doctor-day.
    ReservationId
);
uuid_id!(
    /// The id of a doctor's time off (recorded on each doctor-day it may touch).
    TimeOffId
);

/// A doctor's local calendar day: the id of an availability aggregate, `"{doctor}:{date}"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayId {
    /// The doctor.
    pub doctor: UserId,
    /// The date in the doctor's time zone.
    pub date: time::Date,
}

impl DayId {
    /// The day `date` of `doctor`.
    pub fn new(doctor: UserId, date: time::Date) -> Self {
        Self { doctor, date }
    }
}

impl fmt::Display for DayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.doctor, self.date)
    }
}

/// The text is not a `"{uuid}:{YYYY-MM-DD}"` day id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a doctor-day id")]
pub struct InvalidDayId;

impl FromStr for DayId {
    type Err = InvalidDayId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (doctor, date) = s.split_once(':').ok_or(InvalidDayId)?;
        let doctor = doctor.parse().map_err(|_| InvalidDayId)?;
        let date = time::Date::parse(date, &time::format_description::well_known::Iso8601::DATE)
            .map_err(|_| InvalidDayId)?;
        Ok(Self { doctor, date })
    }
}

impl Serialize for DayId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DayId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_id_round_trips_through_text() {
        let day = DayId::new(UserId::new(), time::macros::date!(2027 - 03 - 14));
        let text = day.to_string();
        assert!(text.ends_with(":2027-03-14"));
        assert_eq!(text.parse::<DayId>(), Ok(day));
    }

    #[test]
    fn malformed_day_ids_are_rejected() {
        assert!("nope".parse::<DayId>().is_err());
        assert!(
            format!("{}:2027-13-01", UserId::new())
                .parse::<DayId>()
                .is_err()
        );
    }
}
