//! `--suite rooms`: Telemed against a plain socketioxide relay and the Node Socket.IO 4
//! reference relay (`bench/node/`), driven by the same load generator in one run, with the
//! figures of issue 13's table and each one's ratio against its baseline:
//!
//! - `call:ice` relay, R rooms (2R connections), one process: delivered msg/s and p99 against
//!   the Node relay's (target ≥ 2× and ≤ ½);
//! - durable chat (stored before the ack): delivered msg/s against the Node relay's
//!   non-durable relay (target ≥ 1×) and ack p99 (target ≤ 50 ms);
//! - `call:ice` across two Telemed processes, every doctor on one and every patient on the
//!   other (their bus: PostgreSQL `NOTIFY`, or NATS when `TELEMED_NATS_URL` is set in this
//!   process's environment and the `telemed` build reads it), against the Node relay on one
//!   process (target ≥ 1×);
//! - memory per idle authenticated connection with N held, each server freshly started
//!   (target ≤ 8 KiB).
//!
//! Every server runs in a child process: Telemed is the real `telemed serve` binary.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::rooms::{self, Figures, Ports, Room, Workload};
use crate::servers::ChildServer;
use crate::stats::{ms, thousands};
use crate::verdict;

/// Targets of issue 13 (ratios are Telemed's figure over the Node relay's).
const TARGET_ICE_RATE: f64 = 2.0;
const TARGET_ICE_P99: f64 = 0.5;
const TARGET_CHAT_RATE: f64 = 1.0;
const TARGET_CHAT_ACK_P99: Duration = Duration::from_millis(50);
const TARGET_CROSS_RATE: f64 = 1.0;
const TARGET_IDLE_BYTES: f64 = 8.0 * 1024.0;
/// File descriptors this process needs besides its clients.
const SPARE_FILES: u64 = 512;

/// The size of a run.
pub struct Settings {
    /// Two-person rooms.
    pub rooms: usize,
    /// `chat:send` per room.
    pub chat_messages: usize,
    /// `call:ice` per room.
    pub signals: usize,
    /// Idle connections held for the memory figure.
    pub idle: usize,
    /// Only the idle-memory figures (no chat, no signaling).
    pub idle_only: bool,
}

/// The servers under test.
#[derive(Clone, Copy, Debug)]
enum Server {
    Telemed,
    Socketioxide,
    Node,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Telemed => "telemed",
            Server::Socketioxide => "socketioxide relay",
            Server::Node => "node relay",
        }
    }

    async fn start(self, url: &str) -> anyhow::Result<ChildServer> {
        match self {
            Server::Telemed => ChildServer::telemed(url).await,
            Server::Socketioxide => ChildServer::start("--serve-sio-baseline", url).await,
            Server::Node => ChildServer::node_relay().await,
        }
    }
}

/// One server's figures.
struct Results {
    chat: Figures,
    signaling: Figures,
    bytes_per_idle: f64,
}

/// KiB per idle connection of every server, each freshly started, in one run: Telemed over
/// Socket.IO and over its plain WebSocket, the socketioxide relay, the Node relay.
async fn idle_runs(url: &str, count: usize) -> anyhow::Result<()> {
    println!(
        "rooms, idle memory only: {} idle authenticated connections per server",
        thousands(count as f64)
    );
    let telemed = idle(Server::Telemed, url, count).await?;
    let websocket = idle_websocket(url, count).await?;
    let relay = idle(Server::Socketioxide, url, count).await?;
    let node = idle(Server::Node, url, count).await?;
    println!();
    print_idle(count, telemed, websocket, [relay, node]);
    Ok(())
}

/// The idle memory of Telemed's plain WebSocket on a freshly started `telemed serve`.
async fn idle_websocket(url: &str, count: usize) -> anyhow::Result<f64> {
    let child = Server::Telemed.start(url).await?;
    let bytes = rooms::idle_memory_websocket(&child, count).await;
    child.stop().await;
    let bytes = bytes.context("idle WebSockets on telemed")?;
    println!(
        "  telemed (plain WebSocket) idle: {:.1} KiB per connection",
        bytes / 1024.0
    );
    Ok(bytes)
}

/// The summary's idle-memory lines: Telemed's Socket.IO and WebSocket figures against the
/// target and the Node relay's, with the relays' figures.
fn print_idle(count: usize, telemed: f64, websocket: f64, [relay, node]: [f64; 2]) {
    println!(
        "memory per idle authenticated connection, {} held:",
        thousands(count as f64)
    );
    for (name, bytes) in [
        ("telemed (Socket.IO)", telemed),
        ("telemed (plain WebSocket)", websocket),
        (Server::Socketioxide.name(), relay),
        (Server::Node.name(), node),
    ] {
        println!("  {name}: {:.1} KiB", bytes / 1024.0);
    }
    for (name, bytes) in [("Socket.IO", telemed), ("plain WebSocket", websocket)] {
        println!(
            "  telemed {name} {:.1} KiB (target <= {:.0} KiB: {}) = {:.2}x node's, {:.2}x the socketioxide relay's",
            bytes / 1024.0,
            TARGET_IDLE_BYTES / 1024.0,
            verdict(bytes <= TARGET_IDLE_BYTES),
            bytes / node,
            bytes / relay
        );
    }
}

