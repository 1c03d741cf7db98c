//! Password policy. A [`Password`] never prints its content.

use std::fmt;

use super::InvalidValue;

/// A password that satisfies the policy: 10 to 128 characters, not a single repeated
/// character, not containing the account's e-mail local part.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest accepted password, in characters.
    pub const MIN: usize = 10;
    /// Longest accepted password, in characters (bounds hashing cost).
    pub const MAX: usize = 128;

    /// Parses a new password for the account with the given e-mail address.
    pub fn parse(raw: &str, email: &str) -> Result<Self, InvalidValue> {
        let length = raw.chars().count();
        if length < Self::MIN {
            return Err(InvalidValue::new(format!(
                "must be at least {} characters",
                Self::MIN
            )));
        }
        if length > Self::MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {} characters",
                Self::MAX
            )));
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(InvalidValue::new("must not be a single repeated character"));
        }
        let local = email.split('@').next().unwrap_or_default().to_lowercase();
        if local.len() >= 4 && raw.to_lowercase().contains(&local) {
            return Err(InvalidValue::new("must not contain your e-mail address"));
        }
        Ok(Self(raw.to_string()))
    }

    /// The secret, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_varied_password_is_accepted() {
        assert!(Password::parse("correct horse battery", "ada@example.org").is_ok());
    }

    #[test]
    fn a_short_password_is_rejected() {
        assert_eq!(
            Password::parse("short", "ada@example.org").unwrap_err().0,
            "must be at least 10 characters"
        );
    }

    #[test]
    fn a_repeated_character_is_rejected() {
        assert!(Password::parse("aaaaaaaaaaaa", "ada@example.org").is_err());
    }

    #[test]
    fn a_password_containing_the_email_name_is_rejected() {
        assert!(Password::parse("lovelace-2026!", "lovelace@example.org").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let password = Password::parse("correct horse battery", "a@b.org").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
