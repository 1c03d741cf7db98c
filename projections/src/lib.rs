//! Telemed's read side: the global event stream, projections and the queries over them.
//!
//! Read models and live fan-out come from one place: the commit-safe global stream over the
//! `events` table, never from in-process cqrs-es queries (those can lose updates on a crash).
//!
//! # Layout
//!
//! - [`event`]: [`StoredEvent`], one row of the log with its [`Position`](telemed_domain::Position).
//! - [`stream`]: reading the log in commit-safe order from a position.
//! - [`wakeup`]: LISTEN/NOTIFY wake-ups that survive database restarts.
//! - [`runner`]: the [`Projection`] trait and the runner that applies batches and moves each
//!   projection's checkpoint in one transaction; [`Progress`] for read-your-writes. A projection
//!   applies a batch set-based where it pays: `appointments_batch`, `calls_batch` and
//!   `notifications::batch` fold rows in memory (the first two through `fold`) and write each
//!   table once; conversations and availability insert many rows per statement.
//! - [`lag`]: how far each projection is behind the log (for `/metrics`).
//! - [`rebuild`]: rebuilding projections from position zero into fresh tables beside the live
//!   ones and swapping them in, while the service runs.
//! - [`profiles`]: the profiles projection (users, doctors, patients) and its queries.
//! - [`availability`]: windows, reservations and waitlist holds per doctor; free-slot
//!   computation.
//! - [`appointments`]: appointments, lists and dashboard queries.
//! - [`calls`]: the call log.
//! - [`conversations`]: chat messages and read markers, history pages.
//! - [`audit`]: the filtered, paged global history for auditors.
//! - [`notifications`]: in-app notifications, and the outbox of e-mail, push and SMS deliveries.
//! - [`preferences`]: users' notification channel preferences.
//! - [`feeds`]: who a calendar feed token belongs to.
//! - [`waitlist`]: waitlist entries and their open offers; what the waitlist matcher reads.
//! - [`chain`]: the tamper-evident hash chain over the log, its sealer, head and verification.

pub mod appointments;
mod appointments_batch;
pub mod audit;
pub mod availability;
pub mod calls;
mod calls_batch;
pub mod chain;
pub mod conversations;
pub mod event;
pub mod feeds;
mod fold;
pub mod lag;
pub mod notifications;
pub mod preferences;
pub mod profiles;
pub mod rebuild;
pub mod runner;
pub mod stream;
pub mod waitlist;
pub mod wakeup;

pub use event::StoredEvent;
pub use runner::{Progress, Projection, ProjectionError, ProjectionRunner, Settled};

use std::sync::Arc;

/// Every projection the service runs, in a stable order.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(profiles::ProfilesProjection),
        Arc::new(availability::AvailabilityProjection),
        Arc::new(appointments::AppointmentsProjection),
        Arc::new(conversations::ConversationsProjection),
        Arc::new(calls::CallsProjection),
        Arc::new(notifications::NotificationsProjection),
        Arc::new(waitlist::WaitlistProjection),
        Arc::new(chain::ChainProjection::default()),
    ]
}
