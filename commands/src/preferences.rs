//! Notification settings: a user's channel preferences and Web Push subscriptions. Both live
//! in mutable tables (like credentials), not in events: they are settings, not history.

use sqlx::PgPool;
use telemed_domain::UserId;
use telemed_projections::preferences::ChannelPreferences;
use uuid::Uuid;

use crate::error::CommandError;

/// Push subscriptions (devices) one user may have.
pub const MAX_DEVICES: i64 = 20;

/// Why a settings change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The user has [`MAX_DEVICES`] other subscriptions already.
    #[error("at most {MAX_DEVICES} devices may receive push; remove one first")]
    TooManyDevices,
}

/// A browser's push subscription, validated (an https endpoint, a P-256 key, a 16-byte secret).
#[derive(Clone, Debug)]
pub struct PushSubscription {
    /// The push service URL.
    pub endpoint: String,
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The browser's auth secret, base64url.
    pub auth: String,
}

type Result<T> = std::result::Result<T, CommandError<SettingsError>>;

const UPSERT_PREFERENCES: &str = "INSERT INTO notification_preferences
       (user_id, email, push, sms, phone) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (user_id) DO UPDATE
     SET email = $2, push = $3, sms = $4, phone = $5, updated_at = now()";
const OTHER_DEVICES: &str =
    "SELECT count(*) FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $2";
const UPSERT_SUBSCRIPTION: &str = "INSERT INTO push_subscriptions
       (subscription_id, user_id, endpoint, p256dh, auth) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (endpoint) DO UPDATE
     SET user_id = $2, p256dh = $4, auth = $5, created_at = now()
  RETURNING subscription_id";
const DELETE_SUBSCRIPTION: &str =
    "DELETE FROM push_subscriptions WHERE subscription_id = $1 AND user_id = $2";

/// Writes users' notification settings.
pub struct NotificationSettings {
    pool: PgPool,
}

impl NotificationSettings {
    /// Settings on `pool`.
    pub fn new(pool: &PgPool) -> Self {
        Self { pool: pool.clone() }
    }

    /// Replaces `user`'s channel preferences.
    pub async fn set_preferences(&self, user: UserId, set: &ChannelPreferences) -> Result<()> {
        sqlx::query(UPSERT_PREFERENCES)
            .bind(user.as_uuid())
            .bind(set.email)
            .bind(set.push)
            .bind(set.sms)
            .bind(&set.phone)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Subscribes one of `user`'s devices (again: the same endpoint moves to `user` with its
    /// new keys); at most [`MAX_DEVICES`] each. Answers the subscription's id.
    pub async fn subscribe(&self, user: UserId, device: &PushSubscription) -> Result<Uuid> {
        let others: i64 = sqlx::query_scalar(OTHER_DEVICES)
            .bind(user.as_uuid())
            .bind(&device.endpoint)
            .fetch_one(&self.pool)
            .await?;
        if others >= MAX_DEVICES {
            return Err(CommandError::Rejected(SettingsError::TooManyDevices));
        }
        let id = sqlx::query_scalar(UPSERT_SUBSCRIPTION)
            .bind(Uuid::new_v4())
            .bind(user.as_uuid())
            .bind(&device.endpoint)
            .bind(&device.p256dh)
            .bind(&device.auth)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// Removes `user`'s subscription `id`; whether there was one.
    pub async fn unsubscribe(&self, user: UserId, id: Uuid) -> Result<bool> {
        let removed = sqlx::query(DELETE_SUBSCRIPTION)
            .bind(id)
            .bind(user.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(removed.rows_affected() > 0)
    }
}
