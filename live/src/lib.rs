//! Live events: one hub per process, fed from the event store, served over WebSocket and
//! Socket.IO by the same session logic, with one typed protocol.
//!
//! Depends on `telemed-commands` (the commands client events call), `telemed-projections`
//! (replays and topic access read the read models), `telemed-problem` (errors) and
//! `telemed-notify` (a `notification` event renders like the REST list); never on
//! `telemed-api`, which builds [`Services`] and mounts the transports.
//!
//! # Where things live
//!
//! - [`protocol`]: [`ClientEvent`] and [`ServerEvent`], the typed live protocol (published in
//!   the OpenAPI components); parsing client events with errors naming the field.
//! - [`topic`]: what a connection listens to.
//! - [`hub`]: connections, topics and bounded fan-out.
//! - [`bus`]: ephemeral traffic (typing, signaling, waiting room, revoked sessions): to this
//!   process's hub first, then to the other processes over PostgreSQL `NOTIFY` or NATS.
//! - [`feed`]: the hub's own commit-safe reader of the store, and the mapping from stored
//!   events to server events.
//! - [`session`]: one connection's topics, resume and dedupe, whatever the transport; it sees
//!   the process only through a [`Context`] (in `context`).
//! - `services`: [`Services`], the real context: replays, topic access, and the one command
//!   each chat, signaling and waiting-room event is (signaling's decisions are
//!   `telemed_commands::Calls::signal`'s).
//! - [`identity`]: who a connection is, and the [`Tokens`] seam to `api`'s access tokens.
//! - `limits`: per-connection rate limits (chat, signaling).
//! - [`waiting`]: the waiting room (live presence of patients and their doctor).
//! - [`ws`]: the native WebSocket transport (`GET /api/v1/ws`, its `router()`).
//! - [`socketio`]: the Socket.IO transport (its `layer()`).
//! - [`telemetry`]: live connections and events sent and dropped, as metrics.

pub mod bus;
mod context;
pub mod feed;
pub mod hub;
pub mod identity;
mod limits;
pub mod protocol;
mod services;
pub mod session;
pub mod socketio;
pub mod telemetry;
pub mod topic;
pub mod waiting;
pub mod ws;

pub use context::Context;
pub use hub::Hub;
pub use identity::{Identity, Tokens};
pub use protocol::{ClientEvent, ServerEvent};
pub use services::Services;
