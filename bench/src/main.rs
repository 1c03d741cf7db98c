//! `bench`: Telemed's benchmark program. It prints figures; it is not a test.
//!
//! Every suite runs against a fresh database `telemed_bench_<uuid>` on the PostgreSQL server
//! named by `DATABASE_URL` (a server-level admin URL, as for the tests; the database is dropped
//! at the end) and reports ratios against a baseline measured in the same run.
//!
//! `--suite scheduling` (the default), in one run:
//!
//! - (a) the raw append ceiling: 32 connections doing what postgres-es does per command
//!   (load an aggregate, append its next event) on a scratch copy of `events`;
//! - (b) end-to-end bookings through the HTTP API of the real application served in-process,
//!   by 32 concurrent clients on distinct slots: throughput, latency percentiles, errors;
//! - (c) sequential booking latency for a doctor with 10 000 past appointments against a new
//!   doctor (the history is made by a second server whose clock runs 400 days behind).
//!
//! `--suite live` (WebSocket fan-out, [`live`]), `--suite chat` (posting cost against
//! conversation length, [`chat`]) and `--suite rooms` (Socket.IO chat, signaling and idle
//! memory: Telemed against a socketioxide relay and the Node reference relay in `bench/node/`,
//! [`versus`]).
//!
//! ```sh
//! cargo build --release -p telemed-bench -p telemed-api
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     target/release/bench [--quick] [--suite rooms]
//! ```
//!
//! Modules: [`api`] (HTTP client of the application), [`bookings`], [`ceiling`], [`chat`],
//! [`history`], [`live`], [`rooms`] (two-person-room workloads and the socketioxide relay),
//! [`servers`] (child processes: this binary's serving modes, `telemed serve`, the Node
//! relay), [`sio`] (the Socket.IO wire-protocol client), [`stats`], [`versus`].
//!
//! No tracing subscriber is installed, so the application's logs stay quiet.

#![allow(
    clippy::too_many_lines,
    reason = "a measurement reads as one scenario, top to bottom; this is not the product"
)]

mod api;
mod bookings;
mod ceiling;
mod chat;
mod history;
mod live;
mod rebuild;
mod rooms;
mod servers;
mod sio;
mod stats;
mod versus;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sqlx::PgPool;
use telemed_api::Config;
use uuid::Uuid;

use crate::api::Server;
use crate::stats::{ms, thousands};

