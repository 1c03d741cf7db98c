//! Chat posting cost against conversation length: sequential posts in a conversation that
//! already holds `history` messages against posts in one that holds 10, interleaved so that
//! both see the same machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use time::OffsetDateTime;

use crate::api::{Api, User};
use crate::stats::Latencies;

/// What the run measured.
pub struct Comparison {
    /// Messages in the long conversation before measuring.
    pub history: usize,
    /// How long filling it took.
    pub fill: Duration,
    /// Posts in the long conversation.
    pub long: Latencies,
    /// Posts in the short one.
    pub short: Latencies,
}

/// Fills one conversation with `history` messages (by `clients` concurrent posters), then
/// measures `samples` sequential posts in it and in a conversation of 10 messages.
pub async fn measure(
    api: &Api,
    clients: usize,
    history: usize,
    samples: usize,
) -> anyhow::Result<Comparison> {
    let doctor = api.register("doctor", "Dr. Chat", "UTC").await?;
    let patients = api.patients(2, "Chat Patient").await?;
    let tomorrow = OffsetDateTime::now_utc()
        .date()
        .next_day()
        .context("date")?;
    api.open_every_day(&doctor, "08:00", "12:00", tomorrow, tomorrow)
        .await?;
    let at = tomorrow.midnight().assume_utc() + time::Duration::hours(9);
    let long = api
        .book_id(
            &patients[0],
            &doctor.id,
            at,
            at + time::Duration::minutes(30),
        )
        .await?;
    let at = at + time::Duration::hours(1);
    let short = api
        .book_id(
            &patients[1],
            &doctor.id,
            at,
            at + time::Duration::minutes(30),
        )
        .await?;

    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (api, next, long) = (api.clone(), next.clone(), long.clone());
        let author: User = if client % 2 == 0 {
            patients[0].clone()
        } else {
            doctor.clone()
        };
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < history {
                api.post_message(&author, &long, "an earlier message of a long conversation")
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await.context("a poster panicked")??;
    }
    let fill = began.elapsed();
    println!(
        "  {history} messages posted in {:.1} s ({:.0}/s with {clients} clients)",
        fill.as_secs_f64(),
        history as f64 / fill.as_secs_f64()
    );
    for n in 0..10 {
        api.post_message(&patients[1], &short, &format!("warm-up {n}"))
            .await?;
    }
    let (mut long_samples, mut short_samples) = (Vec::new(), Vec::new());
    for n in 0..samples {
        let content = format!("measured message {n}");
        long_samples.push(api.post_message(&patients[0], &long, &content).await?);
        short_samples.push(api.post_message(&patients[1], &short, &content).await?);
    }
    Ok(Comparison {
        history,
        fill,
        long: Latencies::of(&long_samples).context("no samples")?,
        short: Latencies::of(&short_samples).context("no samples")?,
    })
}
