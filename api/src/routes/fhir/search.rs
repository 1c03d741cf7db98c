//! Search parameters, paging and search bundles.
//!
//! Every search takes `_count` (page size, 1–200, default 50) and `_offset` (default 0); a
//! parameter the search does not know, a repeated one that may appear once, or a bad value is
//! a 400 `OperationOutcome` naming it. Dates take FHIR's prefixes `eq` (the default), `ne`,
//! `gt`, `ge`, `lt`, `le` before a `YYYY-MM-DD` date (the UTC day) or an RFC 3339 date-time
//! (that second).

use std::collections::BTreeSet;

use axum::extract::Query;
use axum::http::Uri;
use time::{Duration, OffsetDateTime};

use super::model::{Bundle, Entry, Link, Resource, SearchMode};
use super::outcome::FhirError;
use crate::routes::params;

/// Default and largest page.
const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 200;

/// A search request: its parameters, and the ones read so far.
pub struct Search {
    pairs: Vec<(String, String)>,
    read: BTreeSet<String>,
    /// `…/fhir/R4/Type`.
    endpoint: String,
    /// `…/fhir/R4`.
    base: String,
}

/// One page of a search.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Size.
    pub count: usize,
    /// Matches skipped.
    pub offset: usize,
}

impl Search {
    /// The parameters of `uri`, a search of `kind` on the FHIR API at `base`.
    pub fn new(uri: &Uri, base: &str, kind: &str) -> Result<Self, FhirError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| FhirError::parameter("(query)", format!("cannot be read: {e}")))?;
        if let Some((name, _)) = pairs
            .iter()
            .find(|(n, v)| n.contains('\0') || v.contains('\0'))
        {
            return Err(FhirError::parameter(
                &name.replace('\0', "\\0"),
                "must not contain NUL characters",
            ));
        }
        Ok(Self {
            pairs,
            read: BTreeSet::from(["_format".to_string()]),
            endpoint: format!("{base}/{kind}"),
            base: base.to_string(),
        })
    }

    /// Every value of `name`.
    pub fn all(&mut self, name: &str) -> Vec<String> {
        self.read.insert(name.to_string());
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// The value of `name`, which may appear once.
    pub fn one(&mut self, name: &str) -> Result<Option<String>, FhirError> {
        let mut values = self.all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            _ => Err(FhirError::parameter(name, "may appear only once")),
        }
    }

    /// `_count` and `_offset`.
    pub fn page(&mut self) -> Result<Page, FhirError> {
        let number =
            |raw: Option<String>, name: &str, default: usize, range: (usize, usize)| match raw {
                None => Ok(default),
                Some(raw) => match raw.parse::<usize>() {
                    Ok(n) if n >= range.0 && n <= range.1 => Ok(n),
                    _ => Err(FhirError::parameter(
                        name,
                        format!("must be a whole number from {} to {}", range.0, range.1),
                    )),
                },
            };
        let count = number(self.one("_count")?, "_count", DEFAULT_COUNT, (1, MAX_COUNT))?;
        let offset = number(self.one("_offset")?, "_offset", 0, (0, 1_000_000))?;
        Ok(Page { count, offset })
    }

    /// 400 naming the first parameter no one read.
    pub fn finish(&self) -> Result<(), FhirError> {
        match self.pairs.iter().find(|(n, _)| !self.read.contains(n)) {
            Some((name, _)) => Err(FhirError::parameter(
                name,
                "is not supported by this search (see /fhir/R4/metadata)",
            )),
            None => Ok(()),
        }
    }

    /// This search's URL with `replace` set (and no other value of its name).
    fn url(&self, replace: Option<(&str, String)>) -> String {
        let mut pairs: Vec<(String, String)> = self.pairs.clone();
        if let Some((name, value)) = &replace {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name.to_string(), value.clone()));
        }
        if pairs.is_empty() {
            return self.endpoint.clone();
        }
        let query = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{}?{query}", self.endpoint)
    }

    /// The searchset of `page` of all `matches`, with `self`, `next` and `previous` links.
    pub fn bundle(&self, page: Page, matches: Vec<Resource>) -> Bundle {
        let total = matches.len();
        let entries = matches.into_iter().skip(page.offset).take(page.count);
        self.bundle_page(page, total, entries.collect())
    }

    /// A searchset of `resources`, the page `page` of `total` matches.
    pub fn bundle_page(&self, page: Page, total: usize, resources: Vec<Resource>) -> Bundle {
        let mut link = vec![self.link("self", None)];
        if page.offset + page.count < total {
            let next = (page.offset + page.count).to_string();
            link.push(self.link("next", Some(("_offset", next))));
        }
        if page.offset > 0 && total > 0 {
            let previous = page.offset.saturating_sub(page.count).to_string();
            link.push(self.link("previous", Some(("_offset", previous))));
        }
        self.searchset(total, link, resources)
    }

    /// A searchset of `resources` out of `total`, with a `next` link carrying `cursor` as
    /// `_cursor` when there is more.
    pub fn bundle_with_cursor(
        &self,
        total: usize,
        resources: Vec<Resource>,
        cursor: Option<String>,
    ) -> Bundle {
        let mut link = vec![self.link("self", None)];
        if let Some(cursor) = cursor {
            link.push(self.link("next", Some(("_cursor", cursor))));
        }
        self.searchset(total, link, resources)
    }

    fn link(&self, relation: &str, replace: Option<(&str, String)>) -> Link {
        Link {
            relation: relation.into(),
            url: self.url(replace),
        }
    }

    fn searchset(&self, total: usize, link: Vec<Link>, resources: Vec<Resource>) -> Bundle {
        Bundle {
            kind: "searchset".into(),
            timestamp: super::map::now(),
            total: Some(total),
            link,
            entry: resources
                .into_iter()
                .map(|resource| entry(&self.base, resource, true))
                .collect(),
        }
    }
}

