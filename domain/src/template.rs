//! Weekly availability templates: rules such as "Mondays 09:00–17:00" expanded over a range of
//! dates into UTC windows on the wall clock of the doctor's zone, following the DST policy of
//! [`crate::calendar`] (a window across the fall-back hour covers every reading of it, a
//! bound in the spring-forward gap moves to the gap's end, a window wholly inside the gap is
//! skipped and reported).

use time::{Date, Time, Weekday};
use time_tz::Tz;

use crate::calendar::{Interval, LocalWindowError, local_window};

/// The most days one weekly template may span.
pub const MAX_TEMPLATE_DAYS: i64 = 366;

/// One weekly rule, in the doctor's zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeeklyRule {
    /// The day of the week it applies to.
    pub weekday: Weekday,
    /// Wall-clock start.
    pub start: Time,
    /// Wall-clock end; `None` is midnight at the end of the day (`24:00`). A rule whose end is
    /// not after its start opens nothing.
    pub end: Option<Time>,
}

/// A date the template matched but could not place a window on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedDay {
    /// The local date.
    pub date: Date,
    /// The rule's weekday.
    pub weekday: Weekday,
    /// Why (the window lies wholly in a DST gap).
    pub reason: LocalWindowError,
}

/// What a template opens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The windows, by date, then in rule order.
    pub windows: Vec<Interval>,
    /// Matched days that produced no window.
    pub skipped: Vec<SkippedDay>,
}

/// Expands `rules` over the local dates `from..=to` in `tz`.
pub fn expand(rules: &[WeeklyRule], from: Date, to: Date, tz: &Tz) -> Expansion {
    let mut expansion = Expansion::default();
    let mut date = from;
    while date <= to {
        for rule in rules.iter().filter(|rule| rule.weekday == date.weekday()) {
            match local_window(date, rule.start, rule.end, tz) {
                Ok(window) => expansion.windows.push(window),
                Err(reason @ LocalWindowError::InDstGap) => {
                    expansion.skipped.push(SkippedDay {
                        date,
                        weekday: rule.weekday,
                        reason,
                    });
                }
                Err(LocalWindowError::EndNotAfterStart) => {}
            }
        }
        match date.next_day() {
            Some(next) => date = next,
            None => break,
        }
    }
    expansion
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime, time};
    use time_tz::timezones::db;

    use super::*;

    fn rule(weekday: Weekday, start: Time, end: Option<Time>) -> WeeklyRule {
        WeeklyRule {
            weekday,
            start,
            end,
        }
    }

    #[test]
    fn a_rule_opens_a_window_on_each_matching_date_in_the_range() {
        let rules = [rule(Weekday::Monday, time!(09:00), Some(time!(12:00)))];
        let paris = db::europe::PARIS;
        // 2027-01-04 and 2027-01-11 are Mondays; the range ends on the second, inclusive.
        let expanded = expand(&rules, date!(2027 - 01 - 01), date!(2027 - 01 - 11), paris);
        let starts: Vec<_> = expanded.windows.iter().map(|w| w.start).collect();
        assert_eq!(
            starts,
            [
                datetime!(2027-01-04 08:00 UTC),
                datetime!(2027-01-11 08:00 UTC)
            ]
        );
        assert!(expanded.skipped.is_empty());
    }

    #[test]
    fn a_window_wholly_in_the_spring_forward_gap_is_skipped_and_reported() {
        // New York skips 02:00–03:00 on Sunday 2027-03-14.
        let rules = [rule(Weekday::Sunday, time!(02:00), Some(time!(02:30)))];
        let expanded = expand(
            &rules,
            date!(2027 - 03 - 07),
            date!(2027 - 03 - 14),
            db::america::NEW_YORK,
        );
        assert_eq!(expanded.windows.len(), 1, "only the week before opens");
        assert_eq!(
            expanded.skipped,
            [SkippedDay {
                date: date!(2027 - 03 - 14),
                weekday: Weekday::Sunday,
                reason: LocalWindowError::InDstGap,
            }]
        );
    }

    #[test]
    fn a_window_starting_in_the_spring_forward_gap_starts_when_it_ends() {
        let rules = [rule(Weekday::Sunday, time!(02:30), Some(time!(04:00)))];
        let day = date!(2027 - 03 - 14);
        let expanded = expand(&rules, day, day, db::america::NEW_YORK);
        let window = expanded.windows[0];
        assert_eq!(window.start, datetime!(2027-03-14 07:00 UTC));
        assert_eq!(window.end, datetime!(2027-03-14 08:00 UTC));
    }

    #[test]
    fn a_window_across_the_fall_back_overlap_covers_both_readings() {
        // New York repeats 01:00–02:00 on Sunday 2027-11-07: 00:30–02:30 lasts three hours.
        let rules = [rule(Weekday::Sunday, time!(00:30), Some(time!(02:30)))];
        let day = date!(2027 - 11 - 07);
        let expanded = expand(&rules, day, day, db::america::NEW_YORK);
        let window = expanded.windows[0];
        assert_eq!(window.start, datetime!(2027-11-07 04:30 UTC));
        assert_eq!(window.end, datetime!(2027-11-07 07:30 UTC));
        assert_eq!(window.minutes(), 180);
    }

    #[test]
    fn a_rule_to_midnight_ends_with_the_local_day_of_25_hours() {
        let rules = [rule(Weekday::Sunday, time!(00:00), None)];
        let day = date!(2027 - 11 - 07);
        let expanded = expand(&rules, day, day, db::america::NEW_YORK);
        assert_eq!(expanded.windows[0].minutes(), 25 * 60);
    }

    #[test]
    fn a_range_with_no_matching_weekday_opens_nothing() {
        let rules = [rule(Weekday::Saturday, time!(09:00), Some(time!(10:00)))];
        // Monday to Friday.
        let expanded = expand(
            &rules,
            date!(2027 - 01 - 04),
            date!(2027 - 01 - 08),
            db::europe::PARIS,
        );
        assert_eq!(expanded, Expansion::default());
    }
}
