//! Building and running the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use telemed_commands::{Accounts, Calls, Chat, Clock, Profiles, Scheduling, SchedulingRules};
use telemed_projections::ProjectionRunner;
use telemed_projections::runner::RunnerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::database;
use crate::live::Hub;
use crate::live::bus::Bus;
use crate::live::waiting::WaitingRoom;
use crate::state::{AppState, PublicUrl, SettleTimeout};

/// A bound, ready-to-serve Telemed server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    stop_background: watch::Sender<bool>,
}

impl Application {
    /// Connects to the database, migrates it, starts the projections and binds the listener.
    #[expect(clippy::too_many_lines, reason = "to be split (issue 12)")]
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let pool = database::pool(&config.database_url, config.max_db_connections)?;
        database::wait_until_reachable(&pool, Duration::from_secs(30)).await?;
        database::migrate(&pool).await?;

        let (stop_background, stopped) = watch::channel(false);
        let wakeups = telemed_projections::wakeup::spawn(pool.clone());
        let progress = ProjectionRunner::new(
            pool.clone(),
            telemed_projections::all(),
            RunnerConfig::default(),
        )
        .spawn(wakeups.clone(), stopped.clone());
        let hub = Hub::new(config.live_queue);
        let (waiting, outbox) = WaitingRoom::new(hub.clone());
        crate::live::feed::spawn(
            pool.clone(),
            hub.clone(),
            waiting.clone(),
            progress.clone(),
            wakeups,
            stopped,
        )
        .await?;
        let profiles = Arc::new(Profiles::new(&pool));
        let rules = SchedulingRules {
            min_notice: config.booking_min_notice,
            horizon: config.booking_horizon,
            ..SchedulingRules::default()
        };
        let scheduling = Arc::new(Scheduling::new(
            &pool,
            Clock::shifted(config.clock_offset),
            rules,
        ));
        crate::sweeper::spawn(
            pool.clone(),
            scheduling.clone(),
            config.orphan_reservation_timeout,
            stop_background.subscribe(),
        );
        let calls = Arc::new(Calls::new(
            &pool,
            Clock::shifted(config.clock_offset),
            config.calls,
        ));
        crate::sweeper::spawn_ring_timeouts(calls.clone(), stop_background.subscribe());
        let channels =
            Arc::new(crate::notify::Channels::new(&config.notify).map_err(anyhow::Error::msg)?);
        crate::notify::dispatcher::Dispatcher::new(
            pool.clone(),
            Clock::shifted(config.clock_offset),
            channels.clone(),
            config.notify.clone(),
        )
        .spawn(stop_background.subscribe());
        let rate_limits = crate::rate_limit::RateLimits::new(config.rate_limits);
        let jwt = Arc::new(JwtKeys::new(&config.jwt_secret, config.access_token_ttl));
        let sessions = Arc::new(crate::auth::sessions::Sessions::new(
            pool.clone(),
            config.refresh_token_ttl,
        ));
        sessions.spawn_cleanup(stop_background.subscribe());
        // Tokens of sessions signed out before this process started are refused from its first
        // request (the bus keeps the set current afterwards).
        jwt.revocations().reload(&pool, jwt.ttl()).await?;
        rate_limits.spawn_forgetting(stop_background.subscribe());
        let bus = Bus::start(
            pool.clone(),
            hub.clone(),
            jwt.clone(),
            waiting.clone(),
            config.nats_url.as_deref(),
            stop_background.subscribe(),
        )
        .await?;
        waiting.spawn(outbox, bus.clone(), stop_background.subscribe());
        let chat = Arc::new(Chat::new(
            &pool,
            Clock::shifted(config.clock_offset),
            config.chat_grace,
        ));
        let live = Arc::new(telemed_live::Services {
            pool: pool.clone(),
            hub: hub.clone(),
            bus: bus.clone(),
            waiting: waiting.clone(),
            tokens: jwt.clone(),
            chat: chat.clone(),
            calls: calls.clone(),
            progress: progress.clone(),
            settle_timeout: config.read_your_writes_timeout,
            limits_enabled: rate_limits.enabled(),
        });
        let state = AppState {
            live,
            calls,
            scheduling,
            public_url: PublicUrl(config.public_url.clone()),
            ice: Arc::new(config.ice.clone()),
            accounts: Accounts::new(pool.clone(), profiles.clone()),
            profiles,
            jwt: jwt.clone(),
            sessions,
            progress,
            settle_timeout: SettleTimeout(config.read_your_writes_timeout),
            chat,
            bus,
            waiting,
            hub,
            idempotency: Arc::new(crate::idempotency::Keys::new(
                pool.clone(),
                config.max_db_connections,
            )),
            pool,
            rate_limits,
            channels,
        };
        if crate::web::is_built(&config.web_dir) {
            tracing::info!(dir = %config.web_dir.display(), "serving the web app");
        } else {
            tracing::warn!(dir = %config.web_dir.display(), "no web app built there (no index.html); serving the API and a page that says so");
        }
        let router = crate::routes::router(state, config.body_limit_bytes, &config.web_dir);
        let listener = TcpListener::bind(config.bind).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router,
            port,
            stop_background,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then stops background tasks.
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
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = self.stop_background.send(true);
        result
    }
}
