//! The schemas of request fields, built from the rules the server enforces (the domain's value
//! types and their limits), so that a client generated from the OpenAPI document validates
//! exactly what the server accepts. Each is a named component that request fields refer to with
//! `#[schema(value_type = fields::…)]`. Rules JSON Schema cannot state (a real IANA zone, a time
//! in the future, one field depending on another) are left to the server's 422.

use telemed_domain::appointment::Status;
use telemed_domain::values::{
    Email, FreeText, Label, LabelList, MessageContent, Password, PersonName, ShortNote,
};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};

/// Characters never accepted in text (Unicode control characters, as Rust's `char::is_control`).
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// Control characters refused in multi-line text (all but tab, line feed and carriage return).
const CONTROL_BUT_LINES: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";
/// The longest reason given for booking, rescheduling or cancelling, in characters.
pub const MAX_REASON: usize = 2000;

/// Declares a named schema component `$name` whose schema is `$schema`.
macro_rules! component {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// Text of `min..=max` characters with none of the characters in `refused`; when `min` is above
/// 0 it must hold something besides white space (the server trims surrounding white space).
fn text(refused: &str, min: usize, max: usize, description: &str) -> ObjectBuilder {
    let pattern = if min == 0 {
        format!("^[^{refused}]*$")
    } else {
        format!(r"^[^{refused}]*[^\s{refused}][^{refused}]*$")
    };
    string()
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
}

/// One line of 1 to `max` characters, not blank, without control characters.
fn line(max: usize) -> ObjectBuilder {
    text(
        CONTROL,
        1,
        max,
        &format!("One line of 1 to {max} characters, not only white space."),
    )
}

/// Multi-line text of 1 to `max` characters that is not only white space.
fn paragraph(max: usize) -> ObjectBuilder {
    text(
        CONTROL_BUT_LINES,
        1,
        max,
        &format!(
            "1 to {max} characters, not only white space; no control characters but line breaks and tabs."
        ),
    )
}

/// A string of a well-known format.
fn formatted(format: KnownFormat) -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(format)))
}

/// The years an instant or date may fall in: 1 to 9998 (so that it can be shown in any zone).
const YEARS: &str = "^(?!0000|9999)";

component!(
    /// A person's display name ([`PersonName`]).
    PersonNameText => line(PersonName::MAX).examples(["Ada Lovelace"])
);

component!(
    /// A short note ([`ShortNote`]) such as the reason for time off.
    ShortNoteText => text(
        CONTROL_BUT_LINES,
        0,
        ShortNote::MAX,
        &format!(
            "At most {} characters; no control characters but line breaks and tabs.",
            ShortNote::MAX
        ),
    )
);

component!(
    /// A list of labels ([`LabelList`]) such as specialties or languages ([`Label`]); duplicates
    /// (ignoring case) are dropped.
    LabelListText => ArrayBuilder::new()
        .items(line(Label::MAX))
        .max_items(Some(LabelList::MAX_ITEMS))
        .description(Some(format!("At most {} labels.", LabelList::MAX_ITEMS)))
);

component!(
    /// Multi-line free text such as a bio or notes ([`FreeText`]), possibly empty.
    FreeTextValue => text(
        CONTROL_BUT_LINES,
        0,
        FreeText::MAX,
        &format!(
            "At most {} characters; no control characters but line breaks and tabs.",
            FreeText::MAX
        ),
    )
);

component!(
    /// Why an appointment is booked, moved or called off.
    ReasonText => paragraph(MAX_REASON)
);

component!(
    /// A chat message ([`MessageContent`]), kept exactly as sent.
    MessageText => paragraph(MessageContent::MAX)
);

component!(
    /// The login e-mail address of a new account ([`Email`]).
    EmailAddress => {
        let part = format!(r"[^\s@.{CONTROL}]+");
        formatted(KnownFormat::Email)
            .min_length(Some(5))
            .max_length(Some(Email::MAX))
            .pattern(Some(format!(r"^[^\s@{CONTROL}]+@{part}(\.{part})+$")))
            .examples(["ada@example.org"])
    }
);

