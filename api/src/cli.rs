//! The `telemed` command line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use telemed_commands::{Accounts, CommandContext, NewAccount, Profiles, RegisterError};
use telemed_domain::values::{Email, Password, PersonName, TimeZoneName};
use telemed_domain::{Position, Role};

use crate::config::{Config, DEVELOPMENT_JWT_SECRET, Environment};
use crate::{Application, database};

/// Telemed: free doctor–patient video consultations.
#[derive(Debug, Parser)]
#[command(name = "telemed", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (REST, OpenAPI) on TELEMED_BIND.
    Serve(Box<ServeArgs>),
    /// Apply event-store-schema.sql (idempotent; `serve` does it too).
    Migrate(DatabaseArgs),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Rebuild read models from the event log while the service runs.
    Rebuild(RebuildArgs),
    /// Export or import the event log as JSON lines.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the OpenAPI document the server serves, as pretty JSON (needs no database).
    Openapi,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write the event log (after TOKEN, if given) to stdout, one JSON event per line.
    Export(ExportArgs),
    /// Append an export to an empty database and rebuild the read models from it.
    Import(ImportArgs),
    /// Recompute the hash chain from the log and compare it with the sealed links (and a head
    /// kept earlier); exits non-zero naming the first event that differs.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// A head hash kept earlier (64 hex digits, from `GET /api/v1/audit/head` or a verify).
    #[arg(long, requires = "at")]
    head: Option<String>,
    /// The position token that kept head was given at.
    #[arg(long, requires = "head")]
    at: Option<String>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Position token: only events after it.
    #[arg(long, conflicts_with = "access_log")]
    after: Option<String>,
    /// Export the access log (reads of patient data) instead of the event log.
    #[arg(long)]
    access_log: bool,
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The export to read (`-` or absent: stdin).
    file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "TELEMED_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Address `GET /metrics` (Prometheus text) listens on; unset: no metrics endpoint.
    #[arg(long, env = "TELEMED_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// HS256 secret for access tokens (required in production, at least 32 bytes).
    #[arg(long, env = "TELEMED_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// `development` allows a built-in JWT secret; `production` refuses unsafe defaults.
    #[arg(
        long = "env",
        env = "TELEMED_ENV",
        value_enum,
        default_value = "development"
    )]
    environment: Environment,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "TELEMED_ACCESS_TOKEN_TTL_SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(60..=86_400))]
    access_token_ttl_seconds: u64,
    /// Lifetime of refresh tokens, in days (each refresh issues a new one).
    #[arg(long, env = "TELEMED_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=365))]
    refresh_token_ttl_days: u64,
    /// Longest a command's response waits for the read models, in milliseconds.
    #[arg(
        long,
        env = "TELEMED_READ_YOUR_WRITES_TIMEOUT_MS",
        default_value_t = 5000
    )]
    read_your_writes_timeout_ms: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TELEMED_BODY_LIMIT_BYTES", default_value_t = 256 * 1024)]
    body_limit_bytes: usize,
    /// Most database connections of this process.
    #[arg(long, env = "TELEMED_DB_MAX_CONNECTIONS", default_value_t = 32)]
    db_max_connections: u32,
    /// How far ahead a booking must start, in minutes.
    #[arg(long, env = "TELEMED_BOOKING_MIN_NOTICE_MINUTES", default_value_t = 60)]
    booking_min_notice_minutes: u32,
    /// How far ahead a booking may start at most, in days.
    #[arg(long, env = "TELEMED_BOOKING_HORIZON_DAYS", default_value_t = 180,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    booking_horizon_days: u32,
    /// How long a waitlist offer holds its time for the patient, in minutes (decimals allowed,
    /// e.g. `0.05` for 3 s in tests; more than 0, at most 1440).
    #[arg(long, env = "TELEMED_WAITLIST_HOLD_MINUTES", default_value_t = 15.0,
          value_parser = hold_minutes)]
    waitlist_hold_minutes: f64,
    /// Base URL clients reach this server at, for links such as calendar feeds
    /// (default: from each request's Host header).
    #[arg(long, env = "TELEMED_PUBLIC_URL")]
    public_url: Option<String>,
    /// Live events a connection may have waiting before it is dropped as a slow consumer.
    #[arg(long, env = "TELEMED_LIVE_QUEUE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    live_queue: u32,
    /// NATS server carrying ephemeral live traffic between processes (e.g.
    /// `nats://127.0.0.1:4222`); unset: PostgreSQL NOTIFY.
    #[arg(long, env = "TELEMED_NATS_URL", hide_env_values = true)]
    nats_url: Option<String>,
    /// How long after an appointment ends its conversation still takes messages, in hours.
    #[arg(long, env = "TELEMED_CHAT_GRACE_HOURS", default_value_t = 72,
          value_parser = clap::value_parser!(u32).range(0..=8760))]
    chat_grace_hours: u32,
    /// STUN URLs for WebRTC clients, comma-separated (e.g. `stun:stun.example.org:3478`).
    #[arg(long, env = "TELEMED_STUN_URLS", value_delimiter = ',')]
    stun_urls: Vec<String>,
    /// TURN URLs, comma-separated (e.g. `turn:turn.example.org:3478?transport=udp`).
    #[arg(long, env = "TELEMED_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// coturn's static-auth-secret: enables time-limited TURN credentials.
    #[arg(long, env = "TELEMED_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Lifetime of TURN credentials, in seconds.
    #[arg(long, env = "TELEMED_TURN_TTL_SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(60..=604_800))]
    turn_ttl_seconds: u64,
    /// How long before an appointment's start a call may begin, in minutes.
    #[arg(long, env = "TELEMED_CALL_EARLY_JOIN_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(0..=1440))]
    call_early_join_minutes: u32,
    /// How long after an appointment's end a call may still begin, in minutes.
    #[arg(long, env = "TELEMED_CALL_LATE_JOIN_MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(0..=1440))]
    call_late_join_minutes: u32,
    /// How long a call rings before it is missed, in seconds.
    #[arg(long, env = "TELEMED_CALL_RING_TIMEOUT_SECONDS", default_value_t = 45,
          value_parser = clap::value_parser!(u32).range(5..=600))]
    call_ring_timeout_seconds: u32,
    /// Rate limits (`on`, or `off` for load tests and benchmarks).
    #[arg(long, env = "TELEMED_RATE_LIMITS", default_value = "on", value_parser = parse_switch)]
    rate_limits: bool,
    /// SMTP server for e-mail notifications (`smtp://user:pass@host:587`, `smtps://host`);
    /// e-mail is off when unset.
    #[arg(long, env = "TELEMED_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender of e-mail notifications.
    #[arg(
        long,
        env = "TELEMED_SMTP_FROM",
        default_value = "Telemed <no-reply@localhost>"
    )]
    smtp_from: String,
    /// VAPID private key for Web Push (base64url, 32 bytes); push is off when unset.
    #[arg(long, env = "TELEMED_VAPID_PRIVATE_KEY", hide_env_values = true)]
    vapid_private_key: Option<String>,
    /// VAPID contact, a `mailto:` or `https:` URL.
    #[arg(
        long,
        env = "TELEMED_VAPID_SUBJECT",
        default_value = "mailto:admin@localhost"
    )]
    vapid_subject: String,
    /// SMS provider webhook (see the README for its shape); SMS is off when unset.
    #[arg(long, env = "TELEMED_SMS_WEBHOOK_URL")]
    sms_webhook_url: Option<String>,
    /// Bearer token sent to the SMS webhook.
    #[arg(long, env = "TELEMED_SMS_WEBHOOK_TOKEN", hide_env_values = true)]
    sms_webhook_token: Option<String>,
    /// How often each process looks for due notifications, in milliseconds.
    #[arg(long, env = "TELEMED_NOTIFY_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    notify_poll_ms: u64,
    /// First retry delay of a failed delivery, in milliseconds (doubles each time, at most
    /// an hour).
    #[arg(long, env = "TELEMED_NOTIFY_RETRY_BASE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    notify_retry_base_ms: u64,
    /// Attempts before a delivery is given up.
    #[arg(long, env = "TELEMED_NOTIFY_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    notify_max_attempts: u32,
    /// Shifts the server's clock by this many seconds (tests of reminders; refused in
    /// production).
    #[arg(
        long,
        env = "TELEMED_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    clock_offset_seconds: i64,
    /// The built web app served at `/` (relative paths start at the current directory).
    #[arg(long, env = "TELEMED_WEB_DIR", default_value = crate::config::DEFAULT_WEB_DIR)]
    web_dir: std::path::PathBuf,
}

