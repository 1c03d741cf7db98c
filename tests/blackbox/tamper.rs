//! The tamper-evident log: `telemed audit verify` against the hash chain the server seals,
//! `GET /api/v1/audit/head`, and each kind of tampering a superuser could do with the
//! append-only trigger switched off (a changed payload, a deleted event, a reordering, a
//! forged insert, a rewritten chain), each found and named, each in its own database.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::chat::Consultation;
use crate::helpers::{
    TestApp, User, eventually, expect_problem, expect_status, projections_caught_up,
};

/// Runs `telemed audit verify` (with `args`) on the app's database.
async fn verify(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(TestApp::binary())
        .args(["audit", "verify"])
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .output()
        .await
        .expect("run telemed audit verify")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A booked, confirmed, rescheduled-and-chatted consultation, sealed to the end; the auditor.
async fn sealed_history() -> (Consultation, User) {
    let c = Consultation::book().await;
    expect_status(
        c.app.act(&c.doctor, &c.id, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    c.post(&c.patient, "Hello doctor").await;
    c.post(&c.doctor, "Hello, see you then").await;
    c.post(&c.patient, "Thanks").await;
    let auditor = c.app.staff("auditor").await;
    let pool = c.app.pool.clone();
    eventually(
        "the chain seals every event",
        Duration::from_secs(20),
        || {
            let pool = pool.clone();
            async move { projections_caught_up(&pool).await }
        },
    )
    .await;
    (c, auditor)
}

async fn audit_head(app: &TestApp, user: &User) -> Value {
    expect_status(
        app.get("/api/v1/audit/head", &user.token).await,
        StatusCode::OK,
    )
    .await
}

/// One sealed entry, as `verify` names it: its place and `position …, type id sequence s, Type`.
struct Sealed {
    n: i64,
    xid: String,
    gpos: i64,
    named: String,
}

async fn sealed(app: &TestApp, condition: &str) -> Sealed {
    let row = sqlx::query(&format!(
        "SELECT n, transaction_id::text AS xid, global_position, aggregate_type, aggregate_id,
                sequence, event_type
           FROM event_chain c WHERE {condition} ORDER BY n LIMIT 1"
    ))
    .fetch_one(&app.pool)
    .await
    .expect("a sealed entry");
    let xid: String = row.get("xid");
    let gpos: i64 = row.get("global_position");
    let named = format!(
        "position {xid}-{gpos}, {} {} sequence {}, {}",
        row.get::<String, _>("aggregate_type"),
        row.get::<String, _>("aggregate_id"),
        row.get::<i64, _>("sequence"),
        row.get::<String, _>("event_type"),
    );
    Sealed {
        n: row.get("n"),
        xid,
        gpos,
        named,
    }
}

/// Runs `sql` as the superuser would: with the log's append-only trigger off.
async fn tamper(app: &TestApp, sql: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    let changed = sqlx::query(sql).execute(&mut *tx).await.unwrap();
    assert!(changed.rows_affected() > 0, "{sql} changed nothing");
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// `verify` fails, and its message is `expected`.
async fn assert_found(app: &TestApp, args: &[&str], expected: &str) {
    let output = verify(app, args).await;
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "verify passed a tampered log: {}",
        text(&output.stdout)
    );
    assert!(
        stderr.contains(&format!("the log differs from its hash chain: {expected}")),
        "expected {expected:?} in {stderr:?}"
    );
}

#[tokio::test]
async fn verify_agrees_with_the_served_head_and_a_rebuild_leaves_the_chain() {
    let (c, auditor) = sealed_history().await;
    let app = &c.app;
    let head = audit_head(app, &auditor).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(head["events"], events);
    let hash = head["hash"].as_str().unwrap();
    let position = head["position"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert_ne!(hash, "0".repeat(64));

    let output = verify(app, &[]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!("ok: {events} events, head {hash} at position {position}\n")
    );
    let kept = verify(app, &["--head", hash, "--at", position]).await;
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    assert!(
        text(&kept.stdout).contains(&format!("kept head {hash} at position {position} matches"))
    );

    // An export names the head to keep.
    let exported = tokio::process::Command::new(TestApp::binary())
        .args(["audit", "export"])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .await
        .unwrap();
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    assert!(
        text(&exported.stderr).contains(&format!(
            "chain head {hash} at position {position} ({events} events sealed)"
        )),
        "{}",
        text(&exported.stderr)
    );

    // An auditor who kept an earlier head can check it too.
    let early = sealed(app, "n = 3").await;
    let early_link: Vec<u8> = sqlx::query_scalar("SELECT link FROM event_chain WHERE n = 3")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let early_position = format!("{}-{}", early.xid, early.gpos);
    let early_hash = hex::encode(early_link);
    let output = verify(app, &["--head", &early_hash, "--at", &early_position]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    // A rebuild of every read model recomputes nothing of the chain.
    let chain = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT string_agg(n || ':' || encode(link, 'hex'), ',' ORDER BY n) FROM event_chain",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let before = chain().await;
    let rebuilt = tokio::process::Command::new(TestApp::binary())
        .arg("rebuild")
        .env("DATABASE_URL", &app.db.url)
        .output()
        .await
        .unwrap();
    assert!(rebuilt.status.success(), "{}", text(&rebuilt.stderr));
    assert_eq!(chain().await, before);
    assert_eq!(audit_head(app, &auditor).await, head);

    // Bad arguments are named.
    let bad = verify(app, &["--head", "xyz", "--at", position]).await;
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("--head \"xyz\" is not 64 hex digits"));
    let bad = verify(app, &["--head", hash, "--at", "soon"]).await;
    assert!(text(&bad.stderr).contains("--at \"soon\" is not a position token"));
}

#[tokio::test]
async fn only_auditors_and_admins_read_the_head() {
    let (c, auditor) = sealed_history().await;
    let problem = expect_problem(
        c.app.get("/api/v1/audit/head", &c.patient.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("audit chain"));
    expect_problem(
        c.app.get("/api/v1/audit/head", &c.doctor.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let admin = c.app.staff("admin").await;
    let by_admin = audit_head(&c.app, &admin).await;
    assert_eq!(
        by_admin["events"].as_i64().unwrap(),
        audit_head(&c.app, &auditor).await["events"]
            .as_i64()
            .unwrap()
    );
    let anonymous = c
        .app
        .client
        .get(c.app.url("/api/v1/audit/head"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_changed_payload_is_found_and_named() {
    let (c, auditor) = sealed_history().await;
    let head = audit_head(&c.app, &auditor).await;
    let target = sealed(&c.app, "aggregate_type = 'appointment' AND sequence = 1").await;
    tamper(
        &c.app,
        &format!(
            "UPDATE events SET payload = jsonb_set(payload, '{{reason}}', '\"nothing\"')
              WHERE global_position = {}",
            target.gpos
        ),
    )
    .await;
    let expected = format!("entry {}, {}: payload changed", target.n, target.named);
    assert_found(&c.app, &[], &expected).await;
    // The kept head is no longer reached either.
    assert_found(
        &c.app,
        &[
            "--head",
            head["hash"].as_str().unwrap(),
            "--at",
            head["position"].as_str().unwrap(),
        ],
        &expected,
    )
    .await;
}

#[tokio::test]
async fn a_deleted_event_is_found_and_named() {
    let (c, _) = sealed_history().await;
    let target = sealed(&c.app, "event_type = 'MessagePosted'").await;
    tamper(
        &c.app,
        &format!("DELETE FROM events WHERE global_position = {}", target.gpos),
    )
    .await;
    assert_found(
        &c.app,
        &[],
        &format!(
            "entry {}, {}: missing event (no longer in the log)",
            target.n, target.named
        ),
    )
    .await;
}

#[tokio::test]
async fn a_reordering_is_found_and_named() {
    let (c, _) = sealed_history().await;
    // Two neighbours in commit-safe order, each its transaction's only event: swapping their
    // transaction ids puts the later one first.
    let first = sealed(
        &c.app,
        "n > 3
         AND (SELECT count(*) FROM event_chain d WHERE d.transaction_id = c.transaction_id) = 1
         AND (SELECT count(*) FROM event_chain d, event_chain e
               WHERE e.n = c.n + 1 AND d.transaction_id = e.transaction_id) = 1",
    )
    .await;
    let second = sealed(&c.app, &format!("n = {}", first.n + 1)).await;
    tamper(
        &c.app,
        &format!(
            "UPDATE events SET transaction_id = CASE global_position
                 WHEN {a} THEN '{b_xid}'::xid8 ELSE '{a_xid}'::xid8 END
              WHERE global_position IN ({a}, {b})",
            a = first.gpos,
            b = second.gpos,
            a_xid = first.xid,
            b_xid = second.xid,
        ),
    )
    .await;
    let moved = second.named.replace(
        &format!("position {}-", second.xid),
        &format!("position {}-", first.xid),
    );
    assert_found(
        &c.app,
        &[],
        &format!(
            "entry {}, {}: out of order (the log now has {moved} in its place)",
            first.n, first.named
        ),
    )
    .await;
}

#[tokio::test]
async fn a_forged_event_slipped_into_the_past_is_found_and_named() {
    let (c, _) = sealed_history().await;
    let before = sealed(&c.app, "n = 4").await;
    // No trigger stops an INSERT; one with an old transaction id sorts into the sealed past.
    let forged: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, transaction_id)
         VALUES ('appointment', 'forged', 1, 'AppointmentRequested', '1', '{{}}', '{{}}',
                 '{}'::xid8)
         RETURNING global_position",
        before.xid
    ))
    .fetch_one(&c.app.pool)
    .await
    .unwrap();
    // It sorts last among its transaction's events (its global position is the newest).
    let place = sqlx::query_scalar::<_, i64>(
        "SELECT max(n) + 1 FROM event_chain WHERE transaction_id = $1::text::xid8",
    )
    .bind(&before.xid)
    .fetch_one(&c.app.pool)
    .await
    .unwrap();
    assert_found(
        &c.app,
        &[],
        &format!(
            "entry {place}: extra event the chain never sealed: position {}-{forged}, appointment forged sequence 1, AppointmentRequested",
            before.xid
        ),
    )
    .await;
}

#[tokio::test]
async fn a_rewritten_chain_still_fails_against_a_kept_head() {
    let (c, auditor) = sealed_history().await;
    let kept = audit_head(&c.app, &auditor).await;
    let target = sealed(&c.app, "event_type = 'MessagePosted'").await;
    tamper(
        &c.app,
        &format!(
            "UPDATE events SET payload = payload || '{{\"content\": \"never said\"}}'
              WHERE global_position = {}",
            target.gpos
        ),
    )
    .await;
    // The superuser also empties the chain and has it sealed anew from the changed log.
    sqlx::raw_sql(
        "ALTER TABLE event_chain DISABLE TRIGGER USER;
         DELETE FROM event_chain;
         ALTER TABLE event_chain ENABLE TRIGGER USER;",
    )
    .execute(&c.app.pool)
    .await
    .unwrap();
    let rebuilt = tokio::process::Command::new(TestApp::binary())
        .args(["rebuild", "--projection", "chain"])
        .env("DATABASE_URL", &c.app.db.url)
        .output()
        .await
        .unwrap();
    assert!(rebuilt.status.success(), "{}", text(&rebuilt.stderr));
    let resealed = audit_head(&c.app, &auditor).await;
    assert_eq!(resealed["events"], kept["events"]);
    assert_ne!(resealed["hash"], kept["hash"]);
    // The running server, which sealed the old chain, seals on from the new head...
    c.post(&c.doctor, "One more thing").await;
    let pool = c.app.pool.clone();
    eventually("the server seals on", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move { projections_caught_up(&pool).await }
    })
    .await;
    // ...so on its own the rewritten chain agrees with the changed log...
    let alone = verify(&c.app, &[]).await;
    assert!(alone.status.success(), "{}", text(&alone.stderr));
    let events = kept["events"].as_i64().unwrap() + 1;
    assert!(
        text(&alone.stdout).starts_with(&format!("ok: {events} events, head ")),
        "{}",
        text(&alone.stdout)
    );
    // ...but not with the head the auditor kept.
    let position = kept["position"].as_str().unwrap();
    assert_found(
        &c.app,
        &["--head", kept["hash"].as_str().unwrap(), "--at", position],
        &format!(
            "kept head at position {position}: the log up to it leads to {}, not the kept {}",
            resealed["hash"].as_str().unwrap(),
            kept["hash"].as_str().unwrap()
        ),
    )
    .await;
}

#[tokio::test]
async fn a_cut_off_tail_still_fails_against_a_kept_head() {
    let (c, auditor) = sealed_history().await;
    let kept = audit_head(&c.app, &auditor).await;
    let last = sealed(&c.app, "n = (SELECT max(n) FROM event_chain)").await;
    // The superuser removes the newest event and its entry: the shorter chain agrees with the
    // shorter log...
    tamper(
        &c.app,
        &format!("DELETE FROM events WHERE global_position = {}", last.gpos),
    )
    .await;
    sqlx::raw_sql(&format!(
        "ALTER TABLE event_chain DISABLE TRIGGER USER;
         DELETE FROM event_chain WHERE n = {};
         ALTER TABLE event_chain ENABLE TRIGGER USER;",
        last.n
    ))
    .execute(&c.app.pool)
    .await
    .unwrap();
    let alone = verify(&c.app, &[]).await;
    assert!(alone.status.success(), "{}", text(&alone.stderr));
    // ...but the auditor's kept head names the position that is gone.
    let position = kept["position"].as_str().unwrap();
    assert_eq!(position, format!("{}-{}", last.xid, last.gpos));
    assert_found(
        &c.app,
        &["--head", kept["hash"].as_str().unwrap(), "--at", position],
        &format!("kept head at position {position}: no event at that position any more"),
    )
    .await;
}
