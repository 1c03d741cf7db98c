//! Unread messages across all of the caller's conversations, so that an app shows a count per
//! appointment without one request per appointment.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use telemed_domain::AppointmentId;
use telemed_projections::conversations;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem};
use crate::extract::AuthUser;
use crate::state::AppState;

/// `GET /api/v1/me/unread`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(unread))
}

/// One conversation with unread messages.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UnreadConversation {
    /// The appointment whose conversation it is.
    #[schema(value_type = String, format = Uuid)]
    appointment_id: AppointmentId,
    /// Messages from the other participant after the caller's read marker (at least 1).
    unread_count: i64,
}

/// The caller's conversations with unread messages.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UnreadConversations {
    /// Ordered by appointment id; a conversation that is not listed has nothing unread.
    conversations: Vec<UnreadConversation>,
}

/// Unread message counts of every conversation the caller takes part in that has any.
#[utoipa::path(get, path = "/api/v1/me/unread", tag = "messages", security(("bearer" = [])),
    responses((status = 200, body = UnreadConversations),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn unread(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<UnreadConversations>, ApiError> {
    let conversations = conversations::unread_counts(&state.pool, user.id)
        .await?
        .into_iter()
        .map(|(appointment_id, unread_count)| UnreadConversation {
            appointment_id,
            unread_count,
        })
        .collect();
    Ok(Json(UnreadConversations { conversations }))
}
