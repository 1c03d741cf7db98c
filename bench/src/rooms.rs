//! Chat and signaling through Socket.IO in two-person rooms: R rooms (a doctor and a patient
//! of a confirmed appointment, with a ringing call), 2R connections speaking the Socket.IO v4
//! wire protocol (Engine.IO 4 over WebSocket, written here), against the real server in a child
//! process; and, in the same run, the same load against a plain socketioxide room relay (no
//! auth, no storage) as the baseline.
//!
//! - chat: every patient sends M messages one after another (`chat:send`, acked once stored);
//! - signaling: every doctor sends M `call:ice` to the patient (acked once relayed).
//!
//! Reported: acked messages per second, ack latency and sender → receiver latency (p50/p99).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use telemed_api::auth::jwt::JwtKeys;
use telemed_api::config::DEVELOPMENT_JWT_SECRET;
use telemed_domain::appointment::{AppointmentEvent, Party, SlotRef};
use telemed_domain::calendar::Interval;
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, DayId, ReservationId, Role, UserId};
use time::OffsetDateTime;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::live::ChildServer;
use crate::stats::Latencies;

/// One room: a confirmed appointment's two participants.
#[derive(Clone)]
pub struct Room {
    appointment: AppointmentId,
    doctor: UserId,
    patient: UserId,
    call: Option<String>,
}

/// What one workload measured on one server.
pub struct Figures {
    /// Acked messages per second (all rooms together).
    pub per_second: f64,
    /// Send → ack.
    pub ack: Latencies,
    /// Send → read by the other participant.
    pub delivery: Latencies,
}