/// `on`/`off` (also `true`/`false`, `1`/`0`).
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        other => Err(format!("`{other}` is neither on nor off")),
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account and print its id.
    Create(CreateUserArgs),
}

#[derive(Debug, Args)]
struct CreateUserArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// admin, auditor, doctor or patient.
    #[arg(long)]
    #[arg(value_parser = parse_role)]
    role: Role,
    /// Login e-mail.
    #[arg(long)]
    email: String,
    /// Password (at least 10 characters).
    #[arg(long)]
    password: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// IANA time zone.
    #[arg(long, default_value = "UTC")]
    timezone: String,
}

#[derive(Debug, Args)]
struct RebuildArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Only this projection (default: all).
    #[arg(long)]
    projection: Option<String>,
    /// Tests only: before swapping the new tables in, wait until this advisory lock key is free.
    #[arg(long, hide = true)]
    hold_before_swap: Option<i64>,
}

/// A secret setting, when given.
fn secret(value: Option<String>) -> Option<SecretString> {
    value.map(SecretString::from)
}

/// `TELEMED_WAITLIST_HOLD_MINUTES`: a number of minutes in (0, 1440].
fn hold_minutes(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(minutes) if minutes > 0.0 && minutes <= 1440.0 => Ok(minutes),
        _ => Err(format!(
            "must be a number of minutes above 0 and at most 1440, not {text:?}"
        )),
    }
}

