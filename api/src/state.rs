//! The state shared by all handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use sqlx::PgPool;
use telemed_commands::{Accounts, Calls, Chat, Profiles, Scheduling, Waitlist};
use telemed_domain::Position;
use telemed_projections::{Progress, Settled};

use crate::auth::jwt::JwtKeys;
use crate::config::IceConfig;
use crate::error::ApiError;
use crate::live::Hub;
use crate::live::bus::Bus;

/// Everything handlers need; each handler extracts only the part it uses.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Database pool (read models are queried directly).
    pub pool: PgPool,
    /// Registration and login.
    pub accounts: Accounts,
    /// Profile commands.
    pub profiles: Arc<Profiles>,
    /// Availability and appointment commands.
    pub scheduling: Arc<Scheduling>,
    /// Waitlist commands.
    pub waitlist: Arc<Waitlist>,
    /// Base URL for links, if configured.
    pub public_url: PublicUrl,
    /// Access tokens.
    pub jwt: Arc<JwtKeys>,
    /// Projection progress, for read-your-writes and readiness.
    pub progress: Progress,
    /// How long a command's response waits for read models.
    pub settle_timeout: SettleTimeout,
    /// This process's live hub.
    pub hub: Arc<Hub>,
    /// STUN/TURN configuration.
    pub ice: Arc<IceConfig>,
    /// Call commands.
    pub calls: Arc<Calls>,
    /// Chat commands.
    pub chat: Arc<Chat>,
    /// Ephemeral live traffic between processes (typing, signaling, the waiting room).
    pub bus: Bus,
    /// This process's waiting room.
    pub waiting: Arc<crate::live::waiting::WaitingRoom>,
    /// Rate limits.
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// Sign-in sessions (refresh tokens).
    pub sessions: Arc<crate::auth::sessions::Sessions>,
    /// Idempotency keys of requests in progress.
    pub idempotency: Arc<crate::idempotency::Keys>,
    /// The live subsystem's services (sessions of both transports).
    pub live: Arc<telemed_live::Services>,
    /// Notification channels (for the Web Push key).
    pub channels: Arc<crate::notify::Channels>,
}

/// The configured public base URL (no trailing slash), if any.
#[derive(Clone, Debug, Default)]
pub struct PublicUrl(pub Option<String>);

/// Longest wait for read models after a command.
#[derive(Clone, Copy, Debug)]
pub struct SettleTimeout(pub Duration);

impl AppState {
    /// Waits (bounded) until every projection has applied `position`, so that the response and
    /// the client's next read show the command's effect. On timeout, logs and goes on: the
    /// command did succeed; only the read model lags. When the projections cannot reach the
    /// database the wait ends at once with a 503 (they cannot move until it is back): the
    /// command was recorded, and a retry of a keyed booking or of a message with its
    /// `client_msg_id` answers with it.
    pub async fn settle(&self, position: Position) -> Result<(), ApiError> {
        match self
            .progress
            .wait_for(position, self.settle_timeout.0)
            .await
        {
            Settled::Reached => Ok(()),
            Settled::TimedOut => {
                tracing::warn!(%position, timeout = ?self.settle_timeout.0, "read models did not catch up in time");
                Ok(())
            }
            Settled::Unreachable => Err(ApiError::Unavailable(Some(
                "the read models cannot reach the database".into(),
            ))),
        }
    }
}
