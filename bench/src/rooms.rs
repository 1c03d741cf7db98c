//! Chat and signaling through Socket.IO in two-person rooms: R rooms (a doctor and a patient
//! of a confirmed appointment, with a ringing call), 2R connections speaking the Socket.IO v4
//! wire protocol (`crate::sio`), against any server that speaks Telemed's vocabulary for them:
//! Telemed itself, the plain socketioxide relay below and the Node relay in `bench/node/`.
//! Every client sends the same handshake, `auth: {token, appointment_id}` (Telemed ignores the
//! room, as it knows its users' appointments; the relays join the appointment's room).
//!
//! - chat: every patient sends M messages one after another (`chat:send`, acked once stored
//!   by Telemed, once relayed by the relays), read by the doctor as `chat:message`;
//! - signaling: every doctor sends M `call:ice` to the patient (acked once relayed);
//! - idle memory: N connections of N users, each alone, held open; the server's RSS growth
//!   per connection.
//!
//! Reported: delivered messages per second, ack latency and sender → receiver latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::PgPool;
use telemed_api::auth::jwt::JwtKeys;
use telemed_api::config::DEVELOPMENT_JWT_SECRET;
use telemed_domain::appointment::{AppointmentEvent, Party, SlotRef};
use telemed_domain::calendar::Interval;
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, DayId, ReservationId, Role, UserId};
use time::OffsetDateTime;

use crate::servers::ChildServer;
use crate::sio::{self, Sio};
use crate::stats::Latencies;

/// Connections held before the idle-memory baseline is read (warm-up of the server's tables,
/// arenas and, for Node, its JIT).
const IDLE_WARM_UP: usize = 100;
/// Pause before each RSS reading, so that allocations of the connecting phase settle.
const SETTLE: Duration = Duration::from_secs(2);

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
    /// Messages read by their receivers per second (all rooms together).
    pub per_second: f64,
    /// Send → ack.
    pub ack: Latencies,
    /// Send → read by the other participant.
    pub delivery: Latencies,
    /// Messages sent that their receiver never read (none arrived for `SILENCE`), or that
    /// were never acked (that room's sender then stops).
    pub lost: usize,
    /// Messages sent.
    pub sent: usize,
    /// Why connections the server closed mid-run ended (their rooms' unread messages are
    /// in `lost`).
    pub closed: Vec<String>,
}

/// How long a client waits for its next ack or probe before counting the rest as lost.
pub const SILENCE: Duration = Duration::from_secs(30);

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

/// Tokens signed with the secret every server under test is given.
fn keys() -> JwtKeys {
    JwtKeys::new(DEVELOPMENT_JWT_SECRET, Duration::from_secs(3600))
}

/// The handshake `auth` of `user` in `role` for the room of `appointment`.
fn auth(
    keys: &JwtKeys,
    user: UserId,
    role: Role,
    appointment: AppointmentId,
) -> anyhow::Result<Value> {
    let token = keys
        .issue(user, role, uuid::Uuid::new_v4())
        .map_err(|e| anyhow::anyhow!("token: {e}"))?;
    Ok(json!({ "token": token, "appointment_id": appointment }))
}

/// Starts a call in every room (as the doctor), through Telemed's REST API on `port`.
pub async fn start_calls(port: u16, rooms: &mut [Room]) -> anyhow::Result<()> {
    let keys = keys();
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
    /// `chat:send`, read as `chat:message`.
    Chat,
    /// `call:ice`, relayed to the other participant.
    Signaling,
}

impl Workload {
    /// The event message `n` of `room` is sent as, with its data.
    fn event(self, room: &Room, n: usize) -> (&'static str, Value) {
        match self {
            Workload::Chat => (
                "chat:send",
                json!({ "appointment_id": room.appointment, "content": probe(n) }),
            ),
            Workload::Signaling => (
                "call:ice",
                json!({ "call_id": room.call.clone().unwrap_or_default(), "candidate": probe(n) }),
            ),
        }
    }

    /// The event the receiver reads it as (quoted, as it appears in the packet).
    fn received_as(self) -> &'static str {
        match self {
            Workload::Chat => "\"chat:message\"",
            Workload::Signaling => "\"call:ice\"",
        }
    }
}

/// Where the two participants of every room connect: the sender's and the receiver's server
/// (the same one unless the run spans two processes).
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// The sender's server.
    pub sender: u16,
    /// The receiver's server.
    pub receiver: u16,
}

impl Ports {
    /// Both participants on `server`.
    pub fn one(server: &ChildServer) -> Self {
        Self {
            sender: server.port,
            receiver: server.port,
        }
    }
}

type Samples = Arc<Mutex<Vec<Duration>>>;
type Stamps = Arc<Mutex<Vec<Option<Instant>>>>;

/// What the clients of one workload share: each message's send time, the latency samples,
/// and the moment the last sample was taken.
#[derive(Clone, Default)]
struct Shared {
    acks: Samples,
    deliveries: Samples,
    last: Arc<Mutex<Option<Instant>>>,
    lost: Arc<std::sync::atomic::AtomicUsize>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
    closed: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    fn record(&self, into: &Samples, samples: &mut Vec<Duration>, last: Option<Instant>) {
        if let Ok(mut all) = into.lock() {
            all.append(samples);
        }
        if let (Ok(mut latest), Some(last)) = (self.last.lock(), last) {
            *latest = Some(latest.map_or(last, |l| l.max(last)));
        }
    }

