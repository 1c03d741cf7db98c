//! Registration, login, `me`, and token checks.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use telemed_api::config::DEVELOPMENT_JWT_SECRET;

use crate::helpers::{PASSWORD, expect_problem, expect_status, problem_fields, spawn_app};

#[tokio::test]
async fn registering_returns_the_user_and_a_working_token() {
    let app = spawn_app().await;
    let response = app
        .register_raw(&json!({
            "email": "Ada@Example.org", "password": PASSWORD, "role": "patient",
            "name": "Ada Lovelace", "timezone": "Europe/London"
        }))
        .await;
    let body = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["email"], "Ada@Example.org");
    assert_eq!(body["user"]["role"], "patient");
    assert_eq!(body["user"]["name"], "Ada Lovelace");
    assert_eq!(body["user"]["timezone"], "Europe/London");

    let token = body["access_token"].as_str().unwrap();
    let me = expect_status(app.get("/api/v1/me", token).await, StatusCode::OK).await;
    assert_eq!(me, body["user"]);
}

#[tokio::test]
async fn logging_in_with_any_case_of_the_email_works() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let response = app.login(&doctor.email.to_uppercase(), PASSWORD).await;
    let body = expect_status(response, StatusCode::OK).await;
    assert_eq!(body["user"]["id"], doctor.id.as_str());
    assert_eq!(body["user"]["role"], "doctor");
    let token = body["access_token"].as_str().unwrap();
    expect_status(app.get("/api/v1/me", token).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_taken_email_in_any_case_is_a_conflict() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let response = app
        .register_raw(&json!({
            "email": patient.email.to_uppercase(), "password": PASSWORD, "role": "doctor",
            "name": "Someone Else", "timezone": "UTC"
        }))
        .await;
    let problem = expect_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], "email_taken");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM credentials")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 1, "the second registration must change nothing");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let wrong_password = expect_problem(
        app.login(&patient.email, "not the password at all").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown_email = expect_problem(
        app.login("nobody@example.org", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong_password, unknown_email);
}

#[tokio::test]
async fn invalid_registrations_name_every_bad_field_and_change_nothing() {
    let app = spawn_app().await;
    let response = app
        .register_raw(&json!({
            "email": "not-an-email", "password": "short", "role": "admin",
            "name": "  ", "timezone": "Mars/Olympus_Mons"
        }))
        .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        problem_fields(&problem),
        vec!["email", "password", "role", "name", "timezone"]
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
}

#[tokio::test]
async fn an_unknown_time_zone_is_rejected_with_422() {
    let app = spawn_app().await;
    let response = app
        .register_raw(&json!({
            "email": "tz@example.org", "password": PASSWORD, "role": "doctor",
            "name": "Dr. Zone", "timezone": "Europe/Atlantis"
        }))
        .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["timezone"]);
}

#[tokio::test]
async fn malformed_bodies_get_problem_json() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/register");

    let broken = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    expect_problem(broken, StatusCode::BAD_REQUEST).await;

    let not_json = app.client.post(&url).body("email=a").send().await.unwrap();
    expect_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let wrong_type = app
        .register_raw(&json!({
            "email": 42, "password": PASSWORD, "role": "patient", "name": "A", "timezone": "UTC"
        }))
        .await;
    let problem = expect_problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["email"]);

    let missing = app.register_raw(&json!({ "email": "a@example.org" })).await;
    let problem = expect_problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["password"]);

    let unknown = app
        .register_raw(&json!({
            "email": "a@example.org", "password": PASSWORD, "role": "patient", "name": "A",
            "timezone": "UTC", "is_admin": true
        }))
        .await;
    let problem = expect_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["is_admin"]);

    let huge = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024)))
        .send()
        .await
        .unwrap();
    expect_problem(huge, StatusCode::PAYLOAD_TOO_LARGE).await;
}

/// The claims of `token` (not verified: the test made it, or the server did).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&json).expect("JSON claims")
}

/// A token with `token`'s claims (a live session's `sid` and all) changed by `change`, signed
/// with `algorithm` and `secret`.
pub fn resigned(
    token: &str,
    change: impl FnOnce(&mut Value),
    algorithm: Algorithm,
    secret: &str,
) -> String {
    let mut claims = claims_of(token);
    change(&mut claims);
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(algorithm), &claims, &key).unwrap()
}

