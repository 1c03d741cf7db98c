//! Time on the calendar: UTC intervals, and doctors' local wall-clock times turned into
//! instants in their IANA zone, with daylight-saving transitions handled deliberately.
//!
//! # DST policy
//!
//! A local window `[start, end)` covers every instant whose wall-clock reading lies in it:
//!
//! - **Fall back** (a local time occurs twice): the start resolves to its *earlier* occurrence
//!   and the end to its *later* one, so `01:00–02:30` on the night clocks go back covers
//!   3½ real hours.
//! - **Spring forward** (a local time does not exist): a bound inside the gap moves to the
//!   instant the gap ends (the first valid wall-clock time), so `02:30–04:00` in New York on
//!   the night clocks jump from 02:00 to 03:00 becomes `03:00–04:00` (shortened). A window that
//!   lies wholly inside the gap is empty and rejected ([`LocalWindowError::InDstGap`]).

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use time_tz::{Offset, OffsetResult, PrimitiveDateTimeExt, TimeZone, Tz};

/// A half-open span of time `[start, end)` in UTC, with `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Interval {
    /// First instant.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// First instant after.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

/// The bounds do not make an interval.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("end must be after start")]
pub struct EmptyInterval;

impl Interval {
    /// `[start, end)` in UTC; refuses empty or reversed intervals.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Result<Self, EmptyInterval> {
        let (start, end) = (
            start.to_offset(UtcOffset::UTC),
            end.to_offset(UtcOffset::UTC),
        );
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(EmptyInterval)
        }
    }

    /// Whether the two share any instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies wholly inside `self`.
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Length.
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    /// Length in whole minutes.
    pub fn minutes(&self) -> i64 {
        self.duration().whole_minutes()
    }
}

/// The date of `instant` on the wall calendar of `tz`.
pub fn local_date(instant: OffsetDateTime, tz: &Tz) -> Date {
    instant
        .to_offset(tz.get_offset_utc(&instant).to_utc())
        .date()
}

/// `instant` rendered with `tz`'s offset at that instant.
pub fn to_local(instant: OffsetDateTime, tz: &Tz) -> OffsetDateTime {
    instant.to_offset(tz.get_offset_utc(&instant).to_utc())
}

/// How a wall-clock time maps onto instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalTime {
    /// Exactly one instant.
    Exact(OffsetDateTime),
    /// Occurs twice (clocks going back): both instants, earlier first.
    Ambiguous(OffsetDateTime, OffsetDateTime),
    /// Does not occur (clocks going forward); the instant the gap ends.
    Gap(OffsetDateTime),
}

impl LocalTime {
    /// The earliest instant showing this time, or the end of the gap.
    pub fn earliest(self) -> OffsetDateTime {
        match self {
            LocalTime::Exact(t) | LocalTime::Ambiguous(t, _) | LocalTime::Gap(t) => t,
        }
    }

    /// The latest instant showing this time, or the end of the gap.
    pub fn latest(self) -> OffsetDateTime {
        match self {
            LocalTime::Exact(t) | LocalTime::Ambiguous(_, t) | LocalTime::Gap(t) => t,
        }
    }
}

/// Resolves `date` at `time` on the wall clock of `tz`.
pub fn resolve_local(date: Date, time: Time, tz: &Tz) -> LocalTime {
    let local = PrimitiveDateTime::new(date, time);
    match local.assume_timezone(tz) {
        OffsetResult::Some(t) => LocalTime::Exact(t.to_offset(UtcOffset::UTC)),
        OffsetResult::Ambiguous(a, b) => {
            let (a, b) = (a.to_offset(UtcOffset::UTC), b.to_offset(UtcOffset::UTC));
            LocalTime::Ambiguous(a.min(b), a.max(b))
        }
        OffsetResult::None => LocalTime::Gap(gap_end(local, tz)),
    }
}

/// The transition instant that skips over `local` (which lies in a spring-forward gap).
fn gap_end(local: PrimitiveDateTime, tz: &Tz) -> OffsetDateTime {
    let probe = local.assume_utc();
    let before = tz.get_offset_utc(&(probe - Duration::days(1))).to_utc();
    let after = tz.get_offset_utc(&(probe + Duration::days(1))).to_utc();
    // Reading `local` with the later (larger) offset gives an instant before the transition;
    // with the earlier offset, one at or after it. Bisect on seconds between them.
    let mut low = local.assume_offset(after).unix_timestamp();
    let mut high = local.assume_offset(before).unix_timestamp();
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        let instant = OffsetDateTime::from_unix_timestamp(mid).unwrap_or(probe);
        if tz.get_offset_utc(&instant).to_utc() == after {
            high = mid;
        } else {
            low = mid;
        }
    }
    OffsetDateTime::from_unix_timestamp(high).unwrap_or(probe)
}

/// The local day `date` of `tz` as an interval: from its first instant to the next day's.
pub fn day_bounds(date: Date, tz: &Tz) -> Interval {
    let start = resolve_local(date, Time::MIDNIGHT, tz).earliest();
    let next = date.next_day().unwrap_or(date);
    let end = resolve_local(next, Time::MIDNIGHT, tz).earliest();
    Interval { start, end }
}

/// Why a local window cannot be placed on the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalWindowError {
    /// The end is not after the start on the wall clock.
    #[error("end must be after start")]
    EndNotAfterStart,
    /// The whole window lies in the hour skipped when clocks go forward.
    #[error("the window lies entirely in the hour skipped by the daylight-saving change")]
    InDstGap,
}

