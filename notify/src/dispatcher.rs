//! Works off the outbox: claims due deliveries, sends them, records the outcome.
//!
//! A delivery is claimed (`sending`, attempts + 1) in its own committed statement before
//! anything leaves the server, and `FOR UPDATE SKIP LOCKED` lets several processes share the
//! work without two claiming one row. After the attempt its state becomes `sent`, `retrying`
//! (with an exponential backoff), `failed` or `cancelled` (nothing to send: the channel is off,
//! the user read the message meanwhile…). A claim whose process died mid-send is marked
//! `failed` with "outcome unknown": at most once beats at least once for a reminder.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use telemed_commands::Clock;
use telemed_tasks::{Background, CancellationToken};
use time::OffsetDateTime;
use uuid::Uuid;

use super::channels::{Failure, Subscription};
use super::render::Facts;
use super::{Channels, NotifyConfig};

/// Deliveries claimed per round.
const BATCH: i64 = 20;
/// How long a claim protects a delivery being sent.
const CLAIM: &str = "5 minutes";
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

const CLAIM_DUE: &str = "WITH due AS (
    SELECT delivery_id FROM notification_deliveries
     WHERE state IN ('scheduled', 'retrying') AND next_attempt_at <= $1
     ORDER BY next_attempt_at
     LIMIT $2
     FOR UPDATE SKIP LOCKED)
UPDATE notification_deliveries d
   SET state = 'sending', attempts = d.attempts + 1,
       claimed_until = now() + $3::interval, updated_at = now()
  FROM due WHERE d.delivery_id = due.delivery_id
RETURNING d.delivery_id, d.channel, d.user_id, d.kind, d.appointment_id, d.notification_id,
          d.attempts, d.due_at";

const ABANDON_STALE: &str = "UPDATE notification_deliveries
   SET state = 'failed', claimed_until = NULL, updated_at = now(),
       last_error = 'outcome unknown: the process sending it stopped; not retried so that it is never sent twice'
 WHERE state = 'sending' AND claimed_until < now()";

const CONTEXT: &str = "SELECT c.email AS address, up.name AS recipient_name, up.timezone,
       p.email AS want_email, p.push AS want_push, p.sms AS want_sms, p.phone,
       na.start_at AS appointment_start, na.status AS appointment_status,
       COALESCE(other.name, actor.name) AS other_name,
       n.start_at AS notified_start, n.previous_start_at, n.gpos
  FROM (SELECT $1::uuid AS user_id, $2::uuid AS appointment_id, $3::uuid AS notification_id) d
  LEFT JOIN credentials c ON c.user_id = d.user_id
  LEFT JOIN user_profiles up ON up.user_id = d.user_id
  LEFT JOIN notification_preferences p ON p.user_id = d.user_id
  LEFT JOIN notification_appointments na ON na.appointment_id = d.appointment_id
  LEFT JOIN user_profiles other ON other.user_id =
       CASE WHEN na.doctor_id = d.user_id THEN na.patient_id ELSE na.doctor_id END
  LEFT JOIN notifications n ON n.notification_id = d.notification_id
  LEFT JOIN user_profiles actor ON actor.user_id = n.actor_id";

/// Whether the recipient has read the conversation up to the message (`$3`: its gpos), or
/// was already told about unread messages there on this channel since they last read.
const MESSAGE_SEEN: &str = "SELECT
    EXISTS (SELECT 1 FROM chat_reads r JOIN chat_messages m ON m.message_id = r.up_to
             WHERE r.appointment_id = $1 AND r.user_id = $2 AND m.gpos >= $3) AS read,
    EXISTS (SELECT 1 FROM notification_deliveries d
             WHERE d.appointment_id = $1 AND d.user_id = $2 AND d.kind = 'message'
               AND d.channel = $4 AND d.state = 'sent'
               AND d.sent_at > COALESCE((SELECT read_at FROM chat_reads
                                          WHERE appointment_id = $1 AND user_id = $2),
                                        '-infinity'::timestamptz)) AS told";

/// A claimed delivery.
struct Claimed {
    id: Uuid,
    channel: String,
    user: Uuid,
    kind: String,
    appointment: Option<Uuid>,
    notification: Option<Uuid>,
    attempts: i32,
    due: OffsetDateTime,
}