impl ServeArgs {
    /// When calls may start and how long they ring.
    fn call_rules(&self) -> telemed_commands::CallRules {
        telemed_commands::CallRules {
            early: time::Duration::minutes(self.call_early_join_minutes.into()),
            late: time::Duration::minutes(self.call_late_join_minutes.into()),
            ring_timeout: time::Duration::seconds(self.call_ring_timeout_seconds.into()),
        }
    }

    fn into_config(self) -> Config {
        let calls = self.call_rules();
        Config {
            database_url: self.database.database_url.into(),
            bind: self.bind,
            metrics_bind: self.metrics_bind,
            jwt_secret: self
                .jwt_secret
                .unwrap_or_else(|| DEVELOPMENT_JWT_SECRET.to_string())
                .into(),
            environment: self.environment,
            access_token_ttl: Duration::from_secs(self.access_token_ttl_seconds),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl_days * 86_400),
            read_your_writes_timeout: Duration::from_millis(self.read_your_writes_timeout_ms),
            body_limit_bytes: self.body_limit_bytes,
            max_db_connections: self.db_max_connections,
            booking_min_notice: time::Duration::minutes(self.booking_min_notice_minutes.into()),
            booking_horizon: time::Duration::days(self.booking_horizon_days.into()),
            public_url: self.public_url.map(|u| u.trim_end_matches('/').to_string()),
            orphan_reservation_timeout: time::Duration::minutes(2),
            waitlist_hold: time::Duration::seconds_f64(self.waitlist_hold_minutes * 60.0),
            clock_offset: time::Duration::seconds(self.clock_offset_seconds),
            live_queue: self.live_queue as usize,
            live_join_delay: Duration::ZERO,
            nats_url: self.nats_url.filter(|u| !u.trim().is_empty()),
            chat_grace: time::Duration::hours(self.chat_grace_hours.into()),
            calls,
            rate_limits: self.rate_limits,
            notify: crate::notify::NotifyConfig {
                smtp_url: secret(self.smtp_url.filter(|s| !s.trim().is_empty())),
                smtp_from: self.smtp_from,
                vapid_private_key: secret(self.vapid_private_key.filter(|s| !s.trim().is_empty())),
                vapid_subject: self.vapid_subject,
                sms_webhook_url: self.sms_webhook_url.filter(|s| !s.trim().is_empty()),
                sms_webhook_token: self
                    .sms_webhook_token
                    .filter(|s| !s.is_empty())
                    .map(SecretString::from),
                poll_interval: Duration::from_millis(self.notify_poll_ms),
                retry_base: Duration::from_millis(self.notify_retry_base_ms),
                max_attempts: self.notify_max_attempts,
                allow_http_push: self.environment != Environment::Production,
            },
            ice: crate::config::IceConfig {
                stun_urls: clean(self.stun_urls),
                turn_urls: clean(self.turn_urls),
                turn_secret: self
                    .turn_secret
                    .filter(|s| !s.is_empty())
                    .map(SecretString::from),
                turn_ttl: Duration::from_secs(self.turn_ttl_seconds),
            },
            web_dir: crate::config::absolute(&self.web_dir),
        }
    }
}

