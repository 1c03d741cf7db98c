//! What a [`Session`](crate::session::Session) may ask of the rest of the process: a narrow
//! context (the replay's store reads, topic access, and the one command or query each other
//! client event is), so that the session's resume and dedupe logic runs in unit tests over an
//! in-memory context. [`Services`](crate::Services) is the real one.

use std::sync::Arc;

use serde_json::Value;
use telemed_domain::Position;
use telemed_problem::ApiError;

use crate::hub::Delivery;
use crate::identity::Identity;
use crate::protocol::ClientEvent;
use crate::topic::Topic;

/// One page of a replay: its last stored position and the server events it makes.
pub type Page = (Position, Vec<Arc<Delivery>>);

/// The commands and queries a session uses.
pub trait Context: Send + Sync + 'static {
    /// The store's head, once this process's hub has published up to it (a resume replays
    /// up to there; everything later reaches the connection live).
    fn replay_head(&self) -> impl Future<Output = Result<Position, ApiError>> + Send;

    /// The server events of one page of stored events after `after`, with the page's last
    /// position; `None` when there are none.
    fn replay_page(
        &self,
        after: Position,
    ) -> impl Future<Output = Result<Option<Page>, ApiError>> + Send;

    /// Whether `user` may follow `topic` (an appointment or a doctor's availability): 404 for
    /// what they may not see.
    fn may_follow(
        &self,
        user: &Identity,
        topic: Topic,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Runs a client event that is one command or query (chat, signaling, the waiting room);
    /// the answer is the ack data.
    fn execute(
        &self,
        user: &Identity,
        event: ClientEvent,
    ) -> impl Future<Output = Result<Value, ApiError>> + Send;

    /// Whether per-connection rate limits are enforced.
    fn limits_enabled(&self) -> bool;
}
