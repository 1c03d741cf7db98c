//! The authenticated user, from a `Bearer` access token.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::sync::Arc;
use telemed_commands::{Actor, CommandContext};
use telemed_domain::{Role, UserId};

use crate::auth::jwt::{JwtKeys, VerifiedToken};
use crate::error::ApiError;
use crate::extract::RequestId;

/// A request made by a user holding a valid access token.
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// Who.
    pub id: UserId,
    /// In which role.
    pub role: Role,
    /// The request's correlation id.
    pub request_id: String,
}

impl AuthUser {
    /// The command context for commands this user issues.
    pub fn context(&self) -> CommandContext {
        CommandContext::new(
            Actor::User {
                id: self.id,
                role: self.role,
            },
            self.request_id.clone(),
        )
    }

    /// 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role], action: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "a {} cannot {action}",
                self.role
            )))
        }
    }
}

use telemed_live::ws::bearer_token;

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<JwtKeys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<JwtKeys>::from_ref(state);
        // `crate::auth::identify` has verified a valid token already.
        let claims = match parts.extensions.get::<VerifiedToken>() {
            Some(verified) => verified.clone(),
            None => keys.verify(bearer_token(&parts.headers)?)?,
        };
        let RequestId(request_id) = RequestId::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        Ok(AuthUser {
            id: claims.user_id,
            role: claims.role,
            request_id,
        })
    }
}