/// `token` with its claims changed by `change`, signed as the server signs (HS256, the
/// development secret): valid in every respect but the change.
pub fn altered(token: &str, change: impl FnOnce(&mut Value)) -> String {
    resigned(token, change, Algorithm::HS256, DEVELOPMENT_JWT_SECRET)
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Asserts a 401 problem with `detail`, code `unauthenticated` and `WWW-Authenticate: Bearer`.
pub async fn expect_refused(response: reqwest::Response, detail: &str, what: &str) {
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..]),
        "{what}"
    );
    let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        (problem["code"].as_str(), problem["detail"].as_str()),
        (Some("unauthenticated"), Some(detail)),
        "{what}: {problem}"
    );
}

#[tokio::test]
async fn each_bad_token_is_refused_with_401_for_its_own_reason() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let real = &patient.token;
    // The re-signed, unchanged claims are accepted: each case below differs in one respect.
    let copy = altered(real, |_| {});
    expect_status(app.get("/api/v1/me", &copy).await, StatusCode::OK).await;

    let mut payload = claims_of(real);
    payload["role"] = "admin".into();
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        payload.to_string(),
    );
    let parts: Vec<&str> = real.split('.').collect();
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    // {"alg":"none","typ":"JWT"}
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let without_session = altered(real, |c| {
        c.as_object_mut().unwrap().remove("sid");
    });
    let cases = [
        (
            "expired",
            altered(real, |c| c["exp"] = (unix_now() - 120).into()),
            "the access token has expired",
        ),
        (
            "wrong audience",
            altered(real, |c| c["aud"] = "someone-else".into()),
            "the access token is not meant for this API",
        ),
        (
            "wrong issuer",
            altered(real, |c| c["iss"] = "evil".into()),
            "the access token was not issued by this service",
        ),
        (
            "issued in the future",
            altered(real, |c| c["iat"] = (unix_now() + 600).into()),
            "the access token is issued in the future",
        ),
        (
            "no session",
            without_session,
            "the access token lacks a required claim or has one of the wrong type",
        ),
        (
            "wrong secret",
            resigned(
                real,
                |_| {},
                Algorithm::HS256,
                "not-the-server-secret-at-all!!!!",
            ),
            "the access token's signature is invalid",
        ),
        (
            "claims changed after signing",
            tampered,
            "the access token's signature is invalid",
        ),
        (
            "alg none",
            unsigned,
            "the access token uses an unaccepted algorithm",
        ),
        (
            // The algorithm is fixed, even with the right secret.
            "HS512",
            resigned(real, |_| {}, Algorithm::HS512, DEVELOPMENT_JWT_SECRET),
            "the access token uses an unaccepted algorithm",
        ),
        (
            "garbage",
            "not.a.token".to_string(),
            "the access token is malformed",
        ),
    ];
    for (what, token, detail) in cases {
        expect_refused(app.get("/api/v1/me", &token).await, detail, what).await;
    }

    let no_token = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    expect_refused(
        no_token,
        "an Authorization: Bearer token is required",
        "no token",
    )
    .await;
}

#[tokio::test]
async fn admins_and_auditors_cannot_register_over_http() {
    let app = spawn_app().await;
    for role in ["admin", "auditor"] {
        let response = app
            .register_raw(&json!({
                "email": format!("{role}@example.org"), "password": PASSWORD, "role": role,
                "name": "Root", "timezone": "UTC"
            }))
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), vec!["role"]);
    }
}

#[tokio::test]
async fn an_email_left_by_a_registration_that_crashed_can_register_again() {
    let app = spawn_app().await;
    // Credentials without a profile event, as a crash between the two would leave them.
    sqlx::query(
        "INSERT INTO credentials (user_id, email, password_hash, role, created_at)
         VALUES ($1, 'lost@example.org', 'x', 'patient', now() - interval '5 minutes')",
    )
    .bind(uuid::Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap();
    let body = json!({
        "email": "lost@example.org", "password": PASSWORD, "role": "patient",
        "name": "Lost", "timezone": "UTC"
    });
    let registered = expect_status(app.register_raw(&body).await, StatusCode::CREATED).await;
    assert_eq!(registered["user"]["email"], "lost@example.org");
    // A live account's e-mail stays taken.
    expect_problem(app.register_raw(&body).await, StatusCode::CONFLICT).await;
}
