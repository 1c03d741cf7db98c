//! Configuration of the server.

use std::net::SocketAddr;
use std::time::Duration;

/// Development or production. Production refuses unsafe defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// Local development and tests: a built-in JWT secret is allowed.
    Development,
    /// A real deployment: every secret must be configured.
    Production,
}

/// The JWT secret used when none is configured, outside production only.
pub const DEVELOPMENT_JWT_SECRET: &str = "telemed-development-secret-never-use-in-production";

/// Shortest JWT secret accepted in production, in bytes (HS256 wants at least 256 bits).
pub const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Where to listen (port 0 picks a free port).
    pub bind: SocketAddr,
    /// HS256 secret for access tokens.
    pub jwt_secret: String,
    /// Development or production.
    pub environment: Environment,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Longest a command's response waits for read models to catch up.
    pub read_your_writes_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Most database connections of this process.
    pub max_db_connections: u32,
    /// How far ahead a booking must start.
    pub booking_min_notice: time::Duration,
    /// How far ahead a booking may start at most.
    pub booking_horizon: time::Duration,
    /// Base URL clients reach this server at (for calendar feed links); `None`: from the
    /// request's `Host` header.
    pub public_url: Option<String>,
    /// How long a slot reservation without an appointment survives before the sweeper frees it.
    pub orphan_reservation_timeout: time::Duration,
    /// Shifts the server's clock (tests only; not configurable from the environment).
    pub clock_offset: time::Duration,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Production mode without a secret, or with a weak one.
    #[error(
        "TELEMED_JWT_SECRET must be set to at least {MIN_PRODUCTION_SECRET_BYTES} bytes when TELEMED_ENV=production"
    )]
    WeakSecretInProduction,
}

impl Config {
    /// A development configuration for `database_url` on a free local port.
    pub fn development(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: DEVELOPMENT_JWT_SECRET.to_string(),
            environment: Environment::Development,
            access_token_ttl: Duration::from_secs(3600),
            read_your_writes_timeout: Duration::from_secs(5),
            body_limit_bytes: 256 * 1024,
            max_db_connections: 32,
            booking_min_notice: time::Duration::minutes(60),
            booking_horizon: time::Duration::days(180),
            public_url: None,
            orphan_reservation_timeout: time::Duration::minutes(2),
            clock_offset: time::Duration::ZERO,
        }
    }

    /// Checks the rules of production mode.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let weak = self.jwt_secret.len() < MIN_PRODUCTION_SECRET_BYTES
            || self.jwt_secret == DEVELOPMENT_JWT_SECRET;
        if self.environment == Environment::Production && weak {
            return Err(ConfigError::WeakSecretInProduction);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_the_development_secret() {
        let mut config = Config::development("postgres://x");
        config.environment = Environment::Production;
        assert!(config.validate().is_err());
        config.jwt_secret = "short".into();
        assert!(config.validate().is_err());
        config.jwt_secret = "x".repeat(32);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn development_accepts_the_development_secret() {
        assert!(Config::development("postgres://x").validate().is_ok());
    }
}
