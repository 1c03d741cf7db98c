//! Users' notification settings as the API shows them: channel preferences (a mutable table
//! that `telemed-commands`' `NotificationSettings` writes, not a projection of events).

use sqlx::{PgExecutor, Row};
use telemed_domain::UserId;

/// Which channels may carry a user's notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelPreferences {
    /// E-mail to the sign-in address.
    pub email: bool,
    /// Web Push to subscribed devices.
    pub push: bool,
    /// SMS to `phone`.
    pub sms: bool,
    /// E.164 phone number, if given.
    pub phone: Option<String>,
}

/// The preferences `user` set, if any.
pub async fn preferences(
    db: impl PgExecutor<'_>,
    user: UserId,
) -> Result<Option<ChannelPreferences>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT email, push, sms, phone FROM notification_preferences WHERE user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_optional(db)
    .await?;
    row.map(|row| {
        Ok(ChannelPreferences {
            email: row.try_get("email")?,
            push: row.try_get("push")?,
            sms: row.try_get("sms")?,
            phone: row.try_get("phone")?,
        })
    })
    .transpose()
}
