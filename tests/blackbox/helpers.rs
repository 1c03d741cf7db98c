//! `spawn_app()`, a fresh database per test, and a `TestApp` with one method per endpoint.

use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};
use sqlx::PgPool;
use telemed_api::{Application, Config};
use uuid::Uuid;

/// Polls `condition` every 20 ms until it holds; how long that took, or `None` after `limit`.
/// The one poll loop of the suite: prefer [`eventually`], which fails the test.
pub async fn try_eventually<F, Fut>(limit: Duration, mut condition: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    loop {
        if condition().await {
            return Some(started.elapsed());
        }
        if started.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `condition` holds and returns how long that took; fails the test, naming
/// `what`, if it does not within `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    try_eventually(limit, condition)
        .await
        .unwrap_or_else(|| panic!("waited {limit:?} in vain until {what}"))
}

/// A fresh, empty database for one test.
pub struct TestDb {
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// Creates `telemed_test_<uuid>` on the server named by `DATABASE_URL`.
    pub async fn create() -> Self {
        let admin = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must point at a PostgreSQL server (scripts/test sets it)");
        let name = format!("telemed_test_{}", Uuid::new_v4().simple());
        let pool = PgPool::connect(&admin)
            .await
            .expect("connect to the admin database");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create the test database");
        pool.close().await;
        let mut url = Url::parse(&admin).expect("DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            url: url.to_string(),
        }
    }

    /// A small pool on the database, with the schema applied.
    pub async fn migrated_pool(&self) -> PgPool {
        let pool = telemed_api::database::pool(&self.url, 16).expect("pool");
        telemed_api::database::migrate(&pool)
            .await
            .expect("migrate");
        pool
    }
}

/// The application running in this test's runtime.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The test database.
    pub db: TestDb,
    /// A pool on it, for assertions on the store itself.
    pub pool: PgPool,
    /// HTTP client.
    pub client: reqwest::Client,
}

/// A registered user and their token.
#[derive(Clone, Debug)]
pub struct User {
    /// User id.
    pub id: String,
    /// Access token.
    pub token: String,
    /// Login e-mail.
    pub email: String,
}

/// A password that satisfies the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// Starts the app on a free port against a fresh database.
pub async fn spawn_app() -> TestApp {
    let db = TestDb::create().await;
    spawn_app_on(db, |_| {}).await
}

/// Starts the app on `db`, after `adjust` has changed its configuration.
pub async fn spawn_app_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::development(db.url.clone());
    config.max_db_connections = 16;
    // Tests create many users from one address quickly; the rate-limit tests turn them on.
    config.rate_limits = false;
    adjust(&mut config);
    let app = Application::build(config).await.expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let pool = telemed_api::database::pool(&db.url, 8).expect("pool");
    TestApp {
        address,
        db,
        pool,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    }
}

impl TestApp {
    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POST JSON.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST")
    }

    /// PUT JSON.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    /// The served OpenAPI document (`GET /api/v1/openapi.json`, 200).
    pub async fn openapi_document(&self) -> Value {
        let response = self
            .client
            .get(self.url("/api/v1/openapi.json"))
            .send()
            .await
            .expect("GET /api/v1/openapi.json");
        expect_status(response, StatusCode::OK).await
    }

    /// GET with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.get_with(path, token, &[]).await
    }

    /// POST /api/v1/auth/register.
    pub async fn register_raw(&self, body: &Value) -> Response {
        self.post("/api/v1/auth/register", None, body).await
    }

    /// Registers a user of `role` ("patient" or "doctor") in `timezone`.
    pub async fn register(&self, role: &str, name: &str, timezone: &str) -> User {
        let email = format!("{}-{}@example.org", role, Uuid::new_v4().simple());
        let response = self
            .register_raw(&json!({
                "email": email, "password": PASSWORD, "role": role, "name": name, "timezone": timezone
            }))
            .await;
        let body = expect_status(response, StatusCode::CREATED).await;
        User {
            id: body["user"]["id"].as_str().expect("user id").to_string(),
            token: body["access_token"].as_str().expect("token").to_string(),
            email,
        }
    }

    /// A registered patient.
    pub async fn patient(&self) -> User {
        self.register("patient", "Ada Patient", "Asia/Kolkata")
            .await
    }

    /// A registered doctor.
    pub async fn doctor(&self) -> User {
        self.register("doctor", "Dr. Grey", "America/New_York")
            .await
    }

    /// POST /api/v1/auth/login.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// The path of the `telemed` binary built for these tests.
    pub fn binary() -> &'static str {
        env!("CARGO_BIN_EXE_telemed")
    }
}