/// What happened to one attempt.
enum Outcome {
    Sent,
    Skipped(String),
    Failed(Failure),
}

/// The dispatcher of one process.
pub struct Dispatcher {
    pool: PgPool,
    clock: Clock,
    channels: Arc<Channels>,
    config: NotifyConfig,
}

impl Dispatcher {
    /// A dispatcher over `pool`, sending through `channels`, due times by `clock`.
    pub fn new(pool: PgPool, clock: Clock, channels: Arc<Channels>, config: NotifyConfig) -> Self {
        Self {
            pool,
            clock,
            channels,
            config,
        }
    }

    /// Works off the outbox under `background`: a round at once and every `poll_interval`,
    /// rounds back to back while they find a full batch. When the process stops, the
    /// deliveries already claimed are sent and their outcomes recorded before it returns.
    pub fn spawn(self, background: &Background) {
        let dispatcher = Arc::new(self);
        let stop = background.token();
        background.every(dispatcher.config.poll_interval, move || {
            let (dispatcher, stop) = (dispatcher.clone(), stop.clone());
            async move { dispatcher.rounds(&stop).await }
        });
    }

    /// Rounds until one finds less than a full batch, or the process stops.
    async fn rounds(&self, stop: &CancellationToken) {
        loop {
            let busy = match self.round().await {
                Ok(claimed) => claimed == BATCH as usize,
                Err(error) => {
                    tracing::warn!(%error, "notification dispatch failed; will retry");
                    false
                }
            };
            if !busy || stop.is_cancelled() {
                return;
            }
        }
    }

