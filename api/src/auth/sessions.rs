//! Sign-in sessions: short-lived access tokens plus rotating refresh tokens.
//!
//! A sign-in starts a session (its id is the access tokens' `sid` claim) with an opaque refresh
//! token, stored only as its SHA-256. `POST /auth/refresh` trades a refresh token for a new
//! access token and a new refresh token of the same session; the old one is spent. Presenting a
//! spent token again means it was copied: the whole session is revoked. Sign-out revokes every
//! session of the user. A revoked session's access tokens are refused at once by every process
//! (an in-memory set per process, filled from the database at start and on every
//! reconnection of the bus, and told of new revocations through `NOTIFY`), and its live
//! connections are closed.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use telemed_domain::{Role, UserId};
use telemed_tasks::Background;
use uuid::Uuid;

use crate::error::ApiError;

/// The NOTIFY channel of revoked session ids (comma-separated).
pub use telemed_live::bus::REVOKED_CHANNEL;

/// Sessions revoked lately, whose access tokens may still be unexpired.
#[derive(Default)]
pub struct Revocations {
    /// Session id → until when (Unix seconds) to remember it.
    revoked: RwLock<HashMap<Uuid, u64>>,
}

impl Revocations {
    /// Whether session `sid` was revoked.
    pub fn is_revoked(&self, sid: Uuid) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&sid)
    }

    /// Remembers `sids` as revoked for `ttl` (the longest an access token lives), forgetting
    /// those remembered long enough.
    pub fn revoke(&self, sids: impl IntoIterator<Item = Uuid>, ttl: Duration) {
        let now = unix_now();
        let until = now + ttl.as_secs() + 60;
        let mut revoked = self
            .revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        revoked.retain(|_, until| *until > now);
        for sid in sids {
            revoked.insert(sid, until);
        }
    }

    /// Loads the sessions revoked within `ttl` from the database; returns them.
    pub async fn reload(&self, pool: &PgPool, ttl: Duration) -> Result<Vec<Uuid>, sqlx::Error> {
        let sids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT session_id FROM refresh_tokens
              WHERE revoked_at > now() - make_interval(secs => $1)",
        )
        .bind(ttl.as_secs_f64() + 60.0)
        .fetch_all(pool)
        .await?;
        self.revoke(sids.iter().copied(), ttl);
        Ok(sids)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A refresh token handed to a client, and how long it lasts.
pub struct RefreshToken {
    /// The opaque token.
    pub token: String,
    /// Its lifetime.
    pub ttl: Duration,
}

/// What a valid refresh token stands for.
pub struct Renewed {
    /// The session.
    pub sid: Uuid,
    /// Its user.
    pub user_id: UserId,
    /// The user's role.
    pub role: Role,
    /// The session's next refresh token.
    pub refresh: RefreshToken,
}

/// Why a refresh was refused.
#[derive(Debug)]
pub enum RefreshRefused {
    /// Unknown, expired or revoked.
    Invalid,
    /// Already spent: the session is now revoked.
    Reused(Uuid),
}

/// Refresh tokens in the database.
pub struct Sessions {
    pool: PgPool,
    ttl: Duration,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// 256 random bits from the OS's generator, URL-safe.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    /// Refresh tokens live `ttl`.
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    /// Deletes refresh tokens expired for a day, at once and every hour, under `background`.
    pub fn spawn_cleanup(self: &std::sync::Arc<Self>, background: &Background) {
        let sessions = self.clone();
        background.every(Duration::from_secs(3600), move || {
            let sessions = sessions.clone();
            async move {
                let deleted = sqlx::query(
                    "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'",
                )
                .execute(&sessions.pool)
                .await;
                if let Err(error) = deleted {
                    tracing::warn!(%error, "expired refresh tokens not deleted; will retry");
                }
            }
        });
    }

    /// Starts a session for `user_id`: its id and first refresh token.
    pub async fn start(
        &self,
        user_id: UserId,
        role: Role,
    ) -> Result<(Uuid, RefreshToken), ApiError> {
        let sid = Uuid::new_v4();
        let refresh = self.issue(&self.pool, sid, user_id, role).await?;
        Ok((sid, refresh))
    }

    async fn issue<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        sid: Uuid,
        user_id: UserId,
        role: Role,
    ) -> Result<RefreshToken, ApiError> {
        let token = new_token();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, user_id, role, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        )
        .bind(hash(&token))
        .bind(sid)
        .bind(user_id.as_uuid())
        .bind(role.as_str())
        .bind(self.ttl.as_secs_f64())
        .execute(executor)
        .await?;
        Ok(RefreshToken {
            token,
            ttl: self.ttl,
        })
    }

    /// Spends `token` for the session's next one. A spent token revokes its session.
    pub async fn renew(&self, token: &str) -> Result<Result<Renewed, RefreshRefused>, ApiError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT session_id, user_id, role, spent_at IS NOT NULL AS spent,
                    revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired
               FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(hash(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Err(RefreshRefused::Invalid));
        };
        let sid: Uuid = row.try_get("session_id")?;
        if row.try_get::<bool, _>("revoked")? || row.try_get::<bool, _>("expired")? {
            return Ok(Err(RefreshRefused::Invalid));
        }
        if row.try_get::<bool, _>("spent")? {
            revoke_sessions(&mut tx, "session_id = $1", sid).await?;
            tx.commit().await?;
            return Ok(Err(RefreshRefused::Reused(sid)));
        }
        let user_id = UserId::from(row.try_get::<Uuid, _>("user_id")?);
        let role_text: String = row.try_get("role")?;
        let role: Role = role_text
            .parse()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("stored role {role_text:?}")))?;
        sqlx::query("UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1")
            .bind(hash(token))
            .execute(&mut *tx)
            .await?;
        let refresh = self.issue(&mut *tx, sid, user_id, role).await?;
        tx.commit().await?;
        Ok(Ok(Renewed {
            sid,
            user_id,
            role,
            refresh,
        }))
    }

    /// Revokes every session of `user_id`; returns their ids (also announced to every
    /// process).
    pub async fn revoke_user(&self, user_id: UserId) -> Result<Vec<Uuid>, ApiError> {
        let mut tx = self.pool.begin().await?;
        let sids = revoke_sessions(&mut tx, "user_id = $1", user_id.as_uuid()).await?;
        tx.commit().await?;
        Ok(sids)
    }
}

/// Revokes the sessions matching `condition` (with `$1` = `value`) and notifies every process
/// when the transaction commits. Returns the sessions' ids.
async fn revoke_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    condition: &str,
    value: Uuid,
) -> Result<Vec<Uuid>, ApiError> {
    let sids: Vec<Uuid> = sqlx::query_scalar(&format!(
        "WITH revoked AS (
             UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())
              WHERE {condition}
             RETURNING session_id)
         SELECT DISTINCT session_id FROM revoked"
    ))
    .bind(value)
    .fetch_all(&mut **tx)
    .await?;
    // Ids are 36 characters: 190 fit a NOTIFY payload; more go in several notifications.
    for chunk in sids.chunks(190) {
        let text = chunk
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(REVOKED_CHANNEL)
            .bind(text)
            .execute(&mut **tx)
            .await?;
    }
    Ok(sids)
}
