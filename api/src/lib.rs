//! Telemed's HTTP edge and command line.
//!
//! Handlers are thin: extract and authenticate, parse the body into a typed command, call an
//! application service from `telemed-commands`, wait (bounded) until the read models have
//! caught up with what the command wrote, answer from `telemed-projections`.
//!
//! # Layout
//!
//! - [`cli`]: the `telemed` command line (serve, migrate, user create, rebuild).
//! - [`config`]: configuration of `serve`, from flags and environment.
//! - [`startup`]: [`Application`]: binds, starts projections, serves until stopped.
//! - [`database`]: connection pool and schema migration.
//! - [`state`]: the shared [`AppState`](state::AppState).
//! - [`error`]: [`ApiError`](error::ApiError), rendered as RFC 9457 problem+json (crate
//!   `telemed-problem`, shared with `telemed-live`).
//! - [`extract`]: JSON, query and path extractors with problem+json rejections; the
//!   authenticated user; the request id.
//! - [`auth`]: JWT issuing and verification.
//! - [`routes`]: one module per resource, each exporting `router()`.
//! - [`rate_limit`]: per-IP, per-account, per-user and per-connection limits (429).
//! - [`live`] (crate `telemed-live`): hub, feed, bus, sessions, waiting room, WebSocket and
//!   Socket.IO; this crate builds its [`Services`](telemed_live::Services) and mounts them.
//! - [`notify`] (crate `telemed-notify`): the notification dispatcher and its channels.
//! - [`web`]: the single-page web app served at `/`, with its caching and security headers.
//! - [`sweeper`]: frees slot reservations and patient claims that no appointment holds.
//! - [`outage`]: answers 503 promptly when the database is unreachable.

pub mod access_log;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod database;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod outage;
pub mod rate_limit;
pub mod routes;
pub mod startup;
pub mod state;
pub mod sweeper;
pub mod web;

pub use config::{Config, Environment};
pub use startup::Application;
/// The live subsystem (its own crate).
pub use telemed_live as live;
/// Notifications leaving the server (their own crate).
pub use telemed_notify as notify;