/// Runs the suite against the (migrated, empty) database at `url`.
pub async fn run(url: &str, settings: &Settings) -> anyhow::Result<()> {
    check_open_files(settings.idle)?;
    let pool = telemed_api::database::pool(url, 4)?;
    telemed_api::database::migrate(&pool)
        .await
        .context("migrate")?;
    crate::servers::install_node_relay().await?;
    if settings.idle_only {
        pool.close().await;
        return idle_runs(url, settings.idle).await;
    }
    println!(
        "rooms: {} two-person rooms ({} Socket.IO connections); chat {} messages per room, signaling {} call:ice per room; idle memory with {} connections",
        settings.rooms,
        settings.rooms * 2,
        settings.chat_messages,
        settings.signals,
        settings.idle
    );
    println!("telemed's bus between processes: {}", bus());
    let (telemed, websocket, cross, rooms) = telemed_runs(url, &pool, settings).await?;
    pool.close().await;
    let relay = relay_runs(Server::Socketioxide, url, &rooms, settings).await?;
    let node = relay_runs(Server::Node, url, &rooms, settings).await?;
    print_summary(settings, &telemed, &cross, &relay, &node);
    print_idle(
        settings.idle,
        telemed.bytes_per_idle,
        websocket,
        [relay.bytes_per_idle, node.bytes_per_idle],
    );
    Ok(())
}

/// What carries ephemeral events between Telemed processes in this run.
fn bus() -> String {
    match std::env::var("TELEMED_NATS_URL") {
        Ok(nats) if !nats.trim().is_empty() => {
            format!("NATS at {nats} (TELEMED_NATS_URL, passed to the telemed processes)")
        }
        _ => "PostgreSQL NOTIFY (TELEMED_NATS_URL is not set)".into(),
    }
}

/// Telemed on one process (chat, signaling), across two (signaling), and fresh processes for
/// the idle memory (Socket.IO, then the plain WebSocket); returns them with the plain
/// WebSocket's bytes per idle connection and the rooms (their calls started).
async fn telemed_runs(
    url: &str,
    pool: &sqlx::PgPool,
    settings: &Settings,
) -> anyhow::Result<(Results, f64, Figures, Vec<Room>)> {
    let first = ChildServer::telemed(url).await?;
    let outcome = async {
        let mut rooms = rooms::seed(pool, settings.rooms).await?;
        rooms::start_calls(first.port, &mut rooms).await?;
        let chat = workload(
            Server::Telemed,
            Ports::one(&first),
            &rooms,
            Workload::Chat,
            settings.chat_messages,
        )
        .await?;
        let signaling = workload(
            Server::Telemed,
            Ports::one(&first),
            &rooms,
            Workload::Signaling,
            settings.signals,
        )
        .await?;
        let second = ChildServer::telemed(url).await?;
        let ports = Ports {
            sender: first.port,
            receiver: second.port,
        };
        println!(
            "telemed, two processes: doctors on :{}, patients on :{}",
            first.port, second.port
        );
        let cross = workload(
            Server::Telemed,
            ports,
            &rooms,
            Workload::Signaling,
            settings.signals,
        )
        .await;
        second.stop().await;
        Ok::<_, anyhow::Error>((rooms, chat, signaling, cross?))
    }
    .await;
    first.stop().await;
    let (rooms, chat, signaling, cross) = outcome?;
    let bytes_per_idle = idle(Server::Telemed, url, settings.idle).await?;
    let websocket = idle_websocket(url, settings.idle).await?;
    Ok((
        Results {
            chat,
            signaling,
            bytes_per_idle,
        },
        websocket,
        cross,
        rooms,
    ))
}

/// A relay: chat and signaling on one process, then the idle memory on a fresh one.
async fn relay_runs(
    server: Server,
    url: &str,
    rooms: &[Room],
    settings: &Settings,
) -> anyhow::Result<Results> {
    let relay = server.start(url).await?;
    let ports = Ports::one(&relay);
    let outcome = async {
        let chat = workload(server, ports, rooms, Workload::Chat, settings.chat_messages).await?;
        let signaling =
            workload(server, ports, rooms, Workload::Signaling, settings.signals).await?;
        Ok::<_, anyhow::Error>((chat, signaling))
    }
    .await;
    relay.stop().await;
    let (chat, signaling) = outcome?;
    Ok(Results {
        chat,
        signaling,
        bytes_per_idle: idle(server, url, settings.idle).await?,
    })
}

