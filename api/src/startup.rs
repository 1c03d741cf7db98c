//! Building and running the server: the composition root. [`Application::build`] connects,
//! starts the background work under one [`Background`] and assembles the [`AppState`];
//! [`Application::run_until_stopped`] serves, then stops the background work gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use telemed_commands::{
    Accounts, Calls, Chat, Clock, Profiles, Scheduling, SchedulingRules, Waitlist,
};
use telemed_projections::runner::RunnerConfig;
use telemed_projections::{Progress, ProjectionRunner};
use telemed_tasks::Background;
use tokio::net::TcpListener;

use crate::auth::jwt::JwtKeys;
use crate::auth::sessions::Sessions;
use crate::config::Config;
use crate::database;
use crate::live::Hub;
use crate::live::bus::Bus;
use crate::live::waiting::{Outbox, WaitingRoom};
use crate::notify::Channels;
use crate::notify::Dispatcher;
use crate::rate_limit::RateLimits;
use crate::state::{AppState, PublicUrl, SettleTimeout};

/// Longest a graceful stop waits for the background tasks to finish their rounds (the
/// dispatcher its deliveries in flight, the projection runner its batch).
pub const STOP_BOUND: Duration = Duration::from_secs(10);

/// `GET /metrics`'s listener, recorder and scrape-time collector.
struct Metrics {
    listener: TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    collector: crate::scrape::Collector,
}

/// A bound, ready-to-serve Telemed server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    /// `GET /metrics`'s own listener (`TELEMED_METRICS_BIND`), with the recorder it serves and
    /// what it measures at scrape time.
    metrics: Option<Metrics>,
    background: Background,
}

