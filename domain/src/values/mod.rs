//! Validated value types. Each is built only through `parse`, so holding one proves it is valid.
//!
//! Parse failures are [`InvalidValue`]s: a human-readable reason that the API attaches to the
//! offending field.

mod email;
mod password;
mod phone;
mod slot_policy;
mod text;
mod time_zone;

pub use email::Email;
pub use password::Password;
pub use phone::PhoneNumber;
pub use slot_policy::SlotPolicy;
pub use text::{ClientMsgId, FreeText, Label, LabelList, MessageContent, PersonName, ShortNote};
pub use time_zone::TimeZoneName;

/// Why a value was rejected, phrased to follow the field name ("must not be empty").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    /// A rejection with the given reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}
