//! The global stream reader and projection runner: commit-safe order, exactly-once
//! application across a crash mid-batch, and rebuilds that build beside the live models and swap
//! them in (held before the swap by an advisory lock, observed in `pg_stat_activity`), so reads
//! and commands' read-your-writes go on meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use sqlx::{PgConnection, PgPool, Row};
use telemed_commands::{CommandContext, Profiles};
use telemed_domain::doctor::DoctorCommand;
use telemed_domain::values::{PersonName, TimeZoneName};
use telemed_domain::{Position, UserId};
use telemed_projections::runner::{RunnerConfig, load_checkpoint};
use telemed_projections::stream::read_after;
use telemed_projections::{Projection, ProjectionError, ProjectionRunner, Settled, StoredEvent};
use telemed_tasks::Background;
use tokio::sync::Notify;

use crate::helpers::{
    TestApp, TestDb, assert_same_read_models, doctor_profile, eventually, expect_status,
    patient_profile, projections_caught_up, read_models as all_read_models, spawn_app,
};

const SEEN: &str = "CREATE TABLE seen (
    n bigserial, aggregate_type text, aggregate_id text, sequence bigint, xid text, pos bigint,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence))";

/// Records every event it is given; a duplicate would violate the primary key.
struct Recorder {
    /// Panics (after signalling `crashed`) when applying this many-th event, if set.
    crash_at: Option<usize>,
    applied: AtomicUsize,
    crashed: Arc<Notify>,
}

impl Recorder {
    fn new(crash_at: Option<usize>) -> Self {
        Self {
            crash_at,
            applied: AtomicUsize::new(0),
            crashed: Arc::new(Notify::new()),
        }
    }
}

#[async_trait]
impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["seen"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let count = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(count) == self.crash_at {
            self.crashed.notify_one();
            panic!("simulated crash in the middle of a batch");
        }
        sqlx::query("INSERT INTO seen (aggregate_type, aggregate_id, sequence, xid, pos) VALUES ($1, $2, $3, $4, $5)")
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence)
            .bind(event.position.transaction_id.to_string())
            .bind(event.position.global_position)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// 8 concurrent writers, each registering `per_writer` doctors (one event, one transaction each).