/// Inserts `count` confirmed appointments starting in five minutes straight into the store
/// (registration's password hashing would dominate the set-up otherwise).
pub async fn seed(pool: &PgPool, count: usize) -> anyhow::Result<Vec<Room>> {
    let start = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let interval = Interval::new(start, start + time::Duration::minutes(30))
        .map_err(|e| anyhow::anyhow!("interval: {e:?}"))?;
    let (mut types, mut ids, mut sequences, mut event_types, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rooms = Vec::with_capacity(count);
    for _ in 0..count {
        let room = Room {
            appointment: AppointmentId::new(),
            doctor: UserId::new(),
            patient: UserId::new(),
            call: None,
        };
        let events = [
            AppointmentEvent::AppointmentRequested {
                doctor_id: room.doctor,
                patient_id: room.patient,
                interval,
                reason: FreeText::parse("benchmark").map_err(|e| anyhow::anyhow!("{e:?}"))?,
                slot: SlotRef {
                    day: DayId::new(room.doctor, start.date()),
                    reservation_id: ReservationId::new(),
                },
                at: OffsetDateTime::now_utc(),
            },
            AppointmentEvent::AppointmentConfirmed {
                by: Party::Doctor,
                at: OffsetDateTime::now_utc(),
            },
        ];
        for (n, event) in events.iter().enumerate() {
            types.push("appointment");
            ids.push(room.appointment.to_string());
            sequences.push(n as i64 + 1);
            event_types.push(
                if n == 0 {
                    "AppointmentRequested"
                } else {
                    "AppointmentConfirmed"
                }
                .to_string(),
            );
            payloads.push(serde_json::to_value(event)?);
        }
        rooms.push(room);
    }
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, i, s, e, '1', p, '{\"actor_id\": \"system:bench\", \"actor_role\": \"system\", \"command\": \"bench.seed\", \"request_id\": \"bench\"}'::jsonb
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[]) AS u(t, i, s, e, p)",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&sequences)
    .bind(&event_types)
    .bind(&payloads)
    .execute(pool)
    .await?;
    // Wait for the read model (the server's projections apply them).
    let uuids: Vec<uuid::Uuid> = rooms.iter().map(|r| r.appointment.as_uuid()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready: i64 =
            sqlx::query_scalar("SELECT count(*) FROM appointments WHERE appointment_id = ANY($1)")
                .bind(&uuids)
                .fetch_one(pool)
                .await?;
        if ready as usize == count {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {ready} of {count} appointments reached the read model");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(rooms)
}

/// Starts a call in every room (as the doctor).
pub async fn start_calls(port: u16, rooms: &mut [Room]) -> anyhow::Result<()> {
    let keys = JwtKeys::new(DEVELOPMENT_JWT_SECRET, Duration::from_secs(3600));
    let client = reqwest::Client::new();
    for room in rooms.iter_mut() {
        let token = keys
            .issue(room.doctor, Role::Doctor, uuid::Uuid::new_v4())
            .map_err(|e| anyhow::anyhow!("token: {e}"))?;
        let response = client
            .post(format!(
                "http://127.0.0.1:{port}/api/v1/appointments/{}/calls",
                room.appointment
            ))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("start a call: {status}: {body}");
        }
        room.call = body["call_id"].as_str().map(str::to_string);
    }
    Ok(())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A Socket.IO v4 client (Engine.IO 4 over WebSocket, namespace `/`), just enough for the
/// benchmark: connect with `auth`, emit with an ack, read events, answer pings.
struct Sio {
    socket: Socket,
    next_ack: u64,
}

impl Sio {
    async fn connect(port: u16, source: u8, auth: &Value) -> anyhow::Result<Self> {
        let tcp = TcpSocket::new_v4()?;
        tcp.bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
            0,
        ))?;
        let stream = tcp
            .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .await?;
        stream.set_nodelay(true)?;
        let (mut socket, _) = tokio_tungstenite::client_async(
            format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"),
            stream,
        )
        .await
        .context("Engine.IO handshake")?;
        // Engine.IO open ("0{…}"), then Socket.IO CONNECT with auth ("40{…}").
        let open = Self::text(&mut socket).await?;
        if !open.starts_with('0') {
            bail!("expected an Engine.IO open packet, got {open}");
        }
        socket.send(Message::text(format!("40{auth}"))).await?;
        loop {
            let text = Self::text(&mut socket).await?;
            if text.starts_with("40") {
                break;
            }
            if text.starts_with("44") {
                bail!("connect error: {text}");
            }
        }
        Ok(Self {
            socket,
            next_ack: 1,
        })
    }

    async fn text(socket: &mut Socket) -> anyhow::Result<String> {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(_)) => {}
                other => bail!("connection ended: {other:?}"),
            }
        }
    }

    /// The next Socket.IO packet's text, answering Engine.IO pings on the way.
    async fn packet(&mut self) -> anyhow::Result<String> {
        loop {
            let text = Self::text(&mut self.socket).await?;
            if text == "2" {
                self.socket.send(Message::text("3")).await?;
                continue;
            }
            return Ok(text);
        }
    }

    /// Emits `event` with `data` and waits for its ack; returns the ack's payload.
    async fn emit_with_ack(&mut self, event: &str, data: &Value) -> anyhow::Result<String> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.socket
            .send(Message::text(format!("42{id}{}", json!([event, data]))))
            .await?;
        let prefix = format!("43{id}");
        loop {
            let packet = self.packet().await?;
            if let Some(rest) = packet.strip_prefix(&prefix) {
                return Ok(rest.to_string());
            }
        }
    }
}

/// `probe-<n>-end` in a text.
fn probe(n: usize) -> String {
    format!("probe-{n}-end")
}

fn probe_of(text: &str) -> Option<usize> {
    let rest = &text[text.find("probe-")? + 6..];
    rest[..rest.find("-end")?].parse().ok()
}

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `chat:send`, stored before the ack.
    Chat,
    /// `call:ice`, relayed to the other participant.
    Signaling,
}

