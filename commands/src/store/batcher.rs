//! Group commit: concurrent appends of one store go into the `events` table together, one
//! multi-row `INSERT` (one statement, so one transaction and one commit) per batch.
//!
//! Each append is still its own aggregate's append (its own id and sequences, checked by the
//! primary key) and is answered only after the statement that holds it has committed, with the
//! position of its own last event. A batch is whatever queued up while the previous ones were
//! being written, at most [`MAX_BATCH`] appends, with at most [`MAX_IN_FLIGHT`] statements
//! running at once: a lone append goes out at once (no wait when nothing else is running), and
//! when others are running a batch waits at most [`LINGER`] for more to join it.
//!
//! **Conflicts.** One statement is all or nothing, so a primary-key violation of one append
//! (another writer appended that sequence first: for chat, a retried `client_msg_id`) fails the
//! whole batch. Such a batch is then written again one append per statement, so only the
//! conflicting append answers [`AppendError::Conflict`] (and its command is retried as usual)
//! while the others commit. `ON CONFLICT DO NOTHING` would save that second pass, but it could
//! also write part of an append of several events, which the store must never do.
//!
//! **Ordering.** The rows of a batch share one transaction id and take their
//! `global_position`s in batch order; readers follow `(transaction_id, global_position)` below
//! the oldest running transaction, as for any append, so the commit-safe horizon is unchanged.
//! An append that starts after another was answered gets a later transaction id, so one
//! client's acknowledged messages keep their order.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use telemed_domain::Position;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{AppendError, Rows, insert};

/// Most appends in one statement.
pub const MAX_BATCH: usize = 256;
/// Most batch statements running at once (each holds a pool connection meanwhile).
pub const MAX_IN_FLIGHT: usize = 4;
/// How long a batch waits for more appends when other batches are being written.
pub const LINGER: Duration = Duration::from_millis(1);

type Answer = oneshot::Sender<Result<Position, AppendError>>;

struct Request {
    rows: Rows,
    answer: Answer,
}

/// The group committer of one store; its task starts with the first append.
pub struct Batcher {
    pool: PgPool,
    queue: OnceLock<mpsc::UnboundedSender<Request>>,
}

impl Batcher {
    /// A batcher on `pool`.
    pub fn new(pool: &PgPool) -> Self {
        Self {
            pool: pool.clone(),
            queue: OnceLock::new(),
        }
    }

    /// Appends `rows` with whatever else is being appended now; answers once committed.
    pub async fn append(&self, rows: Rows) -> Result<Position, AppendError> {
        let (answer, answered) = oneshot::channel();
        let queue = self.queue.get_or_init(|| {
            let (queue, requests) = mpsc::unbounded_channel();
            tokio::spawn(run(self.pool.clone(), requests));
            queue
        });
        if let Err(unsent) = queue.send(Request { rows, answer }) {
            // The task is gone (its runtime shut down): append alone.
            let rows = unsent.0.rows;
            return one(&self.pool, rows).await;
        }
        answered
            .await
            .unwrap_or_else(|_| Err(AppendError::Serialization("the batcher stopped".into())))
    }
}

/// Takes batches off the queue until every sender is gone.
async fn run(pool: PgPool, mut requests: mpsc::UnboundedReceiver<Request>) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = requests.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(request) = requests.try_recv()
        {
            batch.push(request);
        }
        if batch.len() < MAX_BATCH && in_flight.available_permits() + 1 < MAX_IN_FLIGHT {
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < MAX_BATCH
                && let Ok(Some(request)) = tokio::time::timeout_at(deadline, requests.recv()).await
            {
                batch.push(request);
            }
        }
        tokio::spawn(commit(pool.clone(), batch, permit));
    }
}

/// Writes one batch and answers each of its appends.
async fn commit(pool: PgPool, batch: Vec<Request>, permit: OwnedSemaphorePermit) {
    let (rows, answers): (Vec<Rows>, Vec<Answer>) =
        batch.into_iter().map(|r| (r.rows, r.answer)).unzip();
    match insert(&pool, &rows).await {
        Ok(positions) => {
            for (answer, position) in answers.into_iter().zip(positions) {
                let _ = answer.send(Ok(position));
            }
        }
        Err(AppendError::Conflict) if rows.len() > 1 => {
            for (rows, answer) in rows.into_iter().zip(answers) {
                let _ = answer.send(one(&pool, rows).await);
            }
        }
        Err(AppendError::Database(error)) => {
            let error = Arc::new(error);
            for answer in answers {
                let _ = answer.send(Err(AppendError::Batch(error.clone())));
            }
        }
        Err(error) if answers.len() == 1 => {
            if let Some(answer) = answers.into_iter().next() {
                let _ = answer.send(Err(error));
            }
        }
        Err(error) => {
            tracing::error!(?error, "the positions of a group commit could not be read");
            for answer in answers {
                let _ = answer.send(Err(AppendError::Serialization(
                    "the positions of a group commit could not be read".into(),
                )));
            }
        }
    }
    drop(permit);
}

/// Appends `rows` in a statement of its own.
async fn one(pool: &PgPool, rows: Rows) -> Result<Position, AppendError> {
    let positions = insert(pool, std::slice::from_ref(&rows)).await?;
    Ok(positions.first().copied().unwrap_or_default())
}
