//! Configuration of the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

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

/// How the logs are written (`TELEMED_LOG_FORMAT`), read before the command line is parsed so
/// that every command logs the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, with the request span's fields.
    Json,
}

impl LogFormat {
    /// The environment variable that chooses the format.
    pub const VARIABLE: &str = "TELEMED_LOG_FORMAT";

    /// The format named by `TELEMED_LOG_FORMAT` (unset or empty: text).
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var(Self::VARIABLE) {
            Ok(value) => Self::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Self::Text),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ConfigError::BadLogFormat("(not UTF-8)".to_string()))
            }
        }
    }

    /// `text` or `json` (case-insensitive; empty: text).
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(ConfigError::BadLogFormat(value.to_string())),
        }
    }
}

/// Where the built web app is looked for, relative to the current directory.
pub const DEFAULT_WEB_DIR: &str = "web/dist";

/// `path` resolved against the current directory (unchanged if that cannot be read).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Everything `serve` needs. Its secrets are [`SecretString`]s: `Debug` shows them redacted.
#[derive(Clone, Debug)]
pub struct Config {
    /// PostgreSQL connection URL (it may hold a password).
    pub database_url: SecretString,
    /// Where to listen (port 0 picks a free port).
    pub bind: SocketAddr,
    /// HS256 secret for access tokens.
    pub jwt_secret: SecretString,
    /// Development or production.
    pub environment: Environment,
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (each refresh issues a new one).
    pub refresh_token_ttl: Duration,
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
    /// How long a waitlist offer holds its time for the patient (`TELEMED_WAITLIST_HOLD_MINUTES`).
    pub waitlist_hold: time::Duration,
    /// Shifts the server's clock (tests only; refused in production).
    pub clock_offset: time::Duration,
    /// Live events a connection may have queued before it is dropped as a slow consumer.
    pub live_queue: usize,
    /// Tests only, never read from the environment (zero): how long each live session waits
    /// before it joins the hub. A client must be told it is connected only once it has
    /// joined; the delay holds open any window where that is not so, so a test can hit it.
    pub live_join_delay: Duration,
    /// NATS server between processes (`TELEMED_NATS_URL`); `None`: PostgreSQL `NOTIFY`.
    pub nats_url: Option<String>,
    /// How long after an appointment ends its conversation still takes messages.
    pub chat_grace: time::Duration,
    /// ICE servers handed to WebRTC clients.
    pub ice: IceConfig,
    /// When calls may start and how long they ring.
    pub calls: telemed_commands::CallRules,
    /// Whether rate limits are enforced.
    pub rate_limits: bool,
    /// Notification channels and the dispatcher's pace.
    pub notify: crate::notify::NotifyConfig,
    /// The built web app (`index.html`, `assets/`), served at `/`; absolute.
    pub web_dir: PathBuf,
    /// Where `GET /metrics` (Prometheus) listens (`TELEMED_METRICS_BIND`); `None`: nowhere.
    pub metrics_bind: Option<SocketAddr>,
}