/// Trimmed, non-empty entries of a comma-separated list.
fn clean(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.into_config()).await,
        Command::Migrate(args) => {
            let pool = connect(&args).await?;
            database::migrate(&pool).await?;
            println!("schema applied");
            Ok(())
        }
        Command::User {
            command: UserCommand::Create(args),
        } => create_user(args).await,
        Command::Rebuild(args) => rebuild(args).await,
        Command::Openapi => print_openapi(),
        Command::Audit { command } => audit(command).await,
    }
}

/// `telemed audit …`.
async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export(args) => {
            let after = match args.after.as_deref() {
                None => Position::START,
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--after {text:?} is not a position token"))?,
            };
            let pool = connect(&args.database).await?;
            database::migrate(&pool).await?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if args.access_log {
                let written = crate::audit::export_access(&pool, &mut out).await?;
                eprintln!("exported {written} access log entries");
                return Ok(());
            }
            let written = crate::audit::export(&pool, after, &mut out).await?;
            eprintln!("exported {written} events");
            let head = telemed_projections::chain::head(&pool).await?;
            eprintln!(
                "chain head {} at position {} ({} events sealed): keep it for `telemed audit verify --head … --at …`",
                hex::encode(head.hash),
                head.position,
                head.events
            );
            Ok(())
        }
        AuditCommand::Import(args) => {
            let pool = connect(&args.database).await?;
            database::migrate(&pool).await?;
            let imported = match args.file.as_deref() {
                None => crate::audit::import(&pool, std::io::stdin().lock()).await?,
                Some(path) if path.as_os_str() == "-" => {
                    crate::audit::import(&pool, std::io::stdin().lock()).await?
                }
                Some(path) => {
                    let file = std::fs::File::open(path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    crate::audit::import(&pool, std::io::BufReader::new(file)).await?
                }
            };
            println!("imported {imported} events; read models rebuilt");
            Ok(())
        }
        AuditCommand::Verify(args) => verify_chain(args).await,
    }
}

/// `telemed audit verify`: prints `ok: …` or fails naming the first difference.
async fn verify_chain(args: VerifyArgs) -> anyhow::Result<()> {
    use telemed_projections::chain::{self, KeptHead, Verdict};
    let kept = match (args.head.as_deref(), args.at.as_deref()) {
        (Some(head), Some(at)) => {
            let hash = hex::decode(head.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| anyhow::anyhow!("--head {head:?} is not 64 hex digits"))?;
            let at = at
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--at {at:?} is not a position token"))?;
            Some(KeptHead { hash, at })
        }
        _ => None,
    };
    let pool = connect(&args.database).await?;
    database::migrate(&pool).await?;
    match chain::verify(&pool, kept).await? {
        Verdict::Intact(head) => {
            println!(
                "ok: {} events, head {} at position {}",
                head.events,
                hex::encode(head.hash),
                head.position
            );
            if let Some(kept) = kept {
                println!(
                    "kept head {} at position {} matches",
                    hex::encode(kept.hash),
                    kept.at
                );
            }
            let unsealed = chain::unsealed(&pool, head).await?;
            if unsealed > 0 {
                eprintln!(
                    "{unsealed} newer events are not sealed yet (a running server seals them)"
                );
            }
            Ok(())
        }
        Verdict::Differs(difference) => bail!("the log differs from its hash chain: {difference}"),
    }
}

