//! `telemed audit export` and `telemed audit import`: the event log as JSON lines.
//!
//! Each line is an `audit_event` (the contract's shape, as `GET /api/v1/audit/events` gives
//! it). An export replays into an empty database with `import`, which appends the events in
//! the file's order in one transaction (keeping each event's type, id, sequence, payload,
//! metadata and `recorded_at`), rebuilds every read model from them, and restores the
//! booking flow's claims of open appointments. Positions are coordinates in one store and
//! are issued anew; credentials are never in the log, so accounts need new passwords.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use telemed_domain::Position;
use telemed_projections::audit::{AuditFilter, page};
use time::OffsetDateTime;

/// Events read or written per statement.
const BATCH: usize = 1_000;

/// How long an export waits for transactions older than the newest event to end.
const READABLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes every event after `after` to `out`, one JSON object per line; returns how many.
pub async fn export(pool: &PgPool, after: Position, out: &mut impl Write) -> anyhow::Result<u64> {
    // Everything committed when the export starts is in it, once older transactions ended.
    if !telemed_projections::stream::wait_until_readable(pool, READABLE_PATIENCE).await? {
        anyhow::bail!(
            "a transaction older than the newest event stays open; the export would be incomplete"
        );
    }
    let mut cursor = after;
    let mut written = 0u64;
    loop {
        let events = page(pool, cursor, &AuditFilter::default(), BATCH as i64).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        for event in &events {
            serde_json::to_writer(&mut *out, event)?;
            out.write_all(b"\n")?;
        }
        written += events.len() as u64;
        cursor = last;
    }
    out.flush()?;
    Ok(written)
}

/// Writes the access log (reads of patient data) to `out`, one JSON entry per line; returns
/// how many.
pub async fn export_access(pool: &PgPool, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut after = 0;
    let mut written = 0u64;
    loop {
        let entries = crate::access_log::page(pool, after, None, BATCH as i64).await?;
        let Some(last) = entries.last().map(|e| e.id) else {
            break;
        };
        for entry in &entries {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        written += entries.len() as u64;
        after = last;
    }
    out.flush()?;
    Ok(written)
}

/// One line of an export.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    /// A coordinate of the exporting store; new ones are issued.
    #[serde(default, rename = "position")]
    _position: Option<String>,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    #[serde(with = "time::serde::rfc3339")]
    recorded_at: OffsetDateTime,
}

const APPEND: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                    metadata, recorded_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[],
                     $7::jsonb[], $8::timestamptz[])";

/// Claims of open appointments, as the booking flow keeps them (see `commands::scheduling`).
const RESTORE_CLAIMS: &str = "
INSERT INTO patient_time_claims (claim_id, appointment_id, patient_id, start_at, end_at)
SELECT gen_random_uuid(), appointment_id, patient_id, start_at, end_at
  FROM appointments
 WHERE status IN ('pending', 'confirmed', 'rescheduled')";

#[derive(Default)]
struct Columns {
    types: Vec<String>,
    ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<Value>,
    metadata: Vec<Value>,
    recorded: Vec<OffsetDateTime>,
}

impl Columns {
    fn push(&mut self, line: Line) {
        self.types.push(line.aggregate_type);
        self.ids.push(line.aggregate_id);
        self.sequences.push(line.sequence);
        self.event_types.push(line.event_type);
        self.versions.push(line.event_version);
        self.payloads.push(line.payload);
        self.metadata.push(line.metadata);
        self.recorded.push(line.recorded_at);
    }

    async fn flush(&mut self, tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if self.types.is_empty() {
            return Ok(());
        }
        sqlx::query(APPEND)
            .bind(&self.types)
            .bind(&self.ids)
            .bind(&self.sequences)
            .bind(&self.event_types)
            .bind(&self.versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
            .bind(&self.recorded)
            .execute(tx)
            .await?;
        *self = Columns::default();
        Ok(())
    }
}

/// Appends the events of an export to an empty event store, then rebuilds the read models.
/// Returns how many events were imported. Nothing is written if any line is bad.
pub async fn import(pool: &PgPool, input: impl BufRead) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    // One import at a time, and only into an empty store.
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        bail!("the event store already holds {existing} events; import needs an empty database");
    }
    let mut last_sequence: HashMap<(String, String), i64> = HashMap::new();
    let mut columns = Columns::default();
    let mut imported = 0u64;
    for (index, text) in input.lines().enumerate() {
        let number = index + 1;
        let text = text.with_context(|| format!("line {number}: cannot be read"))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text)
            .with_context(|| format!("line {number}: not an audit event"))?;
        let key = (line.aggregate_type.clone(), line.aggregate_id.clone());
        let expected = last_sequence.get(&key).copied().unwrap_or(0) + 1;
        if line.sequence != expected {
            bail!(
                "line {number}: {} {} has sequence {} where {expected} was expected (the export is incomplete or reordered)",
                line.aggregate_type,
                line.aggregate_id,
                line.sequence
            );
        }
        last_sequence.insert(key, line.sequence);
        columns.push(line);
        imported += 1;
        if columns.types.len() >= BATCH {
            columns.flush(&mut tx).await?;
        }
    }
    columns.flush(&mut tx).await?;
    tx.commit().await?;

    for projection in telemed_projections::all() {
        telemed_projections::rebuild::rebuild(pool, projection.as_ref()).await?;
    }
    sqlx::query(RESTORE_CLAIMS).execute(pool).await?;
    Ok(imported)
}
