//! The `telemed` binary's commands.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{PASSWORD, TestApp, TestDb, expect_status, spawn_app};

async fn telemed(args: &[&str], db: &TestDb, env: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(TestApp::binary())
        .args(args)
        .env("DATABASE_URL", &db.url)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run telemed")
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDb::create().await;
    for _ in 0..2 {
        let output = telemed(&["migrate"], &db, &[]).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn user_create_refuses_bad_input_and_duplicates() {
    let app = spawn_app().await;
    let base = [
        "user",
        "create",
        "--email",
        "ops@example.org",
        "--password",
        PASSWORD,
        "--name",
        "Ops",
    ];

    let bad_role = telemed(
        &[&base[..], &["--role", "superuser"]].concat(),
        &app.db,
        &[],
    )
    .await;
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("superuser"));

    let weak = telemed(
        &[
            "user",
            "create",
            "--role",
            "admin",
            "--email",
            "weak@example.org",
            "--password",
            "short",
            "--name",
            "W",
        ],
        &app.db,
        &[],
    )
    .await;
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("--password must be at least 10 characters")
    );

    let first = telemed(&[&base[..], &["--role", "auditor"]].concat(), &app.db, &[]).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = telemed(&[&base[..], &["--role", "admin"]].concat(), &app.db, &[]).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let body = expect_status(app.login("OPS@example.org", PASSWORD).await, StatusCode::OK).await;
    assert_eq!(body["user"]["role"], "auditor");
    assert_eq!(body["user"]["timezone"], "UTC");
}

#[tokio::test]
async fn production_mode_refuses_to_start_without_a_strong_secret() {
    let db = TestDb::create().await;
    for secret in [None, Some("too-short")] {
        let mut env = vec![
            ("TELEMED_ENV", "production"),
            ("TELEMED_BIND", "127.0.0.1:0"),
        ];
        if let Some(secret) = secret {
            env.push(("TELEMED_JWT_SECRET", secret));
        }
        let output = telemed(&["serve"], &db, &env).await;
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("TELEMED_JWT_SECRET"), "{stderr}");
    }
}

#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    let db = TestDb::create().await;
    let mut child = tokio::process::Command::new(TestApp::binary())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("TELEMED_BIND", "127.0.0.1:0")
        .env("TELEMED_ENV", "production")
        .env("TELEMED_JWT_SECRET", "a-production-secret-of-enough-length")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the server logs its port");
        if let Some(rest) = line.split("port=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let health = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