/// Runs `workload` with `messages` per room on `server` (`baseline`: the plain relay).
pub async fn measure(
    server: &ChildServer,
    rooms: &[Room],
    workload: Workload,
    messages: usize,
    baseline: bool,
) -> anyhow::Result<Figures> {
    let keys = Arc::new(JwtKeys::new(
        DEVELOPMENT_JWT_SECRET,
        Duration::from_secs(3600),
    ));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let auth = |user: UserId, role: Role, room: &Room| -> anyhow::Result<Value> {
        Ok(if baseline {
            json!({ "room": room.appointment.to_string() })
        } else {
            json!({ "token": keys.issue(user, role, uuid::Uuid::new_v4()).map_err(|e| anyhow::anyhow!("token: {e}"))? })
        })
    };
    // Connect everyone first.
    let mut pairs = Vec::with_capacity(rooms.len());
    for (index, room) in rooms.iter().enumerate() {
        let source = 2 + (index % 8) as u8;
        let (sender_user, sender_role, receiver_user, receiver_role) = match workload {
            Workload::Chat => (room.patient, Role::Patient, room.doctor, Role::Doctor),
            Workload::Signaling => (room.doctor, Role::Doctor, room.patient, Role::Patient),
        };
        let sender =
            Sio::connect(server.port, source, &auth(sender_user, sender_role, room)?).await?;
        let receiver = Sio::connect(
            server.port,
            source,
            &auth(receiver_user, receiver_role, room)?,
        )
        .await?;
        pairs.push((room.clone(), sender, receiver));
    }
    let began = Instant::now();
    let mut tasks = Vec::new();
    for (room, mut sender, mut receiver) in pairs {
        let (acks, deliveries) = (acks.clone(), deliveries.clone());
        let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; messages]));
        let sent_for_receiver = sent_at.clone();
        let expected_event = match (baseline, workload) {
            (true, _) => "\"relay\"",
            (false, Workload::Chat) => "\"chat:message\"",
            (false, Workload::Signaling) => "\"call:ice\"",
        };
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            let mut samples = Vec::with_capacity(messages);
            while got < messages {
                let packet = receiver.packet().await?;
                if !packet.starts_with("42") || !packet.contains(expected_event) {
                    continue;
                }
                if let Some(n) = probe_of(&packet) {
                    let at = Instant::now();
                    let sent = sent_for_receiver
                        .lock()
                        .map_err(|_| anyhow::anyhow!("lock"))?[n];
                    if let Some(sent) = sent {
                        samples.push(at.saturating_duration_since(sent));
                    }
                    got += 1;
                }
            }
            deliveries
                .lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .append(&mut samples);
            Ok::<_, anyhow::Error>(())
        }));
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(messages);
            for n in 0..messages {
                let (event, data) = match (baseline, workload) {
                    (true, _) => ("relay", json!({ "text": probe(n) })),
                    (false, Workload::Chat) => (
                        "chat:send",
                        json!({ "appointment_id": room.appointment, "content": probe(n) }),
                    ),
                    (false, Workload::Signaling) => (
                        "call:ice",
                        json!({ "call_id": room.call.clone().unwrap_or_default(), "candidate": probe(n) }),
                    ),
                };
                let sent = Instant::now();
                sent_at.lock().map_err(|_| anyhow::anyhow!("lock"))?[n] = Some(sent);
                let ack = sender.emit_with_ack(event, &data).await?;
                if ack.contains("\"error\"") {
                    bail!("{event} refused: {ack}");
                }
                samples.push(sent.elapsed());
            }
            acks.lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .append(&mut samples);
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .context("the workload took over 5 minutes")?
            .context("a client panicked")??;
    }
    let elapsed = began.elapsed();
    let acks = std::mem::take(&mut *acks.lock().map_err(|_| anyhow::anyhow!("lock"))?);
    let deliveries = std::mem::take(&mut *deliveries.lock().map_err(|_| anyhow::anyhow!("lock"))?);
    Ok(Figures {
        per_second: acks.len() as f64 / elapsed.as_secs_f64(),
        ack: Latencies::of(&acks).context("no acks")?,
        delivery: Latencies::of(&deliveries).context("no deliveries")?,
    })
}

/// The baseline (the `--serve-sio-baseline` child): a socketioxide server where a client
/// joins the room named in its handshake `auth` and every `relay` event goes to the others in
/// the room, acked once sent. No auth, no storage.
pub async fn serve_baseline() -> anyhow::Result<()> {
    use socketioxide::SocketIo;
    use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
    let (layer, io) = SocketIo::new_layer();
    io.ns(
        "/",
        async |socket: SocketRef, TryData(auth): TryData<Value>| {
            let room = auth
                .ok()
                .and_then(|a| a["room"].as_str().map(str::to_string))
                .unwrap_or_default();
            socket.join(room.clone());
            socket.on(
                "relay",
                async move |socket: SocketRef, Data(data): Data<Value>, ack: AckSender| {
                    let _ = socket.to(room.clone()).emit("relay", &data).await;
                    let _ = ack.send(&json!({ "ok": true }));
                },
            );
        },
    );
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    println!("port={}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}
