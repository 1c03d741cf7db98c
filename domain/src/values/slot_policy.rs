//! A doctor's slot policy: buffers around appointments and the grid slots start on.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::InvalidValue;
use crate::calendar::Interval;

/// Buffers before and after each appointment (0–120 minutes each) and the interval slots may
/// start at (5–120 minutes from the start of their window; `None`: anywhere, and listed slots
/// run back to back).
///
/// Two appointments of a doctor keep `buffer_after` after the earlier and `buffer_before`
/// before the later between them: each occupies its time widened by the buffers, and widened
/// times may not overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPolicy {
    buffer_before_minutes: u16,
    buffer_after_minutes: u16,
    slot_interval_minutes: Option<u16>,
}

/// Which of a policy's settings was out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPolicy {
    /// The setting's name, as in the API (`buffer_before_minutes`, ...).
    pub field: &'static str,
    /// Why.
    pub reason: InvalidValue,
}

impl SlotPolicy {
    /// Longest buffer, in minutes.
    pub const MAX_BUFFER: i64 = 120;
    /// Shortest slot interval, in minutes.
    pub const MIN_INTERVAL: i64 = 5;
    /// Longest slot interval, in minutes.
    pub const MAX_INTERVAL: i64 = 120;

    /// A policy from minutes; every out-of-range setting is reported.
    pub fn parse(
        buffer_before: i64,
        buffer_after: i64,
        slot_interval: Option<i64>,
    ) -> Result<Self, Vec<InvalidPolicy>> {
        let mut invalid = Vec::new();
        let mut minutes =
            |field: &'static str, value: i64, min: i64, max: i64| match u16::try_from(value) {
                Ok(value) if (min..=max).contains(&i64::from(value)) => value,
                _ => {
                    let reason = format!("must be a whole number of minutes from {min} to {max}");
                    invalid.push(InvalidPolicy {
                        field,
                        reason: InvalidValue::new(reason),
                    });
                    0
                }
            };
        let policy = Self {
            buffer_before_minutes: minutes(
                "buffer_before_minutes",
                buffer_before,
                0,
                Self::MAX_BUFFER,
            ),
            buffer_after_minutes: minutes(
                "buffer_after_minutes",
                buffer_after,
                0,
                Self::MAX_BUFFER,
            ),
            slot_interval_minutes: slot_interval.map(|value| {
                minutes(
                    "slot_interval_minutes",
                    value,
                    Self::MIN_INTERVAL,
                    Self::MAX_INTERVAL,
                )
            }),
        };
        if invalid.is_empty() {
            Ok(policy)
        } else {
            Err(invalid)
        }
    }

    /// Minutes kept free before each appointment.
    pub fn buffer_before_minutes(&self) -> i64 {
        self.buffer_before_minutes.into()
    }

    /// Minutes kept free after each appointment.
    pub fn buffer_after_minutes(&self) -> i64 {
        self.buffer_after_minutes.into()
    }

    /// Minutes between the times a slot may start at, from the start of its window.
    pub fn slot_interval_minutes(&self) -> Option<i64> {
        self.slot_interval_minutes.map(i64::from)
    }

    /// The time an appointment occupies: `interval` widened by the buffers.
    pub fn guarded(&self, interval: &Interval) -> Interval {
        Interval {
            start: interval.start - Duration::minutes(self.buffer_before_minutes()),
            end: interval.end + Duration::minutes(self.buffer_after_minutes()),
        }
    }

    /// Whether appointments at `a` and `b` keep the buffers between them.
    pub fn clash(&self, a: &Interval, b: &Interval) -> bool {
        self.guarded(a).overlaps(&self.guarded(b))
    }

    /// Whether a slot may start at `start` in a window starting at `window_start`.
    pub fn on_grid(&self, window_start: OffsetDateTime, start: OffsetDateTime) -> bool {
        match self.slot_interval_minutes() {
            None => true,
            Some(step) => {
                let offset = (start - window_start).whole_seconds();
                offset >= 0 && offset % (step * 60) == 0
            }
        }
    }

    /// The distance between listed slots of `length`: the interval, or back to back.
    pub fn step(&self, length: Duration) -> Duration {
        self.slot_interval_minutes()
            .map_or(length, Duration::minutes)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn at(from: i64, to: i64) -> Interval {
        let nine = datetime!(2027-06-01 09:00 UTC);
        Interval {
            start: nine + Duration::minutes(from),
            end: nine + Duration::minutes(to),
        }
    }

    #[test]
    fn every_out_of_range_setting_is_named() {
        let invalid = SlotPolicy::parse(-1, 121, Some(4)).unwrap_err();
        let fields: Vec<_> = invalid.iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            vec![
                "buffer_before_minutes",
                "buffer_after_minutes",
                "slot_interval_minutes"
            ]
        );
        assert!(SlotPolicy::parse(0, 120, Some(120)).is_ok());
        assert!(SlotPolicy::parse(0, 0, Some(121)).is_err());
    }

    #[test]
    fn appointments_closer_than_the_buffers_clash() {
        let policy = SlotPolicy::parse(10, 5, None).unwrap();
        assert!(policy.clash(&at(0, 30), &at(44, 60)));
        assert!(!policy.clash(&at(0, 30), &at(45, 60)));
        assert!(!policy.clash(&at(45, 60), &at(0, 30)));
    }

    #[test]
    fn starts_off_the_grid_are_refused() {
        let policy = SlotPolicy::parse(0, 0, Some(20)).unwrap();
        let window = datetime!(2027-06-01 09:00 UTC);
        assert!(policy.on_grid(window, window + Duration::minutes(40)));
        assert!(!policy.on_grid(window, window + Duration::minutes(30)));
        assert!(SlotPolicy::default().on_grid(window, window + Duration::minutes(7)));
    }
}