/// One workload on `server`, with a line of progress.
async fn workload(
    server: Server,
    ports: Ports,
    rooms: &[Room],
    workload: Workload,
    messages: usize,
) -> anyhow::Result<Figures> {
    let figures = rooms::measure(ports, rooms, workload, messages)
        .await
        .with_context(|| format!("{workload:?} on {}", server.name()))?;
    println!("  {} {workload:?}: {}", server.name(), describe(&figures));
    Ok(figures)
}

/// The idle memory on a freshly started `server`.
async fn idle(server: Server, url: &str, count: usize) -> anyhow::Result<f64> {
    let child = server.start(url).await?;
    let bytes = rooms::idle_memory(&child, count).await;
    child.stop().await;
    let bytes = bytes.with_context(|| format!("idle connections on {}", server.name()))?;
    println!(
        "  {} idle: {:.1} KiB per connection",
        server.name(),
        bytes / 1024.0
    );
    Ok(bytes)
}

/// Refuses to start when the open-files limit cannot hold `idle` client connections.
fn check_open_files(idle: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("read /proc/self/limits")?;
    let soft: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no open-files limit in /proc/self/limits")?;
    println!("open files limit: {soft}");
    if (idle as u64) + SPARE_FILES > soft {
        bail!(
            "{idle} idle connections need about {} open files and the limit is {soft}: raise `ulimit -n` or pass a smaller --idle",
            idle as u64 + SPARE_FILES
        );
    }
    Ok(())
}

/// `12,345 msg/s; delivery p50 … p99 …; ack p50 … p99 …[; N of M LOST]`.
fn describe(f: &Figures) -> String {
    let lost = if f.lost > 0 {
        format!(
            "; {} of {} LOST (never read within {} s)",
            thousands(f.lost as f64),
            thousands(f.sent as f64),
            rooms::SILENCE.as_secs()
        )
    } else {
        String::new()
    };
    let closed = match f.closed.first() {
        Some(first) => format!(
            "; {} connections CLOSED by the server (first: {first})",
            f.closed.len()
        ),
        None => String::new(),
    };
    format!(
        "{} msg/s; delivery p50 {} p99 {}; ack p50 {} p99 {}{lost}{closed}",
        thousands(f.per_second),
        ms(f.delivery.p50),
        ms(f.delivery.p99),
        ms(f.ack.p50),
        ms(f.ack.p99)
    )
}

fn print_summary(
    settings: &Settings,
    telemed: &Results,
    cross: &Figures,
    relay: &Results,
    node: &Results,
) {
    let connections = thousands((settings.rooms * 2) as f64);
    let servers = [
        (Server::Telemed, telemed),
        (Server::Socketioxide, relay),
        (Server::Node, node),
    ];
    println!();
    println!("summary (ratios: telemed / node relay, same load generator, same run)");
    println!("call:ice relay, {connections} connections, one process:");
    for (server, results) in servers {
        println!("  {}: {}", server.name(), describe(&results.signaling));
    }
    let rate = telemed.signaling.per_second / node.signaling.per_second;
    let p99 = ratio(telemed.signaling.delivery.p99, node.signaling.delivery.p99);
    println!(
        "  telemed / node: {rate:.2}x msg/s (target >= {TARGET_ICE_RATE:.0}x: {}); delivery p99 {p99:.2}x (target <= {TARGET_ICE_P99}x: {})",
        verdict(rate >= TARGET_ICE_RATE),
        verdict(p99 <= TARGET_ICE_P99)
    );
    println!(
        "durable chat (telemed stores before the ack; the relays store nothing), {connections} connections:"
    );
    for (server, results) in servers {
        println!("  {}: {}", server.name(), describe(&results.chat));
    }
    let rate = telemed.chat.per_second / node.chat.per_second;
    println!(
        "  telemed / node: {rate:.2}x msg/s (target >= {TARGET_CHAT_RATE:.0}x: {}); telemed ack p99 {} (target <= {}: {})",
        verdict(rate >= TARGET_CHAT_RATE),
        ms(telemed.chat.ack.p99),
        ms(TARGET_CHAT_ACK_P99),
        verdict(telemed.chat.ack.p99 <= TARGET_CHAT_ACK_P99)
    );
    println!(
        "call:ice across two telemed processes (doctors on one, patients on the other; {}):",
        bus()
    );
    println!("  telemed: {}", describe(cross));
    let rate = cross.per_second / node.signaling.per_second;
    println!(
        "  telemed across two / node on one: {rate:.2}x msg/s (target >= {TARGET_CROSS_RATE:.0}x: {}); delivery p99 {:.2}x",
        verdict(rate >= TARGET_CROSS_RATE),
        ratio(cross.delivery.p99, node.signaling.delivery.p99)
    );
}

fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}
