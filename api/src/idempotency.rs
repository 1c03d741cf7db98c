//! `Idempotency-Key`: the first answer to a (user, key) is stored and replayed for repeats.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use telemed_domain::UserId;

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// What to do with a request carrying a key.
pub enum Begin {
    /// First time: handle it, then [`finish`].
    Fresh,
    /// Seen and answered: replay this.
    Replay(StatusCode, Value),
}

/// Validates a key: 1–255 visible ASCII characters.
pub fn parse_key(raw: &str) -> Result<String, ApiError> {
    let ok = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::invalid(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        ))
    }
}

/// Keys whose request ended on this process without an answer stored, and which could not be
/// forgotten either (the database was down): a retry takes them over at once instead of being
/// told for a minute that the request is still in progress.
#[derive(Debug, Default)]
pub struct Abandoned(Mutex<HashSet<(UserId, String)>>);

impl Abandoned {
    fn remember(&self, user: UserId, key: &str) {
        if let Ok(mut keys) = self.0.lock() {
            keys.insert((user, key.to_string()));
        }
    }

    fn take(&self, user: UserId, key: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|mut keys| keys.remove(&(user, key.to_string())))
    }
}

/// Registers the key with the request's fingerprint, or finds the earlier answer.
pub async fn begin(
    pool: &PgPool,
    abandoned: &Abandoned,
    user: UserId,
    key: &str,
    fingerprint: &str,
) -> Result<Begin, ApiError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(user.as_uuid())
    .bind(key)
    .bind(fingerprint)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Begin::Fresh);
    }
    let (stored, status, response): (String, Option<i16>, Option<Value>) = sqlx::query_as(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user.as_uuid())
    .bind(key)
    .fetch_one(pool)
    .await?;
    if stored != fingerprint {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "was already used for a different request",
        ));
    }
    match (status, response) {
        (Some(status), Some(body)) => Ok(Begin::Replay(
            StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
            body,
        )),
        _ if abandoned.take(user, key) || take_over_abandoned(pool, user, key).await? => {
            Ok(Begin::Fresh)
        }
        _ => Err(ApiError::Conflict {
            code: "request_in_progress",
            detail: "a request with this Idempotency-Key is still being processed".into(),
        }),
    }
}

/// A key whose first request never finished (the process died, or another process could not
/// forget it) is taken over after a minute, rather than answering "in progress" forever.
async fn take_over_abandoned(pool: &PgPool, user: UserId, key: &str) -> Result<bool, ApiError> {
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET created_at = now()
          WHERE user_id = $1 AND key = $2 AND status IS NULL
            AND created_at < now() - interval '60 seconds'",
    )
    .bind(user.as_uuid())
    .bind(key)
    .execute(pool)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Stores the answer (success or a client error) for replay; if that fails, the request
/// counts as abandoned (a retry here takes the key over).
pub async fn finish(
    pool: &PgPool,
    abandoned: &Abandoned,
    user: UserId,
    key: &str,
    status: StatusCode,
    body: &Value,
) -> Result<(), ApiError> {
    let stored = sqlx::query(
        "UPDATE idempotency_keys SET status = $3, response = $4 WHERE user_id = $1 AND key = $2",
    )
    .bind(user.as_uuid())
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(body)
    .execute(pool)
    .await;
    if stored.is_err() {
        abandoned.remember(user, key);
    }
    stored?;
    Ok(())
}

/// Forgets the key after a server-side failure, so that a retry is handled afresh; if even
/// that fails, a retry on this process takes the key over.
pub async fn abandon(pool: &PgPool, abandoned: &Abandoned, user: UserId, key: &str) {
    let forgotten = sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
        .bind(user.as_uuid())
        .bind(key)
        .execute(pool)
        .await;
    if let Err(error) = forgotten {
        tracing::warn!(%error, "could not forget an idempotency key; a retry here takes it over");
        abandoned.remember(user, key);
    }
}
