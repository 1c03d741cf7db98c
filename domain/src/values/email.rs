//! E-mail addresses as login names.

use std::fmt;

use super::InvalidValue;

/// A plausible e-mail address, trimmed; at most 254 characters. Uniqueness is case-insensitive
/// ([`Email::normalized`]); the address is kept as given for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Longest accepted address (RFC 5321 path limit).
    pub const MAX: usize = 254;

    /// Parses an address: one `@`, a non-empty local part, a dotted domain, no white space.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(InvalidValue::new("must not be empty"));
        }
        if text.chars().count() > Self::MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {} characters",
                Self::MAX
            )));
        }
        let invalid = || InvalidValue::new("must be an e-mail address such as name@example.org");
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = text.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|part| !part.is_empty());
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(text.to_string()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address lowercased, as compared for uniqueness and login.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_address_is_accepted_and_trimmed() {
        assert_eq!(
            Email::parse(" Ada@Example.org ").unwrap().as_str(),
            "Ada@Example.org"
        );
    }

    #[test]
    fn addresses_compare_case_insensitively() {
        assert_eq!(
            Email::parse("Ada@Example.ORG").unwrap().normalized(),
            "ada@example.org"
        );
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@example.org",
            "a@b@c.org",
            "ada@example..org",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?}");
        }
    }
}
