//! Black-box tests: the real application on 127.0.0.1:0 (or the real `telemed` binary)
//! against a fresh PostgreSQL database per test, spoken to over HTTP like a client.
//!
//! `DATABASE_URL` must be a server-level URL whose user may create databases; `scripts/test`
//! provides one.

// Test code may panic on the unexpected: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]

mod audit;
mod auth;
mod browser;
mod calls;
mod chat;
mod cli;
mod crash;
mod event_store;
mod fhir;
mod fuzz;
mod helpers;
mod ical;
mod limits;
mod live;
mod notifications;
mod openapi;
mod outage;
mod processes;
mod profiles;
mod races;
mod scale_out;
mod scheduling;
mod sessions;
mod shutdown;
mod socketio;
mod stream;
mod sweeper;
mod tamper;
mod telemetry;
mod time_off;
mod timezones;
mod unread;
mod waiting_room;
mod waitlist;
mod web_app;
mod web_serving;