    /// One round: abandons dead claims, claims what is due, sends it. Returns how many were
    /// claimed.
    async fn round(&self) -> Result<usize, sqlx::Error> {
        let abandoned = sqlx::query(ABANDON_STALE).execute(&self.pool).await?;
        if abandoned.rows_affected() > 0 {
            tracing::warn!(
                count = abandoned.rows_affected(),
                "notification deliveries abandoned by a stopped process marked failed"
            );
        }
        let mut claimed = sqlx::query(CLAIM_DUE)
            .bind(self.clock.now())
            .bind(BATCH)
            .bind(CLAIM)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("delivery_id")?,
                    channel: row.try_get("channel")?,
                    user: row.try_get("user_id")?,
                    kind: row.try_get("kind")?,
                    appointment: row.try_get("appointment_id")?,
                    notification: row.try_get("notification_id")?,
                    attempts: row.try_get("attempts")?,
                    due: row.try_get("due_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        claimed.sort_by_key(|c| c.due);
        let count = claimed.len();
        for delivery in claimed {
            let outcome = match self.attempt(&delivery).await {
                Ok(outcome) => outcome,
                Err(error) => Outcome::Failed(Failure::Transient(format!("database: {error}"))),
            };
            if let Err(error) = self.record(&delivery, outcome).await {
                // The claim stays; when it lapses the delivery is marked failed, not resent.
                tracing::warn!(delivery = %delivery.id, %error, "could not record a notification outcome");
            }
        }
        Ok(count)
    }

    /// One delivery: skipped if there is no longer anything to send, else sent on its channel.
    async fn attempt(&self, delivery: &Claimed) -> Result<Outcome, sqlx::Error> {
        let row = sqlx::query(CONTEXT)
            .bind(delivery.user)
            .bind(delivery.appointment)
            .bind(delivery.notification)
            .fetch_one(&self.pool)
            .await?;
        if let Some(why) = self.pointless(delivery, &row).await? {
            return Ok(Outcome::Skipped(why));
        }
        let reminder = delivery.kind.starts_with("reminder");
        let timezone: Option<String> = row.try_get("timezone")?;
        let other_name: Option<String> = row.try_get("other_name")?;
        let start: Option<OffsetDateTime> = row.try_get(if reminder {
            "appointment_start"
        } else {
            "notified_start"
        })?;
        let facts = Facts {
            kind: &delivery.kind,
            other_name: other_name.as_deref(),
            start,
            previous_start: row.try_get("previous_start_at")?,
            timezone: timezone.as_deref(),
        };
        match delivery.channel.as_str() {
            "email" => self.email(&row, &facts).await,
            "push" => self.push(delivery, &facts).await,
            _ => self.sms(delivery, &row, &facts).await,
        }
    }

    /// Why sending `delivery` now would be pointless, if it would: the channel is off, the
    /// appointment is no longer confirmed, the message was read, or the reminder is too late.
    async fn pointless(
        &self,
        delivery: &Claimed,
        row: &PgRow,
    ) -> Result<Option<String>, sqlx::Error> {
        let wanted: Option<bool> = row.try_get(match delivery.channel.as_str() {
            "email" => "want_email",
            "push" => "want_push",
            _ => "want_sms",
        })?;
        if !wanted.unwrap_or_else(|| super::wanted_by_default(&delivery.channel)) {
            return Ok(Some(format!(
                "the user turned {} notifications off",
                delivery.channel
            )));
        }
        let reminder = delivery.kind.starts_with("reminder");
        let status: Option<String> = row.try_get("appointment_status")?;
        if reminder && status.as_deref() != Some("confirmed") {
            return Ok(Some(format!(
                "the appointment is {} rather than confirmed",
                status.as_deref().unwrap_or("unknown")
            )));
        }
        if delivery.kind == "message"
            && let (Some(appointment), Some(gpos)) =
                (delivery.appointment, row.try_get::<Option<i64>, _>("gpos")?)
        {
            return self.message_seen(delivery, appointment, gpos).await;
        }
        let appointment_start: Option<OffsetDateTime> = row.try_get("appointment_start")?;
        if reminder && let Some(start) = appointment_start {
            let now = self.clock.now();
            // Late (the server was down, or retries took long): a reminder that a shorter
            // one has overtaken, or sent after the start, would only confuse.
            let overtaken =
                delivery.kind == "reminder_24h" && now >= start - time::Duration::hours(1);
            if overtaken || now >= start {
                return Ok(Some(
                    "too late: the appointment is too close for this reminder".to_string(),
                ));
            }
        }
        Ok(None)
    }

    /// Why a message notification is no longer worth sending, if it is not: the recipient
    /// read the message, or was told about unread messages there already.
    async fn message_seen(
        &self,
        delivery: &Claimed,
        appointment: Uuid,
        gpos: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let seen = sqlx::query(MESSAGE_SEEN)
            .bind(appointment)
            .bind(delivery.user)
            .bind(gpos)
            .bind(&delivery.channel)
            .fetch_one(&self.pool)
            .await?;
        Ok(if seen.try_get("read")? {
            Some("read in the app meanwhile".to_string())
        } else if seen.try_get("told")? {
            Some("the user was already told about unread messages here".to_string())
        } else {
            None
        })
    }

    /// Sends the e-mail to the user's address.
    async fn email(&self, row: &PgRow, facts: &Facts<'_>) -> Result<Outcome, sqlx::Error> {
        let Some(email) = &self.channels.email else {
            return Ok(Outcome::Skipped("e-mail is not configured".to_string()));
        };
        let Some(address) = row.try_get::<Option<String>, _>("address")? else {
            return Ok(Outcome::Skipped(
                "the user has no e-mail address".to_string(),
            ));
        };
        let name: Option<String> = row.try_get("recipient_name")?;
        let name = name.unwrap_or_default();
        let (subject, text, html) = facts.email(&name);
        Ok(
            match email.send(&address, &name, &subject, text, html).await {
                Ok(()) => Outcome::Sent,
                Err(failure) => Outcome::Failed(failure),
            },
        )
    }

    /// Sends the SMS to the user's phone.
    async fn sms(
        &self,
        delivery: &Claimed,
        row: &PgRow,
        facts: &Facts<'_>,
    ) -> Result<Outcome, sqlx::Error> {
        let Some(sms) = &self.channels.sms else {
            return Ok(Outcome::Skipped("SMS is not configured".to_string()));
        };
        let Some(phone) = row.try_get::<Option<String>, _>("phone")? else {
            return Ok(Outcome::Skipped(
                "the user gave no phone number".to_string(),
            ));
        };
        let text = format!("Telemed: {}", facts.discreet());
        Ok(match sms.send(delivery.id, &phone, &text).await {
            Ok(()) => Outcome::Sent,
            Err(failure) => Outcome::Failed(failure),
        })
    }

    /// Sends to every device of the user; sent when at least one accepted.
    async fn push(&self, delivery: &Claimed, facts: &Facts<'_>) -> Result<Outcome, sqlx::Error> {
        let Some(push) = &self.channels.push else {
            return Ok(Outcome::Skipped("push is not configured".to_string()));
        };
        let devices = sqlx::query(
            "SELECT subscription_id, endpoint, p256dh, auth FROM push_subscriptions
              WHERE user_id = $1 ORDER BY created_at",
        )
        .bind(delivery.user)
        .fetch_all(&self.pool)
        .await?;
        if devices.is_empty() {
            return Ok(Outcome::Skipped(
                "the user has no push subscription".to_string(),
            ));
        }
        let payload = json!({
            "id": delivery.notification.unwrap_or(delivery.id),
            "kind": delivery.kind,
            "title": "Telemed",
            "body": facts.discreet(),
            "appointment_id": delivery.appointment,
        })
        .to_string();
        let mut sent = false;
        let mut transient = None;
        let mut last = None;
        for device in devices {
            let id: Uuid = device.try_get("subscription_id")?;
            let subscription = Subscription {
                endpoint: device.try_get("endpoint")?,
                p256dh: device.try_get("p256dh")?,
                auth: device.try_get("auth")?,
            };
            match push.send(&subscription, payload.as_bytes()).await {
                Ok(()) => sent = true,
                Err(Failure::Gone(why)) => {
                    tracing::info!(subscription = %id, %why, "push subscription gone; forgotten");
                    sqlx::query("DELETE FROM push_subscriptions WHERE subscription_id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    last = Some(why);
                }
                Err(Failure::Transient(why)) => transient = Some(why),
                Err(Failure::Permanent(why)) => last = Some(why),
            }
        }
        Ok(if sent {
            Outcome::Sent
        } else if let Some(why) = transient {
            Outcome::Failed(Failure::Transient(why))
        } else {
            Outcome::Failed(Failure::Permanent(
                last.unwrap_or_else(|| "no device accepted".to_string()),
            ))
        })
    }

    async fn record(&self, delivery: &Claimed, outcome: Outcome) -> Result<(), sqlx::Error> {
        let now = self.clock.now();
        let (state, error, next) = match outcome {
            Outcome::Sent => ("sent", None, None),
            Outcome::Skipped(why) => ("cancelled", Some(why), None),
            Outcome::Failed(Failure::Transient(why))
                if (delivery.attempts as u32) < self.config.max_attempts =>
            {
                let delay = self.backoff(delivery.attempts);
                tracing::info!(delivery = %delivery.id, channel = %delivery.channel, %why,
                    retry_in = ?delay, "notification delivery failed; will retry");
                ("retrying", Some(why), Some(now + delay))
            }
            Outcome::Failed(
                Failure::Transient(why) | Failure::Permanent(why) | Failure::Gone(why),
            ) => {
                tracing::warn!(delivery = %delivery.id, channel = %delivery.channel, %why,
                    "notification delivery failed for good");
                ("failed", Some(why), None)
            }
        };
        let recorded = sqlx::query(
            "UPDATE notification_deliveries
                SET state = $2, last_error = $3, claimed_until = NULL, updated_at = now(),
                    next_attempt_at = COALESCE($4, next_attempt_at),
                    sent_at = CASE WHEN $2 = 'sent' THEN $5 ELSE sent_at END
              WHERE delivery_id = $1 AND state = 'sending'",
        )
        .bind(delivery.id)
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if recorded.rows_affected() > 0 {
            super::outbox::attempted(&delivery.channel, state);
        }
        Ok(())
    }

    /// `retry_base × 2^(attempts − 1)`, at most an hour.
    fn backoff(&self, attempts: i32) -> Duration {
        let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
        self.config
            .retry_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(MAX_BACKOFF)
    }
}
