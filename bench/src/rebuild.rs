//! `--suite rebuild`: `telemed rebuild` of every read model over a large store, while the
//! application serves and a doctor keeps updating their profile (a command that answers only
//! once the read models show it: read-your-writes).
//!
//! 1. Seeds the store with straight INSERTs of a realistic mix (per appointment: a slot
//!    reserved on a doctor-day, request, confirmation, eight messages, two read markers, a call
//!    started, answered and ended; some cancelled or completed), recorded over the past 60
//!    days, until it holds at least `--rebuild-events` events.
//! 2. Serves the application, whose live runner projects the whole store (first build).
//! 3. Baselines, same run: the raw commit-safe read of the whole log, one page after another
//!    (what any replay costs), and the rebuild's own reader with no projection to feed.
//! 4. Rebuilds every read model (the code behind `telemed rebuild`) while the doctor's profile
//!    updates run: events/s, ratio to the raw read, and the updates' latencies meanwhile.
//! 5. Where the time goes: each projection rebuilt alone, then every projection through its
//!    per-event `apply` (the path every projection took before set-based batches).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use telemed_api::{Application, Config};
use telemed_domain::{DayId, Position, UserId};
use telemed_projections::rebuild::{Options, rebuild_all};
use telemed_projections::stream::read_after;
use telemed_projections::{Projection, ProjectionError, StoredEvent};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::Api;
use crate::stats::{Latencies, ms, thousands};

/// Target of the issue: events per second of a full rebuild.
const TARGET_EVENTS_PER_SECOND: f64 = 50_000.0;
const DOCTORS: usize = 50;
const MESSAGES: usize = 8;

