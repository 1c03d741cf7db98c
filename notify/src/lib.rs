//! Notifications leaving the server: the dispatcher that works off the outbox the
//! `notifications` projection fills, over e-mail (SMTP), Web Push (VAPID) and SMS (webhook),
//! and the rendering of a notification's text (in-app, push, e-mail, SMS alike).
//!
//! It reads read models and talks to the outside world; `telemed-api` starts it. Every process
//! runs one; they share the work through the outbox rows.
//!
//! # Where things live
//!
//! - this root: [`NotifyConfig`] (the settings of `serve`; its secrets are
//!   `secrecy::SecretString`s), [`Channels`] (the configured channels), [`wanted_by_default`]
//!   (a channel's default preference).
//! - `channels`: e-mail (lettre), Web Push (VAPID, RFC 8291) and SMS (webhook) senders, and
//!   how a failure is classed (retry or give up).
//! - `dispatcher`: [`Dispatcher`], one per process, started under the process's
//!   `telemed_tasks::Background`: claims due outbox rows, checks preferences, renders, sends,
//!   retries with back-off. On a graceful stop it sends and records the deliveries it has
//!   claimed before it returns.
//! - [`outbox`]: the outbox's backlog and the dispatcher's attempts, as metrics.
//! - `render`: titles and bodies of each notification kind, times in the recipient's zone.
//! - `view`: [`NotificationView`], the in-app notification as the REST list and the
//!   `notification` live event show it.

mod channels;
mod dispatcher;
pub mod outbox;
mod render;
mod view;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub use channels::{Email, Push, Sms, Subscription};
pub use dispatcher::Dispatcher;
pub use view::NotificationView;

/// Whether `channel` (`email`, `push`, `sms`) carries a user's notifications when they have
/// set no preference: e-mail and push yes, SMS no (it needs a phone number and consent).
pub fn wanted_by_default(channel: &str) -> bool {
    channel != "sms"
}

/// Notification settings of `serve`; the secrets among them print redacted.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// SMTP server URL (lettre's form: `smtp://user:pass@host:587`, `smtps://host`,
    /// `smtp://host:25?tls=required`); e-mail is off without it.
    pub smtp_url: Option<SecretString>,
    /// The sender, e.g. `Telemed <no-reply@example.org>`.
    pub smtp_from: String,
    /// VAPID private key (base64url of the 32-byte P-256 scalar); push is off without it.
    pub vapid_private_key: Option<SecretString>,
    /// VAPID contact (`mailto:` or `https:` URL).
    pub vapid_subject: String,
    /// SMS provider webhook; SMS is off without it.
    pub sms_webhook_url: Option<String>,
    /// Bearer token for the SMS webhook.
    pub sms_webhook_token: Option<SecretString>,
    /// How often the dispatcher looks for due deliveries.
    pub poll_interval: Duration,
    /// First retry delay; doubles with each attempt (at most an hour).
    pub retry_base: Duration,
    /// Attempts before a delivery is given up as failed.
    pub max_attempts: u32,
    /// Whether push endpoints may be plain `http://` (development and tests only).
    pub allow_http_push: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            smtp_from: "Telemed <no-reply@localhost>".to_string(),
            vapid_private_key: None,
            vapid_subject: "mailto:admin@localhost".to_string(),
            sms_webhook_url: None,
            sms_webhook_token: None,
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(30),
            max_attempts: 8,
            allow_http_push: true,
        }
    }
}

/// The configured channels.
pub struct Channels {
    /// E-mail, when configured.
    pub email: Option<Email>,
    /// Web Push, when configured.
    pub push: Option<Push>,
    /// SMS, when configured.
    pub sms: Option<Sms>,
    /// Whether push endpoints may be plain `http://`.
    pub allow_http_push: bool,
}

impl Channels {
    /// Builds the channels `config` enables; names the setting that is wrong.
    pub fn new(config: &NotifyConfig) -> Result<Self, String> {
        Ok(Self {
            email: config
                .smtp_url
                .as_ref()
                .map(|url| Email::new(url.expose_secret(), &config.smtp_from))
                .transpose()?,
            push: config
                .vapid_private_key
                .as_ref()
                .map(|key| Push::new(key.expose_secret(), &config.vapid_subject))
                .transpose()?,
            sms: config
                .sms_webhook_url
                .as_deref()
                .map(|url| Sms::new(url, config.sms_webhook_token.clone()))
                .transpose()?,
            allow_http_push: config.allow_http_push,
        })
    }
}
