//! Rate limits: 429 problem+json with `Retry-After`, per IP, per account (with a lockout kept
//! in the database), per user and per live connection; normal use stays under them.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestDb, expect_problem, expect_status, spawn_app_on};
use crate::live::{Ws, consultation};

async fn limited_app() -> TestApp {
    spawn_app_on(TestDb::create().await, |config| config.rate_limits = true).await
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// The `Retry-After` seconds of a 429, after checking its problem document.
async fn expect_rate_limited(response: reqwest::Response) -> (u64, Value) {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After on a 429")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1);
    let problem = expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    (retry_after, problem)
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let app = limited_app().await;
    let first = client_from([127, 0, 0, 11]);
    for n in 0..20 {
        let response = login_from(&app, &first, &format!("nobody-{n}@example.org"), "x").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let (retry_after, _) =
        expect_rate_limited(login_from(&app, &first, "nobody@example.org", "x").await).await;
    assert!(retry_after <= 60, "{retry_after}");
    // Registration shares the address's budget.
    let register = first
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_rate_limited(register).await;

    // Another address is not affected.
    let other = client_from([127, 0, 0, 12]);
    let response = login_from(&app, &other, "nobody@example.org", "x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_on_every_process_and_success_resets_the_count() {
    let app = limited_app().await;
    let user = app.patient().await;
    let bystander = app.patient().await;

    // Two failures, then a success: the count starts over (four more failures do not lock).
    for _ in 0..2 {
        let response = app.login(&user.email, "wrong password here").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    expect_status(app.login(&user.email, PASSWORD).await, StatusCode::OK).await;
    for _ in 0..4 {
        let response = app.login(&user.email, "wrong password here").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The fifth consecutive failure locks the account: even the right password is refused,
    // from any address, with the lockout's remaining time.
    let response = app.login(&user.email, "wrong password here").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let elsewhere = client_from([127, 0, 0, 21]);
    let (retry_after, problem) =
        expect_rate_limited(login_from(&app, &elsewhere, &user.email, PASSWORD).await).await;
    assert!((800..=900).contains(&retry_after), "{retry_after}");
    assert!(
        problem["detail"].as_str().unwrap().contains("locked"),
        "{problem}"
    );
    // The e-mail's case does not matter.
    expect_rate_limited(login_from(&app, &elsewhere, &user.email.to_uppercase(), PASSWORD).await)
        .await;
    // Another process on the same database honours the lockout.
    let (mut child, second) =
        crate::helpers::spawn_process_with(&app.db.url, &[("TELEMED_RATE_LIMITS", "on")]).await;
    expect_rate_limited(second.login(&user.email, PASSWORD).await).await;
    // Other accounts sign in as usual.
    expect_status(app.login(&bystander.email, PASSWORD).await, StatusCode::OK).await;
    child.kill().await.unwrap();
}

#[tokio::test]
async fn sign_ins_are_limited_per_account_across_addresses() {
    let app = limited_app().await;
    let user = app.patient().await;
    for n in 0..10u8 {
        let client = client_from([127, 0, 1, n + 1]);
        expect_status(
            login_from(&app, &client, &user.email, PASSWORD).await,
            StatusCode::OK,
        )
        .await;
    }
    let client = client_from([127, 0, 1, 100]);
    expect_rate_limited(login_from(&app, &client, &user.email, PASSWORD).await).await;
}

#[tokio::test]
async fn each_user_has_a_request_budget_and_others_are_unaffected() {
    let app = limited_app().await;
    let busy = app.patient().await;
    let calm = app.patient().await;
    let mut refused = None;
    for _ in 0..150 {
        let response = app.get("/api/v1/me", &busy.token).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = refused.expect("a 429 within 150 immediate requests");
    expect_rate_limited(refused).await;
    expect_status(app.get("/api/v1/me", &calm.token).await, StatusCode::OK).await;
}

#[tokio::test]
async fn chat_is_limited_per_connection() {
    let app = limited_app().await;
    let (_, patient, id) = consultation(&app, 9).await;
    let id = id.as_str();
    let mut ws = Ws::connect(&app, &patient).await;
    // Sent back to back, faster than the 5 a second that replenish the burst of 20.
    let acks = ws
        .pipelined(
            (0..60)
                .map(|n| {
                    let data = json!({ "appointment_id": id, "content": format!("message {n}") });
                    ("chat:send", data)
                })
                .collect(),
        )
        .await;
    let accepted = acks.iter().filter(|ack| ack["error"].is_null()).count();
    assert!((20..60).contains(&accepted), "{accepted} of 60 accepted");
    let limited = acks
        .iter()
        .find(|ack| ack["error"].is_object())
        .unwrap()
        .clone();
    assert_eq!(limited["error"]["status"], 429, "{limited}");
    assert_eq!(limited["error"]["code"], "rate_limited", "{limited}");
    // The connection stays usable.
    ws.expect_usable().await;
}

#[tokio::test]
async fn a_normal_consultation_stays_under_every_limit() {
    let app = limited_app().await;
    let (doctor, patient, id) = consultation(&app, 10).await;
    let id = id.as_str();
    expect_status(
        app.act(&doctor, id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    for user in [&doctor, &patient] {
        expect_status(app.login(&user.email, PASSWORD).await, StatusCode::OK).await;
        expect_status(app.get("/api/v1/me", &user.token).await, StatusCode::OK).await;
        expect_status(
            app.get("/api/v1/appointments", &user.token).await,
            StatusCode::OK,
        )
        .await;
        expect_status(app.appointment(user, id).await, StatusCode::OK).await;
    }
    let mut ws = Ws::connect(&app, &patient).await;
    for n in 0..10 {
        let ack = ws
            .request(
                "chat:send",
                json!({ "appointment_id": id, "content": format!("hello {n}") }),
            )
            .await;
        assert!(ack["error"].is_null(), "{ack}");
    }
    expect_status(
        app.get(
            &format!("/api/v1/appointments/{id}/messages"),
            &doctor.token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
}