component!(
    /// A new password ([`Password`]).
    NewPassword => string()
        .min_length(Some(Password::MIN))
        .max_length(Some(Password::MAX))
        .pattern(Some(r"^(?!([\s\S])\1*$)".to_string()))
        .description(Some(format!(
            "{} to {} characters, not one character repeated, not containing the part of the \
             e-mail address before `@` (checked by the server: 422).",
            Password::MIN,
            Password::MAX
        )))
);

component!(
    /// Something besides white space.
    NotBlank => string().min_length(Some(1)).pattern(Some(r"\S".to_string()))
);

component!(
    /// An IANA time zone name ([`telemed_domain::values::TimeZoneName`]).
    TimeZoneText => string()
        .min_length(Some(1))
        .pattern(Some(r"^\s*[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*\s*$".to_string()))
        .examples(["Europe/Paris"])
        .description(Some(
            "An IANA time zone name such as `Europe/Paris` (case-sensitive); one the server \
             does not know is a 422.",
        ))
);

component!(
    /// An RFC 3339 instant.
    Instant => formatted(KnownFormat::DateTime)
        .pattern(Some(YEARS.to_string()))
        .description(Some(
            "RFC 3339 date-time with an offset, in the years 1 to 9998 once in UTC.",
        ))
);

component!(
    /// A calendar date.
    CalendarDate => formatted(KnownFormat::Date)
        .pattern(Some(YEARS.to_string()))
        .description(Some("`YYYY-MM-DD` in the years 1 to 9998."))
);

component!(
    /// An appointment's status ([`Status`]).
    AppointmentStatus => string().enum_values(Some(Status::ALL.map(|s| s.as_str())))
);

component!(
    /// An RFC 3339 instant or a calendar date (the start of that day).
    InstantOrDate => utoipa::openapi::schema::OneOfBuilder::new()
        .item(<Instant as utoipa::PartialSchema>::schema())
        .item(<CalendarDate as utoipa::PartialSchema>::schema())
);

component!(
    /// A day of the week.
    WeekdayName => string().enum_values(Some(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]))
);

/// `HH:MM` on a 24-hour clock.
const HH_MM: &str = "([01][0-9]|2[0-3]):[0-5][0-9]";

component!(
    /// A time of day.
    ClockTime => string()
        .pattern(Some(format!("^{HH_MM}$")))
        .examples(["09:30"])
);

component!(
    /// A time of day, or `24:00` for the end of the day.
    ClockTimeOrMidnight => string()
        .pattern(Some(format!("^({HH_MM}|24:00)$")))
        .examples(["17:00", "24:00"])
);

component!(
    /// A phone number as patients enter it ([`telemed_domain::values::PhoneNumber`]), or blank.
    PhoneText => string()
        .max_length(Some(32))
        .pattern(Some(r"^\s*(\+?[ .\(\)\-]*([0-9][ .\(\)\-]*){5,20})?\s*$".to_string()))
        .examples(["+44 20 7946 0958"])
        .description(Some(
            "5 to 20 digits, optionally after a `+`, with spaces, dots, dashes or parentheses \
             between them; blank for none.",
        ))
);

/// A whole number in a request body, written as an integer or as a number with no fraction
/// (`34.0`: JSON Schema's `integer` admits both), for `#[serde(deserialize_with)]`.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = <serde_json::Number as serde::Deserialize>::deserialize(deserializer)?;
    if let Some(whole) = number.as_i64() {
        return Ok(whole);
    }
    match number.as_f64() {
        // Beyond i64, a whole number saturates: every such value is out of any range we accept.
        #[allow(clippy::cast_possible_truncation)]
        Some(float) if float.fract() == 0.0 => Ok(float as i64),
        _ => Err(serde::de::Error::custom(format!(
            "must be a whole number, not {number}"
        ))),
    }
}

/// [`whole_number`] for an optional field (`null` or absent: `None`).
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_number")] i64);
    let whole = <Option<Whole> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(whole.map(|Whole(n)| n))
}
