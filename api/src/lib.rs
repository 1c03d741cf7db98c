//! Telemed's HTTP edge, its command line, and the composition root that starts a process.
//!
//! Handlers are thin: extract and authenticate, parse the body into a typed command, call an
//! application service from `telemed-commands`, wait (bounded) until the read models have
//! caught up with what the command wrote, answer from `telemed-projections`.
//!
//! # Layout
//!
//! Public (used by the `telemed` binary, the black-box tests and the benchmarks):
//!
//! - [`cli`]: the `telemed` command line (serve, migrate, user create, rebuild, openapi); a
//!   graceful stop on SIGTERM or Ctrl-C.
//! - [`config`]: [`Config`], the settings of `serve`, from flags and environment; its secrets
//!   are `secrecy::SecretString`s, redacted in `Debug`.
//! - [`Application`] (module `startup`): the composition root. It connects and migrates, starts
//!   every background task under one `telemed_tasks::Background` (projection runner, wake-ups,
//!   live feed and bus, waiting room, notification dispatcher, sweepers, clean-ups), builds the
//!   `AppState`, serves; on stop it stops accepting, then lets each task finish its round.
//! - [`database`]: connection pool and schema migration.
//! - [`auth`]: JWT issuing and verification, sign-in sessions (refresh tokens), and the
//!   [`identify`](auth::identify) middleware that leaves a verified token in the request.
//! - [`error`]: [`ApiError`](error::ApiError), rendered as RFC 9457 problem+json (crate
//!   `telemed-problem`, shared with `telemed-live`).
//! - [`sweeper`]: frees slot reservations and patient claims that no appointment holds, and
//!   turns calls that rang too long into missed ones.
//!
//! Private:
//!
//! - `state`: the shared `AppState` and read-your-writes (`settle`).
//! - `routes`: one module per resource, each exporting `router()`; `routes::router` mounts them
//!   with the middleware stack, the live transports and the web app. `routes::fhir` is the
//!   FHIR R4 read API over the same queries and access checks; `routes::export` the user's
//!   own export (`GET /api/v1/me/export`).
//! - `extract`: JSON, query and path extractors with problem+json rejections; the
//!   authenticated user (`AuthUser`); the request id.
//! - `rate_limit`: per-IP sign-in, per-account sign-in and lockout, per-user (per-IP when
//!   anonymous) request limits (429), as route layers; per-connection limits are
//!   `telemed-live`'s.
//! - `idempotency`: `Idempotency-Key` of keyed requests, taken over at once when its owner died.
//! - `outage`: answers 503 promptly when the database is unreachable.
//! - `access_log`: every read of patient data by anyone but the patient, in an append-only
//!   table.
//! - `audit`: `telemed audit export` / `import`, the event log as JSON lines.
//! - `telemetry`: the log subscriber (text or JSON lines), the per-request span and line, and
//!   the Prometheus metrics served on `TELEMED_METRICS_BIND`.
//! - `scrape`: the gauges measured when `/metrics` is scraped (pool use, projection lag,
//!   outbox backlog).
//! - `web`: the single-page web app served at `/`, with its caching and security headers.
//!
//! Re-exported crates: [`live`] (`telemed-live`: hub, feed, bus, sessions, waiting room,
//! WebSocket and Socket.IO; this crate builds its [`Services`](telemed_live::Services) and
//! mounts them) and [`notify`] (`telemed-notify`: the notification dispatcher and channels).

mod access_log;
mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod database;
pub mod error;
mod extract;
mod idempotency;
mod outage;
mod rate_limit;
mod routes;
mod scrape;
mod startup;
mod state;
pub mod sweeper;
pub mod telemetry;
mod waitlist_matcher;
mod web;

pub use config::{Config, Environment};
pub use startup::Application;
/// The live subsystem (its own crate).
pub use telemed_live as live;
/// Notifications leaving the server (their own crate).
pub use telemed_notify as notify;
