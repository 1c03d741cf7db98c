//! Live events: one hub per process, fed from the event store, served over WebSocket (and
//! Socket.IO) by the same session logic.
//!
//! - [`topic`]: what a connection listens to, and who may.
//! - [`hub`]: connections, topics and bounded fan-out.
//! - [`bus`]: ephemeral traffic (typing, signaling) between processes over NOTIFY.
//! - [`feed`]: the hub's own commit-safe reader of the store, and the mapping from stored
//!   events to the contract's server events.
//! - [`session`]: one connection's user, topics, resume and client events, whatever the
//!   transport.
//! - [`waiting`]: the waiting room (live presence of patients and their doctor).
//! - [`ws`]: the native WebSocket transport.
//! - [`socketio`]: the Socket.IO transport.

pub mod bus;
pub mod feed;
pub mod hub;
pub mod session;
pub mod socketio;
pub mod topic;
pub mod waiting;
pub mod ws;

pub use hub::Hub;
