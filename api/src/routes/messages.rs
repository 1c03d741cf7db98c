//! An appointment's conversation: history, posting, read markers. Only the appointment's
//! doctor and patient may read or write (everyone else gets 404; auditors read the log).
//! The live transports call the same functions for `chat:send`, `chat:read` and `chat:typing`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use telemed_commands::Participants;
use telemed_domain::values::{ClientMsgId, MessageContent};
use telemed_domain::{AppointmentId, MessageId, Position, Role};
use telemed_projections::appointments::{AppointmentView, appointment};
use telemed_projections::conversations::{self, MessageView, ReadMarker};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access_log::{self, Outcome};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::routes::{fields, params};
use crate::state::AppState;

/// Default and largest history page.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

/// The conversation routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history, post_message))
        .routes(routes!(read))
}

/// A new message.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// 1 to 4 000 characters, not only white space, no control characters but newlines and
    /// tabs; stored and returned exactly as sent.
    #[schema(value_type = fields::MessageText)]
    pub content: String,
    /// Your id for this message (1–100 printable characters): posting again with the same id
    /// returns the first message instead of posting twice.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub client_msg_id: Option<String>,
}

/// A read marker.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    /// The last message read.
    #[schema(format = Uuid)]
    pub up_to: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
/// Paging of the history.
pub struct HistoryQuery {
    /// A message id: only messages older than it (default: the newest).
    #[param(format = Uuid)]
    before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// A page of history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    /// Oldest first.
    messages: Vec<MessageView>,
    /// Pass as `before` for the previous page; absent on the first message.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
    /// Each participant's last read message (none for someone who has not read yet).
    read_markers: Vec<ReadMarker>,
    /// Messages from the other participant after the caller's read marker (all of them
    /// without one), whatever page this is.
    unread_count: i64,
}

/// The conversation of `id` if `user` takes part in it.
pub async fn participants(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
) -> Result<Participants, ApiError> {
    match appointment(&state.pool, id).await? {
        Some(view) => participants_in(user, &view),
        None => Err(no_such_appointment()),
    }
}

/// The conversation of `view` if `user` takes part in it.
fn participants_in(user: &AuthUser, view: &AppointmentView) -> Result<Participants, ApiError> {
    let takes_part = matches!(user.role, Role::Doctor | Role::Patient)
        && (view.doctor_id == user.id || view.patient_id == user.id);
    if !takes_part {
        return Err(no_such_appointment());
    }
    Ok(Participants {
        appointment_id: view.id,
        doctor_id: view.doctor_id,
        patient_id: view.patient_id,
    })
}

fn no_such_appointment() -> ApiError {
    ApiError::NotFound("no such appointment".into())
}

/// Posts a message as `user` (REST and live `chat:send`).
pub async fn post(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
    body: NewMessage,
) -> Result<MessageView, ApiError> {
    let mut errors = FieldErrors::default();
    let content = errors.check("content", MessageContent::parse(&body.content));
    let client_msg_id = match body.client_msg_id.as_deref() {
        None => Some(None),
        Some(key) => errors
            .check("client_msg_id", ClientMsgId::parse(key))
            .map(Some),
    };
    let (content, client_msg_id) = errors.finish((|| Some((content?, client_msg_id?)))())?;
    participants(state, user, id).await?;
    let posted = state
        .chat
        .post(id, user.id, content, client_msg_id, &user.context())
        .await?;
    state.settle(posted.position).await?;
    conversations::message(&state.pool, posted.id)
        .await?
        .map(|(view, _)| view)
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the message is not in the read model yet".into()))
        })
}

/// Moves `user`'s read marker to `up_to` (REST and live `chat:read`).
pub async fn mark_read(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
    up_to: &str,
) -> Result<(), ApiError> {
    let up_to: MessageId = up_to
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("up_to", "must be a message id (a UUID)"))?;
    let conversation = participants(state, user, id).await?;
    let (message, position) = conversations::message(&state.pool, up_to)
        .await?
        .filter(|(message, _)| message.appointment_id == id)
        .ok_or_else(|| ApiError::invalid("up_to", "is not a message of this conversation"))?;
    let at = state
        .chat
        .mark_read(conversation, user.id, message.id, position, &user.context())
        .await?;
    state.settle(at).await?;
    Ok(())
}

/// The conversation's history, paging backwards from the newest message.
#[utoipa::path(get, operation_id = "list_messages", path = "/api/v1/appointments/{id}/messages", tag = "messages",
    params(("id" = String, Path, format = Uuid), HistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = MessagePage),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "not a participant"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let mut errors = FieldErrors::default();
    let limit = params::limit(&mut errors, query.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE);
    let before = params::optional::<MessageId>(
        &mut errors,
        "before",
        query.before.as_deref(),
        "must be a message id (a UUID)",
    );
    let (limit, before) = errors.finish((|| Some((limit?, before?)))())?;
    let view = appointment(&state.pool, id)
        .await?
        .ok_or_else(no_such_appointment)?;
    let allowed = participants_in(&user, &view);
    let outcome = match allowed {
        Ok(_) => Outcome::Allowed,
        Err(_) => Outcome::Denied,
    };
    access_log::record(
        &state.pool,
        &user,
        view.patient_id,
        "messages",
        &id.to_string(),
        outcome,
    )
    .await?;
    allowed?;
    let before = position_before(&state, id, before).await?;
    let page = conversations::page(&state.pool, id, before, limit).await?;
    let next_before = match (page.more, page.messages.first()) {
        (true, Some(oldest)) => Some(oldest.id.to_string()),
        _ => None,
    };
    Ok(Json(MessagePage {
        messages: page.messages,
        next_before,
        read_markers: conversations::read_markers(&state.pool, id).await?,
        unread_count: conversations::unread_count(&state.pool, id, user.id).await?,
    }))
}

/// The position of message `before`, which must be in `id`'s conversation.
async fn position_before(
    state: &AppState,
    id: AppointmentId,
    before: Option<MessageId>,
) -> Result<Option<Position>, ApiError> {
    let Some(message) = before else {
        return Ok(None);
    };
    conversations::message(&state.pool, message)
        .await?
        .filter(|(view, _)| view.appointment_id == id)
        .map(|(_, position)| Some(position))
        .ok_or_else(|| ApiError::invalid("before", "is not a message of this conversation"))
}

/// Posts a message; a repeated `client_msg_id` returns the first message.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/messages", tag = "messages",
    params(("id" = String, Path, format = Uuid)), request_body = NewMessage, security(("bearer" = [])),
    responses((status = 201, body = MessageView),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "not a participant"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "conversation_closed: cancelled, or too long after the appointment"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn post_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(body): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    post(&state, &user, id, body)
        .await
        .map(|view| (StatusCode::CREATED, Json(view)))
}

/// Records that the caller has read the conversation up to a message.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/messages/read", tag = "messages",
    params(("id" = String, Path, format = Uuid)), request_body = ReadUpTo, security(("bearer" = [])),
    responses((status = 204, description = "recorded"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "not a participant"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(body): ApiJson<ReadUpTo>,
) -> Result<StatusCode, ApiError> {
    mark_read(&state, &user, id, &body.up_to).await?;
    Ok(StatusCode::NO_CONTENT)
}