async fn write_concurrently(pool: &PgPool, per_writer: usize) {
    let profiles = Arc::new(Profiles::new(pool));
    let writers = (0..8).map(|w| {
        let profiles = profiles.clone();
        tokio::spawn(async move {
            for i in 0..per_writer {
                let command = DoctorCommand::Register {
                    name: PersonName::parse(&format!("Dr. {w}-{i}")).unwrap(),
                    timezone: TimeZoneName::utc(),
                };
                profiles
                    .doctor(UserId::new(), command, &CommandContext::system("test"))
                    .await
                    .expect("append");
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.expect("writer task");
    }
}

async fn last_position(pool: &PgPool) -> Position {
    let row = sqlx::query(
        "SELECT transaction_id::text AS xid, global_position FROM events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    Position::new(
        row.get::<String, _>("xid").parse().unwrap(),
        row.get("global_position"),
    )
}

/// The recorded events in application order, and the log in commit-safe order.
async fn seen_and_log(pool: &PgPool) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let seen = sqlx::query_as("SELECT aggregate_id, sequence FROM seen ORDER BY n")
        .fetch_all(pool)
        .await
        .unwrap();
    let log = sqlx::query_as(
        "SELECT aggregate_id, sequence FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (seen, log)
}

fn runner(
    pool: &PgPool,
    projection: Recorder,
    batch_size: i64,
) -> (telemed_projections::Progress, Background) {
    let background = Background::new();
    let config = RunnerConfig {
        batch_size,
        poll_interval: Duration::from_millis(50),
    };
    let progress = ProjectionRunner::new(pool.clone(), vec![Arc::new(projection)], config).spawn(
        telemed_projections::wakeup::spawn(pool.clone(), &background),
        &background,
    );
    (progress, background)
}

#[tokio::test]
async fn events_are_delivered_once_in_commit_order_even_when_an_earlier_transaction_commits_last() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    sqlx::query(SEEN).execute(&pool).await.unwrap();

    // A transaction takes the lowest position and stays open while 8 writers commit 200 events.
    let mut late = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('late', 'late-1', 1, 'LateEvent', '1', '{}', '{}')",
    )
    .execute(&mut *late)
    .await
    .unwrap();
    write_concurrently(&pool, 25).await;

    // The hazard is real: a reader tailing global_position alone would see 200 events now and
    // move past the open transaction's position for good.
    let naive: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position > 0")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(naive, 200);
    // The commit-safe reader sees nothing past the open transaction.
    assert!(
        read_after(&pool, Position::START, 1_000)
            .await
            .unwrap()
            .is_empty()
    );

    let (progress, _stop) = runner(&pool, Recorder::new(None), 7);
    late.commit().await.unwrap();
    assert_eq!(
        progress
            .wait_for(last_position(&pool).await, Duration::from_secs(30))
            .await,
        Settled::Reached
    );

    let (seen, log) = seen_and_log(&pool).await;
    assert_eq!(seen.len(), 201);
    assert_eq!(seen, log, "applied exactly once each, in commit-safe order");
    assert_eq!(
        seen[0],
        ("late-1".to_string(), 1),
        "the late event comes first: lowest xid"
    );
}

#[tokio::test]
async fn a_projection_killed_mid_batch_resumes_without_loss_or_duplication() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    sqlx::query(SEEN).execute(&pool).await.unwrap();
    write_concurrently(&pool, 25).await;
    let last = last_position(&pool).await;

    // First run: batches of 50; dies while applying the 120th event (inside the third batch),
    // on its own connections, which are then closed like a killed process's.
    let crash_pool = telemed_api::database::pool(&db.url, 4).unwrap();
    let crashing = Recorder::new(Some(120));
    let crashed = crashing.crashed.clone();
    let (_progress, _stop) = runner(&crash_pool, crashing, 50);
    crashed.notified().await;
    crash_pool.close().await;

    // Exactly the batches committed before the crash are recorded, up to the checkpoint; the
    // batch being applied when it died left nothing. (Batch sizes vary: transactions of
    // concurrent tests elsewhere in the cluster hold back the commit-safe horizon.)
    let checkpoint = load_checkpoint(&pool, "recorder").await.unwrap();
    let (seen, log) = seen_and_log(&pool).await;
    let committed = read_after(&pool, Position::START, 1_000)
        .await
        .unwrap()
        .into_iter()
        .take_while(|e| e.position <= checkpoint)
        .count();
    assert!(committed > 0 && committed < 120, "{committed}");
    assert_eq!(seen.len(), committed);
    assert_eq!(seen[..], log[..committed]);

    // A new runner resumes from the checkpoint.
    let (progress, _stop) = runner(&pool, Recorder::new(None), 50);
    assert_eq!(
        progress.wait_for(last, Duration::from_secs(30)).await,
        Settled::Reached
    );
    let (seen, log) = seen_and_log(&pool).await;
    assert_eq!(seen.len(), 200);
    assert_eq!(seen, log);
}

/// Every read-model table of the profiles projection, as JSON, in key order.
async fn read_models(pool: &PgPool) -> serde_json::Value {
    let mut tables = serde_json::Map::new();
    for (table, key) in [
        ("user_profiles", "user_id"),
        ("doctor_profiles", "doctor_id"),
        ("patient_profiles", "patient_id"),
    ] {
        let rows: Option<serde_json::Value> =
            sqlx::query_scalar(&format!("SELECT json_agg(t ORDER BY {key}) FROM {table} t"))
                .fetch_one(pool)
                .await
                .unwrap();
        tables.insert(table.to_string(), rows.unwrap_or_default());
    }
    serde_json::Value::Object(tables)
}

async fn populate(app: &TestApp) {
    app.staff("admin").await;
    for i in 0..5 {
        let doctor = app
            .register("doctor", &format!("Dr. {i}"), "Europe/Rome")
            .await;
        let path = format!("/api/v1/doctors/{}/profile", doctor.id);
        expect_status(
            app.put(&path, &doctor.token, &doctor_profile(&format!("bio {i}")))
                .await,
            StatusCode::OK,
        )
        .await;
        let patient = app
            .register("patient", &format!("Patient {i}"), "Asia/Tokyo")
            .await;
        let path = format!("/api/v1/patients/{}/profile", patient.id);
        expect_status(
            app.put(
                &path,
                &patient.token,
                &patient_profile(&format!("notes {i}")),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }
}

/// A session holding advisory lock `key`, which a rebuild started with
/// `--hold-before-swap <key>` waits for before it swaps its tables in.
struct Hold {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    key: i64,
}

impl Hold {
    async fn take(pool: &PgPool, key: i64) -> Self {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .unwrap();
        Self { conn, key }
    }

    /// Whether a rebuild is waiting for this hold (its scratch tables filled, not swapped in).
    async fn waited_on(pool: &PgPool) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND wait_event = 'advisory' AND query LIKE '%pg_advisory_lock_shared%')",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    }

    async fn release(mut self) {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut *self.conn)
            .await
            .unwrap();
    }
}

/// Starts `telemed rebuild` held before its swap by `key`, and waits until it is held there.
async fn held_rebuild(
    app: &TestApp,
    key: i64,
) -> tokio::task::JoinHandle<std::io::Result<std::process::Output>> {
    let rebuild = tokio::process::Command::new(TestApp::binary())
        .args(["rebuild", "--hold-before-swap", &key.to_string()])
        .env("DATABASE_URL", &app.db.url)
        .kill_on_drop(true)
        .output();
    let rebuild = tokio::spawn(rebuild);
    eventually(
        "the rebuild waits before its swap",
        Duration::from_secs(60),
        || async { Hold::waited_on(&app.pool).await },
    )
    .await;
    rebuild
}

async fn succeeded(
    rebuild: tokio::task::JoinHandle<std::io::Result<std::process::Output>>,
) -> String {
    let output = rebuild.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn telemed_rebuild_reproduces_the_live_read_models_while_serving() {
    let app = spawn_app().await;
    populate(&app).await;
    let viewer = app.patient().await;
    let live = read_models(&app.pool).await;
    let everything = all_read_models(&app.pool, &[]).await;
    let doctors = live["doctor_profiles"].as_array().unwrap();
    assert_eq!(doctors.len(), 5);
    let doctor = format!(
        "/api/v1/doctors/{}",
        doctors[0]["doctor_id"].as_str().unwrap()
    );

    // Held before its swap, the rebuild has filled its own tables beside the live ones...
    let hold = Hold::take(&app.pool, 7_001).await;
    let rebuild = held_rebuild(&app, 7_001).await;
    let scratch: i64 = sqlx::query_scalar("SELECT count(*) FROM telemed_rebuild.doctor_profiles")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(scratch, 5);
    // ...and clients meanwhile read the complete live models.
    for _ in 0..5 {
        let listed = expect_status(
            app.get("/api/v1/doctors", &viewer.token).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(listed["doctors"].as_array().unwrap().len(), 5, "{listed}");
        expect_status(app.get(&doctor, &viewer.token).await, StatusCode::OK).await;
    }
    assert!(Hold::waited_on(&app.pool).await, "still before the swap");
    hold.release().await;

    let stdout = succeeded(rebuild).await;
    assert!(stdout.contains("rebuilt profiles: "), "{stdout}");
    assert_eq!(read_models(&app.pool).await, live);
    assert_same_read_models(
        &everything,
        &all_read_models(&app.pool, &[]).await,
        "live (left) and rebuilt (right)",
    );
    // The swapped-in tables have the live ones' indexes, under the same names.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'doctor_profiles' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "doctor_profiles_name",
            "doctor_profiles_pkey",
            "doctor_profiles_specialties"
        ]
    );
    // And the service goes on projecting new events after the rebuild.
    let late = app.register("doctor", "Dr. Late", "UTC").await;
    expect_status(
        app.get(&format!("/api/v1/doctors/{}", late.id), &viewer.token)
            .await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn commands_read_their_writes_while_a_rebuild_runs_and_the_swap_keeps_them() {
    let app = spawn_app().await;
    populate(&app).await;
    let viewer = app.patient().await;
    let hold = Hold::take(&app.pool, 7_002).await;
    let rebuild = held_rebuild(&app, 7_002).await;

    // While the rebuild is held before its swap, commands answer with their own writes: the
    // live runner keeps the live read models moving.
    let doctor = app.register("doctor", "Dr. During", "UTC").await;
    let path = format!("/api/v1/doctors/{}/profile", doctor.id);
    let answered = expect_status(
        app.put(
            &path,
            &doctor.token,
            &doctor_profile("written during a rebuild"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answered["bio"], "written during a rebuild", "{answered}");
    let read = expect_status(
        app.get(&format!("/api/v1/doctors/{}", doctor.id), &viewer.token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["bio"], "written during a rebuild", "{read}");
    assert!(
        Hold::waited_on(&app.pool).await,
        "all of it during the rebuild"
    );
    eventually("the live models catch up", Duration::from_secs(30), || {
        projections_caught_up(&app.pool)
    })
    .await;
    let live = all_read_models(&app.pool, &[]).await;
    hold.release().await;

    // The swap applied what arrived meanwhile: the rebuilt models equal the live ones.
    let stdout = succeeded(rebuild).await;
    assert!(
        !stdout.contains("with 0 events that arrived meanwhile"),
        "{stdout}"
    );
    assert_same_read_models(
        &live,
        &all_read_models(&app.pool, &[]).await,
        "live (left) and rebuilt (right)",
    );
}

#[tokio::test]
async fn rebuilding_an_unknown_projection_is_refused() {
    let db = TestDb::create().await;
    let output = tokio::process::Command::new(TestApp::binary())
        .args(["rebuild", "--projection", "nope"])
        .env("DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no projection named \"nope\"") && stderr.contains("profiles"),
        "{stderr}"
    );
}

#[tokio::test]
async fn projections_recover_by_themselves_when_the_database_drops_every_connection() {
    let app = spawn_app().await;
    let viewer = app.patient().await;
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()) AS killed",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        terminated >= 2,
        "the server's listener and pool connections were cut"
    );

    let doctor = app.doctor().await;
    let read = app
        .get(&format!("/api/v1/doctors/{}", doctor.id), &viewer.token)
        .await;
    expect_status(read, StatusCode::OK).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    expect_status(ready, StatusCode::OK).await;
}

/// A projection applied one event at a time, as the runner did before set-based batches.
struct PerEvent(Arc<dyn Projection>);

#[async_trait]
impl Projection for PerEvent {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.0.apply(tx, event).await
    }
}

/// The read models and the outbox's reminders (due days later, so the dispatcher leaves them
/// alone), but when their rows were last touched.
async fn models_and_outbox(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let mut models = all_read_models(pool, &[]).await;
    let outbox: Vec<String> = sqlx::query_scalar(
        "SELECT (to_jsonb(d) - 'updated_at' - 'created_at')::text
           FROM notification_deliveries d WHERE kind LIKE 'reminder%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    models.push(("notification_deliveries".to_string(), outbox));
    models
}

/// Bookings of every kind, and messages, through the API.
async fn clinic_history(app: &TestApp) {
    use crate::scheduling::days_ahead;
    use time::Duration as Span;
    let doctor = app.doctor().await;
    for day in 3..5 {
        let day = days_ahead(day);
        app.open_window(&doctor, day + Span::hours(8), day + Span::hours(16))
            .await;
    }
    for p in 0..6_i64 {
        let patient = app.patient().await;
        let start = days_ahead(3 + p % 2) + Span::hours(8) + Span::minutes(30 * p);
        let booked = app
            .book(&patient, &doctor.id, start, start + Span::minutes(30))
            .await;
        let id = booked["id"].as_str().unwrap();
        let ok = |response| expect_status(response, StatusCode::OK);
        if p % 3 != 2 {
            ok(app
                .act(&doctor, id, "confirm", &serde_json::json!({}))
                .await)
            .await;
            let path = format!("/api/v1/appointments/{id}/messages");
            for (n, user) in [&doctor, &patient, &doctor].into_iter().enumerate() {
                let body = serde_json::json!({ "content": format!("message {n}") });
                let posted = app.post(&path, Some(&user.token), &body).await;
                expect_status(posted, StatusCode::CREATED).await;
            }
        }
        if p % 3 == 1 {
            let later = start + Span::hours(4);
            ok(app
                .reschedule(&patient, id, later, later + Span::minutes(30))
                .await)
            .await;
            if p == 1 {
                ok(app
                    .act(&doctor, id, "confirm", &serde_json::json!({}))
                    .await)
                .await;
            }
        }
        if p % 2 == 1 {
            let body = serde_json::json!({ "reason": "travel" });
            ok(app.act(&patient, id, "cancel", &body).await).await;
        }
    }
}

#[tokio::test]
async fn set_based_batches_and_per_event_application_build_the_same_tables() {
    let app = spawn_app().await;
    populate(&app).await;
    clinic_history(&app).await;
    eventually("the live models catch up", Duration::from_secs(30), || {
        projections_caught_up(&app.pool)
    })
    .await;
    // Live: small batches, as commands came.
    let live = models_and_outbox(&app.pool).await;

    // Every event through each projection's per-event `apply`.
    let projections = telemed_projections::all();
    let per_event: Vec<PerEvent> = projections.iter().cloned().map(PerEvent).collect();
    let refs: Vec<&dyn Projection> = per_event.iter().map(|p| p as &dyn Projection).collect();
    let options = telemed_projections::rebuild::Options::default();
    telemed_projections::rebuild::rebuild_all(&app.pool, &refs, options)
        .await
        .unwrap();
    let one_by_one = models_and_outbox(&app.pool).await;
    assert_same_read_models(&live, &one_by_one, "live (left) and per event (right)");

    // The whole log in one set-based batch.
    let refs = telemed_projections::rebuild::refs(&projections);
    telemed_projections::rebuild::rebuild_all(&app.pool, &refs, options)
        .await
        .unwrap();
    let batched = models_and_outbox(&app.pool).await;
    assert_same_read_models(
        &one_by_one,
        &batched,
        "per event (left) and batched (right)",
    );
    let rows: usize = batched.iter().map(|(_, rows)| rows.len()).sum();
    assert!(rows > 60, "a store worth comparing: {rows} rows");
}
