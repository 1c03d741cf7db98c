//! The real application served in-process, and the few HTTP calls the benchmark makes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use telemed_api::{Application, Config};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The password every benchmark user gets (it satisfies the policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// All seven weekdays, as the API spells them.
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A registered user and their access token.
#[derive(Clone, Debug)]
pub struct User {
    /// User id (a UUID).
    pub id: String,
    /// Bearer token.
    pub token: String,
}

/// An HTTP client for one running server.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

/// The answer to one booking request.
#[derive(Debug)]
pub struct Answer {
    /// From sending the request to having read the whole body.
    pub latency: Duration,
    /// `None` for 201 Created; otherwise what went wrong (status and body, or transport error).
    pub error: Option<String>,
}

impl Api {
    /// A client for `http://127.0.0.1:{port}`.
    pub fn new(port: u16) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            base: format!("http://127.0.0.1:{port}/api/v1"),
            client,
        })
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<Value> {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("POST {path}: body"))?;
        if status != StatusCode::CREATED {
            bail!("POST {path}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST {path}: JSON body {text}"))
    }

    /// Registers a user of `role` (`doctor` or `patient`) in zone `timezone`.
    pub async fn register(&self, role: &str, name: &str, timezone: &str) -> anyhow::Result<User> {
        let email = format!("bench-{role}-{}@example.org", Uuid::new_v4().simple());
        let body = self
            .post(
                "/auth/register",
                None,
                &json!({
                    "email": email, "password": PASSWORD, "role": role,
                    "name": name, "timezone": timezone,
                }),
            )
            .await?;
        let id = body["user"]["id"]
            .as_str()
            .context("register: no user.id")?;
        let token = body["access_token"]
            .as_str()
            .context("register: no access_token")?;
        Ok(User {
            id: id.to_string(),
            token: token.to_string(),
        })
    }

    /// Registers `count` patients, a few at a time (password hashing is deliberately slow).
    pub async fn patients(&self, count: usize, name: &str) -> anyhow::Result<Vec<User>> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        stream::iter(0..count)
            .map(|i| async move {
                self.register("patient", &format!("{name} {i}"), "UTC")
                    .await
            })
            .buffered(4)
            .try_collect()
            .await
    }

    /// Opens `start`–`end` (`HH:MM`, doctor's zone) on every day from `from` to `to`
    /// (inclusive); returns how many windows were opened.
    pub async fn open_every_day(
        &self,
        doctor: &User,
        start: &str,
        end: &str,
        from: Date,
        to: Date,
    ) -> anyhow::Result<usize> {
        let weekly: Vec<Value> = WEEKDAYS
            .iter()
            .map(|day| json!({ "weekday": day, "start": start, "end": end }))
            .collect();
        let body = self
            .post(
                &format!("/doctors/{}/availability", doctor.id),
                Some(&doctor.token),
                &json!({ "weekly": weekly, "from": from.to_string(), "to": to.to_string() }),
            )
            .await?;
        Ok(body["windows"].as_array().map_or(0, Vec::len))
    }

    /// Books `start`–`end` with `doctor_id` for `patient`; returns the appointment id.
    pub async fn book_id(
        &self,
        patient: &User,
        doctor_id: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> anyhow::Result<String> {
        let body = self
            .post(
                "/appointments",
                Some(&patient.token),
                &json!({
                    "doctor_id": doctor_id, "start": start.format(&Rfc3339)?,
                    "end": end.format(&Rfc3339)?, "reason": "benchmark consultation"
                }),
            )
            .await?;
        Ok(body["id"].as_str().context("book: no id")?.to_string())
    }

    /// Posts `content` in appointment `id`'s conversation as `user`; returns the latency.
    pub async fn post_message(
        &self,
        user: &User,
        id: &str,
        content: &str,
    ) -> anyhow::Result<Duration> {
        let began = Instant::now();
        self.post(
            &format!("/appointments/{id}/messages"),
            Some(&user.token),
            &json!({ "content": content }),
        )
        .await?;
        Ok(began.elapsed())
    }

    /// Books `start`–`end` with `doctor_id` for `patient`, timing the request.
    pub async fn book(
        &self,
        patient: &User,
        doctor_id: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Answer {
        let (start, end) = match (start.format(&Rfc3339), end.format(&Rfc3339)) {
            (Ok(start), Ok(end)) => (start, end),
            _ => {
                return Answer {
                    latency: Duration::ZERO,
                    error: Some("cannot format the slot as RFC 3339".into()),
                };
            }
        };
        let body = json!({
            "doctor_id": doctor_id, "start": start, "end": end, "reason": "benchmark consultation"
        });
        let began = Instant::now();
        let sent = self
            .client
            .post(format!("{}/appointments", self.base))
            .bearer_auth(&patient.token)
            .json(&body)
            .send()
            .await;
        let error = match sent {
            Err(error) => Some(format!("transport error: {error}")),
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Err(error) => Some(format!("{status}, body unreadable: {error}")),
                    Ok(_) if status == StatusCode::CREATED => None,
                    Ok(text) => Some(format!("{status} for {start}: {text}")),
                }
            }
        };
        Answer {
            latency: began.elapsed(),
            error,
        }
    }
}

/// A server running in this process.
pub struct Server {
    /// A client for it.
    pub api: Api,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Builds the real application with `config` and serves it on a free port.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let app = Application::build(config)
            .await
            .context("build the application")?;
        let api = Api::new(app.port())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self { api, stop, task })
    }

    /// Stops serving (gracefully, at most 10 s) and stops the background tasks.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        drop(self.api);
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => eprintln!("warning: the server stopped with an error: {error}"),
            Ok(Err(error)) => eprintln!("warning: the server task failed: {error}"),
            Err(_) => eprintln!("warning: the server did not stop within 10 s"),
        }
    }
}