/// Asserts the status (printing the body otherwise) and returns the JSON body.
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Asserts a problem+json answer with `status`, and returns the problem.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let problem = expect_status(response, status).await;
    assert_eq!(content_type, "application/problem+json", "{problem}");
    assert_eq!(problem["status"], status.as_u16(), "{problem}");
    for key in ["type", "title", "detail", "errors"] {
        assert!(problem.get(key).is_some(), "problem lacks {key}: {problem}");
    }
    problem
}

/// The fields named in a problem's `errors`.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A valid doctor profile body.
pub fn doctor_profile(bio: &str) -> Value {
    json!({
        "specialties": ["Cardiology", "Internal medicine"],
        "bio": bio,
        "languages": ["en", "es"],
        "timezone": "America/Chicago"
    })
}

/// A valid patient profile body.
pub fn patient_profile(notes: &str) -> Value {
    json!({
        "timezone": "Asia/Kolkata",
        "contact": { "phone": "+91 22 1234 5678", "address": "12 MG Road, Mumbai" },
        "medical_history": {
            "conditions": ["asthma"],
            "allergies": ["penicillin"],
            "medications": ["salbutamol"],
            "notes": notes
        }
    })
}

impl TestApp {
    /// Creates an admin or auditor with the real `telemed user create` command and signs in.
    pub async fn staff(&self, role: &str) -> User {
        let email = format!("{role}-{}@example.org", Uuid::new_v4().simple());
        let output = tokio::process::Command::new(Self::binary())
            .args([
                "user",
                "create",
                "--role",
                role,
                "--email",
                &email,
                "--password",
                PASSWORD,
            ])
            .args(["--name", "Operator"])
            .env("DATABASE_URL", &self.db.url)
            .output()
            .await
            .expect("run telemed user create");
        assert!(
            output.status.success(),
            "user create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let id = String::from_utf8(output.stdout).unwrap().trim().to_string();
        let body = expect_status(self.login(&email, PASSWORD).await, StatusCode::OK).await;
        assert_eq!(body["user"]["id"], id.as_str());
        assert_eq!(body["user"]["role"], role);
        User {
            id,
            token: body["access_token"].as_str().unwrap().to_string(),
            email,
        }
    }
}

// scheduling helpers (instants are formatted by `crate::scheduling::rfc3339`)

impl TestApp {
    /// DELETE with a bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE")
    }

