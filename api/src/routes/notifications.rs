//! A user's notifications (in-app inbox with read state), channel preferences and Web Push
//! subscriptions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use telemed_commands::{CommandError, NotificationSettings, PushSubscription, SettingsError};
use telemed_notify::wanted_by_default;
use telemed_projections::notifications;
use telemed_projections::preferences::{self, ChannelPreferences};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, FieldErrors, Problem, command_failure};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::routes::params;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The settings service on the state's pool (it holds nothing else).
fn settings(state: &AppState) -> NotificationSettings {
    NotificationSettings::new(&state.pool)
}

/// Maps a refused settings change: too many devices is the endpoint's 422.
fn settings_error(error: CommandError<SettingsError>) -> ApiError {
    match error {
        CommandError::Rejected(rejection @ SettingsError::TooManyDevices) => {
            ApiError::invalid("endpoint", rejection.to_string())
        }
        other => command_failure(other),
    }
}

/// The notification routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read_one))
        .routes(routes!(read_all))
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(push_key))
        .routes(routes!(subscribe))
        .routes(routes!(unsubscribe))
}

pub use telemed_notify::NotificationView;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Paging token: only notifications older than it (`next` of the previous page).
    #[param(value_type = Option<i64>)]
    before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `true`: only unread ones.
    #[param(value_type = Option<bool>)]
    unread: Option<String>,
}

/// A typed [`ListQuery`].
struct PageRequest {
    before: Option<i64>,
    limit: i64,
    unread: bool,
}

impl TryFrom<ListQuery> for PageRequest {
    type Error = ApiError;

    /// The page asked for, or a 422 naming every bad parameter.
    fn try_from(query: ListQuery) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let before = params::optional::<i64>(
            &mut errors,
            "before",
            query.before.as_deref(),
            "is not a paging token (use `next` of an earlier page)",
        );
        let limit = params::limit(
            &mut errors,
            query.limit.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        );
        let unread = match query.unread.as_deref().map(str::trim) {
            None | Some("") | Some("false") => Some(false),
            Some("true") => Some(true),
            Some(_) => {
                errors.push("unread", "must be true or false");
                None
            }
        };
        let (Some(before), Some(limit), Some(unread)) = (before, limit, unread) else {
            return Err(errors.fail());
        };
        Ok(Self {
            before,
            limit,
            unread,
        })
    }
}

/// A page of notifications, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    /// Newest first.
    items: Vec<NotificationView>,
    /// Unread notifications in all.
    unread_count: i64,
    /// Pass as `before` for older ones; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, operation_id = "list_notifications", path = "/api/v1/notifications", tag = "notifications", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = NotificationPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad `before`, `limit` or `unread`")))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    let PageRequest {
        before,
        limit,
        unread,
    } = query.try_into()?;
    let rows = notifications::page(&state.pool, user.id, before, unread, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<NotificationView> = rows.iter().take(limit as usize).map(Into::into).collect();
    let next = more
        .then(|| rows.get(limit as usize - 1).map(|row| row.gpos.to_string()))
        .flatten();
    let unread_count = notifications::unread_count(&state.pool, user.id).await?;
    Ok(Json(NotificationPage {
        items,
        unread_count,
        next,
    }))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 204, description = "read"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "the id is not a UUID"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such notification of yours")))]
async fn read_one(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if notifications::mark_read(&state.pool, user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(
            "you have no notification with this id".into(),
        ))
    }
}

/// Marks all the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 204, description = "all read"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn read_all(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    notifications::mark_all_read(&state.pool, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which channels may carry the caller's notifications (in-app ones always exist).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// E-mail (to the sign-in address); default on.
    pub email: bool,
    /// Web Push to subscribed devices; default on.
    pub push: bool,
    /// SMS reminders to `phone`; default off.
    pub sms: bool,
    /// Phone number in E.164 form (`+` and 8 to 15 digits; spaces and dashes are ignored),
    /// required when `sms` is on (checked by the server: 422).
    #[serde(default)]
    #[schema(
        max_length = 64,
        pattern = r"^\s*(\+[ \-]*[1-9]([ \-]*[0-9]){7,14}[ \-]*)?\s*$"
    )]
    pub phone: Option<String>,
}

/// The caller's channel preferences.
#[utoipa::path(get, path = "/api/v1/notifications/preferences", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = Preferences),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn get_preferences(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Preferences>, ApiError> {
    let set = preferences::preferences(&state.pool, user.id).await?;
    Ok(Json(set.map(Preferences::from).unwrap_or(Preferences {
        email: wanted_by_default("email"),
        push: wanted_by_default("push"),
        sms: wanted_by_default("sms"),
        phone: None,
    })))
}

fn valid_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

impl From<ChannelPreferences> for Preferences {
    fn from(set: ChannelPreferences) -> Self {
        Self {
            email: set.email,
            push: set.push,
            sms: set.sms,
            phone: set.phone,
        }
    }
}

impl TryFrom<Preferences> for ChannelPreferences {
    type Error = ApiError;

