//! The waiting room: live presence of patients checked in before their consultation, and of
//! their doctor. Ephemeral: never stored, carried between processes over the bus.
//!
//! - [`message`]: entries, reasons, statuses and the bus messages.
//! - [`room`]: the bookkeeping (pure, unit-tested).
//!
//! The client events `waiting:checkin`, `waiting:leave`, `waiting:list` are handled in
//! `services::waiting`, which asks this room.
//!
//! [`WaitingRoom`] runs one [`room::Room`] per process under a lock: each change's deliveries
//! reach the hub, and its messages the bus, in the order of the changes.

pub mod message;
pub mod room;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use telemed_domain::{AppointmentId, CallId, Role, UserId, appointment, call};
use telemed_projections::event::StoredEvent;
use telemed_tasks::{Background, CancellationToken};
use tokio::sync::mpsc;

use super::bus::{Bus, Replica};
use super::hub::{Delivery, Hub, Membership};
use super::topic::Topic;
use message::{Message, NodeId};
use room::{Effect, Room};

/// The NOTIFY channel of the waiting room's bus (with NATS: subject `telemed.waiting`).
pub const CHANNEL: &str = super::bus::WAITING_CHANNEL;
/// How often a process sends its snapshot.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a silent process is believed alive.
pub const SILENCE: Duration = Duration::from_secs(20);

/// Appointment events after which nobody waits for it any more.
const CLOSING: &[&str] = &[
    "AppointmentCancelled",
    "AppointmentRescheduled",
    "AppointmentCompleted",
    "AppointmentMarkedNoShow",
];

/// This process's waiting room.
pub struct WaitingRoom {
    room: Mutex<Room>,
    hub: Arc<Hub>,
    outbox: mpsc::UnboundedSender<Message>,
}

/// The room's messages waiting to be sent on the bus (see [`WaitingRoom::spawn`]).
pub struct Outbox(mpsc::UnboundedReceiver<Message>);

impl WaitingRoom {
    /// The room of a process whose clients are in `hub`.
    pub fn new(hub: Arc<Hub>) -> (Arc<Self>, Outbox) {
        let (outbox, receiver) = mpsc::unbounded_channel();
        let room = Room::new(NodeId::new_v4());
        let waiting = Arc::new(Self {
            room: Mutex::new(room),
            hub,
            outbox,
        });
        (waiting, Outbox(receiver))
    }

    fn lock(&self) -> MutexGuard<'_, Room> {
        // Each change completes under the lock; a panic cannot leave one half-done.
        self.room
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `change` on the room and carries out its effects, under the room's lock (so that
    /// clients and processes learn of changes in the order they happened).
    pub(crate) fn with<T>(&self, change: impl FnOnce(&mut Room) -> T) -> T {
        let mut room = self.lock();
        let out = change(&mut room);
        let mut deliveries = Vec::new();
        for effect in room.take_effects() {
            match effect {
                Effect::Deliver { event, data, to } => deliveries.push(Arc::new(
                    Delivery::ephemeral(event, data, vec![Topic::User(to)]),
                )),
                Effect::Broadcast(message) => {
                    // The sender ends only with the process.
                    let _ = self.outbox.send(message);
                }
            }
        }
        if !deliveries.is_empty() {
            self.hub.publish(&deliveries);
        }
        out
    }

    /// Joins a connection of `user` to the hub in `topics` and to the room. A doctor's
    /// connection starts with a `waiting:joined` for each patient already waiting.
    pub fn join(
        self: &Arc<Self>,
        user: UserId,
        role: Role,
        sid: uuid::Uuid,
    ) -> (Membership, Presence, VecDeque<Arc<Delivery>>) {
        let doctor = role == Role::Doctor;
        self.with(|room| {
            // Joined under the room's lock: an entry added meanwhile is either in the list
            // or delivered live, never both.
            let membership = self.hub.join_session([Topic::User(user)], Some(sid));
            room.connect(user, doctor);
            let waiting = if doctor {
                room.entries_for(user)
            } else {
                Vec::new()
            };
            let pending = waiting
                .iter()
                .map(|entry| {
                    Arc::new(Delivery::ephemeral(
                        room::JOINED,
                        entry.to_json(),
                        vec![Topic::User(user)],
                    ))
                })
                .collect();
            let presence = Presence {
                room: self.clone(),
                user,
            };
            (membership, presence, pending)
        })
    }
}

