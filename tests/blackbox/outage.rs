//! Outage: the test's own PostgreSQL cluster restarts under load (patients booking with
//! idempotency keys, two participants chatting, a live WebSocket subscriber). Every request is
//! answered within 3 s, also those caught half-way by the outage (201, or 503 problem+json with
//! `Retry-After`); within 5 s of the database being back the same server process serves again;
//! nothing acknowledged is lost, retries duplicate nothing, and the live stream (resuming after
//! its last position when it reconnects) gets every event exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, User, expect_status, spawn_process_with, try_eventually};
use crate::scheduling::{days_ahead, rfc3339};

/// The longest a request may take to be answered, database down or not, caught half-way by
/// the outage or not (the server gives up on the database after its pool's 2 s acquire
/// timeout, or as soon as its projections cannot reach it).
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// How soon after PostgreSQL is back the service must serve again.
const RECOVER_WITHIN: Duration = Duration::from_secs(5);

/// A PostgreSQL cluster of the test's own in a temporary directory, on a free port, stopped
/// and deleted when dropped (also when the test fails).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Root runs the server as the `postgres` OS user, as scripts/lib/postgres.sh does.
    as_postgres: bool,
}

impl Cluster {
    /// initdb and start.
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("telemed-outage-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let as_postgres = is_root();
        let cluster = Self {
            bin: bindir(),
            dir,
            port: free_port(),
            as_postgres,
        };
        if as_postgres {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cluster.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&cluster.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster's directory");
        }
        let data = cluster.data();
        cluster
            .pg(
                "initdb",
                &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
                &["--locale=C", "--no-sync"],
            )
            .await;
        cluster.pg_ctl_start().await;
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `program` of the server's bin dir (as `postgres` when root); panics on failure.
    async fn pg(&self, program: &str, args: &[&str], more: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .args(more)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn command(&self, program: &str) -> tokio::process::Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = tokio::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            tokio::process::Command::new(path)
        };
        command.current_dir("/");
        command
    }

