//! Phone numbers as entered by patients.

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// A phone number: 5 to 20 digits, optionally a leading `+`, with spaces, dots, dashes or
/// parentheses as separators. Kept as entered (trimmed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a phone number.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = raw.trim();
        let body = text.strip_prefix('+').unwrap_or(text);
        let allowed = body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
        let digits = body.chars().filter(char::is_ascii_digit).count();
        if !allowed || !(5..=20).contains(&digits) || text.len() > 32 {
            return Err(InvalidValue::new(
                "must be a phone number such as +44 20 7946 0958 (5 to 20 digits)",
            ));
        }
        Ok(Self(text.to_string()))
    }

    /// The number as entered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_are_accepted() {
        assert!(PhoneNumber::parse("+44 20 7946 0958").is_ok());
        assert!(PhoneNumber::parse("(555) 010-9999").is_ok());
    }

    #[test]
    fn letters_and_too_few_digits_are_rejected() {
        assert!(PhoneNumber::parse("call me").is_err());
        assert!(PhoneNumber::parse("+1 23").is_err());
        assert!(PhoneNumber::parse("++4420794609").is_err());
    }
}
