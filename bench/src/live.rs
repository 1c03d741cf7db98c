//! Live events at scale: N authenticated WebSocket clients on one server process.
//!
//! The server runs in a child process (this binary with `--serve-telemed`), so its resident
//! memory can be read from `/proc` and client and server sockets do not share one process's
//! file limit. Clients connect from several loopback addresses (127.0.0.2 …) to get past the
//! ephemeral-port limit of one address pair.
//!
//! Every client is an auditor (a token minted with the server's secret) subscribed to `audit`,
//! so every stored event reaches all of them. Probes are events appended straight to the
//! store by this process (an aggregate type no projection knows); a probe's latency runs from
//! its INSERT having committed to a client having read its frame.
//!
//! Baseline, in the same run: a bare tokio-tungstenite broadcast relay (child process with
//! `--serve-baseline`: no auth, no store, no hub; the same WebSocket buffer sizes), to which this process sends the same
//! number of probe frames through one extra connection. Our figures are reported as ratios
//! of the baseline's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Mutex;
use telemed_api::auth::jwt::JwtKeys;
use telemed_api::config::DEVELOPMENT_JWT_SECRET;
use telemed_domain::{Role, UserId};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, broadcast};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::servers::ChildServer;
use crate::stats::Latencies;

/// Loopback source addresses the clients spread over.
const SOURCES: u8 = 8;
/// Clients connected before the memory baseline is taken.
const WARM_UP_CLIENTS: usize = 16;
/// Clients connecting at once.
const CONNECT_CONCURRENCY: usize = 256;

/// What one run measured for one transport server.
#[derive(Debug)]
pub struct Run {
    /// Server RSS growth per connected idle client, in bytes.
    pub bytes_per_connection: f64,
    /// Committed (or sent) → read, one probe at a time.
    pub latency: Latencies,
    /// Frames delivered per second while a burst fans out.
    pub fanout_per_second: f64,
}

/// Where probe frames are counted and stamped.
struct Collector {
    received: AtomicU64,
    target: AtomicU64,
    done: Notify,
    stamps: Mutex<Vec<(u64, Instant)>>,
}

impl Collector {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            received: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            done: Notify::new(),
            stamps: Mutex::new(Vec::new()),
        })
    }

    /// Waits until `target` frames in all have been received.
    async fn wait_for(&self, target: u64) -> anyhow::Result<()> {
        self.target.store(target, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.received.load(Ordering::SeqCst) < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "only {} of {target} frames arrived within 120 s",
                    self.received.load(Ordering::SeqCst)
                );
            }
            let _ =
                tokio::time::timeout(left.min(Duration::from_millis(100)), self.done.notified())
                    .await;
        }
        Ok(())
    }
}

/// The probe number in a frame, if it is a probe (found without parsing the whole frame).
fn probe_of(text: &str) -> Option<u64> {
    let rest = &text[text.find("\"probe\":")? + 8..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Serves the real application (the `--serve-telemed` child): prints `port=N`, serves until
/// killed.
pub async fn serve_telemed(database_url: &str) -> anyhow::Result<()> {
    let mut config = telemed_api::Config::development(database_url);
    config.max_db_connections = 16;
    config.live_queue = 4096;
    config.rate_limits = false;
    let app = telemed_api::Application::build(config).await?;
    println!("port={}", app.port());
    app.run_until_stopped(std::future::pending()).await?;
    Ok(())
}

/// The baseline relay (the `--serve-baseline` child): every text frame any client sends is
/// broadcast to every client.
pub async fn serve_baseline() -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    println!("port={}", listener.local_addr()?.port());
    let (sender, _) = broadcast::channel::<Arc<str>>(4096);
    relay(listener, sender).await
}

/// Relays for every connection `listener` accepts. A connection receives what is broadcast
/// from the moment it is accepted: subscribed before its handshake is answered, since a client
/// counts itself connected (and the benchmark sends its probe) once it has the answer. (It
/// used to subscribe after the handshake: a probe sent in between was lost to that client,
/// "only 15 of 16 frames arrived", which was this relay's, not the application's.)
async fn relay(listener: TcpListener, sender: broadcast::Sender<Arc<str>>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let sender = sender.clone();
        let mut receiver = sender.subscribe();
        tokio::spawn(async move {
            let Ok(socket) =
                tokio_tungstenite::accept_async_with_config(stream, Some(small_buffers())).await
            else {
                return;
            };
            let (mut sink, mut source) = socket.split();
            loop {
                tokio::select! {
                    frame = receiver.recv() => match frame {
                        Ok(text) => if sink.send(Message::text(text.as_ref())).await.is_err() { return },
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    },
                    message = source.next() => match message {
                        Some(Ok(Message::Text(text))) => { let _ = sender.send(Arc::from(text.as_str())); }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                }
            }
        });
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The buffer sizes the application's WebSocket uses (`api/src/live/ws.rs`), so that the
/// baseline relay's memory compares like with like (tungstenite's default read buffer is
/// 128 KiB per connection).
fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
}

/// Connects one client to `port` from source address `source`.
async fn connect(port: u16, source: u8, path: &str) -> anyhow::Result<Socket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
        0,
    ))?;
    let stream = socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await?;
    stream.set_nodelay(true)?;
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://127.0.0.1:{port}{path}"),
        stream,
        Some(small_buffers()),
    )
    .await
    .context("WebSocket handshake")?;
    Ok(socket)
}

