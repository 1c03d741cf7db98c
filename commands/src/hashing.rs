//! A small fixed pool of threads for password hashing.
//!
//! argon2id costs 19 MiB and tens of milliseconds per hash. On tokio's blocking pool (up to
//! 512 threads) a burst of 200 concurrent registrations grew the server to 3.4 GB resident:
//! every thread's allocator arena kept its 19 MiB. A few dedicated threads bound both the
//! memory and the CPU that hashing may take; further requests wait their turn.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool's worker count: the machine's parallelism, at most 4.
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4)
}

fn queue() -> &'static Sender<Job> {
    static QUEUE: OnceLock<Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers() {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hashing-{index}"))
                .spawn(move || work(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        sender
    })
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let receiver = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            receiver.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// The pool stopped before the job ran (only if no worker thread could start).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing pool is not running")]
pub struct PoolStopped;

/// Runs `job` on the hashing pool and waits for its result.
pub async fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PoolStopped> {
    let (reply, result) = oneshot::channel();
    queue()
        .send(Box::new(move || {
            let _ = reply.send(job());
        }))
        .map_err(|_| PoolStopped)?;
    result.await.map_err(|_| PoolStopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_return_their_result() {
        let results = futures_join(16).await;
        assert_eq!(results, (0..16).map(|i| i * 2).collect::<Vec<_>>());
    }

    async fn futures_join(n: u32) -> Vec<u32> {
        let mut handles = Vec::new();
        for i in 0..n {
            handles.push(tokio::spawn(run(move || i * 2)));
        }
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.unwrap().unwrap());
        }
        results
    }
}
