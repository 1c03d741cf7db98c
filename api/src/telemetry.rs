//! Logs: the subscriber (text or JSON lines, `RUST_LOG` filtering) and the per-request span
//! and line.
//!
//! Every HTTP request runs in a `request` span carrying its method, its route template (axum's
//! `MatchedPath`, never the concrete URI, whose query may hold a token), its request id and,
//! once a valid access token is seen, its user id; when the response is ready one `request`
//! line adds the status and the latency. Tokens, passwords and message text are never fields.

use std::io::IsTerminal;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// Installs the global subscriber: logs to stderr in `format`, filtered by `RUST_LOG`.
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The span of one HTTP request (for `TraceLayer::make_span_with`); the request id and the
/// user id are filled in by [`record_request_id`] and [`record_user_id`].
pub fn request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    )
}

/// The request's line, once its response is ready (for `TraceLayer::on_response`).
pub fn request_done<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
}

/// Records the request id on the current request span.
pub fn record_request_id(id: &str) {
    Span::current().record("request_id", id);
}

/// Records the authenticated user on the current request span.
pub fn record_user_id(id: &impl std::fmt::Display) {
    Span::current().record("user_id", tracing::field::display(id));
}