/// Connects `count` clients (subscribed to `audit` when `telemed`), each reading frames into
/// `collector` until the run ends.
async fn clients(
    port: u16,
    count: usize,
    telemed: bool,
    collector: &Arc<Collector>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let keys = Arc::new(JwtKeys::new(
        DEVELOPMENT_JWT_SECRET,
        Duration::from_secs(3600),
    ));
    let mut handles = Vec::with_capacity(count);
    let mut connecting = tokio::task::JoinSet::new();
    for index in 0..count {
        if connecting.len() >= CONNECT_CONCURRENCY
            && let Some(joined) = connecting.join_next().await
        {
            handles.push(joined??);
        }
        let source = 2 + (index % usize::from(SOURCES)) as u8;
        let keys = keys.clone();
        let collector = collector.clone();
        connecting.spawn(async move {
            let path = if telemed {
                let token = keys
                    .issue(UserId::new(), Role::Auditor, uuid::Uuid::new_v4())
                    .map_err(|e| anyhow::anyhow!("mint a token: {e}"))?;
                format!("/api/v1/ws?access_token={token}")
            } else {
                "/".to_string()
            };
            let mut socket = connect(port, source, &path).await?;
            if telemed {
                socket
                    .send(Message::text(
                        json!({ "event": "subscribe", "data": { "topic": "audit" }, "ack": 1 })
                            .to_string(),
                    ))
                    .await?;
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Text(text))) if text.contains("\"ack\"") => {
                            if !text.contains("\"ok\":true") {
                                bail!("subscribe refused: {text}");
                            }
                            break;
                        }
                        Some(Ok(_)) => {}
                        other => bail!("connection ended while subscribing: {other:?}"),
                    }
                }
            }
            Ok::<_, anyhow::Error>(tokio::spawn(read_frames(socket, collector)))
        });
    }
    while let Some(joined) = connecting.join_next().await {
        handles.push(joined??);
    }
    Ok(handles)
}

async fn read_frames(mut socket: Socket, collector: Arc<Collector>) {
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message
            && let Some(probe) = probe_of(text.as_str())
        {
            let at = Instant::now();
            collector
                .stamps
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((probe, at));
            let received = collector.received.fetch_add(1, Ordering::SeqCst) + 1;
            if received >= collector.target.load(Ordering::SeqCst) {
                collector.done.notify_one();
            }
        }
    }
}

/// How probes reach the server.
enum Prober {
    /// Appended to the store (the telemed server delivers them).
    Store {
        pool: PgPool,
        aggregate: String,
        next: i64,
    },
    /// Sent as a frame to the baseline relay.
    Relay(Box<Socket>),
}

