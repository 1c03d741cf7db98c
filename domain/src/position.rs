//! The commit-safe position of an event in the global log.
//!
//! A position is the pair (transaction id, global position). Ordering by the pair and reading
//! only below the oldest running transaction never skips an event that commits late. Clients
//! see it as one opaque token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where an event sits in the commit-safe global order. `Position::START` precedes every event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The 64-bit id (xid8) of the transaction that appended the event.
    pub transaction_id: u64,
    /// The event's identity column value.
    pub global_position: i64,
}

impl Position {
    /// Before the first event.
    pub const START: Position = Position {
        transaction_id: 0,
        global_position: 0,
    };

    /// A position from its two parts.
    pub fn new(transaction_id: u64, global_position: i64) -> Self {
        Self {
            transaction_id,
            global_position,
        }
    }
}

/// The text is not a position token issued by this service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid position token")]
pub struct InvalidPosition;

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.transaction_id, self.global_position)
    }
}

impl FromStr for Position {
    type Err = InvalidPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (xid, pos) = s.split_once('-').ok_or(InvalidPosition)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(xid) || !digits(pos) {
            return Err(InvalidPosition);
        }
        let transaction_id = xid.parse().map_err(|_| InvalidPosition)?;
        let global_position: i64 = pos.parse().map_err(|_| InvalidPosition)?;
        Ok(Self::new(transaction_id, global_position))
    }
}

impl Serialize for Position {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_through_its_token() {
        let position = Position::new(751, 12);
        assert_eq!(position.to_string().parse::<Position>(), Ok(position));
    }

    #[test]
    fn positions_order_by_transaction_first() {
        assert!(Position::new(2, 1) > Position::new(1, 99));
        assert!(Position::new(2, 2) > Position::new(2, 1));
        assert!(Position::START < Position::new(1, 1));
    }

    #[test]
    fn garbage_tokens_are_rejected() {
        for token in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "1 -2",
            "+1-2",
            "99999999999999999999999-1",
        ] {
            assert_eq!(token.parse::<Position>(), Err(InvalidPosition), "{token}");
        }
    }
}
