//! What `GET /metrics` measures at the moment it is scraped (always fresh, and nothing runs
//! between scrapes): the database pool's use, each projection's lag behind the log, and the
//! notification outbox's backlog. The live tier counts its connections and events as they
//! happen (`telemed_live::telemetry`), the dispatcher its attempts
//! (`telemed_notify::outbox`), the HTTP middleware its requests (`telemetry::track`).

use std::time::Duration;

use sqlx::PgPool;

/// Gauge: connections the pool holds open now (idle or in use).
pub const POOL_SIZE: &str = "telemed_db_pool_connections";
/// Gauge: open connections waiting in the pool.
pub const POOL_IDLE: &str = "telemed_db_pool_idle_connections";
/// Gauge: connections lent out to requests and tasks now.
pub const POOL_IN_USE: &str = "telemed_db_pool_in_use_connections";
/// Gauge: the most connections the pool may open (`TELEMED_DB_MAX_CONNECTIONS`).
pub const POOL_MAX: &str = "telemed_db_pool_max_connections";
/// Gauge: events committed past a projection's checkpoint, by `projection`.
pub const LAG_EVENTS: &str = "telemed_projection_lag_events";
/// Gauge: age of the oldest event a projection has not applied (0 when caught up), by
/// `projection`.
pub const LAG_SECONDS: &str = "telemed_projection_lag_seconds";
/// Gauge: 1 when this scrape's database queries succeeded, else 0 (the projection and outbox
/// gauges then keep their previous values).
pub const DATABASE_UP: &str = "telemed_metrics_database_up";

/// Longest a scrape waits for its database queries.
const PATIENCE: Duration = Duration::from_secs(5);

/// Measures the process's database-backed gauges at scrape time.
pub struct Collector {
    pool: PgPool,
    projections: Vec<&'static str>,
}

impl Collector {
    /// A collector over `pool`, for the projections the service runs.
    pub fn new(pool: PgPool) -> Self {
        let projections = telemed_projections::all()
            .iter()
            .map(|projection| projection.name())
            .collect();
        Self { pool, projections }
    }

    /// Sets every gauge it measures.
    pub async fn collect(&self) {
        // The pool first: the queries below borrow a connection of it.
        self.pool_use();
        let up = match tokio::time::timeout(PATIENCE, self.measure_database()).await {
            Ok(Ok(())) => 1.0,
            Ok(Err(error)) => {
                tracing::warn!(%error, "metrics: the database could not be measured");
                0.0
            }
            Err(_) => {
                tracing::warn!(
                    timeout = ?PATIENCE,
                    "metrics: the database did not answer in time"
                );
                0.0
            }
        };
        metrics::gauge!(DATABASE_UP).set(up);
    }

    fn pool_use(&self) {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(size);
        metrics::gauge!(POOL_SIZE).set(size);
        metrics::gauge!(POOL_IDLE).set(idle);
        metrics::gauge!(POOL_IN_USE).set(size - idle);
        metrics::gauge!(POOL_MAX).set(self.pool.options().get_max_connections());
    }

    async fn measure_database(&self) -> Result<(), sqlx::Error> {
        for lag in telemed_projections::lag::lag(&self.pool, &self.projections).await? {
            let projection = lag.projection;
            #[allow(clippy::cast_precision_loss)] // at most lag::COUNT_LIMIT
            metrics::gauge!(LAG_EVENTS, "projection" => projection.clone()).set(lag.events as f64);
            metrics::gauge!(LAG_SECONDS, "projection" => projection).set(lag.seconds);
        }
        for (channel, state, count) in telemed_notify::outbox::backlog(&self.pool).await? {
            #[allow(clippy::cast_precision_loss)] // rows of one table
            metrics::gauge!(telemed_notify::outbox::BACKLOG, "channel" => channel, "state" => state)
                .set(count as f64);
        }
        Ok(())
    }
}

/// Describes the metrics measured here and those of the live tier and the outbox.
pub fn describe() {
    use metrics::describe_gauge;
    describe_gauge!(POOL_SIZE, "Connections the database pool holds open now.");
    describe_gauge!(POOL_IDLE, "Open connections waiting in the database pool.");
    describe_gauge!(POOL_IN_USE, "Database connections in use now.");
    describe_gauge!(POOL_MAX, "The most connections the database pool may open.");
    describe_gauge!(
        LAG_EVENTS,
        "Events committed past the projection's checkpoint (counted up to 100000)."
    );
    describe_gauge!(
        LAG_SECONDS,
        "Age of the oldest event the projection has not applied; 0 when caught up."
    );
    describe_gauge!(
        DATABASE_UP,
        "1 when the last scrape could query the database, else 0."
    );
    telemed_live::telemetry::describe();
    telemed_notify::outbox::describe();
}
