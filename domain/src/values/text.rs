//! Bounded, printable text: names, labels and free text.

use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Checks length (in characters) and refuses control characters, except newlines and tabs in
/// multi-line text. Returns the text trimmed of surrounding white space.
fn bounded(raw: &str, min: usize, max: usize, multiline: bool) -> Result<String, InvalidValue> {
    let text = raw.trim();
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\t' | '\r'));
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(InvalidValue::new(format!(
            "must not contain control characters (found U+{:04X})",
            bad as u32
        )));
    }
    let length = text.chars().count();
    if length < min {
        return Err(InvalidValue::new(if min == 1 {
            "must not be empty".to_string()
        } else {
            format!("must be at least {min} characters")
        }));
    }
    if length > max {
        return Err(InvalidValue::new(format!(
            "must be at most {max} characters"
        )));
    }
    Ok(text.to_string())
}

/// A client's key for a chat message (`client_msg_id`): 1 to 100 characters, none a control
/// character, kept exactly as sent (it names the message a repeated post returns).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    /// Longest accepted key, in characters.
    pub const MAX: usize = 100;

    /// Parses a key (not trimmed: the client's bytes are the key).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let length = raw.chars().count();
        if length == 0 || length > Self::MAX || raw.chars().any(char::is_control) {
            return Err(InvalidValue::new(format!(
                "must be 1 to {} printable characters",
                Self::MAX
            )));
        }
        Ok(Self(raw.to_string()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A person's display name: 1 to 200 characters, one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    /// Longest accepted name, in characters.
    pub const MAX: usize = 200;

    /// Parses a name, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded(raw, 1, Self::MAX, false).map(Self)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short one-line label such as a specialty or a language: 1 to 100 characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    /// Longest accepted label, in characters.
    pub const MAX: usize = 100;

    /// Parses a label, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded(raw, 1, Self::MAX, false).map(Self)
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A list of at most 50 distinct labels (compared case-insensitively), in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelList(Vec<Label>);

impl LabelList {
    /// Most labels in one list.
    pub const MAX_ITEMS: usize = 50;

    /// Parses every item; the error names the first bad item's index.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, InvalidValue> {
        if raw.len() > Self::MAX_ITEMS {
            return Err(InvalidValue::new(format!(
                "must have at most {} items",
                Self::MAX_ITEMS
            )));
        }
        let mut labels: Vec<Label> = Vec::with_capacity(raw.len());
        for (index, item) in raw.iter().enumerate() {
            let label = Label::parse(item.as_ref())
                .map_err(|e| InvalidValue::new(format!("item {index} {e}")))?;
            let seen = labels
                .iter()
                .any(|l| l.as_str().to_lowercase() == label.as_str().to_lowercase());
            if !seen {
                labels.push(label);
            }
        }
        Ok(Self(labels))
    }

    /// The labels as text.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Label::as_str)
    }

    /// The labels as owned strings (for storage).
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

/// Multi-line free text such as a bio or clinical notes: at most 10 000 characters, may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FreeText(String);

impl FreeText {
    /// Longest accepted text, in characters.
    pub const MAX: usize = 10_000;

    /// Parses free text, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded(raw, 0, Self::MAX, true).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short note such as the reason for time off: at most 500 characters, may be empty, one or
/// more lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShortNote(String);

impl ShortNote {
    /// Longest accepted note, in characters.
    pub const MAX: usize = 500;

    /// Parses a note, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded(raw, 0, Self::MAX, true).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A chat message: 1 to 4 000 characters, not only white space, no control characters but
/// newlines and tabs. Kept exactly as given (not trimmed): it is shown as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageContent(String);

impl MessageContent {
    /// Longest accepted message, in characters.
    pub const MAX: usize = 4_000;

    /// Parses a message.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded(raw, 1, Self::MAX, true)?;
        if raw.chars().count() > Self::MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {} characters",
                Self::MAX
            )));
        }
        Ok(Self(raw.to_string()))
    }

    /// The text, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_client_msg_id_is_kept_exactly_and_bounded() {
        assert_eq!(ClientMsgId::parse(" k-1 ").unwrap().as_str(), " k-1 ");
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse(&"k".repeat(101)).is_err());
        assert!(ClientMsgId::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            ClientMsgId::parse("a\u{7}b").unwrap_err().to_string(),
            "must be 1 to 100 printable characters"
        );
    }
    use super::*;

    #[test]
    fn a_message_is_kept_as_sent_and_bounded() {
        assert_eq!(
            MessageContent::parse("  hello\n").unwrap().as_str(),
            "  hello\n"
        );
        assert!(MessageContent::parse("").is_err());
        assert!(MessageContent::parse(" \n\t ").is_err());
        assert!(MessageContent::parse("bell\u{7}").is_err());
        assert!(MessageContent::parse(&"a".repeat(4_000)).is_ok());
        assert!(MessageContent::parse(&"a".repeat(4_001)).is_err());
        assert!(MessageContent::parse(&format!(" {}", "a".repeat(4_000))).is_err());
    }

    #[test]
    fn a_name_is_trimmed() {
        assert_eq!(
            PersonName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
    }

    #[test]
    fn an_empty_or_blank_name_is_rejected() {
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse("   ").is_err());
    }

    #[test]
    fn a_name_longer_than_200_characters_is_rejected() {
        assert!(PersonName::parse(&"é".repeat(200)).is_ok());
        assert!(PersonName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn a_name_with_a_control_character_is_rejected() {
        let err = PersonName::parse("Ada\u{0}").unwrap_err();
        assert!(err.0.contains("U+0000"), "{err}");
        assert!(PersonName::parse("Ada\nLovelace").is_err());
    }

    #[test]
    fn free_text_keeps_newlines_and_may_be_empty() {
        assert_eq!(FreeText::parse("a\nb").unwrap().as_str(), "a\nb");
        assert_eq!(FreeText::parse("").unwrap().as_str(), "");
        assert!(FreeText::parse("bell\u{7}").is_err());
    }

    #[test]
    fn label_lists_drop_case_insensitive_duplicates_and_keep_order() {
        let list = LabelList::parse(&["Cardiology", "cardiology", "GP"]).unwrap();
        assert_eq!(list.to_strings(), vec!["Cardiology", "GP"]);
    }

    #[test]
    fn a_bad_item_is_named_by_its_index() {
        let err = LabelList::parse(&["ok", ""]).unwrap_err();
        assert_eq!(err.0, "item 1 must not be empty");
    }

    #[test]
    fn a_label_list_longer_than_50_is_rejected() {
        let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
        assert!(LabelList::parse(&many).is_err());
    }
}
