//! The in-app notification as clients see it (REST list and the `notification` live event).

use serde::Serialize;
use telemed_domain::AppointmentId;
use telemed_projections::notifications::NotificationRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::render::Facts;

/// An in-app notification (the `notification` live event carries the same fields but `read`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    /// Id (stable: the same in the live event and here).
    #[schema(format = Uuid)]
    pub id: Uuid,
    /// `appointment_requested`, `appointment_confirmed`, `appointment_rescheduled`,
    /// `appointment_cancelled` or `message`.
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Text, with times in the recipient's time zone.
    pub body: String,
    /// The appointment it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub appointment_id: Option<AppointmentId>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Whether the user marked it read.
    pub read: bool,
}

impl From<&NotificationRow> for NotificationView {
    fn from(row: &NotificationRow) -> Self {
        let facts = Facts {
            kind: &row.kind,
            other_name: row.actor_name.as_deref(),
            start: row.start_at,
            previous_start: row.previous_start_at,
            timezone: row.timezone.as_deref(),
        };
        Self {
            id: row.id,
            kind: row.kind.clone(),
            title: facts.title().to_string(),
            body: facts.body(),
            appointment_id: row.appointment_id,
            at: row.at,
            read: row.read_at.is_some(),
        }
    }
}
