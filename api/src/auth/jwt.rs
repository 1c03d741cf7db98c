//! HS256 access tokens with `sub`, `role`, `sid`, `iat`, `exp`, `iss` and `aud`, all checked,
//! and refused once their session (`sid`) is revoked.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use telemed_domain::{Role, UserId};
use uuid::Uuid;

use super::sessions::Revocations;

use crate::error::ApiError;

/// Issuer of our tokens.
pub const ISSUER: &str = "telemed";
/// Audience of our access tokens.
pub const AUDIENCE: &str = "telemed-api";
/// Clock skew tolerated when checking `exp` and `iat`, in seconds.
const LEEWAY_SECONDS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role at issue time.
    pub role: Role,
    /// The sign-in session.
    pub sid: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Verified facts from a token.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Who.
    pub user_id: UserId,
    /// Role.
    pub role: Role,
    /// The sign-in session.
    pub sid: Uuid,
    /// When it expires (seconds since the epoch).
    pub expires_at: u64,
}

/// Signs and verifies access tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    revocations: Arc<Revocations>,
}

impl JwtKeys {
    /// Keys from a shared secret; tokens live for `ttl`.
    pub fn new(secret: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["sub", "exp", "iat", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl,
            revocations: Arc::default(),
        }
    }

    /// The sessions revoked lately (their tokens are refused).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Lifetime of new tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new access token for `user_id` in `role`, of session `sid`.
    pub fn issue(&self, user_id: UserId, role: Role, sid: Uuid) -> Result<String, ApiError> {
        let now = now();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            sid,
            iat: now,
            exp: now + self.ttl.as_secs(),
            iss: ISSUER.to_string(),
            aud: AUDIENCE.to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// Checks signature, algorithm, issuer, audience, expiry and issue time.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            ApiError::Unauthenticated(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the access token has expired",
                    ErrorKind::InvalidAudience => "the access token is not meant for this API",
                    ErrorKind::InvalidIssuer => "the access token was not issued by this service",
                    ErrorKind::InvalidAlgorithm => "the access token uses an unaccepted algorithm",
                    ErrorKind::InvalidSignature => "the access token's signature is invalid",
                    ErrorKind::MissingRequiredClaim(_) => "the access token lacks a required claim",
                    _ => "the access token is malformed",
                }
                .to_string(),
            )
        })?;
        let claims = data.claims;
        if claims.iat > now() + LEEWAY_SECONDS {
            return Err(ApiError::Unauthenticated(
                "the access token is issued in the future".into(),
            ));
        }
        let user_id = claims.sub.parse().map_err(|_| {
            ApiError::Unauthenticated("the access token's subject is not a user id".into())
        })?;
        if self.revocations.is_revoked(claims.sid) {
            return Err(ApiError::Unauthenticated(
                "the session of this access token has been signed out".into(),
            ));
        }
        Ok(VerifiedToken {
            user_id,
            role: claims.role,
            sid: claims.sid,
            expires_at: claims.exp,
        })
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            "a-test-secret-that-is-long-enough!!",
            Duration::from_secs(60),
        )
    }

    #[test]
    fn an_issued_token_verifies() {
        let keys = keys();
        let id = UserId::new();
        let token = keys.issue(id, Role::Doctor, Uuid::new_v4()).unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified.user_id, id);
        assert_eq!(verified.role, Role::Doctor);
    }

    #[test]
    fn a_token_of_a_revoked_session_is_refused_and_other_sessions_are_not() {
        let keys = keys();
        let (gone, kept) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(UserId::new(), Role::Patient, gone).unwrap();
        let other = keys.issue(UserId::new(), Role::Patient, kept).unwrap();
        keys.revocations().revoke([gone], Duration::from_secs(60));
        assert!(keys.verify(&token).is_err());
        assert_eq!(keys.verify(&other).unwrap().sid, kept);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = JwtKeys::new(
            "another-secret-that-is-long-enough!",
            Duration::from_secs(60),
        );
        let token = other
            .issue(UserId::new(), Role::Admin, Uuid::new_v4())
            .unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // header {"alg":"none","typ":"JWT"}
        let token = keys()
            .issue(UserId::new(), Role::Admin, Uuid::new_v4())
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let forged = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(keys().verify(&forged).is_err());
    }
}
