//! Token hygiene: short-lived access tokens, rotating single-use refresh tokens, sign-out that
//! revokes every session of the user on every process and closes their live connections.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auth::expect_refused;
use crate::helpers::{
    PASSWORD, TestApp, eventually, expect_problem, expect_status, spawn_app, spawn_process,
};
use crate::live::{Ws, ws_refusal};

/// The `detail` of a 401 for a token of a revoked session.
const SIGNED_OUT: &str = "the session of this access token has been signed out";

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/refresh",
        None,
        &json!({ "refresh_token": token }),
    )
    .await
}

async fn sign_in(app: &TestApp, email: &str) -> Value {
    expect_status(app.login(email, PASSWORD).await, StatusCode::OK).await
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_string()
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me", token).await.status()
}

#[tokio::test]
async fn sign_in_hands_out_a_short_access_token_and_a_refresh_token() {
    let app = spawn_app().await;
    let user = app.patient().await;
    let body = sign_in(&app, &user.email).await;
    assert_eq!(body["expires_in"], 900, "{body}");
    assert_eq!(body["refresh_expires_in"], 30 * 86_400, "{body}");
    assert!(text(&body, "refresh_token").len() >= 40, "{body}");
    assert_eq!(body["user"]["id"], user.id.as_str());
}

#[tokio::test]
async fn a_refresh_token_works_once_and_its_reuse_signs_the_session_out() {
    let app = spawn_app().await;
    let user = app.patient().await;
    let first = sign_in(&app, &user.email).await;
    let other_session = sign_in(&app, &user.email).await;

    let renewed = expect_status(
        refresh(&app, &text(&first, "refresh_token")).await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(renewed["refresh_token"], first["refresh_token"]);
    assert_eq!(renewed["user"]["id"], user.id.as_str());
    assert_eq!(
        me_status(&app, &text(&renewed, "access_token")).await,
        StatusCode::OK
    );

    // The spent token again: someone copied it. The whole session ends.
    let problem = expect_problem(
        refresh(&app, &text(&first, "refresh_token")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        problem["detail"],
        "the refresh token was already used, so the session has been signed out; sign in again",
        "{problem}"
    );
    expect_problem(
        refresh(&app, &text(&renewed, "refresh_token")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    for token in [text(&first, "access_token"), text(&renewed, "access_token")] {
        assert_eq!(me_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    }
    // The user's other session is untouched.
    assert_eq!(
        me_status(&app, &text(&other_session, "access_token")).await,
        StatusCode::OK
    );
    expect_status(
        refresh(&app, &text(&other_session, "refresh_token")).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn bad_refresh_requests_are_named_and_unknown_tokens_refused() {
    let app = spawn_app().await;
    let empty = expect_problem(refresh(&app, "  ").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(empty["errors"][0]["field"], "refresh_token", "{empty}");
    let missing = app.post("/api/v1/auth/refresh", None, &json!({})).await;
    assert!(missing.status().is_client_error());
    assert_ne!(missing.status(), StatusCode::UNAUTHORIZED);
    expect_problem(
        refresh(&app, "not-a-token-we-issued").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn sign_out_revokes_every_session_on_every_process_and_closes_their_sockets() {
    let app = spawn_app().await;
    let user = app.patient().await;
    let bystander = app.patient().await;
    let (_child, second) = spawn_process(&app.db.url).await;
    let here = sign_in(&app, &user.email).await;
    let there = sign_in(&second, &user.email).await;

    let mut ws_here = Ws::connect_with(&app, &text(&here, "access_token")).await;
    let mut ws_there = Ws::connect_with(&second, &text(&there, "access_token")).await;
    let mut ws_bystander = Ws::connect(&app, &bystander).await;
    // Both connections are up (an answered request proves the session started).
    for ws in [&mut ws_here, &mut ws_there] {
        ws.expect_usable().await;
    }

    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(text(&here, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Live connections of the user close on both processes, with the reason.
    for ws in [&mut ws_here, &mut ws_there] {
        let (code, reason) = ws.expect_close().await;
        assert_eq!((code, reason.as_str()), (4001, "signed out"));
    }
    // Every token of every session of the user is refused, on both processes; the process
    // that did not handle the sign-out learns of it through PostgreSQL.
    for token in [text(&here, "access_token"), text(&there, "access_token")] {
        expect_refused(app.get("/api/v1/me", &token).await, SIGNED_OUT, "here").await;
        eventually(
            "the other process refuses the token",
            std::time::Duration::from_secs(5),
            || async { me_status(&second, &token).await == StatusCode::UNAUTHORIZED },
        )
        .await;
        expect_refused(second.get("/api/v1/me", &token).await, SIGNED_OUT, "there").await;
    }
    for token in [text(&here, "refresh_token"), text(&there, "refresh_token")] {
        expect_problem(refresh(&app, &token).await, StatusCode::UNAUTHORIZED).await;
    }
    // A new connection with an old token is refused before the upgrade.
    let (status, problem) = ws_refusal(&app, &text(&here, "access_token")).await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (401, Some(SIGNED_OUT))
    );

    // Others are not affected, and the user can sign in again.
    ws_bystander.expect_usable().await;
    let again = sign_in(&app, &user.email).await;
    assert_eq!(
        me_status(&second, &text(&again, "access_token")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_process_started_after_a_sign_out_refuses_the_old_tokens() {
    let app = spawn_app().await;
    let user = app.patient().await;
    let session = sign_in(&app, &user.email).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(text(&session, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_child, later) = spawn_process(&app.db.url).await;
    let old = text(&session, "access_token");
    expect_refused(later.get("/api/v1/me", &old).await, SIGNED_OUT, "later").await;
}
