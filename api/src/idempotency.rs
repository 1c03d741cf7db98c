//! `Idempotency-Key`: the first answer to a (user, key) is stored and replayed for repeats.
//!
//! While a request with a key is in progress, its database session holds a session-level
//! advisory lock on the key. So whether a key without a stored answer is still being worked
//! on, or its request's process died (or lost its session), is the database's to tell: a
//! retry that gets the lock takes the key over at once, on any process; one that does not is
//! told `409 request_in_progress`. The lock lives on a pooled connection which the request
//! holds until [`Claim::finish`] or [`Claim::abandon`] unlocks it and returns it to the pool;
//! a claim dropped without either (the request was cancelled) closes its connection instead,
//! which ends the session and so releases the lock.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;
use telemed_domain::UserId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::database::ACQUIRE_TIMEOUT;
use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

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

/// What to do with a request carrying a key.
pub enum Begin {
    /// First time, or taken over from a request whose session is gone: handle it, then
    /// [`Claim::finish`] (or [`Claim::abandon`]).
    Fresh(Claim),
    /// Seen and answered: replay this.
    Replay(StatusCode, Value),
}

/// The keyed requests of this process.
pub struct Keys {
    pool: PgPool,
    /// Each claim holds a connection for its request's duration; at most half the pool, so
    /// that the requests holding them always find connections to do their work with.
    holders: Arc<Semaphore>,
}

impl Keys {
    /// Keys on `pool`, which has `max_connections`.
    pub fn new(pool: PgPool, max_connections: u32) -> Self {
        let holders = (max_connections / 2).max(1) as usize;
        Self {
            pool,
            holders: Arc::new(Semaphore::new(holders)),
        }
    }

    /// Claims the key for this request, or finds the earlier answer; `409
    /// request_in_progress` while another live request holds it.
    pub async fn begin(
        &self,
        user: UserId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Begin, ApiError> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.holders.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Unavailable(Some("too many keyed requests in flight".into())))?
            .map_err(ApiError::internal)?;
        let mut claim = Claim {
            connection: Some(self.pool.acquire().await?),
            _permit: permit,
            user,
            key: key.to_string(),
            lock: lock_id(user, key),
        };
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(claim.lock)
            .fetch_one(claim.connection())
            .await?;
        if !locked {
            // Held by a live request (this session holds no lock to release).
            let found = claim.stored(fingerprint).await?;
            claim.release_unlocked();
            return match found? {
                Some(answered) => Ok(answered),
                None => Err(in_progress()),
            };
        }
        if claim.register(fingerprint).await? {
            return Ok(Begin::Fresh(claim));
        }
        match claim.stored(fingerprint).await? {
            Ok(Some(answered)) => {
                claim.release().await;
                Ok(answered)
            }
            Ok(None) => {
                // Not answered, yet its lock was free: its request's session is gone.
                tracing::info!(%user, key, "taking over an idempotency key whose request is gone");
                Ok(Begin::Fresh(claim))
            }
            Err(refusal) => {
                claim.release().await;
                Err(refusal)
            }
        }
    }
}

fn in_progress() -> ApiError {
    ApiError::Conflict {
        code: "request_in_progress",
        detail: "a request with this Idempotency-Key is still being processed".into(),
    }
}

/// The advisory lock of a key: 64 bits of a UUID v5 of `{user}/{key}`, the same on every
/// process and release.
fn lock_id(user: UserId, key: &str) -> i64 {
    const KEY_LOCKS: Uuid = Uuid::from_u128(0x0c4f_91d2_6a7e_4b38_8d15_f2a0_93b6_e471);
    let name = format!("{user}/{key}");
    let (high, _) = Uuid::new_v5(&KEY_LOCKS, name.as_bytes()).as_u64_pair();
    high as i64
}

/// A key this request owns: its connection's session holds the key's advisory lock.
pub struct Claim {
    /// `None` once released.
    connection: Option<PoolConnection<Postgres>>,
    _permit: OwnedSemaphorePermit,
    user: UserId,
    key: String,
    lock: i64,
}

impl Claim {
    fn connection(&mut self) -> &mut sqlx::PgConnection {
        self.connection
            .as_deref_mut()
            .expect("a claim's connection is only taken when it is released")
    }

    /// Registers the key with the request's fingerprint; false if it is known already.
    async fn register(&mut self, fingerprint: &str) -> Result<bool, ApiError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(self.user.as_uuid())
        .bind(self.key.clone())
        .bind(fingerprint)
        .execute(self.connection())
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The stored answer (`None` if none, or no row), or a 422 if the key was used for a
    /// different request. The outer error is the database's.
    async fn stored(
        &mut self,
        fingerprint: &str,
    ) -> Result<Result<Option<Begin>, ApiError>, ApiError> {
        let row: Option<(String, Option<i16>, Option<Value>)> = sqlx::query_as(
            "SELECT request_hash, status, response FROM idempotency_keys
              WHERE user_id = $1 AND key = $2",
        )
        .bind(self.user.as_uuid())
        .bind(self.key.clone())
        .fetch_optional(self.connection())
        .await?;
        Ok(match row {
            Some((stored, ..)) if stored != fingerprint => Err(ApiError::invalid(
                "Idempotency-Key",
                "was already used for a different request",
            )),
            Some((_, Some(status), Some(body))) => Ok(Some(Begin::Replay(
                StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
                body,
            ))),
            _ => Ok(None),
        })
    }

    /// Stores the answer (success or a client error) for replay and releases the key. If that
    /// fails the key is released unanswered, so a retry takes it over.
    pub async fn finish(mut self, status: StatusCode, body: &Value) -> Result<(), ApiError> {
        let stored = sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response = $4
              WHERE user_id = $1 AND key = $2",
        )
        .bind(self.user.as_uuid())
        .bind(self.key.clone())
        .bind(status.as_u16() as i16)
        .bind(body)
        .execute(self.connection())
        .await;
        self.release().await;
        stored?;
        Ok(())
    }

    /// Forgets the key after a server-side failure, so that a retry is handled afresh; if
    /// even that fails, the key is released unanswered and a retry takes it over.
    pub async fn abandon(mut self) {
        let forgotten = sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(self.user.as_uuid())
            .bind(self.key.clone())
            .execute(self.connection())
            .await;
        if let Err(error) = forgotten {
            tracing::warn!(%error, "could not forget an idempotency key; a retry takes it over");
        }
        self.release().await;
    }

    /// Unlocks the key and returns the connection to the pool; if unlocking fails, closes the
    /// connection (ending the session releases the lock).
    async fn release(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.lock)
            .execute(&mut *connection)
            .await;
        if unlocked.is_err() {
            connection.close_on_drop();
        }
    }

    /// Returns the connection of a claim that did not get the lock.
    fn release_unlocked(&mut self) {
        self.connection = None;
    }
}

impl Drop for Claim {
    /// A claim dropped unreleased (its request was cancelled) may hold the lock: its
    /// connection is closed rather than returned to the pool.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.as_mut() {
            connection.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_locks_the_same_id_everywhere_and_other_keys_others() {
        let user = UserId::from(Uuid::from_u128(7));
        assert_eq!(lock_id(user, "a"), lock_id(user, "a"));
        assert_ne!(lock_id(user, "a"), lock_id(user, "b"));
        assert_ne!(
            lock_id(user, "a"),
            lock_id(UserId::from(Uuid::from_u128(8)), "a")
        );
    }
}