/// STUN and TURN servers for WebRTC clients.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// STUN URLs (`stun:host:port`).
    pub stun_urls: Vec<String>,
    /// TURN URLs (`turn:host:port?transport=udp`, `turns:…`); used only with a secret.
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret` (`use-auth-secret`): TURN credentials are derived from it.
    pub turn_secret: Option<SecretString>,
    /// Lifetime of TURN credentials.
    pub turn_ttl: Duration,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Production mode without a secret, or with a weak one.
    #[error(
        "TELEMED_JWT_SECRET must be set to at least {MIN_PRODUCTION_SECRET_BYTES} bytes when TELEMED_ENV=production"
    )]
    WeakSecretInProduction,
    /// An ICE server URL with the wrong scheme.
    #[error("{0}")]
    BadIceUrl(String),
    /// TURN URLs without the secret their credentials come from.
    #[error("TELEMED_TURN_URLS needs TELEMED_TURN_SECRET (coturn's static-auth-secret)")]
    TurnWithoutSecret,
    /// A notification channel's setting is unusable.
    #[error("{0}")]
    Notify(String),
    /// A shifted clock outside development.
    #[error("TELEMED_CLOCK_OFFSET_SECONDS is for tests and is refused when TELEMED_ENV=production")]
    ClockOffsetInProduction,
    /// `TELEMED_LOG_FORMAT` names no known format.
    #[error("TELEMED_LOG_FORMAT must be `text` or `json`, not {0:?}")]
    BadLogFormat(String),
}

impl Config {
    /// A development configuration for `database_url` on a free local port.
    pub fn development(database_url: impl Into<String>) -> Self {
        Self {
            database_url: SecretString::from(database_url.into()),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: DEVELOPMENT_JWT_SECRET.into(),
            environment: Environment::Development,
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            read_your_writes_timeout: Duration::from_secs(5),
            body_limit_bytes: 256 * 1024,
            max_db_connections: 32,
            booking_min_notice: time::Duration::minutes(60),
            booking_horizon: time::Duration::days(180),
            public_url: None,
            orphan_reservation_timeout: time::Duration::minutes(2),
            waitlist_hold: time::Duration::minutes(15),
            clock_offset: time::Duration::ZERO,
            live_queue: 1024,
            live_join_delay: Duration::ZERO,
            nats_url: None,
            chat_grace: time::Duration::hours(72),
            calls: telemed_commands::CallRules {
                early: time::Duration::minutes(15),
                late: time::Duration::minutes(60),
                ring_timeout: time::Duration::seconds(45),
            },
            ice: IceConfig {
                turn_ttl: Duration::from_secs(86_400),
                ..IceConfig::default()
            },
            rate_limits: true,
            notify: crate::notify::NotifyConfig::default(),
            web_dir: absolute(Path::new(DEFAULT_WEB_DIR)),
            metrics_bind: None,
        }
    }

    /// Checks the rules of production mode.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let secret = self.jwt_secret.expose_secret();
        let weak = secret.len() < MIN_PRODUCTION_SECRET_BYTES || secret == DEVELOPMENT_JWT_SECRET;
        if self.environment == Environment::Production && weak {
            return Err(ConfigError::WeakSecretInProduction);
        }
        let schemes = |urls: &[String], allowed: &[&str], name: &str| match urls
            .iter()
            .find(|u| !allowed.iter().any(|s| u.starts_with(s)) || u.len() > 500)
        {
            Some(bad) => Err(ConfigError::BadIceUrl(format!(
                "{name}: {bad:?} must start with {}",
                allowed.join(" or ")
            ))),
            None => Ok(()),
        };
        schemes(
            &self.ice.stun_urls,
            &["stun:", "stuns:"],
            "TELEMED_STUN_URLS",
        )?;
        schemes(
            &self.ice.turn_urls,
            &["turn:", "turns:"],
            "TELEMED_TURN_URLS",
        )?;
        if !self.ice.turn_urls.is_empty() && self.ice.turn_secret.is_none() {
            return Err(ConfigError::TurnWithoutSecret);
        }
        if self.environment == Environment::Production && !self.clock_offset.is_zero() {
            return Err(ConfigError::ClockOffsetInProduction);
        }
        crate::notify::Channels::new(&self.notify).map_err(ConfigError::Notify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats_are_text_or_json() {
        assert_eq!(LogFormat::parse("").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("text").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("JSON").unwrap(), LogFormat::Json);
        let error = LogFormat::parse("yaml").unwrap_err().to_string();
        assert!(
            error.contains("TELEMED_LOG_FORMAT") && error.contains("yaml"),
            "{error}"
        );
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let mut config = Config::development("postgres://x");
        config.environment = Environment::Production;
        assert!(config.validate().is_err());
        config.jwt_secret = "short".into();
        assert!(config.validate().is_err());
        config.jwt_secret = "x".repeat(32).into();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn development_accepts_the_development_secret() {
        assert!(Config::development("postgres://x").validate().is_ok());
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let mut config = Config::development("postgres://telemed:db-password-1@db/telemed");
        config.jwt_secret = "jwt-secret-2".into();
        config.ice.turn_secret = Some("turn-secret-3".into());
        config.notify.smtp_url = Some("smtp://mailer:smtp-password-4@mail".into());
        config.notify.vapid_private_key = Some("vapid-key-5".into());
        config.notify.sms_webhook_token = Some("sms-token-6".into());
        let printed = format!("{config:?}");
        for secret in [
            "db-password-1",
            "jwt-secret-2",
            "turn-secret-3",
            "smtp-password-4",
            "vapid-key-5",
            "sms-token-6",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("REDACTED"), "{printed}");
    }
}