/// Writes the served OpenAPI document to stdout: pretty JSON, keys in a stable order.
fn print_openapi() -> anyhow::Result<()> {
    use std::io::Write;
    let json = crate::routes::openapi_document()
        .to_pretty_json()
        .context("cannot serialise the OpenAPI document")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}").context("cannot write the OpenAPI document")?;
    stdout.flush().context("cannot write the OpenAPI document")
}

async fn connect(args: &DatabaseArgs) -> anyhow::Result<sqlx::PgPool> {
    let pool = database::pool(&args.database_url, 4)?;
    database::wait_until_reachable(&pool, Duration::from_secs(10))
        .await
        .context("cannot reach the database")?;
    Ok(pool)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if config.environment == Environment::Development
        && config.jwt_secret.expose_secret() == DEVELOPMENT_JWT_SECRET
    {
        tracing::warn!("using the built-in development JWT secret; set TELEMED_JWT_SECRET");
    }
    let app = Application::build(config.clone()).await?;
    // `port` comes first: scripts and tests take the first `port=` of this line.
    match app.metrics_port() {
        Some(metrics_port) => {
            tracing::info!(address = %config.bind.ip(), port = app.port(), metrics_port, "telemed is serving (GET /metrics on metrics_port)")
        }
        None => {
            tracing::info!(address = %config.bind.ip(), port = app.port(), "telemed is serving")
        }
    }
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

async fn create_user(args: CreateUserArgs) -> anyhow::Result<()> {
    let invalid =
        |field: &str, e: telemed_domain::values::InvalidValue| anyhow::anyhow!("--{field} {e}");
    let new = NewAccount {
        email: Email::parse(&args.email).map_err(|e| invalid("email", e))?,
        password: Password::parse(&args.password, &args.email)
            .map_err(|e| invalid("password", e))?,
        role: args.role,
        name: PersonName::parse(&args.name).map_err(|e| invalid("name", e))?,
        timezone: TimeZoneName::parse(&args.timezone).map_err(|e| invalid("timezone", e))?,
    };
    let pool = connect(&args.database).await?;
    database::migrate(&pool).await?;
    let accounts = Accounts::new(pool.clone(), Arc::new(Profiles::new(&pool)));
    match accounts
        .register(new, |_| CommandContext::system("cli"))
        .await
    {
        Ok((account, _)) => {
            println!("{}", account.id);
            Ok(())
        }
        Err(RegisterError::EmailTaken) => {
            bail!("an account with e-mail {} already exists", args.email)
        }
        Err(other) => Err(other.into()),
    }
}

async fn rebuild(args: RebuildArgs) -> anyhow::Result<()> {
    let pool = connect(&args.database).await?;
    database::migrate(&pool).await?;
    let projections = telemed_projections::all();
    let selected: Vec<_> = match &args.projection {
        Some(name) => {
            let found: Vec<_> = projections
                .into_iter()
                .filter(|p| p.name() == name)
                .collect();
            if found.is_empty() {
                let names: Vec<_> = telemed_projections::all()
                    .iter()
                    .map(|p| p.name())
                    .collect();
                bail!("no projection named {name:?}; known: {}", names.join(", "));
            }
            found
        }
        None => projections,
    };
    let options = telemed_projections::rebuild::Options {
        hold_before_swap: args.hold_before_swap,
    };
    let started = std::time::Instant::now();
    let rebuilt = telemed_projections::rebuild::rebuild_all(
        &pool,
        &telemed_projections::rebuild::refs(&selected),
        options,
    )
    .await?;
    for projection in &selected {
        println!("rebuilt {}: {} events", projection.name(), rebuilt.events);
    }
    println!(
        "{} events in {:.3} s (filling {:.3} s, swap {:.3} s with {} events that arrived meanwhile)",
        rebuilt.events,
        started.elapsed().as_secs_f64(),
        rebuilt.fill.as_secs_f64(),
        rebuilt.swap.as_secs_f64(),
        rebuilt.caught_up,
    );
    Ok(())
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: telemed_domain::role::UnknownRole| e.to_string())
}