impl Prober {
    /// Sends probe `n`; returns when it is committed (or written).
    async fn send(&mut self, probes: &[u64]) -> anyhow::Result<Instant> {
        match self {
            Prober::Store {
                pool,
                aggregate,
                next,
            } => {
                let sequences: Vec<i64> = probes
                    .iter()
                    .map(|_| {
                        *next += 1;
                        *next
                    })
                    .collect();
                let payloads: Vec<serde_json::Value> =
                    probes.iter().map(|p| json!({ "probe": p })).collect();
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                     SELECT 'bench_probe', $1, s, 'Probe', '1', p, '{}'::jsonb
                       FROM unnest($2::bigint[], $3::jsonb[]) AS u(s, p)",
                )
                .bind(&*aggregate)
                .bind(&sequences)
                .bind(&payloads)
                .execute(&*pool)
                .await?;
                Ok(Instant::now())
            }
            Prober::Relay(socket) => {
                let sent = Instant::now();
                for probe in probes {
                    socket
                        .send(Message::text(
                            json!({ "event": "probe", "data": { "probe": probe } }).to_string(),
                        ))
                        .await?;
                }
                Ok(sent)
            }
        }
    }
}

/// Connects `count` clients to `server`, measures memory, latency and fan-out.
pub async fn measure(
    server: &ChildServer,
    pool: Option<&PgPool>,
    count: usize,
    probes: u64,
    burst: u64,
) -> anyhow::Result<Run> {
    let telemed = pool.is_some();
    let collector = Collector::new();
    let mut prober = match pool {
        Some(pool) => Prober::Store {
            pool: pool.clone(),
            aggregate: uuid::Uuid::new_v4().to_string(),
            next: 0,
        },
        None => Prober::Relay(Box::new(connect(server.port, 2, "/").await?)),
    };
    // Warm up (database connections, hub tables, allocator arenas) with a few clients and one
    // probe before the memory baseline, so that it counts the connections alone.
    let warm = WARM_UP_CLIENTS.min(count);
    let mut readers = clients(server.port, warm, telemed, &collector).await?;
    let mut committed = vec![(0, prober.send(&[0]).await?)];
    let mut expected = warm as u64;
    collector.wait_for(expected).await?;
    let before = server.rss()?;
    readers.extend(clients(server.port, count - warm, telemed, &collector).await?);
    let after = server.rss()?;
    let bytes_per_connection = after.saturating_sub(before) as f64 / (count - warm).max(1) as f64;

    // Latency: one probe at a time, each delivered everywhere before the next.
    for probe in 1..=probes {
        committed.push((probe, prober.send(&[probe]).await?));
        expected += count as u64;
        collector.wait_for(expected).await?;
    }
    // Fan-out: a burst in one go.
    let burst_probes: Vec<u64> = (probes + 1..=probes + burst).collect();
    let began = prober.send(&burst_probes).await?;
    expected += count as u64 * burst;
    collector.wait_for(expected).await?;
    let fanout = began.elapsed();

    for reader in &readers {
        reader.abort();
    }
    let stamps = std::mem::take(
        &mut *collector
            .stamps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let mut samples = Vec::with_capacity(count * probes as usize);
    for (probe, at) in stamps {
        if probe == 0 {
            continue;
        }
        if let Some((_, sent)) = committed.get(probe as usize) {
            samples.push(at.saturating_duration_since(*sent));
        }
    }
    Ok(Run {
        bytes_per_connection,
        latency: Latencies::of(&samples).context("no latency samples")?,
        fanout_per_second: (count as u64 * burst) as f64 / fanout.as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_relay_sends_a_client_what_is_broadcast_once_it_is_accepted() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, _) = broadcast::channel::<Arc<str>>(16);
        tokio::spawn(relay(listener, sender.clone()));
        // Accepted, its handshake not even asked for yet.
        let stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        let accepted = async {
            while sender.receiver_count() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), accepted)
            .await
            .expect("the relay listens to a connection from its accept on");
        sender.send(Arc::from("probe")).unwrap();
        let (mut socket, _) =
            tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/"), stream)
                .await
                .unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("the probe in time")
            .unwrap()
            .unwrap();
        assert_eq!(frame, Message::text("probe"));
    }
}
