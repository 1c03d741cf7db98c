//! Telemed's write side: application services that turn typed commands into stored events.
//!
//! Aggregates decide (in `telemed-domain`); this crate loads them from the PostgreSQL event
//! store through cqrs-es + postgres-es, executes commands with the actor's metadata, retries
//! optimistic-concurrency conflicts a bounded number of times, and reports the commit-safe
//! [`Position`](telemed_domain::Position) of what it wrote so callers can wait for read models.
//!
//! # Layout
//!
//! - [`context`]: who is acting and why ([`Actor`], [`CommandContext`]) → event metadata.
//! - [`executor`]: the cqrs-es frameworks and [`Executor::execute`] with bounded retry.
//! - [`store`]: loading and appending aggregates, the aggregate cache, and (`store::batcher`)
//!   group commit of concurrent appends.
//! - [`error`]: [`CommandError`], what a command can fail with besides its domain error.
//! - [`accounts`]: registration and login; credentials live in a mutable table, not in events.
//! - [`profiles`]: doctor, patient and staff profile commands.
//! - [`scheduling`]: availability windows, the booking rules, cancel, confirm, outcomes; its
//!   `booking` module holds the booking flow (time checks, the doctor-day from the
//!   availability read model, claim + reserve + record in one transaction, keyed retries) and
//!   reschedule.
//! - [`calls`]: call sessions (one live call per appointment), ring timeouts, where signaling
//!   may go.
//! - [`chat`]: every conversation decision: who takes part, posting (idempotent by
//!   `client_msg_id`), read markers and where a page of history starts.
//! - [`calendar_feeds`]: secret calendar feed tokens (issue, revoke).
//! - [`preferences`]: notification settings (channel preferences, push subscriptions).
//! - [`waitlist`]: joining and leaving a doctor's waitlist, offers of freed time held on the
//!   doctor-day (accept books through scheduling, decline, expiry), and the matcher that
//!   follows the log and offers freed time first come first.
//! - [`clock`]: "now", with a seam for tests.
//! - [`hashing`]: the bounded thread pool that password hashing runs on.

pub mod accounts;
pub mod calendar_feeds;
pub mod calls;
pub mod chat;
pub mod clock;
pub mod context;
pub mod error;
pub mod executor;
pub mod hashing;
pub mod preferences;
pub mod profiles;
pub mod scheduling;
pub mod store;
pub mod waitlist;

pub use accounts::{Account, Accounts, LoginError, NewAccount, RegisterError};
pub use calendar_feeds::CalendarFeeds;
pub use calls::{CallRules, Calls, Relay, Started};
pub use chat::{Chat, ChatError, NewPost, Participants, Posted};
pub use clock::Clock;
pub use context::{Actor, CommandContext};
pub use error::CommandError;
pub use executor::Executor;
pub use preferences::{NotificationSettings, PushSubscription, SettingsError};
pub use profiles::Profiles;
pub use scheduling::{
    Booked, Booking, Scheduling, SchedulingError, SchedulingRules, keyed_appointment_id,
};
pub use waitlist::{Accepted, Waitlist, WaitlistFailure};