    /// GET with a bearer token and query parameters.
    pub async fn get_with(&self, path: &str, token: &str, query: &[(&str, &str)]) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .query(query)
            .send()
            .await
            .expect("GET")
    }

    /// Signs `user` in again on this app (whose clock may be shifted) and returns a fresh token.
    pub async fn sign_in(&self, user: &User) -> User {
        let body = expect_status(self.login(&user.email, PASSWORD).await, StatusCode::OK).await;
        User {
            token: body["access_token"].as_str().expect("token").to_string(),
            ..user.clone()
        }
    }

    /// POST /api/v1/doctors/{doctor_id}/availability as `doctor`.
    pub async fn open_availability(&self, doctor: &User, body: &Value) -> Response {
        let path = format!("/api/v1/doctors/{}/availability", doctor.id);
        self.post(&path, Some(&doctor.token), body).await
    }

    /// Opens one window and returns it (`{id, start, end}`).
    pub async fn open_window(
        &self,
        doctor: &User,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
    ) -> Value {
        let (start, end) = (
            crate::scheduling::rfc3339(start),
            crate::scheduling::rfc3339(end),
        );
        let body = json!({ "start": start, "end": end });
        let opened = expect_status(
            self.open_availability(doctor, &body).await,
            StatusCode::CREATED,
        )
        .await;
        let windows = opened["windows"].as_array().expect("windows");
        assert_eq!(windows.len(), 1, "{opened}");
        windows[0].clone()
    }

    /// GET /api/v1/doctors/{doctor_id}/availability with `query`.
    pub async fn availability_raw(
        &self,
        doctor_id: &str,
        token: &str,
        query: &[(&str, &str)],
    ) -> Response {
        let path = format!("/api/v1/doctors/{doctor_id}/availability");
        self.get_with(&path, token, query).await
    }

    /// The start instants of the free slots of `duration` minutes in `[from, to)`.
    pub async fn free_starts(
        &self,
        doctor_id: &str,
        token: &str,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
        duration: u32,
    ) -> Vec<time::OffsetDateTime> {
        let (from, to, duration) = (
            crate::scheduling::rfc3339(from),
            crate::scheduling::rfc3339(to),
            duration.to_string(),
        );
        let query = [("from", &*from), ("to", &*to), ("duration", &*duration)];
        let body = expect_status(
            self.availability_raw(doctor_id, token, &query).await,
            StatusCode::OK,
        )
        .await;
        body["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .map(|slot| crate::scheduling::instant(slot["start"].as_str().expect("slot start")))
            .collect()
    }

    /// POST /api/v1/appointments as `patient`.
    pub async fn book_raw(
        &self,
        patient: &User,
        doctor_id: &str,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
    ) -> Response {
        let (start, end) = (
            crate::scheduling::rfc3339(start),
            crate::scheduling::rfc3339(end),
        );
        let body =
            json!({ "doctor_id": doctor_id, "start": start, "end": end, "reason": "check-up" });
        self.post("/api/v1/appointments", Some(&patient.token), &body)
            .await
    }

    /// Books and returns the new (pending) appointment.
    pub async fn book(
        &self,
        patient: &User,
        doctor_id: &str,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
    ) -> Value {
        let response = self.book_raw(patient, doctor_id, start, end).await;
        let appointment = expect_status(response, StatusCode::CREATED).await;
        assert_eq!(appointment["status"], "pending", "{appointment}");
        appointment
    }

    /// POST /api/v1/appointments/{id}/{action} (`confirm`, `cancel`, …) as `user`.
    pub async fn act(&self, user: &User, id: &str, action: &str, body: &Value) -> Response {
        let path = format!("/api/v1/appointments/{id}/{action}");
        self.post(&path, Some(&user.token), body).await
    }

    /// POST /api/v1/appointments/{id}/reschedule to `[start, end)` as `user`.
    pub async fn reschedule(
        &self,
        user: &User,
        id: &str,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
    ) -> Response {
        let (start, end) = (
            crate::scheduling::rfc3339(start),
            crate::scheduling::rfc3339(end),
        );
        let body = json!({ "start": start, "end": end, "reason": "clash" });
        self.act(user, id, "reschedule", &body).await
    }

    /// GET /api/v1/appointments/{id} as `user`.
    pub async fn appointment(&self, user: &User, id: &str) -> Response {
        self.get(&format!("/api/v1/appointments/{id}"), &user.token)
            .await
    }

    /// How many events the store holds for `aggregate_id`.
    pub async fn events_of(&self, aggregate_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(aggregate_id)
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    /// How many rows `table` holds.
    pub async fn rows_in(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count rows")
    }

    /// Registers `count` patients, `chunk` at a time concurrently.
    pub async fn patients(&self, count: usize, chunk: usize) -> Vec<User> {
        let mut patients = Vec::with_capacity(count);
        while patients.len() < count {
            let batch = chunk.min(count - patients.len());
            let registering = (0..batch).map(|_| self.patient());
            patients.extend(futures::future::join_all(registering).await);
        }
        patients
    }
}

/// Every table of every projection (`telemed_projections::all()`), each as its rows in JSON
/// without the columns `without` (store coordinates, which an import issues anew), sorted.
pub async fn read_models(pool: &PgPool, without: &[&str]) -> Vec<(String, Vec<String>)> {
    let without: Vec<String> = without.iter().map(|c| c.to_string()).collect();
    let mut models = Vec::new();
    for projection in telemed_projections::all() {
        for table in projection.tables() {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT (to_jsonb(t) - $1::text[])::text FROM {table} t ORDER BY 1"
            ))
            .bind(&without)
            .fetch_all(pool)
            .await
            .expect("read a read model");
            models.push((table.to_string(), rows));
        }
    }
    models
}