/// The interval covered by wall-clock times `[start, end)` on local `date` in `tz` (see the
/// module's DST policy). `end = None` means midnight at the end of the day (`24:00`).
pub fn local_window(
    date: Date,
    start: Time,
    end: Option<Time>,
    tz: &Tz,
) -> Result<Interval, LocalWindowError> {
    if end.is_some_and(|end| end <= start) {
        return Err(LocalWindowError::EndNotAfterStart);
    }
    let from = resolve_local(date, start, tz).earliest();
    let to = match end {
        Some(end) => resolve_local(date, end, tz).latest(),
        None => day_bounds(date, tz).end,
    };
    Interval::new(from, to).map_err(|_| LocalWindowError::InDstGap)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime, time};
    use time_tz::timezones::db;

    use super::*;

    #[test]
    fn intervals_must_not_be_empty() {
        let t = datetime!(2027-01-01 10:00 UTC);
        assert_eq!(Interval::new(t, t), Err(EmptyInterval));
        assert!(Interval::new(t, t + Duration::minutes(1)).is_ok());
    }

    #[test]
    fn touching_intervals_do_not_overlap() {
        let a = Interval::new(
            datetime!(2027-01-01 10:00 UTC),
            datetime!(2027-01-01 10:30 UTC),
        )
        .unwrap();
        let b = Interval::new(
            datetime!(2027-01-01 10:30 UTC),
            datetime!(2027-01-01 11:00 UTC),
        )
        .unwrap();
        assert!(!a.overlaps(&b));
        let c = Interval::new(
            datetime!(2027-01-01 10:29 UTC),
            datetime!(2027-01-01 11:00 UTC),
        )
        .unwrap();
        assert!(a.overlaps(&c));
    }

    #[test]
    fn a_new_york_time_in_the_spring_forward_gap_resolves_to_the_end_of_the_gap() {
        let resolved = resolve_local(date!(2027 - 03 - 14), time!(02:30), db::america::NEW_YORK);
        assert_eq!(resolved, LocalTime::Gap(datetime!(2027-03-14 07:00 UTC)));
    }

    #[test]
    fn a_new_york_time_in_the_fall_back_overlap_has_two_instants() {
        let resolved = resolve_local(date!(2027 - 11 - 07), time!(01:30), db::america::NEW_YORK);
        assert_eq!(
            resolved,
            LocalTime::Ambiguous(
                datetime!(2027-11-07 05:30 UTC),
                datetime!(2027-11-07 06:30 UTC)
            )
        );
    }

    #[test]
    fn a_window_across_the_fall_back_hour_covers_every_wall_clock_reading() {
        let window = local_window(
            date!(2027 - 11 - 07),
            time!(01:00),
            Some(time!(02:30)),
            db::america::NEW_YORK,
        )
        .unwrap();
        assert_eq!(window.start, datetime!(2027-11-07 05:00 UTC));
        assert_eq!(window.end, datetime!(2027-11-07 07:30 UTC));
        assert_eq!(window.minutes(), 150);
    }

    #[test]
    fn a_window_starting_in_the_gap_is_shortened() {
        let window = local_window(
            date!(2027 - 03 - 14),
            time!(02:30),
            Some(time!(04:00)),
            db::america::NEW_YORK,
        )
        .unwrap();
        assert_eq!(window.start, datetime!(2027-03-14 07:00 UTC));
        assert_eq!(window.end, datetime!(2027-03-14 08:00 UTC));
    }

    #[test]
    fn a_window_inside_the_gap_is_rejected() {
        let result = local_window(
            date!(2027 - 03 - 14),
            time!(02:00),
            Some(time!(02:45)),
            db::america::NEW_YORK,
        );
        assert_eq!(result, Err(LocalWindowError::InDstGap));
    }

    #[test]
    fn lord_howe_moves_by_half_an_hour() {
        // Lord Howe: +10:30 standard, +11:00 in summer; clocks go forward 02:00 → 02:30 on
        // 2027-10-03 and back 02:00 → 01:30 on 2027-04-04.
        let gap = resolve_local(
            date!(2027 - 10 - 03),
            time!(02:15),
            db::australia::LORD_HOWE,
        );
        assert_eq!(gap, LocalTime::Gap(datetime!(2027-10-02 15:30 UTC)));
        let overlap = resolve_local(
            date!(2027 - 04 - 04),
            time!(01:45),
            db::australia::LORD_HOWE,
        );
        assert_eq!(
            overlap,
            LocalTime::Ambiguous(
                datetime!(2027-04-03 14:45 UTC),
                datetime!(2027-04-03 15:15 UTC)
            )
        );
    }

    #[test]
    fn day_bounds_are_23_and_25_hours_on_transition_days() {
        let tz = db::america::NEW_YORK;
        assert_eq!(
            day_bounds(date!(2027 - 03 - 14), tz).duration(),
            Duration::hours(23)
        );
        assert_eq!(
            day_bounds(date!(2027 - 11 - 07), tz).duration(),
            Duration::hours(25)
        );
        assert_eq!(
            day_bounds(date!(2027 - 06 - 01), tz).duration(),
            Duration::hours(24)
        );
    }

    #[test]
    fn local_dates_follow_the_zone() {
        let instant = datetime!(2027-01-01 03:00 UTC);
        assert_eq!(
            local_date(instant, db::america::NEW_YORK),
            date!(2026 - 12 - 31)
        );
        assert_eq!(
            local_date(instant, db::asia::KOLKATA),
            date!(2027 - 01 - 01)
        );
    }
}
