//! Who a calendar feed token belongs to (the tokens are written by `telemed-commands`'
//! `CalendarFeeds`).

use sqlx::PgExecutor;
use telemed_domain::{Role, UserId};
use uuid::Uuid;

const OWNER: &str =
    "SELECT f.user_id, c.role FROM calendar_feeds f JOIN credentials c ON c.user_id = f.user_id
 WHERE f.token = $1 AND f.revoked_at IS NULL";

/// The user and role holding active feed `token`, if any.
pub async fn owner(
    db: impl PgExecutor<'_>,
    token: &str,
) -> Result<Option<(UserId, Role)>, sqlx::Error> {
    let owner: Option<(Uuid, String)> =
        sqlx::query_as(OWNER).bind(token).fetch_optional(db).await?;
    owner
        .map(|(user, role)| {
            let role = role
                .parse::<Role>()
                .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
            Ok((UserId::from(user), role))
        })
        .transpose()
}
