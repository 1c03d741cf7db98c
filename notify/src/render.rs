//! What a notification says, in the recipient's time zone.
//!
//! Three registers: the in-app text and the e-mail may name the other party and the time; push
//! and SMS bodies are shown on lock screens and pass through third parties, so they carry no
//! health information at all (no names, no reasons, no message text) — only that there is
//! something to look at, and when.

use time::OffsetDateTime;
use time::macros::format_description;
use time_tz::{OffsetDateTimeExt, TimeZone, timezones};

/// The facts a notification is rendered from.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// `appointment_requested`, `appointment_confirmed`, `appointment_rescheduled`,
    /// `appointment_cancelled`, `message`, `reminder_24h` or `reminder_1h`.
    pub kind: &'a str,
    /// The other party's display name.
    pub other_name: Option<&'a str>,
    /// The appointment's (new) start.
    pub start: Option<OffsetDateTime>,
    /// Its start before a reschedule.
    pub previous_start: Option<OffsetDateTime>,
    /// The recipient's IANA time zone (UTC when unknown or invalid).
    pub timezone: Option<&'a str>,
}

/// `instant` in `timezone`, e.g. `Tuesday 1 December 2026, 10:00 (Europe/Paris)`.
pub fn local_time(instant: OffsetDateTime, timezone: Option<&str>) -> String {
    let tz = timezone
        .and_then(timezones::get_by_name)
        .unwrap_or(timezones::db::UTC);
    let local = instant.to_timezone(tz);
    let format = format_description!(
        "[weekday] [day padding:none] [month repr:long] [year], [hour]:[minute]"
    );
    let text = local
        .format(&format)
        .unwrap_or_else(|_| instant.to_string());
    format!("{text} ({})", tz.name())
}

impl Facts<'_> {
    fn when(&self) -> String {
        self.start
            .map(|start| local_time(start, self.timezone))
            .unwrap_or_else(|| "a time to be agreed".to_string())
    }

    fn who(&self) -> &str {
        self.other_name.unwrap_or("The other participant")
    }

    /// A short title.
    pub fn title(&self) -> &'static str {
        match self.kind {
            "appointment_requested" => "New consultation request",
            "appointment_confirmed" => "Consultation confirmed",
            "appointment_rescheduled" => "Consultation moved",
            "appointment_cancelled" => "Consultation cancelled",
            "message" => "New message",
            "reminder_24h" => "Your consultation is tomorrow",
            "reminder_1h" => "Your consultation starts in an hour",
            "waitlist_offer" => "A time you waited for is free",
            _ => "Telemed",
        }
    }

    /// One or two sentences for the app and e-mail (names and times, never message text).
    pub fn body(&self) -> String {
        let who = self.who();
        let when = self.when();
        match self.kind {
            "appointment_requested" => format!("{who} asked for a consultation on {when}."),
            "appointment_confirmed" => format!("{who} confirmed your consultation on {when}."),
            "appointment_rescheduled" => match self.previous_start {
                Some(previous) => format!(
                    "{who} moved your consultation from {} to {when}. Please confirm the new time.",
                    local_time(previous, self.timezone)
                ),
                None => format!("{who} moved your consultation to {when}."),
            },
            "appointment_cancelled" => format!("{who} cancelled your consultation on {when}."),
            "message" => format!("{who} sent you a message. Open the conversation to read it."),
            "reminder_24h" | "reminder_1h" => {
                format!("Your consultation with {who} starts on {when}.")
            }
            "waitlist_offer" => format!(
                "A consultation with {who} on {when} is held for you for a short while. Accept it in Telemed before the offer lapses."
            ),
            _ => "Something changed in Telemed.".to_string(),
        }
    }

    /// Push and SMS text: no names, no reasons, no message content.
    pub fn discreet(&self) -> String {
        match self.kind {
            "appointment_requested" => "You have a new consultation request.".to_string(),
            "appointment_confirmed" => "A consultation was confirmed.".to_string(),
            "appointment_rescheduled" => "A consultation was moved.".to_string(),
            "appointment_cancelled" => "A consultation was cancelled.".to_string(),
            "message" => "You have a new message.".to_string(),
            "reminder_24h" | "reminder_1h" => {
                format!("Reminder: you have a consultation on {}.", self.when())
            }
            "waitlist_offer" => {
                "A time you waited for is held for you. Open Telemed to accept it.".to_string()
            }
            _ => "You have a new notification.".to_string(),
        }
    }

    /// The e-mail: subject, plain text and HTML.
    pub fn email(&self, recipient_name: &str) -> (String, String, String) {
        let title = self.title();
        let body = self.body();
        let text = format!(
            "Hello {recipient_name},\n\n{body}\n\nOpen Telemed to see the details.\n\n-- \nTelemed\n"
        );
        let html = format!(
            "<!DOCTYPE html>\n<html><body>\n<p>Hello {},</p>\n<p><strong>{}</strong></p>\n<p>{}</p>\n\
             <p>Open Telemed to see the details.</p>\n<p>&mdash;<br>Telemed</p>\n</body></html>\n",
            escape(recipient_name),
            escape(title),
            escape(&body)
        );
        (format!("Telemed: {title}"), text, html)
    }
}

/// Escapes text for HTML element content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn facts<'a>(kind: &'a str, timezone: Option<&'a str>) -> Facts<'a> {
        Facts {
            kind,
            other_name: Some("Dr <Ada> Lovelace"),
            start: Some(datetime!(2026-12-01 09:00 UTC)),
            previous_start: None,
            timezone,
        }
    }

    #[test]
    fn times_are_in_the_recipients_zone() {
        let body = facts("appointment_confirmed", Some("Europe/Paris")).body();
        assert!(
            body.contains("Tuesday 1 December 2026, 10:00 (Europe/Paris)"),
            "{body}"
        );
        let body = facts("appointment_confirmed", Some("America/New_York")).body();
        assert!(
            body.contains("Tuesday 1 December 2026, 04:00 (America/New_York)"),
            "{body}"
        );
    }

    #[test]
    fn an_unknown_zone_falls_back_to_utc() {
        assert!(
            facts("reminder_1h", Some("Mars/Olympus"))
                .body()
                .contains("09:00 (UTC)")
        );
    }

    #[test]
    fn push_and_sms_text_names_nobody() {
        for kind in [
            "appointment_requested",
            "appointment_cancelled",
            "message",
            "reminder_1h",
        ] {
            let text = facts(kind, None).discreet();
            assert!(!text.contains("Lovelace"), "{kind}: {text}");
        }
    }

    #[test]
    fn the_html_body_escapes_names() {
        let (_, text, html) = facts("appointment_confirmed", None).email("Bob & <Alice>");
        assert!(text.contains("Dr <Ada> Lovelace"));
        assert!(
            html.contains("Dr &lt;Ada&gt; Lovelace") && html.contains("Bob &amp; &lt;Alice&gt;")
        );
        assert!(!html.contains("<Ada>"));
    }
}
