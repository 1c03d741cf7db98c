//! ICE servers for WebRTC: configured STUN URLs and, with a TURN shared secret, time-limited
//! TURN credentials in the TURN REST API form coturn accepts with `use-auth-secret`:
//! `username = "<expiry unix time>:<user id>"`, `credential = base64(HMAC-SHA1(secret,
//! username))`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha1::Sha1;
use telemed_domain::UserId;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem};
use crate::extract::AuthUser;
use crate::state::AppState;

/// The ICE route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ice_servers))
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN user name (`<expiry>:<user id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password for `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// ICE servers and how long their credentials last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IceServers {
    /// Pass as `iceServers` to `RTCPeerConnection`.
    pub ice_servers: Vec<IceServer>,
    /// Seconds the TURN credentials stay valid.
    pub ttl: u64,
}

/// TURN REST API credentials of `user` valid until `expiry` (Unix seconds).
pub fn turn_credentials(secret: &str, user: UserId, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{user}");
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The ICE servers a signed-in user's WebRTC client should use.
#[utoipa::path(get, path = "/api/v1/ice-servers", tag = "calls", security(("bearer" = [])),
    responses((status = 200, body = IceServers),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn ice_servers(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<IceServers>, ApiError> {
    ice_servers_for(&state, user.id).map(Json)
}

/// The ICE servers of `user` (TURN credentials are per user).
pub fn ice_servers_for(state: &AppState, user: UserId) -> Result<IceServers, ApiError> {
    let ice = &state.ice;
    let ttl = ice.turn_ttl.as_secs();
    let mut servers = Vec::new();
    if !ice.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: ice.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let Some(secret) = &ice.turn_secret
        && !ice.turn_urls.is_empty()
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(ApiError::internal)?
            .as_secs();
        let (username, credential) = turn_credentials(secret.expose_secret(), user, now + ttl);
        servers.push(IceServer {
            urls: ice.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    Ok(IceServers {
        ice_servers: servers,
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_match_the_turn_rest_api() {
        // Computed independently: base64(HMAC-SHA1(b"north", username)) with Python's hmac.
        let user: UserId = "3f0c6e0e-0000-4000-8000-000000000001".parse().unwrap();
        let (username, credential) = turn_credentials("north", user, 1_700_000_000);
        assert_eq!(username, "1700000000:3f0c6e0e-0000-4000-8000-000000000001");
        assert_eq!(credential, "FGowL2Vp5s59EWkSCG0vep1NZN0=");
    }
}
