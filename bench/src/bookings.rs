//! (b) End-to-end bookings through the HTTP API: concurrent clients, distinct slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::PgPool;
use time::{Date, OffsetDateTime};

use crate::api::{Api, User};
use crate::stats::Latencies;

/// Length of one booked slot.
const SLOT_MINUTES: i64 = 15;
/// Slots in one day.
const SLOTS_PER_DAY: usize = 96;
/// Fewest days the bookings are spread over (so that concurrent bookings rarely share a
/// doctor-day, as bookings of different days do not race).
const MIN_DAYS: usize = 60;
/// Most days (the booking horizon is 180 days).
const MAX_DAYS: usize = 175;

/// What the run measured.
#[derive(Debug)]
pub struct Throughput {
    /// Requests made.
    pub requests: usize,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Latencies of every request.
    pub latencies: Latencies,
    /// Answers other than 201, as `status: body` (or transport errors).
    pub errors: Vec<String>,
    /// Rows the `events` table gained during the run.
    pub events: i64,
    /// Transactions committed in the benchmark database during the run (all sessions: the
    /// server's requests, projections and sweeper; PostgreSQL's statistics lag by up to a
    /// second, so this is approximate).
    pub transactions: i64,
    /// Over how many doctor-days the bookings were spread.
    pub days: usize,
}

impl Throughput {
    /// Successful bookings per second.
    pub fn bookings_per_second(&self) -> f64 {
        (self.requests - self.errors.len()) as f64 / self.elapsed.as_secs_f64()
    }

    /// Events appended per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// Start of slot `index` (0-based) on `date`, in UTC.
pub fn slot_start(date: Date, index: usize, minutes: i64) -> OffsetDateTime {
    date.midnight().assume_utc() + time::Duration::minutes(minutes * index as i64)
}

/// Registers a doctor (UTC) and `clients` patients, opens whole days from tomorrow on, then
/// lets `clients` concurrent clients book `count` distinct 15-minute slots.
pub async fn measure(
    api: &Api,
    pool: &PgPool,
    clients: usize,
    count: usize,
) -> anyhow::Result<Throughput> {
    let days = count.div_ceil(SLOTS_PER_DAY).max(MIN_DAYS);
    if days > MAX_DAYS {
        bail!("{count} bookings need more than {MAX_DAYS} days of 15-minute slots; ask for fewer");
    }
    let doctor = api.register("doctor", "Dr. Bench", "UTC").await?;
    let patients = api.patients(clients, "Bench Patient").await?;
    let tomorrow = OffsetDateTime::now_utc()
        .date()
        .next_day()
        .context("date")?;
    let last = tomorrow + time::Duration::days(days as i64 - 1);
    let opened = api
        .open_every_day(&doctor, "00:00", "24:00", tomorrow, last)
        .await?;
    println!(
        "  doctor {} opened {opened} whole-day windows ({tomorrow} to {last}); {} patients",
        doctor.id,
        patients.len()
    );

    let events_before = count_events(pool).await?;
    let transactions_before = count_transactions(pool).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let doctor_id: Arc<str> = doctor.id.into();
    let began = Instant::now();
    let mut handles = Vec::with_capacity(clients);
    for patient in patients {
        let (api, next, doctor_id) = (api.clone(), next.clone(), doctor_id.clone());
        handles.push(tokio::spawn(book_loop(
            api, patient, doctor_id, next, count, tomorrow, days,
        )));
    }
    let mut latencies = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for handle in handles {
        let (mut samples, mut failed) = handle.await.context("a booking client panicked")?;
        latencies.append(&mut samples);
        errors.append(&mut failed);
    }
    let elapsed = began.elapsed();
    let events = count_events(pool).await? - events_before;
    // Let every session report its statistics (they are flushed at most once a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let transactions = count_transactions(pool).await? - transactions_before;
    Ok(Throughput {
        requests: latencies.len(),
        elapsed,
        latencies: Latencies::of(&latencies).context("no bookings were made")?,
        errors,
        events,
        transactions,
        days,
    })
}

/// One client: takes the next booking number until `count`; booking `k` is slot `k / days`
/// of day `k % days`, so consecutive bookings land on different doctor-days.
async fn book_loop(
    api: Api,
    patient: User,
    doctor_id: Arc<str>,
    next: Arc<AtomicUsize>,
    count: usize,
    first_day: Date,
    days: usize,
) -> (Vec<Duration>, Vec<String>) {
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= count {
            break;
        }
        let date = first_day + time::Duration::days((k % days) as i64);
        let start = slot_start(date, k / days, SLOT_MINUTES);
        let end = start + time::Duration::minutes(SLOT_MINUTES);
        let answer = api.book(&patient, &doctor_id, start, end).await;
        latencies.push(answer.latency);
        if let Some(error) = answer.error {
            errors.push(error);
        }
    }
    (latencies, errors)
}

/// Rows in `events`.
pub async fn count_events(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .context("count events")
}

/// Transactions committed in the current database so far, from `pg_stat_database`.
pub async fn count_transactions(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .context("read pg_stat_database")
}
