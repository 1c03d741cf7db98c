//! The signed-in user.

use axum::Json;
use axum::extract::State;
use telemed_commands::Account;
use telemed_commands::executor::last_position;
use telemed_projections::profiles;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem};
use crate::extract::AuthUser;
use crate::routes::views::UserView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// Who the access token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<UserView>, ApiError> {
    let account = state
        .accounts
        .find(user.id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("this account no longer exists".into()))?;
    Ok(Json(user_view(&state, account).await?))
}

/// The account joined with its profile's name and time zone. An account created elsewhere
/// (another process, the CLI) may not be projected yet: then we wait, bounded, for its
/// profile's events.
pub async fn user_view(state: &AppState, account: Account) -> Result<UserView, ApiError> {
    let mut profile = profiles::user_profile(&state.pool, account.id).await?;
    if profile.is_none() {
        let aggregate_type = account.role.profile_aggregate_type();
        let id = account.id.to_string();
        if let Some(position) = last_position(&state.pool, aggregate_type, &id).await? {
            state.settle(position).await?;
            profile = profiles::user_profile(&state.pool, account.id).await?;
        }
    }
    let profile = profile.ok_or_else(|| {
        ApiError::Unavailable(Some("the profile is not in the read model yet".into()))
    })?;
    Ok(UserView {
        id: account.id,
        email: account.email,
        role: account.role,
        name: profile.name,
        timezone: profile.timezone,
    })
}
