//! The NATS backend (`TELEMED_NATS_URL`): core pub/sub, no JetStream (NATS is never a source
//! of truth).
//!
//! One subject per channel: `telemed.live` (ephemeral events), `telemed.revoked` (sign-outs)
//! and `telemed.waiting` (the waiting room). Each process subscribes to `telemed.*` once, so
//! one process's messages reach each other process in the order they were sent, whatever the
//! channel, as with `NOTIFY`. The connection is made with `no_echo`: a process never receives
//! its own messages (the origin tag is a second guard). async-nats reconnects by itself; after
//! each (re)connection the process reloads the revocations from the database and asks for the
//! other processes' waiting rooms, which makes good what it missed meanwhile; it also reloads
//! the revocations every 30 s.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use telemed_tasks::{Background, CancellationToken};
use tokio::sync::mpsc;

use super::{BusError, Channel, Outgoing, RETRY, Receiver};

const LIVE: &str = "telemed.live";
const REVOKED: &str = "telemed.revoked";
const WAITING: &str = "telemed.waiting";
/// What each process subscribes to: the three above.
const ALL: &str = "telemed.*";
/// How often revocations are reloaded from the database anyway: a process that died between
/// a sign-out's commit and its publish told nobody.
const RELOAD: Duration = Duration::from_secs(30);

fn subject(channel: Channel) -> &'static str {
    match channel {
        Channel::Live => LIVE,
        Channel::Revoked => REVOKED,
        Channel::Waiting => WAITING,
    }
}

/// Connects to `url` (in the background: the process starts while NATS is down, and
/// `/readyz` says so) and starts the listener and the sender.
pub(super) async fn start(
    url: &str,
    receiver: Arc<Receiver>,
    queued: mpsc::Receiver<Outgoing>,
    background: &Background,
) -> Result<async_nats::Client, BusError> {
    let (connected, connections) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .name(format!("telemed {}", receiver.origin))
        .no_echo()
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let connected = connected.clone();
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    // The listener ends only with the process.
                    let _ = connected.send(());
                }
            }
        })
        .connect(url)
        .await
        .map_err(|error| BusError::Nats(error.to_string()))?;
    let subscriber = client
        .subscribe(ALL)
        .await
        .map_err(|error| BusError::Nats(error.to_string()))?;
    background.spawn(send(client.clone(), queued, background.token()));
    background.spawn(listen(
        subscriber,
        connections,
        receiver,
        background.token(),
    ));
    Ok(client)
}

async fn send(
    client: async_nats::Client,
    mut queued: mpsc::Receiver<Outgoing>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = queued.recv() => message,
            () = stop.cancelled() => return,
        };
        let Some(message) = message else { return };
        // Dropped while disconnected rather than buffered: delivered late, a typing indicator
        // or an ICE candidate would only mislead.
        if client.connection_state() != async_nats::connection::State::Connected {
            continue;
        }
        // Waits while the client's own buffer is full: the bus's queue fills and drops
        // meanwhile, so memory stays bounded.
        if let Err(error) = client
            .publish(subject(message.channel), message.text.into())
            .await
        {
            tracing::warn!(%error, "live bus cannot publish to NATS");
        }
    }
}

async fn listen(
    mut subscriber: async_nats::Subscriber,
    mut connections: mpsc::UnboundedReceiver<()>,
    receiver: Arc<Receiver>,
    stop: CancellationToken,
) {
    let mut reload = tokio::time::interval(RELOAD);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = subscriber.next() => {
                let Some(message) = message else { return };
                let channel = match message.subject.as_str() {
                    LIVE => Channel::Live,
                    REVOKED => Channel::Revoked,
                    WAITING => Channel::Waiting,
                    _ => continue,
                };
                match std::str::from_utf8(&message.payload) {
                    Ok(text) => receiver.receive(channel, text),
                    Err(_) => tracing::warn!("live bus: a NATS message is not UTF-8"),
                }
            }
            Some(()) = connections.recv() => {
                // What was revoked or said while this process was not connected.
                while let Err(error) = receiver.resync().await {
                    tracing::warn!(%error, "cannot load revoked sessions; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
            _ = reload.tick() => {
                if let Err(error) = receiver.reload_revocations().await {
                    tracing::warn!(%error, "cannot reload revoked sessions");
                }
            }
            () = stop.cancelled() => return,
        }
    }
}