impl Application {
    /// Connects to the database, migrates it, starts the background work and binds the
    /// listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let pool = database::pool(
            config.database_url.expose_secret(),
            config.max_db_connections,
        )?;
        database::wait_until_reachable(&pool, Duration::from_secs(30)).await?;
        database::migrate(&pool).await?;
        let background = Background::new();
        let collector = crate::scrape::Collector::new(pool.clone());
        let state = match start(&config, pool, &background).await {
            Ok(state) => state,
            Err(error) => {
                background.stop(STOP_BOUND).await;
                return Err(error);
            }
        };
        if crate::web::is_built(&config.web_dir) {
            tracing::info!(dir = %config.web_dir.display(), "serving the web app");
        } else {
            tracing::warn!(dir = %config.web_dir.display(), "no web app built there (no index.html); serving the API and a page that says so");
        }
        let router = crate::routes::router(state, config.body_limit_bytes, &config.web_dir);
        let listener = TcpListener::bind(config.bind).await?;
        let port = listener.local_addr()?.port();
        let metrics = match config.metrics_bind {
            Some(bind) => Some(Metrics {
                listener: TcpListener::bind(bind).await?,
                handle: crate::telemetry::prometheus()?,
                collector,
            }),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            port,
            metrics,
            background,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `GET /metrics` is served on, when `TELEMED_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        let metrics = self.metrics.as_ref()?;
        metrics
            .listener
            .local_addr()
            .ok()
            .map(|address| address.port())
    }

    /// Serves until `shutdown` completes; then stops accepting, lets the requests under way
    /// finish, and stops the background work (each task finishes its round, within
    /// `STOP_BOUND`, 10 s).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = self.listener.tap_io(|stream| {
            // Small frames (acks, events) must not wait for Nagle's algorithm.
            let _ = stream.set_nodelay(true);
        });
        let router = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let metrics = self.metrics.map(|metrics| {
            tokio::spawn(crate::telemetry::serve_metrics(
                metrics.listener,
                metrics.handle,
                metrics.collector,
            ))
        });
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        tracing::info!("stopped serving; stopping the background tasks");
        if self.background.stop(STOP_BOUND).await {
            tracing::info!("background tasks stopped");
        }
        result
    }
}

/// The read side and the live hub, running: projections, and the store feed into the hub.
struct ReadSide {
    progress: Progress,
    hub: Arc<Hub>,
    waiting: Arc<WaitingRoom>,
    /// Notifications of new events (for the waitlist matcher).
    wakeups: tokio::sync::watch::Receiver<u64>,
}

/// Starts the projections and the live feed under `background`; the waiting room's outbox
/// waits for the bus.
async fn read_side(
    config: &Config,
    pool: &PgPool,
    background: &Background,
) -> anyhow::Result<(ReadSide, Outbox)> {
    let wakeups = telemed_projections::wakeup::spawn(pool.clone(), background);
    let progress = ProjectionRunner::new(
        pool.clone(),
        telemed_projections::all(),
        RunnerConfig::default(),
    )
    .spawn(wakeups.clone(), background);
    let hub = Hub::new(config.live_queue);
    let (waiting, outbox) = WaitingRoom::new(hub.clone());
    crate::live::feed::spawn(
        pool.clone(),
        hub.clone(),
        waiting.clone(),
        progress.clone(),
        wakeups.clone(),
        background,
    )
    .await?;
    Ok((
        ReadSide {
            progress,
            hub,
            waiting,
            wakeups,
        },
        outbox,
    ))
}

/// The write side: `telemed-commands`' application services, on the configured clock.
struct Commands {
    profiles: Arc<Profiles>,
    scheduling: Arc<Scheduling>,
    waitlist: Arc<Waitlist>,
    calls: Arc<Calls>,
    chat: Arc<Chat>,
}

fn commands(config: &Config, pool: &PgPool) -> Commands {
    let clock = || Clock::shifted(config.clock_offset);
    let rules = SchedulingRules {
        min_notice: config.booking_min_notice,
        horizon: config.booking_horizon,
        ..SchedulingRules::default()
    };
    let scheduling = Arc::new(Scheduling::new(pool, clock(), rules));
    Commands {
        profiles: Arc::new(Profiles::new(pool)),
        waitlist: Arc::new(Waitlist::new(
            pool,
            scheduling.clone(),
            config.waitlist_hold,
        )),
        scheduling,
        calls: Arc::new(Calls::new(pool, clock(), config.calls)),
        chat: Arc::new(Chat::new(pool, clock(), config.chat_grace)),
    }
}

/// The edge's own parts: tokens, sign-in sessions, limits, notification channels, the bus.
struct Edge {
    jwt: Arc<JwtKeys>,
    sessions: Arc<Sessions>,
    rate_limits: Arc<RateLimits>,
    channels: Arc<Channels>,
    bus: Bus,
}

/// Starts everything under `background` and assembles the state the handlers share.
async fn start(config: &Config, pool: PgPool, background: &Background) -> anyhow::Result<AppState> {
    let (read, outbox) = read_side(config, &pool, background).await?;
    let commands = commands(config, &pool);
    crate::sweeper::spawn(
        background,
        pool.clone(),
        commands.scheduling.clone(),
        config.orphan_reservation_timeout,
    );
    crate::sweeper::spawn_ring_timeouts(background, commands.calls.clone());
    crate::waitlist_matcher::spawn(
        background,
        pool.clone(),
        commands.waitlist.clone(),
        read.wakeups.clone(),
    );
    let channels = Arc::new(Channels::new(&config.notify).map_err(anyhow::Error::msg)?);
    Dispatcher::new(
        pool.clone(),
        Clock::shifted(config.clock_offset),
        channels.clone(),
        config.notify.clone(),
    )
    .spawn(background);
    let rate_limits = RateLimits::new(config.rate_limits);
    rate_limits.spawn_forgetting(background);
    let jwt = Arc::new(JwtKeys::new(
        config.jwt_secret.expose_secret(),
        config.access_token_ttl,
    ));
    let sessions = Arc::new(Sessions::new(pool.clone(), config.refresh_token_ttl));
    sessions.spawn_cleanup(background);
    // Tokens of sessions signed out before this process started are refused from its first
    // request (the bus keeps the set current afterwards).
    jwt.revocations().reload(&pool, jwt.ttl()).await?;
    let bus = Bus::start(
        pool.clone(),
        read.hub.clone(),
        jwt.clone(),
        read.waiting.clone(),
        config.nats_url.as_deref(),
        background,
    )
    .await?;
    read.waiting.spawn(outbox, bus.clone(), background);
    let edge = Edge {
        jwt,
        sessions,
        rate_limits,
        channels,
        bus,
    };
    Ok(assemble(config, pool, read, commands, edge))
}

/// The [`AppState`] (and the live subsystem's services in it) from the running parts.
fn assemble(
    config: &Config,
    pool: PgPool,
    read: ReadSide,
    commands: Commands,
    edge: Edge,
) -> AppState {
    let ReadSide {
        progress,
        hub,
        waiting,
        wakeups: _,
    } = read;
    let live = Arc::new(telemed_live::Services {
        pool: pool.clone(),
        hub: hub.clone(),
        bus: edge.bus.clone(),
        waiting: waiting.clone(),
        tokens: edge.jwt.clone(),
        chat: commands.chat.clone(),
        calls: commands.calls.clone(),
        progress: progress.clone(),
        settle_timeout: config.read_your_writes_timeout,
        limits_enabled: edge.rate_limits.enabled(),
        join_delay: config.live_join_delay,
    });
    AppState {
        live,
        calls: commands.calls,
        scheduling: commands.scheduling,
        waitlist: commands.waitlist,
        public_url: PublicUrl(config.public_url.clone()),
        ice: Arc::new(config.ice.clone()),
        accounts: Accounts::new(pool.clone(), commands.profiles.clone()),
        profiles: commands.profiles,
        jwt: edge.jwt,
        sessions: edge.sessions,
        progress,
        settle_timeout: SettleTimeout(config.read_your_writes_timeout),
        chat: commands.chat,
        bus: edge.bus,
        waiting,
        hub,
        idempotency: Arc::new(crate::idempotency::Keys::new(
            pool.clone(),
            config.max_db_connections,
        )),
        pool,
        rate_limits: edge.rate_limits,
        channels: edge.channels,
    }
}
