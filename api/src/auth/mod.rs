//! Authentication: access tokens and the sign-in sessions behind them.

pub mod jwt;
pub mod sessions;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use jwt::JwtKeys;

/// Middleware: a request whose `Bearer` token verifies carries its
/// [`VerifiedToken`](jwt::VerifiedToken) in its extensions from here on, for the per-caller
/// rate limit and for the `AuthUser` extractor (which then need not verify it
/// again). Any other request goes on unchanged: whether it needed a token is the route's
/// business, and `AuthUser` names what is wrong with the one it got.
pub async fn identify(
    State(keys): State<Arc<JwtKeys>>,
    mut request: Request,
    next: Next,
) -> Response {
    let verified = telemed_live::ws::bearer_token(request.headers())
        .ok()
        .and_then(|token| keys.verify(token).ok());
    if let Some(verified) = verified {
        crate::telemetry::record_user_id(&verified.user_id);
        request.extensions_mut().insert(verified);
    }
    next.run(request).await
}