/// Runs the suite against the fresh database at `url`.
pub async fn run(url: &str, target: usize) -> anyhow::Result<()> {
    let pool = telemed_api::database::pool(url, 8)?;
    telemed_api::database::migrate(&pool)
        .await
        .context("migrate")?;
    let seeded = seed(&pool, target).await?;
    println!("store: {seeded} events (straight INSERTs)");

    let mut config = Config::development(url);
    config.rate_limits = false;
    let app = Application::build(config).await.context("build")?;
    let api = Api::new(app.port())?;
    let base = format!("http://127.0.0.1:{}/api/v1", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    caught_up(&pool, Duration::from_secs(1_800)).await?;
    let first = started.elapsed();
    println!(
        "first build by the live runner: {:.2} s = {} events/s",
        first.as_secs_f64(),
        thousands(seeded as f64 / first.as_secs_f64())
    );

    let doctor = api.register("doctor", "Dr. Rebuild", "UTC").await?;
    let client = reqwest::Client::new();
    let writer = Writer {
        client: &client,
        url: format!("{base}/doctors/{}/profile", doctor.id),
        token: doctor.token.clone(),
    };
    let idle = writer.samples(50).await?;
    print_latencies("profile updates, idle", &idle, 0);

    let started = Instant::now();
    let mut cursor = Position::START;
    let mut read = 0usize;
    loop {
        let batch = read_after(&pool, cursor, telemed_projections::rebuild::BATCH).await?;
        let Some(last) = batch.last() else { break };
        cursor = last.position;
        read += batch.len();
    }
    let raw = started.elapsed();
    let raw_rate = read as f64 / raw.as_secs_f64();
    println!(
        "baseline, raw read of the log ({read} events): {:.2} s = {} events/s",
        raw.as_secs_f64(),
        thousands(raw_rate)
    );

    // The rebuild's own reader (pages read ahead on several connections) with no projection
    // to feed: the floor of a rebuild as it reads.
    let started = Instant::now();
    let alone = rebuild_all(&pool, &[], Options::default()).await?;
    let reader = started.elapsed();
    let reader_rate = alone.events as f64 / reader.as_secs_f64();
    println!(
        "baseline, the rebuild's reader alone ({} events, no projection): {:.2} s = {} events/s ({:.2}x the raw read)",
        alone.events,
        reader.as_secs_f64(),
        thousands(reader_rate),
        reader_rate / raw_rate
    );

    let projections = telemed_projections::all();
    let running = AtomicBool::new(true);
    let started = Instant::now();
    let (rebuilt, during) = tokio::join!(
        async {
            let rebuilt = rebuild_all(
                &pool,
                &telemed_projections::rebuild::refs(&projections),
                Options::default(),
            )
            .await;
            running.store(false, Ordering::Relaxed);
            rebuilt
        },
        writer.while_set(&running)
    );
    let rebuilt = rebuilt?;
    let elapsed = started.elapsed();
    let rate = rebuilt.events as f64 / elapsed.as_secs_f64();
    println!(
        "rebuild of every read model: {} events in {:.2} s = {} events/s ({:.2}x the raw read, {:.2}x the reader alone; target {} events/s: {}); filling {:.2} s, swap {} with {} events caught up",
        rebuilt.events,
        elapsed.as_secs_f64(),
        thousands(rate),
        rate / raw_rate,
        rate / reader_rate,
        thousands(TARGET_EVENTS_PER_SECOND),
        if rate >= TARGET_EVENTS_PER_SECOND {
            "met"
        } else {
            "NOT met"
        },
        rebuilt.fill.as_secs_f64(),
        ms(rebuilt.swap),
        rebuilt.caught_up,
    );
    let (during, errors) = during?;
    print_latencies("profile updates during the rebuild", &during, errors);

    println!("each projection rebuilt alone:");
    for projection in &projections {
        let started = Instant::now();
        rebuild_all(&pool, &[projection.as_ref()], Options::default()).await?;
        let took = started.elapsed();
        println!(
            "  {:<14} {:>7.2} s = {} events/s",
            projection.name(),
            took.as_secs_f64(),
            thousands(rebuilt.events as f64 / took.as_secs_f64())
        );
    }
    let per_event: Vec<PerEvent> = projections.iter().cloned().map(PerEvent).collect();
    let refs: Vec<&dyn Projection> = per_event.iter().map(|p| p as &dyn Projection).collect();
    let started = Instant::now();
    let slow = rebuild_all(&pool, &refs, Options::default()).await?;
    let took = started.elapsed();
    let slow_rate = slow.events as f64 / took.as_secs_f64();
    println!(
        "per-event path (every projection through apply): {:.2} s = {} events/s; set-based batches are {:.1}x faster",
        took.as_secs_f64(),
        thousands(slow_rate),
        rate / slow_rate
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    pool.close().await;
    Ok(())
}

/// A projection applied one event at a time, as before set-based batches.
struct PerEvent(Arc<dyn Projection>);

#[async_trait]
impl Projection for PerEvent {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.0.apply(tx, event).await
    }
}

/// A doctor updating their profile; each update answers once the read model shows it.
struct Writer<'a> {
    client: &'a reqwest::Client,
    url: String,
    token: String,
}

