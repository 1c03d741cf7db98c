//! During a database outage no request waits for the database longer than a request for a
//! connection would (the pool's acquire timeout): one still unanswered then is answered `503`
//! with `Retry-After`.
//!
//! A request caught half-way by an outage would otherwise wait that long once per step it still
//! tries (a booking's compensations, each needing a connection), several seconds in all. Its
//! remaining steps cannot succeed while the database is unreachable, so dropping them changes
//! nothing but the wait: what they would have undone is what a crash leaves, and is handled
//! the same way (the sweeper frees claims and reservations no appointment holds; retries of
//! keyed bookings and of messages find what was recorded). A client hanging up drops a
//! request's handler the same way.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use telemed_projections::Progress;

use crate::database::ACQUIRE_TIMEOUT;
use crate::error::ApiError;

/// Middleware: answers 503 for a request still running [`ACQUIRE_TIMEOUT`] after it arrived
/// while the projection runner reports the database unreachable.
pub async fn answer_promptly(
    State(progress): State<Progress>,
    request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + ACQUIRE_TIMEOUT;
    let outage = async {
        tokio::time::sleep_until(deadline).await;
        progress.database_unreachable().await;
    };
    tokio::select! {
        biased;
        response = next.run(request) => response,
        () = outage => ApiError::Unavailable(Some(
            "the database is unreachable; the request was not finished".into(),
        ))
        .into_response(),
    }
}
