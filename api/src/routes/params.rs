//! Parsing helpers for request fields shared by several routes.

use telemed_domain::calendar::Interval;
use telemed_domain::values::{InvalidValue, TimeZoneName};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::error::FieldErrors;

/// An RFC 3339 instant with any offset, as UTC, in the years 1 to 9998 (so that it can be
/// rendered in any zone without leaving the calendar's range).
pub fn instant(raw: &str) -> Result<OffsetDateTime, InvalidValue> {
    let parsed = OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
        InvalidValue::new(
            "must be an RFC 3339 date-time with an offset, such as 2027-03-14T09:00:00-04:00",
        )
    })?;
    parsed
        .checked_to_offset(UtcOffset::UTC)
        .filter(|t| (1..=9998).contains(&t.year()))
        .ok_or_else(|| InvalidValue::new("must be in the years 1 to 9998 (UTC)"))
}

/// A calendar date `YYYY-MM-DD` in the years 1 to 9998 (so that its times in any zone are
/// instants in the calendar's range).
pub fn date(raw: &str) -> Result<Date, InvalidValue> {
    let date = Date::parse(
        raw.trim(),
        &time::format_description::well_known::Iso8601::DATE,
    )
    .map_err(|_| InvalidValue::new("must be a date such as 2027-03-14"))?;
    if (1..=9998).contains(&date.year()) {
        Ok(date)
    } else {
        Err(InvalidValue::new("must be in the years 1 to 9998"))
    }
}

/// `{start, end}` as an interval, recording field errors.
pub fn interval(errors: &mut FieldErrors, start: &str, end: &str) -> Option<Interval> {
    let start = errors.check("start", instant(start));
    let end = errors.check("end", instant(end));
    let (start, end) = (start?, end?);
    match Interval::new(start, end) {
        Ok(interval) => Some(interval),
        Err(e) => {
            errors.push("end", e.to_string());
            None
        }
    }
}

/// An optional IANA zone name.
pub fn zone(
    errors: &mut FieldErrors,
    field: &str,
    raw: Option<&str>,
) -> Option<Option<TimeZoneName>> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        Some(raw) => errors.check(field, TimeZoneName::parse(raw)).map(Some),
        None => Some(None),
    }
}

/// Renders an instant in UTC, RFC 3339 with `Z`.
pub fn utc(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Renders an instant as the wall-clock time of `zone`, RFC 3339 with that zone's offset.
pub fn local(t: OffsetDateTime, zone: &TimeZoneName) -> String {
    telemed_domain::calendar::to_local(t, zone.tz())
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// A page size from 1 to `max` (`default` when absent or blank), recording a field error.
pub fn limit(errors: &mut FieldErrors, raw: Option<&str>, default: i64, max: i64) -> Option<i64> {
    match raw.map(str::trim) {
        None | Some("") => Some(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                errors.push("limit", format!("must be a whole number from 1 to {max}"));
                None
            }
        },
    }
}

/// An optional query value parsed as `T` (`Some(None)` when absent or blank); on a bad value
/// records `message` for `field` and answers `None`.
pub fn optional<T: std::str::FromStr>(
    errors: &mut FieldErrors,
    field: &str,
    raw: Option<&str>,
    message: &str,
) -> Option<Option<T>> {
    match raw.map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => match text.parse::<T>() {
            Ok(value) => Some(Some(value)),
            Err(_) => {
                errors.push(field, message);
                None
            }
        },
    }
}
