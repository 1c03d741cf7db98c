//! Logs and metrics: the subscriber (text or JSON lines, `RUST_LOG` filtering), the
//! per-request span and line, and the Prometheus recorder behind `GET /metrics`.
//!
//! Every HTTP request runs in a `request` span carrying its method, its route template (axum's
//! `MatchedPath`, never the concrete URI, whose query may hold a token), its request id and,
//! once a valid access token is seen, its user id; when the response is ready one `request`
//! line adds the status and the latency. Tokens, passwords and message text are never fields.
//!
//! Metrics ([`track`]) count requests by route template and status and time them; they are
//! recorded only once `TELEMED_METRICS_BIND` has installed the recorder, and served on that
//! separate listener, never on the API's. Each scrape first measures the gauges read from the
//! pool and the database (`crate::scrape`).

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

/// The request counter: `method`, `route` (template) and `status` labels.
pub const REQUESTS: &str = "telemed_http_requests_total";
/// The latency histogram, in seconds: `method` and `route` labels.
pub const LATENCY: &str = "telemed_http_request_duration_seconds";
/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Middleware: counts each request by route template and status and records its latency. A
/// no-op until [`prometheus`] has installed the recorder.
pub async fn track(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(LATENCY, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A request method as a label: HTTP's own methods by name, any other token (a client may send
/// any) as `OTHER`, so that no client can make new series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, label)| label)
}

/// The process's Prometheus recorder, installed on first use (one per process: the tests run
/// several applications in one).
pub fn prometheus() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(LATENCY.to_owned()), &LATENCY_BUCKETS)?
        .install_recorder()?;
    crate::scrape::describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The metrics listener's application: `GET /metrics` in the Prometheus text format, after
/// `collector` has measured the gauges read at scrape time.
pub fn metrics_router(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    collector: std::sync::Arc<crate::scrape::Collector>,
) -> axum::Router {
    use axum::http::header;
    use axum::response::IntoResponse;
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (handle, collector) = (handle.clone(), collector.clone());
            async move {
                collector.collect().await;
                handle.run_upkeep();
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Serves `GET /metrics` on `listener` until dropped, running the recorder's upkeep every few
/// seconds so that histograms do not grow between scrapes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    collector: crate::scrape::Collector,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    let upkeep = async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    };
    let router = metrics_router(handle, std::sync::Arc::new(collector));
    tokio::select! {
        served = axum::serve(listener, router) => served,
        () = upkeep => Ok(()),
    }
}