/// A bundle entry of `resource`, read at `base`/Type/id.
pub fn entry(base: &str, resource: Resource, matched: bool) -> Entry {
    Entry {
        full_url: match resource.local_reference() {
            Some(local) => format!("{base}/{local}"),
            None => base.to_string(),
        },
        resource,
        search: matched.then(|| SearchMode {
            mode: "match".into(),
        }),
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The id in reference parameter `name`'s value `raw`: `Type/id`, a URL ending in it, or a
/// bare id.
pub fn reference<T: std::str::FromStr>(name: &str, kind: &str, raw: &str) -> Result<T, FhirError> {
    let id = match raw.rsplit_once('/') {
        Some((before, id)) if before == kind || before.ends_with(&format!("/{kind}")) => id,
        Some(_) => {
            return Err(FhirError::parameter(
                name,
                format!("must reference a {kind} ({kind}/id)"),
            ));
        }
        None => raw,
    };
    id.parse()
        .map_err(|_| FhirError::parameter(name, format!("must reference a {kind} by its id")))
}

/// How a date parameter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// One date condition: a prefix and the range `[low, high)` its value stands for.
#[derive(Clone, Copy, Debug)]
pub struct DateCondition {
    prefix: Prefix,
    low: OffsetDateTime,
    high: OffsetDateTime,
}

impl DateCondition {
    /// Parses `raw` of parameter `name`.
    pub fn parse(name: &str, raw: &str) -> Result<Self, FhirError> {
        let prefixes = [
            ("eq", Prefix::Eq),
            ("ne", Prefix::Ne),
            ("gt", Prefix::Gt),
            ("ge", Prefix::Ge),
            ("lt", Prefix::Lt),
            ("le", Prefix::Le),
        ];
        let (prefix, value) = prefixes
            .iter()
            .find_map(|(text, prefix)| raw.strip_prefix(text).map(|rest| (*prefix, rest)))
            .unwrap_or((Prefix::Eq, raw));
        let bad = || {
            FhirError::parameter(
                name,
                "must be a date (YYYY-MM-DD) or an RFC 3339 date-time, after an optional prefix eq, ne, gt, ge, lt or le",
            )
        };
        let (low, high) = if value.len() == 10 {
            let day = params::date(value).map_err(|_| bad())?;
            let low = day.midnight().assume_utc();
            (low, low + Duration::days(1))
        } else {
            let at = params::instant(value).map_err(|_| bad())?;
            let low = at.replace_nanosecond(0).map_err(|_| bad())?;
            (low, low + Duration::seconds(1))
        };
        Ok(Self { prefix, low, high })
    }

    /// Whether `t` meets the condition.
    pub fn matches(&self, t: OffsetDateTime) -> bool {
        match self.prefix {
            Prefix::Eq => self.low <= t && t < self.high,
            Prefix::Ne => !(self.low <= t && t < self.high),
            Prefix::Gt => t >= self.high,
            Prefix::Ge => t >= self.low,
            Prefix::Lt => t < self.low,
            Prefix::Le => t < self.high,
        }
    }

    /// As `(low, high, negated)`: the instant matches when `low <= t < high` (an absent bound
    /// is open), or, if `negated`, when it does not.
    pub fn bounds(&self) -> (Option<OffsetDateTime>, Option<OffsetDateTime>, bool) {
        match self.prefix {
            Prefix::Eq => (Some(self.low), Some(self.high), false),
            Prefix::Ne => (Some(self.low), Some(self.high), true),
            Prefix::Gt => (Some(self.high), None, false),
            Prefix::Ge => (Some(self.low), None, false),
            Prefix::Lt => (None, Some(self.low), false),
            Prefix::Le => (None, Some(self.high), false),
        }
    }

    /// The earliest instant that can match, if bounded below.
    pub fn lower_bound(&self) -> Option<OffsetDateTime> {
        match self.prefix {
            Prefix::Eq | Prefix::Ge => Some(self.low),
            Prefix::Gt => Some(self.high),
            _ => None,
        }
    }

    /// The instant before which every match lies, if bounded above.
    pub fn upper_bound(&self) -> Option<OffsetDateTime> {
        match self.prefix {
            Prefix::Eq | Prefix::Le => Some(self.high),
            Prefix::Lt => Some(self.low),
            _ => None,
        }
    }
}

/// Every condition of date parameter `name`.
pub fn dates(search: &mut Search, name: &str) -> Result<Vec<DateCondition>, FhirError> {
    search
        .all(name)
        .iter()
        .map(|raw| DateCondition::parse(name, raw))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn date_prefixes_compare_with_the_range_the_value_stands_for() {
        let day = DateCondition::parse("date", "2027-03-14").unwrap();
        assert!(day.matches(datetime!(2027-03-14 23:59 UTC)));
        assert!(!day.matches(datetime!(2027-03-15 00:00 UTC)));
        let after = DateCondition::parse("date", "gt2027-03-14").unwrap();
        assert!(!after.matches(datetime!(2027-03-14 12:00 UTC)));
        assert!(after.matches(datetime!(2027-03-15 00:00 UTC)));
        let from = DateCondition::parse("date", "ge2027-03-14T09:00:00-04:00").unwrap();
        assert!(from.matches(datetime!(2027-03-14 13:00 UTC)));
        assert!(!from.matches(datetime!(2027-03-14 12:59 UTC)));
        assert!(DateCondition::parse("date", "sa2027-03-14").is_err());
        assert!(DateCondition::parse("date", "tomorrow").is_err());
    }

    #[test]
    fn bounds_say_what_matches_says() {
        let instants = [
            datetime!(2027-03-13 23:59:59 UTC),
            datetime!(2027-03-14 00:00 UTC),
            datetime!(2027-03-14 12:00 UTC),
            datetime!(2027-03-15 00:00 UTC),
            datetime!(2027-03-16 00:00 UTC),
        ];
        for prefix in ["", "eq", "ne", "gt", "ge", "lt", "le"] {
            let condition = DateCondition::parse("date", &format!("{prefix}2027-03-14")).unwrap();
            let (low, high, negated) = condition.bounds();
            for t in instants {
                let within = low.is_none_or(|low| t >= low) && high.is_none_or(|high| t < high);
                assert_eq!(within != negated, condition.matches(t), "{prefix} at {t}");
            }
        }
    }

    #[test]
    fn references_name_their_type() {
        let id: uuid::Uuid = reference(
            "patient",
            "Patient",
            "Patient/6f9619ff-8b86-d011-b42d-00c04fc964ff",
        )
        .unwrap();
        assert_eq!(id.to_string(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        assert!(reference::<uuid::Uuid>("patient", "Patient", "Practitioner/x").is_err());
        assert_eq!(
            encode("ge2027-03-14T09:00:00+01:00"),
            "ge2027-03-14T09%3A00%3A00%2B01%3A00"
        );
    }
}
