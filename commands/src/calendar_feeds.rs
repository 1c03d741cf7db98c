//! Secret calendar feed URLs: one active token per user, created on first use and revocable
//! (a mutable table: a secret, not history).

use std::convert::Infallible;

use sqlx::PgPool;
use telemed_domain::UserId;
use uuid::Uuid;

use crate::error::CommandError;

const ACTIVE: &str = "SELECT token FROM calendar_feeds WHERE user_id = $1 AND revoked_at IS NULL";
const CREATE: &str =
    "INSERT INTO calendar_feeds (token, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const REVOKE: &str =
    "UPDATE calendar_feeds SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL";

type Result<T> = std::result::Result<T, CommandError<Infallible>>;

/// Issues and revokes users' calendar feed tokens.
pub struct CalendarFeeds {
    pool: PgPool,
}

impl CalendarFeeds {
    /// Feeds on `pool`.
    pub fn new(pool: &PgPool) -> Self {
        Self { pool: pool.clone() }
    }

    /// `user`'s active token (64 hex digits), created if they have none.
    pub async fn token(&self, user: UserId) -> Result<String> {
        for _ in 0..2 {
            if let Some(token) = sqlx::query_scalar(ACTIVE)
                .bind(user.as_uuid())
                .fetch_optional(&self.pool)
                .await?
            {
                return Ok(token);
            }
            // 244 random bits; a concurrent request may win the unique index, then we read its
            // token.
            let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
            sqlx::query(CREATE)
                .bind(&token)
                .bind(user.as_uuid())
                .execute(&self.pool)
                .await?;
        }
        Err(CommandError::Internal(
            "no calendar feed token after creating one".into(),
        ))
    }

    /// Revokes `user`'s active token, if any; the next [`Self::token`] issues a new one.
    pub async fn revoke(&self, user: UserId) -> Result<()> {
        sqlx::query(REVOKE)
            .bind(user.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