    async fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        let data = self.data();
        self.pg(
            "pg_ctl",
            &["start", "-D", &data, "-l", &log, "-w", "-t", "60"],
            &["-o", &options],
        )
        .await;
    }

    /// A fast shutdown: open sessions are ended, as in a restart by an operator.
    async fn stop(&self) {
        let data = self.data();
        self.pg(
            "pg_ctl",
            &["stop", "-D", &data, "-m", "fast", "-w", "-t", "60"],
            &[],
        )
        .await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut command = if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            command
        } else {
            std::process::Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .current_dir("/")
            .args(["stop", "-D", &self.data(), "-m", "immediate", "-w"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `$TELEMED_PG_BINDIR`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout,
/// as scripts/lib/postgres.sh finds it).
fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("TELEMED_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries in /usr/lib/postgresql (or TELEMED_PG_BINDIR)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .max();
    newest.expect("no /usr/lib/postgresql/*/bin/pg_ctl").1
}

fn is_root() -> bool {
    let output = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What the load saw.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// Acknowledged bookings: (patient, idempotency key) → appointment id.
    bookings: BTreeMap<(usize, String), String>,
    /// Acknowledged messages: client_msg_id → message id.
    messages: BTreeMap<String, String>,
    /// Acknowledgements per client since the outage ended.
    since_recovery: BTreeMap<String, usize>,
    /// 503 answers.
    unavailable: usize,
    /// Anything else that was not a success: the request and its answer.
    failures: Vec<String>,
    /// The slowest answer, and whose it was.
    slowest: (Duration, String),
}

/// Where the test is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Before,
    Outage,
    After,
    Stop,
}

/// Sends `request` until it is acknowledged (2xx), retrying the same request (same key) after
/// 503s, as a client would; records anything else as a failure. `None` if it never is.
async fn until_acknowledged(
    client: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
    seen: &watch::Sender<Seen>,
    phase: &watch::Receiver<Phase>,
) -> Option<Value> {
    let mut attempts = 0;
    loop {
        let sent = Instant::now();
        let outcome = request().send().await;
        let took = sent.elapsed();
        seen.send_modify(|s| {
            if took > s.slowest.0 {
                s.slowest = (took, client.to_string());
            }
        });
        match outcome {
            Ok(response) if response.status().is_success() => {
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                if *phase.borrow() == Phase::After {
                    seen.send_modify(|s| *s.since_recovery.entry(client.into()).or_default() += 1);
                }
                return Some(body);
            }
            Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                let problem = is_problem_with_retry_after(&response);
                let body = response.text().await.unwrap_or_default();
                seen.send_modify(|s| {
                    s.unavailable += 1;
                    if !problem {
                        s.failures.push(format!(
                            "{client}: a 503 without problem+json and Retry-After: {body}"
                        ));
                    }
                });
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                seen.send_modify(|s| s.failures.push(format!("{client}: {status} {body}")));
            }
            Err(error) => {
                seen.send_modify(|s| s.failures.push(format!("{client}: no answer: {error}")));
            }
        }
        attempts += 1;
        if attempts == 300 {
            // 30 s of retries.
            seen.send_modify(|s| s.failures.push(format!("{client}: never acknowledged")));
            return None;
        }
        // The client's pause before it retries.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A problem+json answer whose `Retry-After` is whole seconds.
fn is_problem_with_retry_after(response: &reqwest::Response) -> bool {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    header("content-type").as_deref() == Some("application/problem+json")
        && header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok())
}

/// What every client of the load shares.
#[derive(Clone)]
struct Load {
    app: Arc<TestApp>,
    client: reqwest::Client,
    seen: Arc<watch::Sender<Seen>>,
    phase: watch::Receiver<Phase>,
}

/// A patient booking its own 30-minute slots one after the other, each with its own key.
async fn booker(
    load: Load,
    n: usize,
    patient: User,
    doctor_id: String,
    slots: Vec<time::OffsetDateTime>,
) {
    let Load {
        app,
        client,
        seen,
        phase,
    } = load;
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for (k, start) in slots.into_iter().enumerate() {
        if *phase.borrow() == Phase::Stop {
            return;
        }
        pace.tick().await;
        let key = format!("booking-{n}-{k}");
        let body = json!({
            "doctor_id": doctor_id,
            "start": rfc3339(start),
            "end": rfc3339(start + time::Duration::minutes(30)),
            "reason": "check-up",
        });
        let request = || {
            client
                .post(app.url("/api/v1/appointments"))
                .bearer_auth(&patient.token)
                .header("Idempotency-Key", &key)
                .json(&body)
        };
        let Some(answer) = until_acknowledged(&format!("booker {n}"), request, &seen, &phase).await
        else {
            return;
        };
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        seen.send_modify(|s| {
            s.bookings.insert((n, key), id);
        });
    }
}

/// A participant posting messages, each with its own client_msg_id.
async fn chatter(load: Load, user: User, side: &'static str, room: String) {
    let Load {
        app,
        client,
        seen,
        phase,
    } = load;
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0.. {
        if *phase.borrow() == Phase::Stop {
            return;
        }
        pace.tick().await;
        let key = format!("{side}-{n}");
        let body = json!({ "content": format!("note {key}"), "client_msg_id": key });
        let path = format!("/api/v1/appointments/{room}/messages");
        let request = || {
            client
                .post(app.url(&path))
                .bearer_auth(&user.token)
                .json(&body)
        };
        let Some(message) = until_acknowledged(side, request, &seen, &phase).await else {
            return;
        };
        let id = message["id"].as_str().unwrap_or_default().to_string();
        seen.send_modify(|s| {
            s.messages.insert(key, id);
        });
    }
}

/// The positions of the `audit:event` frames an auditor's connection received, across
/// reconnections (each resumes after the last position it saw).
async fn subscriber(
    app: Arc<TestApp>,
    auditor: User,
    positions: Arc<watch::Sender<Vec<String>>>,
    reconnections: Arc<watch::Sender<usize>>,
    done: Arc<AtomicBool>,
) {
    let url = format!(
        "{}/api/v1/ws?access_token={}",
        app.address.replacen("http://", "ws://", 1),
        auditor.token
    );
    while !done.load(Ordering::Relaxed) {
        // Refused (503) while the database is down: try again.
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let after = positions
            .borrow()
            .last()
            .cloned()
            .unwrap_or_else(|| telemed_domain::Position::START.to_string());
        let requests = [
            json!({ "event": "subscribe", "data": { "topic": "audit" }, "ack": 1 }),
            json!({ "event": "resume", "data": { "after": after }, "ack": 2 }),
        ];
        let mut joined = true;
        for request in requests {
            joined &= ws.send(Message::text(request.to_string())).await.is_ok();
        }
        while joined && !done.load(Ordering::Relaxed) {
            let frame = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => break,
                Ok(Some(Ok(_))) => continue,
            };
            let frame: Value = serde_json::from_str(frame.as_str()).unwrap();
            match frame["event"].as_str() {
                Some("audit:event") => {
                    let position = frame["data"]["position"].as_str().unwrap().to_string();
                    positions.send_modify(|p| p.push(position));
                }
                // A failed subscribe or resume (503 during the outage): start over.
                Some("ack") if frame["error"].is_object() => break,
                _ => {}
            }
        }
        reconnections.send_modify(|n| *n += 1);
    }
}

/// Every event's position in the store, in order, through the audit API.
async fn store_positions(app: &TestApp, auditor: &User) -> Vec<String> {
    let mut positions = Vec::new();
    let mut after = String::new();
    loop {
        let page = expect_status(
            app.get_with(
                "/api/v1/audit/events",
                &auditor.token,
                &[("after", &after), ("limit", "500")],
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            return positions;
        }
        positions.extend(
            events
                .iter()
                .map(|e| e["position"].as_str().unwrap().to_string()),
        );
        after = page["next"].as_str().unwrap().to_string();
    }
}

/// Awaits `what` for at most 30 s.
async fn patiently<T, E: std::fmt::Debug>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) {
    match tokio::time::timeout(Duration::from_secs(30), future).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => panic!("{what}: {error:?}"),
        Err(_) => panic!("waited 30 s in vain for {what}"),
    }
}