impl Replica for WaitingRoom {
    /// Applies a message of the bus.
    fn receive(&self, text: &str) {
        match serde_json::from_str::<Message>(text) {
            Ok(message) => self.with(|room| room.receive(message, Instant::now())),
            Err(error) => tracing::warn!(%error, "waiting room: unreadable bus message"),
        }
    }

    /// The bus (re)started listening: asks every process for its share, and offers ours.
    fn listening(&self) {
        self.with(Room::hello);
    }
}

impl WaitingRoom {
    /// Follows the store's events (from the live feed): calls starting and ending, appointments
    /// closing.
    pub fn observe(&self, events: &[StoredEvent]) {
        let relevant = events.iter().any(|e| {
            e.aggregate_type == call::AGGREGATE_TYPE
                || (e.aggregate_type == appointment::AGGREGATE_TYPE
                    && CLOSING.contains(&e.event_type.as_str()))
        });
        if !relevant {
            return;
        }
        self.with(|room| {
            for event in events {
                observe(room, event);
            }
        });
    }

    /// Loads the calls ringing or active now (at start, before the live feed follows them).
    pub async fn load_calls(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let calls = telemed_projections::calls::live_calls(pool).await?;
        self.with(|room| room.load_calls(calls));
        Ok(())
    }

    /// Sends the room's messages on the bus, and a heartbeat every [`HEARTBEAT`], forgetting
    /// processes silent for [`SILENCE`], under `background` until the process stops.
    pub fn spawn(self: &Arc<Self>, outbox: Outbox, bus: Bus, background: &Background) {
        background.spawn(send(outbox, bus, background.token()));
        let waiting = self.clone();
        background.every(HEARTBEAT, move || {
            waiting.with(|room| {
                room.expire(Instant::now(), SILENCE);
                room.heartbeat();
            });
            std::future::ready(())
        });
    }

    /// Every patient waiting for `doctor`, first come first.
    pub fn entries_for(&self, doctor: UserId) -> Vec<message::Entry> {
        self.lock().entries_for(doctor)
    }
}

/// Applies one stored event to the room.
fn observe(room: &mut Room, event: &StoredEvent) {
    if event.aggregate_type == appointment::AGGREGATE_TYPE {
        if CLOSING.contains(&event.event_type.as_str())
            && let Ok(id) = event.aggregate_id.parse::<AppointmentId>()
        {
            room.appointment_closed(id);
        }
        return;
    }
    if event.aggregate_type != call::AGGREGATE_TYPE {
        return;
    }
    let (Ok(id), Ok(decoded)) = (
        event.aggregate_id.parse::<CallId>(),
        serde_json::from_value::<call::CallEvent>(event.payload.clone()),
    ) else {
        return;
    };
    match decoded {
        call::CallEvent::CallStarted {
            appointment_id,
            doctor_id,
            ..
        } => room.call_started(id, appointment_id, doctor_id),
        call::CallEvent::CallAnswered { .. } => {}
        call::CallEvent::CallMissed { .. }
        | call::CallEvent::CallRejected { .. }
        | call::CallEvent::CallEnded { .. } => room.call_over(id),
    }
}

async fn send(mut outbox: Outbox, bus: Bus, stop: CancellationToken) {
    loop {
        let message = tokio::select! {
            message = outbox.0.recv() => message,
            () = stop.cancelled() => return,
        };
        let Some(message) = message else { return };
        // Lost messages are made good by the next heartbeat.
        bus.send_waiting(serde_json::to_string(&message).unwrap_or_default());
    }
}

/// A connection's place in the waiting room; leaving it when dropped.
pub struct Presence {
    room: Arc<WaitingRoom>,
    user: UserId,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let user = self.user;
        self.room.with(|room| room.disconnect(user));
    }
}