/// Targets the figures are held against.
const TARGET_SHARE_OF_CEILING: f64 = 0.40;
const TARGET_P99: Duration = Duration::from_millis(25);
const TARGET_HISTORY_RATIO: f64 = 1.2;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Telemed benchmarks: append ceiling, HTTP bookings, history"
)]
struct Args {
    /// Server-level PostgreSQL URL; a fresh database is created on it and dropped at the end.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Shorter runs (3 s ceiling, 1000 bookings, 50 latency samples per doctor).
    #[arg(long)]
    quick: bool,
    /// Seconds of the append-ceiling run (default 10, 3 with --quick).
    #[arg(long)]
    seconds: Option<u64>,
    /// Concurrent connections / clients for (a), (b) and the history of (c).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Bookings in the throughput run (default 3000, 1000 with --quick).
    #[arg(long)]
    bookings: Option<usize>,
    /// Past appointments of the old doctor; with `--suite chat`, earlier messages of the long
    /// conversation.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
    /// Measured sequential bookings per doctor (default 200, 50 with --quick).
    #[arg(long)]
    samples: Option<usize>,
    /// Keep the benchmark database instead of dropping it.
    #[arg(long)]
    keep_database: bool,
    /// Which benchmark: `scheduling` (append ceiling, bookings, history), `live` (WebSocket
    /// fan-out), `chat` (posting cost against conversation length), `rooms` (chat, signaling
    /// and idle memory over Socket.IO in two-person rooms: Telemed on one and on two processes
    /// against a socketioxide relay and the Node reference relay) or `rebuild` (`telemed
    /// rebuild` of every read model over a large store, with read-your-writes commands meanwhile).
    #[arg(long, value_enum, default_value = "scheduling")]
    suite: Suite,
    /// Connected clients of the live benchmark, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    connections: Vec<usize>,
    /// (internal) serve the application in this process for the live benchmark.
    #[arg(long, hide = true)]
    serve_telemed: bool,
    /// (internal) serve the baseline relay in this process for the live benchmark.
    #[arg(long, hide = true)]
    serve_baseline: bool,
    /// (internal) serve the Socket.IO room relay baseline for the rooms benchmark.
    #[arg(long, hide = true)]
    serve_sio_baseline: bool,
    /// Two-person rooms of the rooms benchmark.
    #[arg(long, default_value_t = 500)]
    rooms: usize,
    /// Idle connections held for the rooms benchmark's memory figure (default 10 000, 2 000
    /// with --quick).
    #[arg(long)]
    idle: Option<usize>,
    /// With `--suite rooms`: only the idle-memory figures (Telemed over Socket.IO and over its
    /// plain WebSocket, the socketioxide relay, the Node relay), no chat or signaling.
    #[arg(long)]
    idle_only: bool,
    /// Events in the store of the rebuild benchmark (at least).
    #[arg(long, default_value_t = 100_000)]
    rebuild_events: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Suite {
    Scheduling,
    Live,
    Chat,
    Rooms,
    Rebuild,
}

/// Everything measured, for the summary.
struct Report {
    clients: usize,
    ceiling: ceiling::Ceiling,
    throughput: bookings::Throughput,
    comparison: history::Comparison,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve_telemed {
        return live::serve_telemed(&args.database_url).await;
    }
    if args.serve_baseline {
        return live::serve_baseline().await;
    }
    if args.serve_sio_baseline {
        return rooms::serve_baseline().await;
    }
    let (database, admin) = create_database(&args.database_url).await?;
    if matches!(args.suite, Suite::Chat | Suite::Rooms | Suite::Rebuild) {
        print_load("at start");
        let outcome = if args.suite == Suite::Chat {
            run_chat(&args, &database.url).await
        } else if args.suite == Suite::Rebuild {
            rebuild::run(&database.url, args.rebuild_events).await
        } else {
            run_rooms(&args, &database.url).await
        };
        if !args.keep_database
            && let Err(error) = drop_database(&admin, &database.name).await
        {
            eprintln!("warning: could not drop {}: {error:#}", database.name);
        }
        admin.close().await;
        print_load("at end");
        return outcome;
    }
    if args.suite == Suite::Live {
        print_load("at start");
        let outcome = run_live(&args, &database.url).await;
        if !args.keep_database
            && let Err(error) = drop_database(&admin, &database.name).await
        {
            eprintln!("warning: could not drop {}: {error:#}", database.name);
        }
        admin.close().await;
        print_load("at end");
        return outcome;
    }
    println!("benchmark database: {}", database.name);
    print_load("at start");
    let outcome = run(&args, &database.url).await;
    if args.keep_database {
        println!("kept database {}", database.name);
    } else if let Err(error) = drop_database(&admin, &database.name).await {
        eprintln!("warning: could not drop {}: {error:#}", database.name);
    }
    admin.close().await;
    let report = outcome?;
    print_load("at end");
    print_summary(&report);
    Ok(())
}

/// The benchmark's own database.
struct Database {
    name: String,
    url: String,
}

async fn create_database(admin_url: &str) -> anyhow::Result<(Database, PgPool)> {
    let admin = PgPool::connect(admin_url)
        .await
        .context("connect to DATABASE_URL")?;
    let name = format!("telemed_bench_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .context("create the benchmark database")?;
    let mut url = reqwest::Url::parse(admin_url).context("DATABASE_URL is not a URL")?;
    url.set_path(&format!("/{name}"));
    Ok((
        Database {
            name,
            url: url.to_string(),
        },
        admin,
    ))
}

async fn drop_database(admin: &PgPool, name: &str) -> anyhow::Result<()> {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin)
        .await?;
    Ok(())
}

async fn run(args: &Args, url: &str) -> anyhow::Result<Report> {
    let seconds = args.seconds.unwrap_or(if args.quick { 3 } else { 10 });
    let count = args
        .bookings
        .unwrap_or(if args.quick { 1000 } else { 3000 });
    let samples = args.samples.unwrap_or(if args.quick { 50 } else { 200 });
    let clients = args.clients;

    let pool = telemed_api::database::pool(url, 4)?;
    telemed_api::database::migrate(&pool)
        .await
        .context("migrate")?;

    println!("(a) append ceiling: {clients} connections, SELECT + INSERT, autocommit, {seconds} s");
    let ceiling = ceiling::measure(url, clients, Duration::from_secs(seconds)).await?;
    println!(
        "  {} appends in {:.2} s = {} appends/s",
        ceiling.appends,
        ceiling.elapsed.as_secs_f64(),
        thousands(ceiling.per_second())
    );

    let mut config = Config::development(url);
    config.rate_limits = false;
    config.max_db_connections = 64;
    config.booking_min_notice = time::Duration::minutes(0);
    let server = Server::start(config.clone()).await?;

    println!("(b) bookings: {clients} clients, HTTP, {count} distinct 15-minute slots");
    let throughput = bookings::measure(&server.api, &pool, clients, count).await?;
    let l = throughput.latencies;
    println!(
        "  {} requests over {} doctor-days in {:.2} s: {} bookings/s, {} events/s; p50 {}, p99 {}, max {}, mean {}; {} errors",
        throughput.requests,
        throughput.days,
        throughput.elapsed.as_secs_f64(),
        thousands(throughput.bookings_per_second()),
        thousands(throughput.events_per_second()),
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        ms(l.mean),
        throughput.errors.len()
    );
    println!(
        "  database transactions committed meanwhile: {} (~{:.1} per booking; server, projections and sweeper)",
        throughput.transactions,
        throughput.transactions as f64 / throughput.requests as f64
    );
    print_errors("booking", &throughput.errors);

    println!(
        "(c) history: {} past appointments, then {samples} sequential bookings per doctor",
        args.history
    );
    let comparison =
        history::measure(&config, &server.api, clients, args.history, 10, samples).await?;
    print_errors("history booking", &comparison.history_errors);
    print_errors("measured booking", &comparison.errors);

    server.stop().await;
    pool.close().await;
    Ok(Report {
        clients,
        ceiling,
        throughput,
        comparison,
    })
}

async fn run_rooms(args: &Args, url: &str) -> anyhow::Result<()> {
    let (chat_messages, signals) = if args.quick { (5, 30) } else { (20, 100) };
    let settings = versus::Settings {
        rooms: args.rooms,
        chat_messages,
        signals,
        idle: args.idle.unwrap_or(if args.quick { 2_000 } else { 10_000 }),
        idle_only: args.idle_only,
    };
    versus::run(url, &settings).await
}

/// Target: posting at message 10 000 costs at most this much more than at message 10.
const TARGET_CHAT_RATIO: f64 = 1.2;

async fn run_chat(args: &Args, url: &str) -> anyhow::Result<()> {
    let mut config = Config::development(url);
    config.rate_limits = false;
    config.max_db_connections = 64;
    config.booking_min_notice = time::Duration::minutes(0);
    let server = Server::start(config).await?;
    let samples = args.samples.unwrap_or(if args.quick { 50 } else { 200 });
    println!(
        "chat: {} messages in one conversation, then {samples} sequential posts there and in a conversation of 10, interleaved",
        args.history
    );
    let outcome = chat::measure(&server.api, args.clients, args.history, samples).await;
    server.stop().await;
    let c = outcome?;
    let ratio = c.long.p50.as_secs_f64() / c.short.p50.as_secs_f64();
    println!();
    println!("summary");
    println!(
        "chat post at message {} vs message 10: p50 {} vs {} = {:.2}x (target <= {:.1}x: {}); mean {} vs {} = {:.2}x; p99 {} vs {} (history filled in {:.1} s)",
        thousands(c.history as f64),
        ms(c.long.p50),
        ms(c.short.p50),
        ratio,
        TARGET_CHAT_RATIO,
        verdict(ratio <= TARGET_CHAT_RATIO),
        ms(c.long.mean),
        ms(c.short.mean),
        c.long.mean.as_secs_f64() / c.short.mean.as_secs_f64(),
        ms(c.long.p99),
        ms(c.short.p99),
        c.fill.as_secs_f64()
    );
    Ok(())
}

/// Target of the live benchmark: p99 committed → delivered at 1 000 clients.
const TARGET_LIVE_P99: Duration = Duration::from_millis(10);
/// Target: resident memory per idle connection.
const TARGET_BYTES_PER_CONNECTION: f64 = 10.0 * 1024.0;

async fn run_live(args: &Args, url: &str) -> anyhow::Result<()> {
    let pool = telemed_api::database::pool(url, 4)?;
    telemed_api::database::migrate(&pool)
        .await
        .context("migrate")?;
    let (probes, burst) = if args.quick { (20, 20) } else { (50, 50) };
    let mut lines = Vec::new();
    for &count in &args.connections {
        println!(
            "live: {count} WebSocket clients (auditors on `audit`), {probes} probes one by one, then a burst of {burst}"
        );
        let server = servers::ChildServer::start("--serve-telemed", url).await?;
        let ours = live::measure(&server, Some(&pool), count, probes, burst)
            .await
            .context("telemed");
        server.stop().await;
        let ours = ours?;
        let relay = servers::ChildServer::start("--serve-baseline", url).await?;
        let base = live::measure(&relay, None, count, probes, burst)
            .await
            .context("baseline relay");
        relay.stop().await;
        let base = base?;
        for (name, run) in [("telemed", &ours), ("baseline relay", &base)] {
            println!(
                "  {name}: p50 {}, p99 {}, max {}; fan-out {} frames/s; {:.1} KiB RSS per idle connection",
                ms(run.latency.p50),
                ms(run.latency.p99),
                ms(run.latency.max),
                thousands(run.fanout_per_second),
                run.bytes_per_connection / 1024.0
            );
        }
        let p99_note = if count == 1000 {
            format!(
                " (target <= {}: {})",
                ms(TARGET_LIVE_P99),
                verdict(ours.latency.p99 <= TARGET_LIVE_P99)
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "{count} clients: committed -> delivered p50 {}, p99 {}{p99_note}; baseline relay sent -> delivered p99 {} ({:.1}x); fan-out {} frames/s = {:.0} % of the relay's; {:.1} KiB per idle connection (target <= 10 KiB: {}; relay {:.1} KiB)",
            ms(ours.latency.p50),
            ms(ours.latency.p99),
            ms(base.latency.p99),
            ours.latency.p99.as_secs_f64() / base.latency.p99.as_secs_f64(),
            thousands(ours.fanout_per_second),
            ours.fanout_per_second / base.fanout_per_second * 100.0,
            ours.bytes_per_connection / 1024.0,
            verdict(ours.bytes_per_connection <= TARGET_BYTES_PER_CONNECTION),
            base.bytes_per_connection / 1024.0,
        ));
    }
    pool.close().await;
    println!();
    println!("summary");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

/// Prints the system's load averages (other work on the machine skews every figure).
fn print_load(when: &str) {
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let fields: Vec<&str> = load.split_whitespace().take(3).collect();
        println!(
            "load average {when}: {} ({} cores)",
            fields.join(" "),
            std::thread::available_parallelism().map_or(0, usize::from)
        );
    }
}

/// Prints up to 20 errors in full, then how many more there were.
fn print_errors(what: &str, errors: &[String]) {
    for error in errors.iter().take(20) {
        println!("  {what} error: {error}");
    }
    if errors.len() > 20 {
        println!("  … and {} more {what} errors", errors.len() - 20);
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_summary(report: &Report) {
    let Report {
        clients,
        ceiling,
        throughput,
        comparison,
    } = report;
    let ceiling_rate = ceiling.per_second();
    let share = throughput.bookings_per_second() / ceiling_rate;
    let l = throughput.latencies;
    let (old, new) = (comparison.old, comparison.new);
    let p50_ratio = old.p50.as_secs_f64() / new.p50.as_secs_f64();
    let mean_ratio = old.mean.as_secs_f64() / new.mean.as_secs_f64();
    println!();
    println!("summary");
    println!(
        "append ceiling ({clients} conns, SELECT+INSERT): {} appends/s",
        thousands(ceiling_rate)
    );
    println!(
        "bookings ({clients} clients, HTTP, distinct slots): {} bookings/s = {:.1} % of ceiling (target >= {:.0} %: {}); p50 {}, p99 {} (target <= {}: {}), max {}; {} errors",
        thousands(throughput.bookings_per_second()),
        share * 100.0,
        TARGET_SHARE_OF_CEILING * 100.0,
        verdict(share >= TARGET_SHARE_OF_CEILING),
        ms(l.p50),
        ms(l.p99),
        ms(TARGET_P99),
        verdict(l.p99 <= TARGET_P99),
        ms(l.max),
        throughput.errors.len()
    );
    println!(
        "  events appended during (b): {} events/s ({:.2} per booking) = {:.1} % of ceiling",
        thousands(throughput.events_per_second()),
        throughput.events as f64 / throughput.requests as f64,
        throughput.events_per_second() / ceiling_rate * 100.0
    );
    println!(
        "booking latency, doctor with {} past appointments vs new: p50 {} vs {} = {:.2}x (target <= {:.1}x: {}); mean {} vs {} = {:.2}x; p99 {} vs {}; {} errors",
        thousands(comparison.history as f64),
        ms(old.p50),
        ms(new.p50),
        p50_ratio,
        TARGET_HISTORY_RATIO,
        verdict(p50_ratio <= TARGET_HISTORY_RATIO),
        ms(old.mean),
        ms(new.mean),
        mean_ratio,
        ms(old.p99),
        ms(new.p99),
        comparison.errors.len() + comparison.history_errors.len()
    );
    println!(
        "  (history of {} made in {:.1} s by a server 400 days behind)",
        thousands(comparison.history as f64),
        comparison.history_elapsed.as_secs_f64()
    );
}