/// Asserts that two [`read_models`] are equal, naming each table that differs and the rows
/// that are only in one of them.
pub fn assert_same_read_models(
    left: &[(String, Vec<String>)],
    right: &[(String, Vec<String>)],
    what: &str,
) {
    let tables = |models: &[(String, Vec<String>)]| -> Vec<String> {
        models.iter().map(|(table, _)| table.clone()).collect()
    };
    assert_eq!(tables(left), tables(right), "{what}");
    let mut differences = Vec::new();
    for ((table, ours), (_, theirs)) in left.iter().zip(right) {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|row| !b.contains(row)).cloned().collect()
        };
        if ours != theirs {
            differences.push(format!(
                "{table}: only left {:#?}\nonly right {:#?}",
                only(ours, theirs),
                only(theirs, ours)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{what}:\n{}",
        differences.join("\n")
    );
}

/// Whether every projection has applied every event in the store.
pub async fn projections_caught_up(pool: &PgPool) -> bool {
    let names: Vec<String> = telemed_projections::all()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    sqlx::query_scalar(
        "SELECT count(*) = cardinality($1::text[]) FROM projection_checkpoints
          WHERE name = ANY($1)
            AND (transaction_id, global_position) >= ALL (
                SELECT transaction_id, global_position FROM events)",
    )
    .bind(&names)
    .fetch_one(pool)
    .await
    .expect("compare the checkpoints with the store")
}

/// A real `telemed serve` process on `url`'s database (killed when the child is dropped),
/// and a client of it.
pub async fn spawn_process(url: &str) -> (tokio::process::Child, TestApp) {
    spawn_process_with(url, &[]).await
}

/// `spawn_process` with more (or overriding) environment variables.
pub async fn spawn_process_with(
    url: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, TestApp) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(TestApp::binary())
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("TELEMED_BIND", "127.0.0.1:0")
        .env("TELEMED_DB_MAX_CONNECTIONS", "8")
        .env("TELEMED_RATE_LIMITS", "off")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start telemed serve");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let port = loop {
        let line = lines
            .next_line()
            .await
            .expect("read the server's log")
            .expect("the server logs its port");
        if let Some(rest) = line.split("port=").nth(1) {
            break rest.split_whitespace().next().expect("a port").to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db: TestDb {
            url: url.to_string(),
        },
        pool: telemed_api::database::pool(url, 4).expect("pool"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    };
    (child, app)
}

/// Holds the projections back: a transaction that locks every checkpoint row, so commands
/// are recorded but their answers wait for the read models until it is dropped.
pub async fn hold_read_models(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut hold = pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM projection_checkpoints FOR UPDATE")
        .execute(&mut *hold)
        .await
        .expect("lock the checkpoints");
    hold
}

/// The number of keyed requests registered and not answered yet.
pub async fn keys_in_progress(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE status IS NULL")
        .fetch_one(pool)
        .await
        .expect("count the keys in progress")
}
