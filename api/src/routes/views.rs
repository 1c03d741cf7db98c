//! Response bodies shared by several routes.

use serde::Serialize;
use telemed_domain::{Role, UserId};

/// The signed-in user, as `GET /me` and the auth routes return it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// User id.
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    /// Login e-mail.
    pub email: String,
    /// Role.
    #[schema(value_type = String, example = "patient")]
    pub role: Role,
    /// Display name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
}

/// A session: the user and an access token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthResponse {
    /// The user.
    pub user: UserView,
    /// Bearer token for the `Authorization` header.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque token for `POST /api/v1/auth/refresh`; single use (each refresh returns the
    /// next one), revoked on sign-out.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}