/// The free 30-minute starts of a doctor whose days 2 to 29 ahead are open from 08:00 to
/// 18:00 UTC.
fn slots() -> Vec<time::OffsetDateTime> {
    (2..=29)
        .flat_map(|day| {
            (16..36).map(move |half| days_ahead(day) + time::Duration::minutes(30 * half))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_answers_503_recovers_and_loses_nothing() {
    let cluster = Cluster::start().await;
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE telemed")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (_server, app) = spawn_process_with(&cluster.url("telemed"), &[]).await;
    let app = Arc::new(app);

    // A doctor open every day for four weeks; four bookers; a room for two chatters; an auditor.
    let doctor = app.register("doctor", "Dr. Outage", "UTC").await;
    let weekly: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "08:00", "end": "18:00" }))
        .collect();
    let days = json!({
        "weekly": weekly,
        "from": days_ahead(1).date().to_string(),
        "to": days_ahead(29).date().to_string(),
    });
    expect_status(
        app.open_availability(&doctor, &days).await,
        StatusCode::CREATED,
    )
    .await;
    let chatter_patient = app.patient().await;
    let room = app
        .book(
            &chatter_patient,
            &doctor.id,
            days_ahead(1) + time::Duration::hours(9),
            days_ahead(1) + time::Duration::minutes(9 * 60 + 30),
        )
        .await;
    let room = room["id"].as_str().unwrap().to_string();
    let patients = app.patients(4, 4).await;
    let auditor = app.staff("auditor").await;

    let client = reqwest::Client::builder()
        .timeout(ANSWER_WITHIN)
        .build()
        .unwrap();
    let (seen, mut watched) = watch::channel(Seen::default());
    let seen = Arc::new(seen);
    let (phase_tx, phase) = watch::channel(Phase::Before);
    let shared = Load {
        app: app.clone(),
        client: client.clone(),
        seen: seen.clone(),
        phase: phase.clone(),
    };
    let mut load = Vec::new();
    let all_slots = slots();
    for (n, patient) in patients.iter().enumerate() {
        let mine = all_slots
            .iter()
            .copied()
            .skip(n)
            .step_by(patients.len())
            .collect();
        let doctor_id = doctor.id.clone();
        load.push(tokio::spawn(booker(
            shared.clone(),
            n,
            patient.clone(),
            doctor_id,
            mine,
        )));
    }
    for (side, user) in [("doctor", &doctor), ("patient", &chatter_patient)] {
        load.push(tokio::spawn(chatter(
            shared.clone(),
            user.clone(),
            side,
            room.clone(),
        )));
    }
    let (positions, received) = watch::channel(Vec::new());
    let (reconnections, _) = watch::channel(0usize);
    let (positions, reconnections) = (Arc::new(positions), Arc::new(reconnections));
    let done = Arc::new(AtomicBool::new(false));
    let live = tokio::spawn(subscriber(
        app.clone(),
        auditor.clone(),
        positions.clone(),
        reconnections.clone(),
        done.clone(),
    ));

    // Under way: then PostgreSQL goes down.
    patiently(
        "the load to get going",
        watched.wait_for(|s| s.bookings.len() >= 12 && s.messages.len() >= 6),
    )
    .await;
    phase_tx.send_replace(Phase::Outage);
    cluster.stop().await;

    // Prompt 503 problems, for reads and commands alike.
    for (what, request) in [
        (
            "a read",
            client
                .get(app.url("/api/v1/appointments"))
                .bearer_auth(&patients[0].token),
        ),
        (
            "a command",
            client
                .post(app.url(&format!("/api/v1/appointments/{room}/messages")))
                .bearer_auth(&doctor.token)
                .json(&json!({ "content": "during the outage" })),
        ),
        ("readiness", client.get(app.url("/readyz"))),
    ] {
        let sent = Instant::now();
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert!(
            is_problem_with_retry_after(&response),
            "{what}: {:?}",
            response.headers()
        );
        assert!(
            sent.elapsed() < ANSWER_WITHIN,
            "{what} took {:?}",
            sent.elapsed()
        );
    }
    patiently(
        "503s for the load",
        watched.wait_for(|s| s.unavailable >= 6),
    )
    .await;

    // PostgreSQL is back: the same server process serves again within 5 s.
    cluster.pg_ctl_start().await;
    let back = Instant::now();
    phase_tx.send_replace(Phase::After);
    let ready = try_eventually(RECOVER_WITHIN, || async {
        let response = client.get(app.url("/readyz")).send().await;
        response.is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(
        ready.is_some(),
        "not ready {RECOVER_WITHIN:?} after PostgreSQL was back"
    );
    let clients = [
        "booker 0", "booker 1", "booker 2", "booker 3", "doctor", "patient",
    ];
    let serving = tokio::time::timeout(
        RECOVER_WITHIN.saturating_sub(back.elapsed()),
        watched.wait_for(|s| clients.iter().all(|c| s.since_recovery.contains_key(*c))),
    )
    .await
    .is_ok_and(|waited| waited.is_ok());
    assert!(
        serving,
        "not every client was served {RECOVER_WITHIN:?} after PostgreSQL was back: {:?}; {:#?}",
        watched.borrow().since_recovery,
        watched
            .borrow()
            .failures
            .iter()
            .take(10)
            .collect::<Vec<_>>()
    );
    println!(
        "ready after {ready:?}; every client served after {:?}",
        back.elapsed()
    );

    // A little more load, then the clients finish what they started.
    patiently(
        "more load after the outage",
        watched.wait_for(|s| {
            clients
                .iter()
                .all(|c| s.since_recovery.get(*c).is_some_and(|n| *n >= 3))
        }),
    )
    .await;
    phase_tx.send_replace(Phase::Stop);
    for task in load {
        task.await.unwrap();
    }
    let seen = watched.borrow().clone();
    assert!(seen.failures.is_empty(), "{:#?}", seen.failures);
    assert!(seen.slowest.0 < ANSWER_WITHIN, "{:?}", seen.slowest);

    // Every acknowledged booking is in the store, once: each patient has exactly the
    // appointments it was told about.
    for (n, patient) in patients.iter().enumerate() {
        let acknowledged: BTreeSet<&String> = seen
            .bookings
            .iter()
            .filter(|((p, _), _)| *p == n)
            .map(|(_, id)| id)
            .collect();
        let listed = expect_status(
            app.get("/api/v1/appointments", &patient.token).await,
            StatusCode::OK,
        )
        .await;
        let listed: BTreeSet<String> = listed["appointments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            listed.iter().collect::<BTreeSet<_>>(),
            acknowledged,
            "patient {n}"
        );
        for id in acknowledged {
            assert!(app.events_of(id).await >= 1, "booking {id} has no events");
        }
    }
    // Every acknowledged message too, once per client_msg_id.
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, count(*) FROM events WHERE aggregate_type = 'chat_message'
          GROUP BY aggregate_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let stored: BTreeSet<String> = stored.into_iter().map(|(id, _)| id).collect();
    let acknowledged: BTreeSet<String> = seen.messages.values().cloned().collect();
    assert_eq!(stored, acknowledged, "chat messages in the store");

    // The live stream got every event in the store, once.
    let expected = store_positions(&app, &auditor).await;
    let complete = try_eventually(Duration::from_secs(15), || {
        let received: BTreeSet<String> = received.borrow().iter().cloned().collect();
        let all = expected.iter().all(|p| received.contains(p));
        async move { all }
    })
    .await;
    done.store(true, Ordering::Relaxed);
    live.await.unwrap();
    let received = received.borrow().clone();
    let unique: BTreeSet<&String> = received.iter().collect();
    assert_eq!(
        unique.len(),
        received.len(),
        "a position was delivered twice"
    );
    assert!(complete.is_some(), "the live stream missed events");
    assert_eq!(
        received, expected,
        "the live stream's events and the store's"
    );
    println!(
        "{} bookings, {} messages, {} 503s, {} reconnections, slowest answer {:?} ({})",
        seen.bookings.len(),
        seen.messages.len(),
        seen.unavailable,
        *reconnections.borrow(),
        seen.slowest.0,
        seen.slowest.1
    );
    // The cluster stops and its directory goes when dropped, here or when a check fails.
    drop(cluster);
}
