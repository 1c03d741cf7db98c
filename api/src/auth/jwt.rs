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

    /// Checks signature, algorithm, issuer, audience, expiry and issue time. Each reason for a
    /// refusal has its own `detail` (see `refusal`); none quotes the token or the secret.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, ApiError> {
        if names_another_algorithm(token) {
            return Err(ApiError::Unauthenticated(UNACCEPTED_ALGORITHM.into()));
        }
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| ApiError::Unauthenticated(refusal(e.kind()).into()))?;
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

/// The live transports verify tokens and hear of revocations through these keys.
impl telemed_live::Tokens for JwtKeys {
    fn verify(&self, token: &str) -> Result<telemed_live::Identity, ApiError> {
        let verified = JwtKeys::verify(self, token)?;
        Ok(telemed_live::Identity {
            user: verified.user_id,
            role: verified.role,
            sid: verified.sid,
            expires_at: verified.expires_at,
        })
    }

    fn is_revoked(&self, sid: Uuid) -> bool {
        self.revocations.is_revoked(sid)
    }

    fn revoke(&self, sids: &[Uuid]) {
        self.revocations.revoke(sids.iter().copied(), self.ttl);
    }

    fn reload<'a>(
        &'a self,
        pool: &'a sqlx::PgPool,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Uuid>, sqlx::Error>> {
        Box::pin(self.revocations.reload(pool, self.ttl))
    }
}

const MISSING_CLAIM: &str = "the access token lacks a required claim or has one of the wrong type";
const UNACCEPTED_ALGORITHM: &str = "the access token uses an unaccepted algorithm";

/// The `detail` of a token refused by the JWT library for `kind`.
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "the access token has expired",
        ErrorKind::InvalidAudience => "the access token is not meant for this API",
        ErrorKind::InvalidIssuer => "the access token was not issued by this service",
        ErrorKind::InvalidAlgorithm => UNACCEPTED_ALGORITHM,
        ErrorKind::InvalidSignature => "the access token's signature is invalid",
        ErrorKind::MissingRequiredClaim(_) => MISSING_CLAIM,
        // The claims (`sid` too) deserialise into `Claims`: a missing or mistyped one.
        ErrorKind::Json(e) if e.classify() == serde_json::error::Category::Data => MISSING_CLAIM,
        _ => "the access token is malformed",
    }
}