    fn close(&self, why: String) {
        if let Ok(mut closed) = self.closed.lock() {
            closed.push(why);
        }
    }

    /// Counts the messages sent in a room but not among its `received` as lost.
    fn lose(&self, sent_at: &Stamps, received: usize) -> anyhow::Result<()> {
        let sent = sent_at
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?
            .iter()
            .flatten()
            .count();
        self.lost.fetch_add(
            sent.saturating_sub(received),
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    fn take(samples: &Samples) -> Vec<Duration> {
        samples
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

/// Connects every room's sender and receiver for `workload`, many rooms at once (connecting
/// them one by one could outlast the first connections' ping timeout, as nothing reads them
/// until the workload starts).
async fn connect_pairs(
    ports: Ports,
    rooms: &[Room],
    workload: Workload,
) -> anyhow::Result<Vec<(Room, Sio, Sio)>> {
    let keys = keys();
    let mut pairs = Vec::with_capacity(rooms.len());
    let mut connecting = tokio::task::JoinSet::new();
    for (index, room) in rooms.iter().enumerate() {
        if connecting.len() >= 64
            && let Some(joined) = connecting.join_next().await
        {
            pairs.push(joined??);
        }
        let (sender, receiver) = match workload {
            Workload::Chat => ((room.patient, Role::Patient), (room.doctor, Role::Doctor)),
            Workload::Signaling => ((room.doctor, Role::Doctor), (room.patient, Role::Patient)),
        };
        let sender_auth = auth(&keys, sender.0, sender.1, room.appointment)?;
        let receiver_auth = auth(&keys, receiver.0, receiver.1, room.appointment)?;
        let room = room.clone();
        connecting.spawn(async move {
            let source = sio::source(index);
            let sender = Sio::connect(ports.sender, source, &sender_auth).await?;
            let receiver = Sio::connect(ports.receiver, source, &receiver_auth).await?;
            Ok::<_, anyhow::Error>((room, sender, receiver))
        });
    }
    while let Some(joined) = connecting.join_next().await {
        pairs.push(joined??);
    }
    Ok(pairs)
}

/// Runs `workload` with `messages` per room, every room at once.
pub async fn measure(
    ports: Ports,
    rooms: &[Room],
    workload: Workload,
    messages: usize,
) -> anyhow::Result<Figures> {
    let shared = Shared::default();
    let pairs = connect_pairs(ports, rooms, workload).await?;
    let began = Instant::now();
    let mut tasks = Vec::new();
    for (room, sender, receiver) in pairs {
        let sent_at: Stamps = Arc::new(Mutex::new(vec![None; messages]));
        tasks.push(tokio::spawn(receive(
            receiver,
            workload,
            messages,
            sent_at.clone(),
            shared.clone(),
        )));
        tasks.push(tokio::spawn(send(
            sender,
            room,
            workload,
            messages,
            sent_at,
            shared.clone(),
        )));
    }
    for task in tasks {
        task.await.context("a client panicked")??;
    }
    let last = shared
        .last
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .unwrap_or(began);
    let elapsed = last
        .saturating_duration_since(began)
        .max(Duration::from_millis(1));
    let acks = Shared::take(&shared.acks);
    let deliveries = Shared::take(&shared.deliveries);
    Ok(Figures {
        per_second: deliveries.len() as f64 / elapsed.as_secs_f64(),
        ack: Latencies::of(&acks).context("no acks")?,
        delivery: Latencies::of(&deliveries).context("no deliveries")?,
        lost: shared.lost.load(std::sync::atomic::Ordering::SeqCst),
        sent: shared.sent.load(std::sync::atomic::Ordering::SeqCst),
        closed: shared
            .closed
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default(),
    })
}

/// The receiver of one room: reads until `messages` probes have arrived, or none has for
/// `SILENCE` (the rest are counted as lost).
async fn receive(
    mut receiver: Sio,
    workload: Workload,
    messages: usize,
    sent_at: Stamps,
    shared: Shared,
) -> anyhow::Result<()> {
    let expected = workload.received_as();
    let mut samples = Vec::with_capacity(messages);
    let mut last = None;
    while samples.len() < messages {
        let Ok(packet) = tokio::time::timeout(SILENCE, receiver.packet()).await else {
            shared.lose(&sent_at, samples.len())?;
            break;
        };
        let packet = match packet {
            Ok(packet) => packet,
            Err(error) => {
                shared.close(format!("receiver: {error:#}"));
                shared.lose(&sent_at, samples.len())?;
                break;
            }
        };
        if !packet.starts_with("42") || !packet.contains(expected) {
            continue;
        }
        if let Some(n) = probe_of(&packet) {
            let at = Instant::now();
            let sent = sent_at.lock().map_err(|_| anyhow::anyhow!("lock"))?[n];
            samples.push(at.saturating_duration_since(sent.unwrap_or(at)));
            last = Some(at);
        }
    }
    shared.record(&shared.deliveries, &mut samples, last);
    Ok(())
}

/// The sender of one room: `messages` events one after another, each awaiting its ack (for
/// `SILENCE` at most: then the sender stops and its receiver counts the rest as lost).
async fn send(
    mut sender: Sio,
    room: Room,
    workload: Workload,
    messages: usize,
    sent_at: Stamps,
    shared: Shared,
) -> anyhow::Result<()> {
    let mut samples = Vec::with_capacity(messages);
    let mut last = None;
    for n in 0..messages {
        let (event, data) = workload.event(&room, n);
        let sent = Instant::now();
        sent_at.lock().map_err(|_| anyhow::anyhow!("lock"))?[n] = Some(sent);
        shared
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Ok(ack) = tokio::time::timeout(SILENCE, sender.emit_with_ack(event, &data)).await
        else {
            break;
        };
        let ack = match ack {
            Ok(ack) => ack,
            Err(error) => {
                shared.close(format!("sender: {error:#}"));
                break;
            }
        };
        if ack.contains("\"error\"") {
            bail!("{event} refused: {ack}");
        }
        let at = Instant::now();
        samples.push(at - sent);
        last = Some(at);
    }
    shared.record(&shared.acks, &mut samples, last);
    Ok(())
}

/// Server RSS growth per idle authenticated Socket.IO connection, `count` held at once (each
/// a patient with no account, alone in a room of its own), after a warm-up of
/// `IDLE_WARM_UP` connections.
pub async fn idle_memory(server: &ChildServer, count: usize) -> anyhow::Result<f64> {
    let keys = keys();
    let fresh = |_| auth(&keys, UserId::new(), Role::Patient, AppointmentId::new());
    let port = server.port;
    idle_growth(server, count, |n, first| sio::hold(port, n, first, &fresh)).await
}

/// The same over Telemed's plain WebSocket (`GET /api/v1/ws`): each a patient with no
/// account, on their own user topic.
pub async fn idle_memory_websocket(server: &ChildServer, count: usize) -> anyhow::Result<f64> {
    let keys = keys();
    let token = |_| {
        keys.issue(UserId::new(), Role::Patient, uuid::Uuid::new_v4())
            .map_err(|e| anyhow::anyhow!("token: {e}"))
    };
    let port = server.port;
    idle_growth(server, count, |n, first| {
        sio::hold_websockets(port, n, first, &token)
    })
    .await
}

/// RSS growth per connection of `server` while `hold(n, first)` holds `count` connections
/// (after a warm-up of `IDLE_WARM_UP`, not counted).
async fn idle_growth<F, H>(server: &ChildServer, count: usize, hold: H) -> anyhow::Result<f64>
where
    H: Fn(usize, usize) -> F,
    F: Future<Output = anyhow::Result<Vec<tokio::task::JoinHandle<()>>>>,
{
    let warm = IDLE_WARM_UP.min(count / 10);
    let mut held = hold(warm, 0).await?;
    tokio::time::sleep(SETTLE).await;
    let before = server.rss()?;
    let after = async {
        held.extend(hold(count - warm, warm).await?);
        tokio::time::sleep(SETTLE).await;
        server.rss()
    }
    .await;
    for handle in &held {
        handle.abort();
    }
    Ok(after?.saturating_sub(before) as f64 / (count - warm).max(1) as f64)
}

/// The baseline (the `--serve-sio-baseline` child): a plain socketioxide relay speaking the
/// same events as Telemed in rooms of two. A client joins the room of the `appointment_id` in
/// its handshake `auth` (its token is not checked); `call:ice` goes to the other member as
/// `call:ice`, `chat:send` as `chat:message`, each acked once relayed. No storage.
pub async fn serve_baseline() -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    use socketioxide::SocketIo;
    use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
    let (layer, io) = SocketIo::new_layer();
    io.ns(
        "/",
        async |socket: SocketRef, TryData(auth): TryData<Value>| {
            let room = auth
                .ok()
                .and_then(|a| a["appointment_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            socket.join(room.clone());
            let ice_room = room.clone();
            socket.on(
                "call:ice",
                async move |socket: SocketRef, Data(data): Data<Value>, ack: AckSender| {
                    let relayed = json!({ "call_id": data["call_id"], "from": socket.id.to_string(), "candidate": data["candidate"] });
                    let _ = socket.to(ice_room.clone()).emit("call:ice", &relayed).await;
                    let _ = ack.send(&json!({ "ok": true }));
                },
            );
            socket.on(
                "chat:send",
                async move |socket: SocketRef, Data(data): Data<Value>, ack: AckSender| {
                    let message = json!({
                        "id": uuid::Uuid::new_v4(),
                        "appointment_id": room,
                        "sender_id": socket.id.to_string(),
                        "content": data["content"],
                        "sent_at": OffsetDateTime::now_utc().unix_timestamp(),
                    });
                    let _ = socket.to(room.clone()).emit("chat:message", &message).await;
                    let _ = ack.send(&message);
                },
            );
        },
    );
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    println!("port={}", listener.local_addr()?.port());
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
