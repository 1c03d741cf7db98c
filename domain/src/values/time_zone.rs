//! IANA time zone names, validated against the tz database shipped by `time-tz`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use time_tz::{TimeZone, Tz, timezones};

use super::InvalidValue;

/// The name of an IANA time zone, such as `Europe/Paris`, with its rules.
#[derive(Clone)]
pub struct TimeZoneName {
    name: String,
    tz: &'static Tz,
}

impl PartialEq for TimeZoneName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZoneName {}

impl fmt::Debug for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimeZoneName").field(&self.name).finish()
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl TimeZoneName {
    /// Parses a zone name; the match is exact (IANA names are case-sensitive).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let name = raw.trim();
        // `get_by_name` also maps Windows zone names ("Eastern Standard Time", "UTC-11"); only
        // accept a zone's own IANA name, plus "UTC", which is both (IANA links it to Etc/UTC).
        match timezones::get_by_name(name) {
            Some(tz) if tz.name() == name || name == "UTC" => Ok(Self {
                name: name.to_string(),
                tz,
            }),
            _ => Err(InvalidValue::new(format!(
                "must be an IANA time zone name such as Europe/Paris (got {name:?})"
            ))),
        }
    }

    /// Coordinated Universal Time.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_string(),
            tz: timezones::db::UTC,
        }
    }

    /// The zone's name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The zone's rules.
    pub fn tz(&self) -> &'static Tz {
        self.tz
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_zones_are_accepted() {
        for name in [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "UTC",
        ] {
            assert_eq!(TimeZoneName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn unknown_zones_are_rejected() {
        for name in [
            "",
            "Mars/Olympus_Mons",
            "europe/paris",
            "+02:00",
            "Eastern Standard Time",
            "UTC-11",
        ] {
            assert!(TimeZoneName::parse(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn the_zone_rules_match_the_name() {
        let zone = TimeZoneName::parse("Asia/Kolkata").unwrap();
        assert_eq!(zone.tz().name(), "Asia/Kolkata");
    }
}
