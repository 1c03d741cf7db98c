//! Background work of a Telemed process: every task that outlives a request (the projection
//! runner, the store feed, the bus listener, the notification dispatcher, the sweepers and
//! clean-ups) runs under one [`Background`]: one [`CancellationToken`] that says "stop" and one
//! [`TaskTracker`] that knows when they all have.
//!
//! A task checks the token between rounds, never inside one: on a graceful stop each finishes
//! the round in hand (the dispatcher the deliveries it has claimed, the runner its batch) and
//! then returns; [`Background::stop`] waits for that, within a bound.
//!
//! The periodic tasks share one loop, [`every`].
//!
//! This crate sits below every other (it knows nothing of Telemed), so that each crate that
//! starts a task can use it without an arrow pointing up.

use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The background tasks of one process.
#[derive(Clone, Default)]
pub struct Background {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Background {
    /// No tasks yet; not stopping.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token cancelled when the process stops; a task waits on it between rounds.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Starts `task`. It must end soon after [`token`](Self::token) is cancelled, once it has
    /// finished the round in hand.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Starts a task that runs `round` at once and then `period` after each round ends, until
    /// the process stops (see [`every`]).
    pub fn every<R, F>(&self, period: Duration, round: R)
    where
        R: FnMut() -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn(every(period, self.token(), round));
    }

    /// Stops: cancels the token and waits until every task has finished its round and
    /// returned, at most `bound`. Returns whether they all did in time; the ones that did not
    /// are dropped with the runtime.
    pub async fn stop(&self, bound: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        let finished = tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                running = self.tracker.len(),
                ?bound,
                "background tasks did not finish in time; abandoned"
            );
        }
        finished
    }
}

/// Runs `round` at once, then `period` after each round ends, until `token` is cancelled.
///
/// A round is never interrupted: cancellation is looked at only between rounds, so a round
/// under way when the token is cancelled runs to its end and is the last one.
pub async fn every<R, F>(period: Duration, token: CancellationToken, mut round: R)
where
    R: FnMut() -> F,
    F: Future<Output = ()>,
{
    while !token.is_cancelled() {
        round().await;
        tokio::select! {
            biased;
            () = token.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::time::Instant;

    use super::*;

    const PERIOD: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn rounds_run_at_once_then_every_period_until_cancelled() {
        let background = Background::new();
        let started = Instant::now();
        let rounds = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = rounds.clone();
        background.every(PERIOD, move || {
            let seen = seen.clone();
            async move { seen.lock().unwrap().push(started.elapsed()) }
        });
        tokio::time::sleep(PERIOD * 3 + PERIOD / 2).await;
        assert!(background.stop(Duration::from_secs(1)).await);
        let stopped = started.elapsed();
        tokio::time::sleep(PERIOD * 5).await;

        assert_eq!(
            *rounds.lock().unwrap(),
            vec![Duration::ZERO, PERIOD, PERIOD * 2, PERIOD * 3],
            "no round after the stop"
        );
        assert_eq!(
            stopped,
            PERIOD * 3 + PERIOD / 2,
            "the stop did not wait a period"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_under_way_at_the_stop_runs_to_its_end() {
        let background = Background::new();
        let started = Arc::new(AtomicU32::new(0));
        let finished = Arc::new(AtomicU32::new(0));
        let (s, f) = (started.clone(), finished.clone());
        background.every(PERIOD, move || {
            let (s, f) = (s.clone(), f.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                // A slow round: a batch of deliveries, say.
                tokio::time::sleep(Duration::from_secs(3)).await;
                f.fetch_add(1, Ordering::SeqCst);
            }
        });
        // The first round takes 0-3 s, the second starts a period later, at 13 s.
        tokio::time::sleep(PERIOD + Duration::from_secs(4)).await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            2,
            "the second round is under way"
        );
        assert_eq!(finished.load(Ordering::SeqCst), 1);

        let before = Instant::now();
        assert!(background.stop(Duration::from_secs(30)).await);
        assert_eq!(finished.load(Ordering::SeqCst), 2, "the round was finished");
        assert_eq!(
            before.elapsed(),
            Duration::from_secs(2),
            "and no longer waited for"
        );
        tokio::time::sleep(PERIOD * 3).await;
        assert_eq!(started.load(Ordering::SeqCst), 2, "and it was the last");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stop_gives_up_on_a_task_after_its_bound() {
        let background = Background::new();
        let token = background.token();
        background.spawn(async move {
            token.cancelled().await;
            std::future::pending::<()>().await;
        });
        let before = Instant::now();
        assert!(!background.stop(Duration::from_secs(5)).await);
        assert_eq!(before.elapsed(), Duration::from_secs(5));
    }
}
