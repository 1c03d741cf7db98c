//! Registration and login.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use telemed_commands::{Account, Actor, CommandContext, LoginError, NewAccount, RegisterError};
use telemed_domain::Role;
use telemed_domain::values::{Email, Password, PersonName, TimeZoneName};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::sessions::RefreshRefused;
use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiJson, AuthUser, RequestId};
use crate::routes::fields;
use crate::routes::me::user_view;
use crate::routes::views::AuthResponse;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

/// Registration and sign-in: the routes limited per client address rather than per caller
/// (see [`crate::rate_limit::sign_in_attempts`]).
pub fn sign_in_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
}

/// A refresh token to trade.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last sign-in or refresh.
    #[schema(value_type = fields::NotBlank)]
    refresh_token: String,
}

/// A new patient or doctor account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Login e-mail (unique, case-insensitive).
    #[schema(value_type = fields::EmailAddress)]
    email: String,
    /// The new account's password.
    #[schema(value_type = fields::NewPassword)]
    password: String,
    #[schema(schema_with = new_role)]
    role: String,
    /// Display name.
    #[schema(value_type = fields::PersonNameText)]
    name: String,
    /// The user's time zone.
    #[schema(value_type = fields::TimeZoneText)]
    timezone: String,
}

/// The roles one can register as.
fn new_role() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let roles = [Role::Patient, Role::Doctor].map(|role| role.as_str());
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(roles))
        .description(Some(
            "`patient` or `doctor` (admins and auditors are created from the command line).",
        ))
        .into()
}

impl TryFrom<RegisterRequest> for NewAccount {
    type Error = ApiError;

    fn try_from(body: RegisterRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let email = errors.check("email", Email::parse(&body.email));
        let password = errors.check("password", Password::parse(&body.password, &body.email));
        let role = match body.role.as_str() {
            "patient" => Some(Role::Patient),
            "doctor" => Some(Role::Doctor),
            _ => {
                errors.push(
                    "role",
                    "must be patient or doctor (admin and auditor accounts are created from the command line)",
                );
                None
            }
        };
        let name = errors.check("name", PersonName::parse(&body.name));
        let timezone = errors.check("timezone", TimeZoneName::parse(&body.timezone));
        let (Some(email), Some(password), Some(role), Some(name), Some(timezone)) =
            (email, password, role, name, timezone)
        else {
            return Err(errors.fail());
        };
        errors.finish(Some(NewAccount {
            email,
            password,
            role,
            name,
            timezone,
        }))
    }
}

/// Credentials.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login e-mail.
    #[schema(value_type = fields::NotBlank)]
    email: String,
    /// Password.
    #[schema(min_length = 1)]
    password: String,
}

/// Opens a patient or doctor account and signs it in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = AuthResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "e-mail taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn register(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    let new = NewAccount::try_from(body)?;
    let role = new.role;
    let (account, position) = state
        .accounts
        .register(new, |id| {
            CommandContext::new(Actor::User { id, role }, request_id)
        })
        .await
        .map_err(|error| match error {
            RegisterError::EmailTaken => ApiError::Conflict {
                code: "email_taken",
                detail: "an account with this e-mail address already exists".into(),
            },
            RegisterError::Unavailable(source) => ApiError::Unavailable(Some(source)),
            RegisterError::Internal(source) => ApiError::internal(anyhow::anyhow!(source)),
        })?;
    state.settle(position).await?;
    Ok((StatusCode::CREATED, Json(session(&state, account).await?)))
}

/// Signs in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "unknown e-mail or wrong password (one message for both)"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "too many attempts from this address or for this account, or the account is locked after repeated failures; see Retry-After"),
    ))]
async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let mut errors = FieldErrors::default();
    if body.email.trim().is_empty() {
        errors.push("email", "must not be empty");
    }
    if body.password.is_empty() {
        errors.push("password", "must not be empty");
    }
    errors.finish(Some(()))?;
    state
        .rate_limits
        .admit_login(&state.pool, &body.email)
        .await?;
    let outcome = state
        .accounts
        .authenticate(&body.email, &body.password)
        .await;
    match &outcome {
        Ok(_) | Err(LoginError::InvalidCredentials) => {
            state
                .rate_limits
                .record_login(&state.pool, &body.email, outcome.is_ok())
                .await?;
        }
        Err(_) => {}
    }
    let account = outcome.map_err(|error| match error {
        LoginError::InvalidCredentials => {
            ApiError::Unauthenticated("e-mail or password is incorrect".into())
        }
        LoginError::Unavailable(source) => ApiError::Unavailable(Some(source)),
        LoginError::Internal(source) => ApiError::internal(anyhow::anyhow!(source)),
    })?;
    Ok(Json(session(&state, account).await?))
}

async fn session(state: &AppState, account: Account) -> Result<AuthResponse, ApiError> {
    let (sid, refresh) = state.sessions.start(account.id, account.role).await?;
    let access_token = state.jwt.issue(account.id, account.role, sid)?;
    Ok(AuthResponse {
        user: user_view(state, account).await?,
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
        refresh_token: refresh.token,
        refresh_expires_in: refresh.ttl.as_secs(),
    })
}

/// Trades a refresh token for a new access token and the session's next refresh token. A
/// refresh token works once: presenting it again signs its session out everywhere.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = AuthResponse),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "unknown, expired, revoked or already used refresh token"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    if body.refresh_token.trim().is_empty() {
        return Err(ApiError::invalid("refresh_token", "must not be empty"));
    }
    let renewed = match state.sessions.renew(body.refresh_token.trim()).await? {
        Ok(renewed) => renewed,
        Err(RefreshRefused::Invalid) => {
            return Err(ApiError::Unauthenticated(
                "the refresh token is unknown, expired or revoked; sign in again".into(),
            ));
        }
        Err(RefreshRefused::Reused(sid)) => {
            state.bus.sign_out(&[sid]);
            return Err(ApiError::Unauthenticated(
                "the refresh token was already used, so the session has been signed out; sign in again"
                    .into(),
            ));
        }
    };
    let account = state
        .accounts
        .find(renewed.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the account no longer exists".into()))?;
    let access_token = state
        .jwt
        .issue(renewed.user_id, renewed.role, renewed.sid)?;
    Ok(Json(AuthResponse {
        user: user_view(&state, account).await?,
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl().as_secs(),
        refresh_token: renewed.refresh.token,
        refresh_expires_in: renewed.refresh.ttl.as_secs(),
    }))
}

/// Signs the user out everywhere: every refresh token is revoked, every access token of theirs
/// is refused from now on, and their live connections are closed (code 4001).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "signed out"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    let sids = state.sessions.revoke_user(user.id).await?;
    state.bus.sign_out(&sids);
    Ok(StatusCode::NO_CONTENT)
}