    /// The preferences with the phone number in E.164 form, or a 422 naming `phone`.
    fn try_from(body: Preferences) -> Result<Self, ApiError> {
        let phone = body
            .phone
            .as_deref()
            .map(|p| p.trim().replace([' ', '-'], ""))
            .filter(|p| !p.is_empty());
        let mut errors = FieldErrors::default();
        if let Some(phone) = &phone
            && !valid_phone(phone)
        {
            errors.push(
                "phone",
                "must be an international number: + then 8 to 15 digits, e.g. +33612345678",
            );
        }
        if body.sms && phone.is_none() {
            errors.push("phone", "is required to receive SMS");
        }
        errors.finish(Some(ChannelPreferences {
            email: body.email,
            push: body.push,
            sms: body.sms,
            phone,
        }))
    }
}

/// Sets the caller's channel preferences.
#[utoipa::path(put, path = "/api/v1/notifications/preferences", tag = "notifications",
    request_body = Preferences, security(("bearer" = [])),
    responses((status = 200, body = Preferences),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad phone number, or SMS without one")))]
async fn put_preferences(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<Preferences>,
) -> Result<Json<Preferences>, ApiError> {
    let set = ChannelPreferences::try_from(body)?;
    settings(&state)
        .set_preferences(user.id, &set)
        .await
        .map_err(settings_error)?;
    Ok(Json(set.into()))
}

/// The server's VAPID public key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PushKey {
    /// base64url; pass as `applicationServerKey` to `PushManager.subscribe`.
    public_key: String,
}

/// The key browsers subscribe to push with.
#[utoipa::path(get, path = "/api/v1/notifications/push-key", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = PushKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "push is not configured on this server")))]
async fn push_key(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<PushKey>, ApiError> {
    match &state.channels.push {
        Some(push) => Ok(Json(PushKey {
            public_key: push.public_key().to_string(),
        })),
        None => Err(ApiError::NotFound(
            "push notifications are not configured on this server".into(),
        )),
    }
}

/// A browser's push subscription (`PushSubscription.toJSON()`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewSubscription {
    /// The push service URL (https).
    #[schema(format = "uri", max_length = 2000, pattern = r"^https://")]
    pub endpoint: String,
    /// The subscription's keys.
    pub keys: SubscriptionKeys,
}

/// Keys of a push subscription, base64url.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key (65 bytes, base64url; that it is a point of the curve is
    /// checked by the server: 422).
    #[schema(pattern = r"^\s*[A-Za-z0-9_\-]{86}[AEIMQUYcgkosw048]=?\s*$")]
    pub p256dh: String,
    /// The browser's auth secret (16 bytes, base64url).
    #[schema(pattern = r"^\s*[A-Za-z0-9_\-]{21}[AQgw](==)?\s*$")]
    pub auth: String,
}

/// A recorded subscription.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionCreated {
    /// Its id (to remove it).
    #[schema(format = Uuid)]
    id: Uuid,
}

fn decoded(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .ok()
}

impl NewSubscription {
    /// The validated subscription (an `http` endpoint only when `allow_http`), or a 422
    /// naming every bad field.
    fn parse(&self, allow_http: bool) -> Result<PushSubscription, ApiError> {
        let mut errors = FieldErrors::default();
        let endpoint = self.endpoint.trim().to_string();
        match endpoint.parse::<reqwest::Url>() {
            Ok(url)
                if endpoint.len() <= 2000
                    && (url.scheme() == "https" || (url.scheme() == "http" && allow_http)) => {}
            _ => errors.push(
                "endpoint",
                "must be the https URL of a push service (at most 2000 characters)",
            ),
        }
        let p256dh = self.keys.p256dh.trim().to_string();
        if decoded(&p256dh)
            .and_then(|bytes| web_push_native::p256::PublicKey::from_sec1_bytes(&bytes).ok())
            .is_none()
        {
            errors.push("keys.p256dh", "must be a base64url P-256 public key");
        }
        let auth = self.keys.auth.trim().to_string();
        if decoded(&auth).is_none_or(|bytes| bytes.len() != 16) {
            errors.push("keys.auth", "must be 16 bytes in base64url");
        }
        errors.finish(Some(PushSubscription {
            endpoint,
            p256dh,
            auth,
        }))
    }
}

/// Subscribes one of the caller's devices to push (again: the same endpoint moves to the
/// caller with its new keys).
#[utoipa::path(post, path = "/api/v1/notifications/push-subscriptions", tag = "notifications",
    request_body = NewSubscription, security(("bearer" = [])),
    responses((status = 201, body = SubscriptionCreated),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad endpoint or keys, or too many devices")))]
async fn subscribe(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<NewSubscription>,
) -> Result<(StatusCode, Json<SubscriptionCreated>), ApiError> {
    let device = body.parse(state.channels.allow_http_push)?;
    let id = settings(&state)
        .subscribe(user.id, &device)
        .await
        .map_err(settings_error)?;
    Ok((StatusCode::CREATED, Json(SubscriptionCreated { id })))
}

/// Removes one of the caller's push subscriptions.
#[utoipa::path(delete, path = "/api/v1/notifications/push-subscriptions/{id}", tag = "notifications",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 204, description = "removed"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "the id is not a UUID"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such subscription of yours")))]
async fn unsubscribe(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let removed = settings(&state)
        .unsubscribe(user.id, id)
        .await
        .map_err(settings_error)?;
    if !removed {
        return Err(ApiError::NotFound(
            "you have no push subscription with this id".into(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
