//! The servers a benchmark drives, each in a child process (so that its resident memory is its
//! own and client and server sockets do not share one process's file limit):
//!
//! - this binary in an internal serving mode (`--serve-telemed`, `--serve-baseline`,
//!   `--serve-sio-baseline`), which prints `port=N` once it listens;
//! - the real `telemed serve` binary built beside this one (`cargo build --release -p
//!   telemed-api`), configured through its environment like a deployment, so that settings
//!   this benchmark does not know (such as `TELEMED_NATS_URL`) reach it unchanged;
//! - the plain Node Socket.IO reference relay in `bench/node/` (`npm ci` on first use).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use telemed_api::config::DEVELOPMENT_JWT_SECRET;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A command line `telemed serve` is started under instead of directly, for profiling (e.g.
/// `valgrind --tool=massif --massif-out-file=/tmp/massif.%p`): split on white space, the
/// binary and its arguments appended. Such a server gets longer to start and is stopped with
/// SIGTERM (so that the profiler writes its output) instead of SIGKILL.
pub const WRAPPER: &str = "BENCH_TELEMED_WRAPPER";

/// The `telemed` binary to start instead of the one beside this benchmark (e.g. a copy of an
/// earlier build, to measure before and after in one run).
pub const BINARY: &str = "BENCH_TELEMED_BINARY";

/// A server child process and its port.
pub struct ChildServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Started under [`WRAPPER`].
    wrapped: bool,
}

impl ChildServer {
    /// Starts this binary with `mode` (`--serve-telemed`, `--serve-baseline`, …).
    pub async fn start(mode: &str, database_url: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("this benchmark's path")?;
        let mut command = Command::new(exe);
        command.arg(mode).env("DATABASE_URL", database_url);
        Self::announcing(command).await
    }

    /// Spawns `command`, which prints `port=N` on its standard output once it listens.
    async fn announcing(mut command: Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start the server process")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let port = loop {
            let line = lines
                .next_line()
                .await?
                .context("the server process ended before reporting its port")?;
            if let Some(port) = line.strip_prefix("port=") {
                break port.trim().parse().context("port")?;
            }
        };
        Ok(Self {
            child,
            port,
            wrapped: false,
        })
    }

    /// Starts `telemed serve` (the binary beside this one) on a free port of 127.0.0.1 and
    /// waits until its `/readyz` answers 200. Rate limits off, 16 database connections, live
    /// queues of 4 096, calls that ring for ten minutes (the most it takes); everything else (`TELEMED_NATS_URL`,
    /// `RUST_LOG`, …) comes from this process's environment.
    pub async fn telemed(database_url: &str) -> anyhow::Result<Self> {
        let exe = telemed_binary()?;
        let port = free_port()?;
        let wrapper = std::env::var(WRAPPER).unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("TELEMED_BIND", format!("127.0.0.1:{port}"))
            .env("TELEMED_ENV", "development")
            .env("TELEMED_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
            .env("TELEMED_RATE_LIMITS", "off")
            .env("TELEMED_DB_MAX_CONNECTIONS", "16")
            .env("TELEMED_LIVE_QUEUE", "4096")
            .env("TELEMED_CALL_RING_TIMEOUT_SECONDS", "600")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().context("start telemed serve")?;
        let mut server = Self {
            child,
            port,
            wrapped: !wrapper.trim().is_empty(),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Starts the Node reference relay (installing its packages first if need be).
    pub async fn node_relay() -> anyhow::Result<Self> {
        install_node_relay().await?;
        let dir = node_dir();
        let mut command = Command::new("node");
        command
            .arg("relay.js")
            .current_dir(&dir)
            .env("TELEMED_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
            .env("NODE_ENV", "production");
        Self::announcing(command).await
    }

    /// Polls `GET /readyz` until it answers 200 (60 s at most).
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let patience = Duration::from_secs(if self.wrapped { 600 } else { 60 });
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("telemed serve exited during start-up: {status}");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "telemed serve on port {} not ready within {} s",
                    self.port,
                    patience.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the server process is gone")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")?;
        Ok(kib * 1024)
    }

    /// Stops it (a wrapped one with SIGTERM, waiting up to two minutes for it to finish).
    pub async fn stop(mut self) {
        if self.wrapped
            && let Some(pid) = self.child.id()
        {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(120), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// The `telemed` binary named by [`BINARY`], else the one of the same build as this one.
fn telemed_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY).filter(|path| !path.is_empty()) {
        let telemed = PathBuf::from(path);
        if !telemed.is_file() {
            bail!("{BINARY}={} is not a file", telemed.display());
        }
        return Ok(telemed);
    }
    let exe = std::env::current_exe().context("this benchmark's path")?;
    let telemed = exe.with_file_name("telemed");
    if !telemed.is_file() {
        bail!(
            "{} is missing: build it with the benchmark (cargo build --release -p telemed-bench -p telemed-api)",
            telemed.display()
        );
    }
    Ok(telemed)
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// `bench/node/` of this source tree.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// `npm ci` in `bench/node/` unless its `node_modules/` is there already.
pub async fn install_node_relay() -> anyhow::Result<()> {
    let dir = node_dir();
    if dir.join("node_modules").join("socket.io").is_dir() {
        return Ok(());
    }
    println!(
        "installing the Node relay's packages (npm ci in {})",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .await
        .context("run npm (Node 20 and npm are needed for the Node reference relay)")?;
    if !status.success() {
        bail!("npm ci in {} failed: {status}", dir.display());
    }
    Ok(())
}