impl Writer<'_> {
    /// One update; its latency, or what went wrong.
    async fn update(&self, n: usize) -> anyhow::Result<Duration> {
        let bio = format!("update {n}");
        let started = Instant::now();
        let response = self
            .client
            .put(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({
                "specialties": ["Cardiology"], "bio": bio, "languages": ["en"], "timezone": "UTC"
            }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        let latency = started.elapsed();
        if !status.is_success() || body["bio"] != bio.as_str() {
            bail!("{status}: {body}");
        }
        Ok(latency)
    }

    async fn samples(&self, count: usize) -> anyhow::Result<Vec<Duration>> {
        let mut samples = Vec::with_capacity(count);
        for n in 0..count {
            samples.push(self.update(n).await?);
        }
        Ok(samples)
    }

    /// Updates one after another while `running`; latencies and how many failed.
    async fn while_set(&self, running: &AtomicBool) -> anyhow::Result<(Vec<Duration>, usize)> {
        let (mut samples, mut errors) = (Vec::new(), 0);
        let mut n = 1_000_000;
        while running.load(Ordering::Relaxed) {
            match self.update(n).await {
                Ok(latency) => samples.push(latency),
                Err(error) => {
                    errors += 1;
                    if errors <= 5 {
                        println!("  update error: {error:#}");
                    }
                }
            }
            n += 1;
        }
        Ok((samples, errors))
    }
}

fn print_latencies(what: &str, samples: &[Duration], errors: usize) {
    match Latencies::of(samples) {
        Some(l) => println!(
            "{what}: {} answered with their write, p50 {}, p99 {}, max {}; {errors} failed",
            l.count,
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        ),
        None => println!("{what}: none answered; {errors} failed"),
    }
}

/// Waits until every projection has applied every event.
async fn caught_up(pool: &PgPool, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let names: Vec<String> = telemed_projections::all()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    loop {
        let done: bool = sqlx::query_scalar(
            "SELECT count(*) = cardinality($1::text[]) FROM projection_checkpoints
              WHERE name = ANY($1)
                AND (transaction_id, global_position) >= ALL (
                    SELECT transaction_id, global_position FROM events)",
        )
        .bind(&names)
        .fetch_one(pool)
        .await?;
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the projections did not catch up within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Events about to be inserted, in order.
#[derive(Default)]
struct Log {
    types: Vec<&'static str>,
    ids: Vec<String>,
    sequences: Vec<i64>,
    names: Vec<&'static str>,
    payloads: Vec<Value>,
    recorded: Vec<OffsetDateTime>,
}

impl Log {
    fn push(
        &mut self,
        (kind, id, sequence): (&'static str, String, i64),
        name: &'static str,
        payload: Value,
        at: OffsetDateTime,
    ) {
        self.types.push(kind);
        self.ids.push(id);
        self.sequences.push(sequence);
        self.names.push(name);
        self.payloads.push(payload);
        self.recorded.push(at);
    }

    async fn insert(&mut self, pool: &PgPool) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata, recorded_at)
             SELECT t, i, s, e, '1', p, '{\"actor_id\": \"system:bench\", \"actor_role\": \"system\", \"command\": \"bench.seed\", \"request_id\": \"bench\"}'::jsonb, r
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[],
                           $6::timestamptz[]) AS u(t, i, s, e, p, r)",
        )
        .bind(&self.types)
        .bind(&self.ids)
        .bind(&self.sequences)
        .bind(&self.names)
        .bind(&self.payloads)
        .bind(&self.recorded)
        .execute(pool)
        .await?;
        *self = Self::default();
        Ok(())
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Seeds at least `target` events; returns how many.
async fn seed(pool: &PgPool, target: usize) -> anyhow::Result<usize> {
    let now = OffsetDateTime::now_utc();
    let origin = now - time::Duration::days(60);
    let doctors: Vec<Uuid> = (0..DOCTORS).map(|_| Uuid::new_v4()).collect();
    let mut days: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut log = Log::default();
    let mut total = 0usize;
    let mut unit = 0usize;
    while total + log.types.len() < target {
        let doctor = doctors[unit % DOCTORS];
        let patient = Uuid::new_v4();
        // Sixteen half-hour appointments per doctor-day, from 08:00.
        let slot = unit / DOCTORS;
        let date = origin.date() + time::Duration::days((slot / 16) as i64);
        let start =
            date.midnight().assume_utc() + time::Duration::minutes(480 + 30 * (slot % 16) as i64);
        let end = start + time::Duration::minutes(30);
        let at = origin + time::Duration::seconds(unit as i64 * 60);
        let interval = json!({"start": rfc3339(start), "end": rfc3339(end)});
        let day = DayId::new(UserId::from(doctor), date).to_string();
        let appointment = Uuid::new_v4();
        let reservation = Uuid::new_v4();
        let sequence = days.entry(day.clone()).or_insert(0);
        if *sequence == 0 {
            *sequence += 1;
            let window = json!({"start": rfc3339(date.midnight().assume_utc() + time::Duration::hours(8)),
                                "end": rfc3339(date.midnight().assume_utc() + time::Duration::hours(16))});
            log.push(("doctor_day", day.clone(), *sequence), "WindowOpened",
                json!({"WindowOpened": {"day": day, "window_id": Uuid::new_v4(), "interval": window}}), at);
        }
        *sequence += 1;
        log.push(
            ("doctor_day", day.clone(), *sequence),
            "SlotReserved",
            json!({"SlotReserved": {"day": day, "reservation_id": reservation,
                   "appointment_id": appointment, "patient_id": patient, "interval": interval}}),
            at,
        );
        let mut seq = 0;
        let mut appt = |log: &mut Log, name: &'static str, payload: Value| {
            seq += 1;
            log.push(
                ("appointment", appointment.to_string(), seq),
                name,
                payload,
                at,
            );
        };
        appt(
            &mut log,
            "AppointmentRequested",
            json!({"AppointmentRequested": {
            "doctor_id": doctor, "patient_id": patient, "interval": interval, "reason": "check-up",
            "slot": {"day": day, "reservation_id": reservation}, "at": rfc3339(at)}}),
        );
        appt(
            &mut log,
            "AppointmentConfirmed",
            json!({"AppointmentConfirmed": {"by": "doctor", "at": rfc3339(at)}}),
        );
        let mut last_message = Uuid::nil();
        for m in 0..MESSAGES {
            let sender = if m % 2 == 0 { patient } else { doctor };
            last_message = Uuid::new_v4();
            log.push(
                ("chat_message", last_message.to_string(), 1),
                "MessagePosted",
                json!({"MessagePosted": {"appointment_id": appointment, "doctor_id": doctor,
                       "patient_id": patient, "sender_id": sender,
                       "content": format!("message {m} of a consultation"), "client_msg_id": null,
                       "sent_at": rfc3339(at)}}),
                at,
            );
        }
        for reader in [doctor, patient] {
            log.push(
                ("chat_read", format!("{appointment}:{reader}"), 1),
                "MessagesRead",
                json!({"MessagesRead": {"appointment_id": appointment, "doctor_id": doctor,
                       "patient_id": patient, "user_id": reader, "up_to": last_message,
                       "up_to_position": "0-0", "at": rfc3339(at)}}),
                at,
            );
        }
        let call = Uuid::new_v4().to_string();
        log.push(
            ("call", call.clone(), 1),
            "CallStarted",
            json!({"CallStarted": {"appointment_id": appointment, "doctor_id": doctor,
                   "patient_id": patient, "caller_id": doctor, "at": rfc3339(start)}}),
            at,
        );
        log.push(
            ("call", call.clone(), 2),
            "CallAnswered",
            json!({"CallAnswered": {"by": patient, "at": rfc3339(start)}}),
            at,
        );
        log.push(
            ("call", call, 3),
            "CallEnded",
            json!({"CallEnded": {"by": doctor, "reason": "user_hangup", "failed": false,
                   "duration_seconds": 1_200, "at": rfc3339(end)}}),
            at,
        );
        match unit % 10 {
            0 => appt(
                &mut log,
                "AppointmentCancelled",
                json!({"AppointmentCancelled": {
                "by": "patient", "reason": "cannot come",
                "slot": {"day": day, "reservation_id": reservation}, "at": rfc3339(at)}}),
            ),
            1..=4 => appt(
                &mut log,
                "AppointmentCompleted",
                json!({"AppointmentCompleted": {"by": "doctor", "at": rfc3339(end)}}),
            ),
            _ => {}
        }
        unit += 1;
        if log.types.len() >= 10_000 {
            total += log.types.len();
            log.insert(pool).await?;
        }
    }
    total += log.types.len();
    log.insert(pool).await?;
    Ok(total)
}
