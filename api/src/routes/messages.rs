//! An appointment's conversation: history, posting, read markers. Only the appointment's
//! doctor and patient may read or write (everyone else gets 404; auditors read the log).
//! The decisions are `telemed_commands::Chat`'s, which the live session's `chat:send`,
//! `chat:read` and `chat:typing` call too; these handlers parse, call it and render.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use telemed_commands::NewPost;
use telemed_domain::{AppointmentId, MessageId};
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

impl TryFrom<NewMessage> for NewPost {
    type Error = ApiError;

    fn try_from(body: NewMessage) -> Result<Self, ApiError> {
        Ok(NewPost::parse(
            &body.content,
            body.client_msg_id.as_deref(),
        )?)
    }
}

impl TryFrom<ReadUpTo> for MessageId {
    type Error = ApiError;

    fn try_from(body: ReadUpTo) -> Result<Self, ApiError> {
        body.up_to
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("up_to", "must be a message id (a UUID)"))
    }
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
    conversation_audited(&state, &user, id).await?;
    let before = state.chat.position_before(id, before).await?;
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
    let post = NewPost::try_from(body)?;
    let posted = state.chat.post(user.id, id, post, &user.context()).await?;
    state.settle(posted.position).await?;
    let view = state.chat.message(posted.id).await?;
    Ok((StatusCode::CREATED, Json(view)))
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
    let up_to = MessageId::try_from(body)?;
    let at = state
        .chat
        .mark_read(user.id, id, up_to, &user.context())
        .await?;
    state.settle(at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The conversation of appointment `id`, if `user` takes part in it (else 404, as for an
/// unknown one); the read, allowed or refused, is in the access log first (REST and FHIR).
pub(crate) async fn conversation_audited(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
) -> Result<telemed_commands::Participants, ApiError> {
    let conversation = state.chat.conversation(id).await?;
    let allowed = conversation.includes(user.id);
    access_log::record(
        &state.pool,
        user,
        conversation.patient_id,
        "messages",
        &id.to_string(),
        Outcome::of(allowed),
    )
    .await?;
    if !allowed {
        return Err(ApiError::NotFound("no such appointment".into()));
    }
    Ok(conversation)
}
