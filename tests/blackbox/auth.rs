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

pub fn claims(sub: &str, exp_offset: i64, aud: &str, iss: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({ "sub": sub, "role": "admin", "iat": now, "exp": now + exp_offset, "iss": iss, "aud": aud })
}

pub fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn bad_tokens_are_rejected_with_401() {
    let app = spawn_app().await;
    let patient = app.patient().await;
    let sub = patient.id.as_str();

    let expired = sign(
        &claims(sub, -120, "telemed-api", "telemed"),
        DEVELOPMENT_JWT_SECRET,
    );
    let wrong_audience = sign(
        &claims(sub, 600, "someone-else", "telemed"),
        DEVELOPMENT_JWT_SECRET,
    );
    let wrong_issuer = sign(
        &claims(sub, 600, "telemed-api", "evil"),
        DEVELOPMENT_JWT_SECRET,
    );
    let wrong_secret = sign(
        &claims(sub, 600, "telemed-api", "telemed"),
        "not-the-server-secret-at-all!!!!",
    );
    let mut tampered = patient.token.clone();
    tampered.pop();
    tampered.push(if patient.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let payload = patient.token.split('.').nth(1).unwrap();
    // {"alg":"none","typ":"JWT"}
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    // {"alg":"HS512","typ":"JWT"} signed with the right secret: the algorithm is fixed.
    let other_algorithm = encode(
        &Header::new(Algorithm::HS512),
        &claims(sub, 600, "telemed-api", "telemed"),
        &EncodingKey::from_secret(DEVELOPMENT_JWT_SECRET.as_bytes()),
    )
    .unwrap();

    for (what, token) in [
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("wrong issuer", wrong_issuer),
        ("wrong secret", wrong_secret),
        ("tampered", tampered),
        ("alg none", unsigned),
        ("HS512", other_algorithm),
        ("garbage", "not.a.token".to_string()),
    ] {
        let response = app.get("/api/v1/me", &token).await;
        let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("token"),
            "{what}: {problem}"
        );
    }

    let no_token = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(
        no_token.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    expect_problem(no_token, StatusCode::UNAUTHORIZED).await;
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
