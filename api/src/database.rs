//! Connection pool and schema.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The whole schema, applied idempotently.
pub const SCHEMA: &str = include_str!("../../event-store-schema.sql");

/// Serialises concurrent migrations (an arbitrary constant key).
const MIGRATION_LOCK: i64 = 0x7e1e_3ed0;

/// How long a request waits for a connection. While PostgreSQL refuses connections sqlx
/// retries until then, so this is how long a request waits before its 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// A pool on `url`; connections are made lazily and checked on acquire.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(true)
        .connect_lazy(url)
}

/// Waits until the database answers, at most `patience`.
pub async fn wait_until_reachable(pool: &PgPool, patience: Duration) -> Result<(), sqlx::Error> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Applies [`SCHEMA`] in one transaction under an advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await
}
