//! (a) The raw append ceiling: what PostgreSQL sustains for postgres-es's per-command work —
//! load an aggregate's events, append the next one — with no application in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Barrier;
use uuid::Uuid;

/// The scratch table: the shape, defaults and indexes of `events`, but none of its triggers.
const CREATE: &str = "CREATE TABLE bench_events (LIKE events INCLUDING ALL)";
const DROP: &str = "DROP TABLE IF EXISTS bench_events";
/// What postgres-es runs to load an aggregate.
const LOAD: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
  FROM bench_events
 WHERE aggregate_type = $1 AND aggregate_id = $2
 ORDER BY sequence";
/// What postgres-es runs to append an event.
const APPEND: &str = "INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// What the ceiling run measured.
#[derive(Clone, Copy, Debug)]
pub struct Ceiling {
    /// Appends committed.
    pub appends: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Ceiling {
    /// Appends per second.
    pub fn per_second(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `tasks` concurrent loaders/appenders, each on its own connection, for `run_for`.
/// The database at `url` must already have the `events` table.
pub async fn measure(url: &str, tasks: usize, run_for: Duration) -> anyhow::Result<Ceiling> {
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(tasks).context("too many tasks")?)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .context("connect the ceiling pool")?;
    sqlx::query(DROP).execute(&pool).await?;
    sqlx::query(CREATE)
        .execute(&pool)
        .await
        .context("create the scratch table")?;

    let start = Arc::new(Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let mut connection = pool.acquire().await.context("acquire a connection")?;
        let start = start.clone();
        handles.push(tokio::spawn(async move {
            start.wait().await;
            let deadline = Instant::now() + run_for;
            let mut appends = 0_u64;
            while Instant::now() < deadline {
                let aggregate_id = format!("{}:{}", Uuid::new_v4(), "2026-12-01");
                let loaded = sqlx::query(LOAD)
                    .bind("doctor_day")
                    .bind(&aggregate_id)
                    .fetch_all(&mut *connection)
                    .await?;
                let sequence = i64::try_from(loaded.len()).unwrap_or(i64::MAX - 1) + 1;
                let payload = json!({ "SlotReserved": {
                    "day": aggregate_id,
                    "reservation_id": Uuid::new_v4(),
                    "appointment_id": Uuid::new_v4(),
                    "patient_id": Uuid::new_v4(),
                    "interval": { "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T09:15:00Z" },
                }});
                let metadata = json!({
                    "actor_id": Uuid::new_v4(), "actor_role": "patient", "request_id": Uuid::new_v4(),
                });
                sqlx::query(APPEND)
                    .bind("doctor_day")
                    .bind(&aggregate_id)
                    .bind(sequence)
                    .bind("SlotReserved")
                    .bind("1.0")
                    .bind(payload)
                    .bind(metadata)
                    .execute(&mut *connection)
                    .await?;
                appends += 1;
            }
            Ok::<u64, sqlx::Error>(appends)
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut appends = 0;
    for handle in handles {
        appends += handle.await.context("a ceiling task panicked")??;
    }
    let elapsed = began.elapsed();
    sqlx::query(DROP).execute(&pool).await?;
    pool.close().await;
    Ok(Ceiling { appends, elapsed })
}
