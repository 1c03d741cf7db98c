//! Telemed's domain: the decisions of the system, free of IO.
//!
//! Every state change in Telemed is decided by an aggregate in this crate and recorded as one
//! of its events. Value types here are parsed once at the edge ("parse, don't validate") so
//! that aggregates only ever see valid input.
//!
//! # Layout
//!
//! - [`ids`]: identifier newtypes ([`UserId`], [`AppointmentId`], [`DayId`], ...).
//! - [`role`]: the roles a user can hold.
//! - [`values`]: validated value types (names, labels, free text, e-mail, passwords, time zones).
//! - [`position`]: the commit-safe position of an event in the global log (the resume token).
//! - [`doctor`], [`patient`], [`staff`]: the profile aggregates, one per kind of user.
//! - [`calendar`]: UTC intervals and doctors' wall-clock times, with the DST policy.
//! - [`template`]: weekly availability templates expanded into windows across DST changes.
//! - [`availability`]: the doctor-day aggregate (windows, time off and slot reservations).
//! - [`appointment`]: the appointment aggregate (the consultation's lifecycle).
//! - [`call`]: call sessions (ringing, active, ended, missed, rejected, failed).
//! - [`conversation`]: chat messages and read markers of an appointment's conversation.
//! - [`waitlist`]: a patient's waitlist entry for a doctor and the offers of freed time.

pub mod appointment;
pub mod availability;
pub mod calendar;
pub mod call;
pub mod conversation;
pub mod doctor;
pub mod ids;
pub mod patient;
pub mod position;
pub mod role;
pub mod staff;
pub mod template;
pub mod values;
pub mod waitlist;

mod aggregate;

pub use aggregate::Decide;
pub use ids::{
    AppointmentId, CallId, DayId, MessageId, ReservationId, TimeOffId, UserId, WindowId,
};
pub use position::Position;
pub use role::Role;

/// A command that can name itself; the name is recorded as the causation of its events.
pub trait NamedCommand {
    /// A stable, dotted name such as `doctor.update_profile`.
    fn command_name(&self) -> &'static str;
}
