//! Secret calendar feed URLs: one active token per user, created on first use and revocable
//! (a mutable table: a secret, not history).

use std::convert::Infallible;

use sqlx::PgPool;
use telemed_domain::UserId;

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
            // 256 random bits from the OS's generator, as 64 hex digits; a concurrent request
            // may win the unique index, then we read its token.
            let token = random_hex_token();
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

/// 32 bytes from the OS's generator as 64 lowercase hex digits (the feed URL's secret).
fn random_hex_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::random_hex_token;

    #[test]
    fn a_feed_token_is_64_lowercase_hex_digits_and_never_repeats() {
        let (a, b) = (random_hex_token(), random_hex_token());
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a, b);
    }
}
