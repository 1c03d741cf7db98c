//! What the waiting room's bus carries between processes, and what it says to clients.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use telemed_domain::{AppointmentId, UserId};
use time::OffsetDateTime;

/// A server process, as the waiting room knows it (random per process start).
pub type NodeId = uuid::Uuid;

/// One patient waiting for a consultation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The appointment.
    pub appointment_id: AppointmentId,
    /// Its patient, who waits.
    pub patient_id: UserId,
    /// The patient's display name.
    pub patient_name: String,
    /// Its doctor, who sees the queue.
    pub doctor_id: UserId,
    /// When the patient checked in.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_in_at: OffsetDateTime,
    /// When the appointment starts.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
}

impl Entry {
    /// The contract's `waiting_entry`.
    pub fn to_json(&self) -> Value {
        json!({
            "appointment_id": self.appointment_id,
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "checked_in_at": rfc3339(self.checked_in_at),
            "start": rfc3339(self.start),
        })
    }
}

/// An instant as RFC 3339 text.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Why a patient is no longer waiting (`waiting:left`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The patient sent `waiting:leave`.
    Left,
    /// The patient's last connection went.
    Disconnected,
    /// A call of the appointment started.
    CallStarted,
    /// The appointment was cancelled, rescheduled or completed.
    Cancelled,
}

impl Reason {
    /// The name sent to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Left => "left",
            Reason::Disconnected => "disconnected",
            Reason::CallStarted => "call_started",
            Reason::Cancelled => "cancelled",
        }
    }
}

/// What a waiting patient sees of their doctor (`doctor:status`'s `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoctorStatus {
    /// Connected, not in a call.
    Online,
    /// In a ringing or active call.
    InCall,
    /// No live connection.
    Away,
}

impl DoctorStatus {
    /// The name sent to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            DoctorStatus::Online => "online",
            DoctorStatus::InCall => "in_call",
            DoctorStatus::Away => "away",
        }
    }
}

/// One message on the waiting room's bus: who sent it, and what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The sending process.
    pub node: NodeId,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// What a process tells the others. Every process applies each sender's messages in the order
/// they were sent (both `NOTIFY` and NATS keep one sender's order), its own excepted: it
/// applied them when it sent them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A patient checked in on the sender, which owns the entry.
    Joined {
        /// The entry.
        entry: Entry,
    },
    /// A patient stopped waiting.
    Left {
        /// The appointment.
        appointment_id: AppointmentId,
        /// Why.
        reason: Reason,
    },
    /// A doctor or a waiting patient got their first (`up`) or lost their last connection on
    /// the sender.
    Presence {
        /// Who.
        user: UserId,
        /// Whether they are connected there now.
        up: bool,
    },
    /// The sender's whole share: the entries it owns and who is connected there. Sent as a
    /// heartbeat and in answer to `hello`; it corrects whatever a receiver missed.
    Snapshot {
        /// Entries the sender owns.
        entries: Vec<Entry>,
        /// Doctors and waiting patients connected to the sender.
        present: Vec<UserId>,
    },
    /// The sender (re)started listening and asks for everyone's snapshot.
    Hello,
}