/// Whether the token's header names an algorithm other than HS256 (`none`, `RS256`, ...),
/// which the JWT library would only report as a malformed header when it does not know it.
fn names_another_algorithm(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return false;
    };
    header["alg"].as_str().is_some_and(|alg| alg != "HS256")
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

    const SECRET: &str = "a-test-secret-that-is-long-enough!!";

    fn keys() -> JwtKeys {
        JwtKeys::new(SECRET, Duration::from_secs(60))
    }

    /// Claims as `issue` makes them, for a live session.
    fn valid_claims() -> Claims {
        let now = now();
        Claims {
            sub: UserId::new().to_string(),
            role: Role::Patient,
            sid: Uuid::new_v4(),
            iat: now,
            exp: now + 60,
            iss: ISSUER.to_string(),
            aud: AUDIENCE.to_string(),
        }
    }

    /// A token of `claims` signed with `algorithm` and `secret`.
    fn signed(claims: &impl Serialize, algorithm: Algorithm, secret: &str) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes());
        encode(&Header::new(algorithm), claims, &key).unwrap()
    }

    /// A token of valid claims changed by `change`, signed as the server signs.
    fn token_with(change: impl FnOnce(&mut Claims)) -> String {
        let mut claims = valid_claims();
        change(&mut claims);
        signed(&claims, Algorithm::HS256, SECRET)
    }

    /// The `detail` of the refusal of `token`.
    fn refusal_of(keys: &JwtKeys, token: &str) -> String {
        match keys.verify(token) {
            Err(ApiError::Unauthenticated(detail)) => detail,
            other => panic!("expected a 401, got {other:?}"),
        }
    }

    #[test]
    fn an_issued_token_verifies() {
        let keys = keys();
        let (id, sid) = (UserId::new(), Uuid::new_v4());
        let token = keys.issue(id, Role::Doctor, sid).unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(verified.user_id, id);
        assert_eq!(verified.role, Role::Doctor);
        assert_eq!(verified.sid, sid);
    }

    #[test]
    fn the_test_tokens_are_valid_unless_changed() {
        assert!(keys().verify(&token_with(|_| {})).is_ok());
    }

    #[test]
    fn each_invalid_claim_is_refused_for_its_own_reason() {
        let keys = keys();
        type Change = fn(&mut Claims);
        let cases: [(&str, Change); 5] = [
            ("the access token has expired", |c| {
                c.exp = now() - LEEWAY_SECONDS - 60
            }),
            ("the access token is not meant for this API", |c| {
                c.aud = "someone-else".into()
            }),
            ("the access token was not issued by this service", |c| {
                c.iss = "evil".into()
            }),
            ("the access token is issued in the future", |c| {
                c.iat = now() + LEEWAY_SECONDS + 60
            }),
            ("the access token's subject is not a user id", |c| {
                c.sub = "root".into()
            }),
        ];
        for (reason, change) in cases {
            assert_eq!(refusal_of(&keys, &token_with(change)), reason);
        }
    }

    #[test]
    fn expiry_tolerates_the_leeway_and_no_more() {
        let keys = keys();
        let within = token_with(|c| c.exp = now() - LEEWAY_SECONDS + 2);
        assert!(keys.verify(&within).is_ok());
        let beyond = token_with(|c| c.exp = now() - LEEWAY_SECONDS - 2);
        assert_eq!(refusal_of(&keys, &beyond), "the access token has expired");
    }

    #[test]
    fn a_token_without_a_session_or_expiry_is_refused() {
        let keys = keys();
        let mut claims = serde_json::to_value(valid_claims()).unwrap();
        claims.as_object_mut().unwrap().remove("exp");
        let no_expiry = signed(&claims, Algorithm::HS256, SECRET);
        assert_eq!(refusal_of(&keys, &no_expiry), MISSING_CLAIM);
        let mut claims = serde_json::to_value(valid_claims()).unwrap();
        claims.as_object_mut().unwrap().remove("sid");
        let no_session = signed(&claims, Algorithm::HS256, SECRET);
        assert_eq!(refusal_of(&keys, &no_session), MISSING_CLAIM);
        let mut claims = serde_json::to_value(valid_claims()).unwrap();
        claims["sid"] = "not a session".into();
        let bad_session = signed(&claims, Algorithm::HS256, SECRET);
        assert_eq!(refusal_of(&keys, &bad_session), MISSING_CLAIM);
    }

    #[test]
    fn a_token_of_a_revoked_session_is_refused_and_other_sessions_are_not() {
        let keys = keys();
        let (gone, kept) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(UserId::new(), Role::Patient, gone).unwrap();
        let other = keys.issue(UserId::new(), Role::Patient, kept).unwrap();
        keys.revocations().revoke([gone], Duration::from_secs(60));
        assert_eq!(
            refusal_of(&keys, &token),
            "the session of this access token has been signed out"
        );
        assert_eq!(keys.verify(&other).unwrap().sid, kept);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = signed(
            &valid_claims(),
            Algorithm::HS256,
            "another-secret-long-enough!!!",
        );
        assert_eq!(
            refusal_of(&keys(), &token),
            "the access token's signature is invalid"
        );
    }

    #[test]
    fn a_token_whose_claims_were_changed_after_signing_is_refused() {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = keys()
            .issue(UserId::new(), Role::Patient, Uuid::new_v4())
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = "admin".into();
        let forged = engine.encode(claims.to_string());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(
            refusal_of(&keys(), &tampered),
            "the access token's signature is invalid"
        );
    }

    #[test]
    fn tokens_of_other_algorithms_and_unsigned_tokens_are_refused() {
        let keys = keys();
        let hs512 = signed(&valid_claims(), Algorithm::HS512, SECRET);
        assert_eq!(refusal_of(&keys, &hs512), UNACCEPTED_ALGORITHM);
        // header {"alg":"none","typ":"JWT"}
        let token = token_with(|_| {});
        let payload = token.split('.').nth(1).unwrap();
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(refusal_of(&keys, &unsigned), UNACCEPTED_ALGORITHM);
    }

    #[test]
    fn garbage_is_malformed() {
        for garbage in ["", "not.a.token", "a.b", "..."] {
            assert_eq!(
                refusal_of(&keys(), garbage),
                "the access token is malformed",
                "{garbage:?}"
            );
        }
    }
}
