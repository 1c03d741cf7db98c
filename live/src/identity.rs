//! Who a live connection belongs to, and the seam to the access tokens that say so.
//!
//! Tokens are `telemed-api`'s (it issues them); this crate only needs them verified and to hear
//! of revoked sign-in sessions, through [`Tokens`], which `api` implements for its keys.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::PgPool;
use telemed_domain::{Role, UserId};
use telemed_problem::ApiError;
use uuid::Uuid;

/// The verified facts of an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Who.
    pub user: UserId,
    /// In which role.
    pub role: Role,
    /// The sign-in session.
    pub sid: Uuid,
    /// When the token expires (seconds since the epoch).
    pub expires_at: u64,
}

/// Access-token verification and the sign-in sessions revoked lately.
pub trait Tokens: Send + Sync {
    /// The identity of a valid `token`; 401 naming why otherwise.
    fn verify(&self, token: &str) -> Result<Identity, ApiError>;
    /// Whether sign-in session `sid` is revoked.
    fn is_revoked(&self, sid: Uuid) -> bool;
    /// Revokes `sids` on this process.
    fn revoke(&self, sids: &[Uuid]);
    /// Reloads the revocations from the database; the sessions revoked.
    fn reload<'a>(&'a self, pool: &'a PgPool) -> BoxFuture<'a, Result<Vec<Uuid>, sqlx::Error>>;
}

impl<T: Tokens + ?Sized> Tokens for Arc<T> {
    fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        (**self).verify(token)
    }
    fn is_revoked(&self, sid: Uuid) -> bool {
        (**self).is_revoked(sid)
    }
    fn revoke(&self, sids: &[Uuid]) {
        (**self).revoke(sids)
    }
    fn reload<'a>(&'a self, pool: &'a PgPool) -> BoxFuture<'a, Result<Vec<Uuid>, sqlx::Error>> {
        (**self).reload(pool)
    }
}
