//! A Socket.IO v4 load-generator client (Engine.IO 4 over WebSocket, namespace `/`), written
//! here because no ready Socket.IO load tool runs on these machines: just enough to connect
//! with `auth`, emit with an ack, read events and answer pings. The same client drives
//! Telemed, the socketioxide relay and the Node relay.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Loopback source addresses the clients spread over (127.0.0.2 …), past the ephemeral-port
/// limit of one address pair.
pub const SOURCES: usize = 8;
/// Clients connecting at once when many connect.
const CONNECT_CONCURRENCY: usize = 256;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One Socket.IO connection.
pub struct Sio {
    socket: Socket,
    next_ack: u64,
    /// The last `error` event or disconnect packet the server sent, for the message when it
    /// closes the connection.
    last_error: Option<String>,
}

impl Sio {
    /// Connects to `port` from 127.0.0.`source` and sends the Socket.IO CONNECT with `auth`;
    /// fails on a connect error.
    pub async fn connect(port: u16, source: u8, auth: &Value) -> anyhow::Result<Self> {
        let mut socket = websocket(port, source, "/socket.io/?EIO=4&transport=websocket")
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
            last_error: None,
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
    pub async fn packet(&mut self) -> anyhow::Result<String> {
        loop {
            let text = match Self::text(&mut self.socket).await {
                Ok(text) => text,
                Err(error) => match &self.last_error {
                    Some(last) => bail!("{error} after {last}"),
                    None => return Err(error),
                },
            };
            if text.starts_with("42[\"error\"") || text.starts_with("41") {
                self.last_error = Some(text.clone());
            }
            if text == "2" {
                self.socket.send(Message::text("3")).await?;
                continue;
            }
            return Ok(text);
        }
    }

    /// Emits `event` with `data` and waits for its ack; returns the ack's payload.
    pub async fn emit_with_ack(&mut self, event: &str, data: &Value) -> anyhow::Result<String> {
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

/// A WebSocket to `path` on `port` from 127.0.0.`source`.
async fn websocket(port: u16, source: u8, path: &str) -> anyhow::Result<Socket> {
    let tcp = TcpSocket::new_v4()?;
    tcp.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)),
        0,
    ))?;
    let stream = tcp
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await?;
    stream.set_nodelay(true)?;
    // Small buffers: 10 000 clients at tungstenite's default 128 KiB read buffer each
    // would hold over a gigabyte in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://127.0.0.1:{port}{path}"),
        stream,
        Some(config),
    )
    .await?;
    Ok(socket)
}

/// The loopback source address of client `index`.
pub fn source(index: usize) -> u8 {
    2 + (index % SOURCES) as u8
}

/// Connects `count` clients to `port` (client `n` with `auth(n)`), `CONNECT_CONCURRENCY` at a
/// time; each is then held open by a task that answers pings and ignores everything else.
pub async fn hold(
    port: u16,
    count: usize,
    first: usize,
    auth: impl Fn(usize) -> anyhow::Result<Value>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut held = Vec::with_capacity(count);
    let mut connecting = JoinSet::new();
    for index in first..first + count {
        if connecting.len() >= CONNECT_CONCURRENCY
            && let Some(joined) = connecting.join_next().await
        {
            held.push(joined??);
        }
        let auth = auth(index)?;
        connecting.spawn(async move {
            let mut client = tokio::time::timeout(
                Duration::from_secs(60),
                Sio::connect(port, source(index), &auth),
            )
            .await
            .context("a connection took over 60 s")??;
            Ok::<_, anyhow::Error>(tokio::spawn(async move {
                while client.packet().await.is_ok() {}
            }))
        });
    }
    while let Some(joined) = connecting.join_next().await {
        held.push(joined??);
    }
    Ok(held)
}

/// Connects `count` plain WebSocket clients to Telemed's `GET /api/v1/ws` on `port` (client
/// `n` with the access token `token(n)`), `CONNECT_CONCURRENCY` at a time; each is then held
/// open by a task that reads (answering pings) and ignores what it reads.
pub async fn hold_websockets(
    port: u16,
    count: usize,
    first: usize,
    token: impl Fn(usize) -> anyhow::Result<String>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut held = Vec::with_capacity(count);
    let mut connecting = JoinSet::new();
    for index in first..first + count {
        if connecting.len() >= CONNECT_CONCURRENCY
            && let Some(joined) = connecting.join_next().await
        {
            held.push(joined??);
        }
        let path = format!("/api/v1/ws?access_token={}", token(index)?);
        connecting.spawn(async move {
            let mut socket = tokio::time::timeout(
                Duration::from_secs(60),
                websocket(port, source(index), &path),
            )
            .await
            .context("a connection took over 60 s")?
            .context("WebSocket upgrade")?;
            Ok::<_, anyhow::Error>(tokio::spawn(async move {
                while let Some(Ok(_)) = socket.next().await {}
            }))
        });
    }
    while let Some(joined) = connecting.join_next().await {
        held.push(joined??);
    }
    Ok(held)
}
