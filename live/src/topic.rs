//! What a live event is about, and who may listen to it.

use std::fmt;
use std::str::FromStr;

use telemed_domain::{AppointmentId, UserId};

/// A channel of live events. Every connection is in its user's `user:{id}` topic; others are
/// joined with `subscribe` after an authorization check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everything a user takes part in (their appointments, their own availability).
    User(UserId),
    /// One appointment's changes.
    Appointment(AppointmentId),
    /// A doctor's availability (public: patients watch it while choosing a slot).
    DoctorAvailability(UserId),
    /// Every stored event (auditors and admins).
    Audit,
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::User(id) => write!(f, "user:{id}"),
            Topic::Appointment(id) => write!(f, "appointment:{id}"),
            Topic::DoctorAvailability(id) => write!(f, "doctor:{id}:availability"),
            Topic::Audit => f.write_str("audit"),
        }
    }
}

/// The text names no topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a topic: expected `appointment:{{id}}`, `doctor:{{id}}:availability` or `audit`")]
pub struct UnknownTopic;

impl FromStr for Topic {
    type Err = UnknownTopic;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "audit" {
            return Ok(Topic::Audit);
        }
        if let Some(id) = s.strip_prefix("appointment:") {
            return id.parse().map(Topic::Appointment).map_err(|_| UnknownTopic);
        }
        if let Some(id) = s.strip_prefix("user:") {
            return id.parse().map(Topic::User).map_err(|_| UnknownTopic);
        }
        if let Some(id) = s
            .strip_prefix("doctor:")
            .and_then(|rest| rest.strip_suffix(":availability"))
        {
            return id
                .parse()
                .map(Topic::DoctorAvailability)
                .map_err(|_| UnknownTopic);
        }
        Err(UnknownTopic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_their_names() {
        let (user, appointment) = (UserId::new(), AppointmentId::new());
        for topic in [
            Topic::User(user),
            Topic::Appointment(appointment),
            Topic::DoctorAvailability(user),
            Topic::Audit,
        ] {
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }
    }

    #[test]
    fn malformed_topics_are_refused() {
        for text in [
            "",
            "audit:",
            "appointment:",
            "appointment:nope",
            "doctor:x:availability",
            "doctor::availability",
            "calendar",
        ] {
            assert_eq!(text.parse::<Topic>(), Err(UnknownTopic), "{text:?}");
        }
    }
}
