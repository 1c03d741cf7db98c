//! (c) Booking latency for a doctor with a long history against a new doctor.
//!
//! Appointments can only be booked in the future, so the history is made by a second server
//! on the same database whose clock runs 400 days behind; afterwards the normal server books
//! for both doctors, alternating, one request at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use telemed_api::Config;
use time::{Date, OffsetDateTime};

use crate::api::{Api, Server, User};
use crate::bookings::slot_start;
use crate::stats::{Latencies, ms};

/// How far the history server's clock is behind.
const SHIFT_DAYS: i64 = 400;
/// The history's first day, in days before today (real clock).
const FIRST_DAY_AGO: i64 = 390;
/// Days with windows in the history.
const HISTORY_DAYS: usize = 105;
/// History appointments per day: 5-minute slots 08:00–16:20.
const PER_DAY: usize = 100;
/// Length of a history slot.
const HISTORY_SLOT_MINUTES: i64 = 5;
/// Length of a measured slot.
const SLOT_MINUTES: i64 = 15;
/// Days with windows for the measured bookings.
const MEASURE_DAYS: usize = 10;

/// Sequential booking latencies of both doctors.
#[derive(Debug)]
pub struct Comparison {
    /// Appointments in the old doctor's history.
    pub history: usize,
    /// How long creating the history took.
    pub history_elapsed: Duration,
    /// History bookings that were refused (should be none).
    pub history_errors: Vec<String>,
    /// The old doctor's bookings.
    pub old: Latencies,
    /// The new doctor's bookings.
    pub new: Latencies,
    /// Measured bookings that were refused (should be none).
    pub errors: Vec<String>,
}

/// Creates doctor H with `history` past appointments through a clock-shifted server (made from
/// `base`), then measures `samples` sequential bookings each for H and a new doctor N on
/// `api` (the normal server), after `warmup` unmeasured ones each.
pub async fn measure(
    base: &Config,
    api: &Api,
    clients: usize,
    history: usize,
    warmup: usize,
    samples: usize,
) -> anyhow::Result<Comparison> {
    if history > HISTORY_DAYS * PER_DAY {
        bail!("at most {} history appointments", HISTORY_DAYS * PER_DAY);
    }
    let today = OffsetDateTime::now_utc().date();
    let first = today - time::Duration::days(FIRST_DAY_AGO);
    let last = first + time::Duration::days(HISTORY_DAYS as i64 - 1);

    let mut config = base.clone();
    config.clock_offset = time::Duration::days(-SHIFT_DAYS);
    config.booking_min_notice = time::Duration::ZERO;
    let past = Server::start(config)
        .await
        .context("start the clock-shifted server")?;
    let old = past.api.register("doctor", "Dr. Old", "UTC").await?;
    let patients = past.api.patients(clients, "History Patient").await?;
    let opened = past
        .api
        .open_every_day(&old, "08:00", "16:20", first, last)
        .await?;
    println!(
        "  doctor H {} opened {opened} windows {first} to {last} on a server {SHIFT_DAYS} days behind; booking {history} appointments with {clients} clients",
        old.id
    );
    let began = Instant::now();
    let history_errors = book_history(&past.api, &old, patients, history, first).await?;
    let history_elapsed = began.elapsed();
    past.stop().await;
    println!(
        "  history: {history} bookings in {:.1} s ({:.0}/s), {} refused",
        history_elapsed.as_secs_f64(),
        history as f64 / history_elapsed.as_secs_f64(),
        history_errors.len()
    );

    let new = api.register("doctor", "Dr. New", "UTC").await?;
    let patient_old = api.register("patient", "Patient of H", "UTC").await?;
    let patient_new = api.register("patient", "Patient of N", "UTC").await?;
    let tomorrow = today.next_day().context("date")?;
    let until = tomorrow + time::Duration::days(MEASURE_DAYS as i64 - 1);
    for doctor in [&old, &new] {
        api.open_every_day(doctor, "00:00", "24:00", tomorrow, until)
            .await?;
    }
    let total = warmup + samples;
    if total > MEASURE_DAYS * 96 {
        bail!("at most {} measured bookings per doctor", MEASURE_DAYS * 96);
    }
    let (mut old_latencies, mut new_latencies, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..total {
        let date = tomorrow + time::Duration::days((j % MEASURE_DAYS) as i64);
        let start = slot_start(date, j / MEASURE_DAYS, SLOT_MINUTES);
        let end = start + time::Duration::minutes(SLOT_MINUTES);
        // Alternate which doctor goes first, so neither always follows the other.
        let order = if j % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_old in order {
            let (doctor, patient, sink) = if is_old {
                (&old, &patient_old, &mut old_latencies)
            } else {
                (&new, &patient_new, &mut new_latencies)
            };
            let answer = api.book(patient, &doctor.id, start, end).await;
            if let Some(error) = answer.error {
                errors.push(format!("{}: {error}", if is_old { "H" } else { "N" }));
            }
            if j >= warmup {
                sink.push(answer.latency);
            }
        }
    }
    let old_summary = Latencies::of(&old_latencies).context("no samples")?;
    let new_summary = Latencies::of(&new_latencies).context("no samples")?;
    for (label, summary) in [("H (history)", old_summary), ("N (new)", new_summary)] {
        println!(
            "  {label}: {} bookings, p50 {}, p99 {}, mean {}, max {}",
            summary.count,
            ms(summary.p50),
            ms(summary.p99),
            ms(summary.mean),
            ms(summary.max)
        );
    }
    Ok(Comparison {
        history,
        history_elapsed,
        history_errors,
        old: old_summary,
        new: new_summary,
        errors,
    })
}

/// Books `count` appointments with `doctor` on the clock-shifted server, one client per
/// patient; booking `k` is slot `k / days` of day `k % days` (08:00 + 5 minutes each), where
/// `days` is how many days `count` needs at 100 a day.
async fn book_history(
    api: &Api,
    doctor: &User,
    patients: Vec<User>,
    count: usize,
    first: Date,
) -> anyhow::Result<Vec<String>> {
    let days = count.div_ceil(PER_DAY).max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let doctor_id: Arc<str> = doctor.id.clone().into();
    let mut handles = Vec::new();
    for patient in patients {
        let (api, next, done, doctor_id) =
            (api.clone(), next.clone(), done.clone(), doctor_id.clone());
        handles.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    break;
                }
                let date = first + time::Duration::days((k % days) as i64);
                let start = slot_start(date, 0, 0)
                    + time::Duration::hours(8)
                    + time::Duration::minutes(HISTORY_SLOT_MINUTES * (k / days) as i64);
                let end = start + time::Duration::minutes(HISTORY_SLOT_MINUTES);
                let answer = api.book(&patient, &doctor_id, start, end).await;
                if let Some(error) = answer.error {
                    errors.push(error);
                }
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % 1000 == 0 {
                    let seconds = began.elapsed().as_secs_f64();
                    println!(
                        "    {finished} / {count} history bookings ({seconds:.1} s, {:.0}/s)",
                        finished as f64 / seconds
                    );
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for handle in handles {
        errors.append(&mut handle.await.context("a history client panicked")?);
    }
    Ok(errors)
}
