//! The per-process live hub: who listens to which topic, and fan-out with bounded queues.
//!
//! Transports (WebSocket, Socket.IO) join the hub once per connection and get a bounded queue
//! of [`Delivery`]s. Publishing never waits on a client: a connection whose queue is full is
//! removed from the hub and told why (it is a slow consumer), so memory stays bounded whatever
//! the clients do.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use telemed_domain::Position;
use tokio::sync::{mpsc, watch};

use super::telemetry::{self, Dropped};
use super::topic::Topic;

/// One server event for the clients of some topics.
#[derive(Debug)]
pub struct Delivery {
    /// Event name, e.g. `appointment:updated`.
    pub event: &'static str,
    /// Its data.
    pub data: Value,
    /// Position of the stored event it comes from; `None` for ephemeral events (typing,
    /// signaling), which are never replayed.
    pub position: Option<Position>,
    /// Who may receive it.
    pub topics: Vec<Topic>,
    frame: OnceLock<Utf8Bytes>,
}

impl Delivery {
    /// A delivery of `event` with `data` to `topics`.
    pub fn new(event: &'static str, data: Value, position: Position, topics: Vec<Topic>) -> Self {
        Self {
            event,
            data,
            position: Some(position),
            topics,
            frame: OnceLock::new(),
        }
    }

    /// An ephemeral delivery (not from the store).
    pub fn ephemeral(event: &'static str, data: Value, topics: Vec<Topic>) -> Self {
        Self {
            event,
            data,
            position: None,
            topics,
            frame: OnceLock::new(),
        }
    }

    /// The WebSocket text frame, serialised once however many clients get it (clones share
    /// one buffer).
    pub fn frame(&self) -> Utf8Bytes {
        self.frame
            .get_or_init(|| {
                json!({ "event": self.event, "data": self.data })
                    .to_string()
                    .into()
            })
            .clone()
    }

    /// Whether a client in `topics` may receive it.
    pub fn is_for(&self, topics: &HashSet<Topic>) -> bool {
        self.topics.iter().any(|topic| topics.contains(topic))
    }
}

struct Member {
    sender: mpsc::Sender<Arc<Delivery>>,
    topics: HashSet<Topic>,
    overflowed: Arc<AtomicBool>,
    /// The sign-in session the connection authenticated with.
    session: Option<uuid::Uuid>,
    signed_out: Arc<AtomicBool>,
}

#[derive(Default)]
struct Registry {
    members: HashMap<u64, Member>,
    topics: HashMap<Topic, HashSet<u64>>,
}

impl Registry {
    fn remove(&mut self, id: u64) -> Option<Member> {
        let member = self.members.remove(&id)?;
        for topic in &member.topics {
            if let Some(ids) = self.topics.get_mut(topic) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.topics.remove(topic);
                }
            }
        }
        Some(member)
    }
}

/// The hub of one process.
pub struct Hub {
    registry: RwLock<Registry>,
    next_id: AtomicU64,
    queue: usize,
    head: watch::Sender<Position>,
}

impl Hub {
    /// A hub whose connections may fall `queue` events behind before they are dropped.
    pub fn new(queue: usize) -> Arc<Self> {
        Arc::new(Self {
            registry: RwLock::default(),
            next_id: AtomicU64::new(1),
            queue: queue.max(1),
            head: watch::Sender::new(Position::START),
        })
    }

    /// How many events a connection may fall behind before it is dropped (config `live_queue`).
    pub fn queue(&self) -> usize {
        self.queue
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // Every change to the registry is completed under one lock; a panic elsewhere while
        // holding it cannot leave it half-changed.
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a connection in `topics`; it leaves when the membership is dropped.
    pub fn join(self: &Arc<Self>, topics: impl IntoIterator<Item = Topic>) -> Membership {
        self.join_session(topics, None)
    }

    /// Adds a connection of sign-in session `session` in `topics` (see [`Hub::sign_out`]).
    pub fn join_session(
        self: &Arc<Self>,
        topics: impl IntoIterator<Item = Topic>,
        session: Option<uuid::Uuid>,
    ) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(self.queue);
        let overflowed = Arc::new(AtomicBool::new(false));
        let signed_out = Arc::new(AtomicBool::new(false));
        let topics: HashSet<Topic> = topics.into_iter().collect();
        let mut registry = self.write();
        for topic in &topics {
            registry.topics.entry(*topic).or_default().insert(id);
        }
        registry.members.insert(
            id,
            Member {
                sender,
                topics: topics.clone(),
                overflowed: overflowed.clone(),
                session,
                signed_out: signed_out.clone(),
            },
        );
        Membership {
            id,
            hub: self.clone(),
            receiver,
            overflowed,
            signed_out,
            topics,
        }
    }

    /// Ends the connections of the revoked sign-in `sessions`: their memberships end (and
    /// report [`Membership::signed_out`]). Returns how many connections that was.
    pub fn sign_out(&self, sessions: &[uuid::Uuid]) -> usize {
        let mut registry = self.write();
        let ids: Vec<u64> = registry
            .members
            .iter()
            .filter(|(_, m)| m.session.is_some_and(|s| sessions.contains(&s)))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(member) = registry.remove(*id) {
                member.signed_out.store(true, Ordering::Relaxed);
            }
        }
        ids.len()
    }

    /// Connections currently joined.
    pub fn connections(&self) -> usize {
        self.read().members.len()
    }

    /// Sends each delivery to every connection in one of its topics (once per connection).
    /// Connections whose queue is full are dropped from the hub.
    pub fn publish(&self, deliveries: &[Arc<Delivery>]) {
        let mut overflowed = Vec::new();
        let mut closed = 0;
        {
            let registry = self.read();
            let mut recipients: HashSet<u64> = HashSet::new();
            for delivery in deliveries {
                recipients.clear();
                for topic in &delivery.topics {
                    if let Some(ids) = registry.topics.get(topic) {
                        recipients.extend(ids);
                    }
                }
                for id in &recipients {
                    let Some(member) = registry.members.get(id) else {
                        continue;
                    };
                    match member.sender.try_send(delivery.clone()) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            member.overflowed.store(true, Ordering::Relaxed);
                            overflowed.push(*id);
                        }
                        // The connection is going away; its membership removes it.
                        Err(mpsc::error::TrySendError::Closed(_)) => closed += 1,
                    }
                }
            }
        }
        telemetry::dropped(Dropped::QueueFull, overflowed.len() as u64);
        telemetry::dropped(Dropped::Closed, closed);
        if !overflowed.is_empty() {
            let mut registry = self.write();
            for id in overflowed {
                // Dropping the sender ends the connection's queue.
                registry.remove(id);
            }
        }
    }

    /// The position up to which events have been published.
    pub fn head(&self) -> Position {
        *self.head.borrow()
    }

    /// Records that everything up to `position` has been published.
    pub fn advance(&self, position: Position) {
        self.head.send_if_modified(|head| {
            let newer = position > *head;
            if newer {
                *head = position;
            }
            newer
        });
    }

    /// Waits until the hub has published up to `position`.
    pub async fn wait_for(&self, position: Position) {
        let mut receiver = self.head.subscribe();
        let _ = receiver.wait_for(|head| *head >= position).await;
    }
}

/// A connection's place in the hub.
pub struct Membership {
    id: u64,
    hub: Arc<Hub>,
    receiver: mpsc::Receiver<Arc<Delivery>>,
    overflowed: Arc<AtomicBool>,
    signed_out: Arc<AtomicBool>,
    topics: HashSet<Topic>,
}

impl Membership {
    /// The next delivery; `None` once the hub dropped this connection (see
    /// [`Membership::overflowed`]).
    pub async fn next(&mut self) -> Option<Arc<Delivery>> {
        self.receiver.recv().await
    }

    /// Whether the hub dropped this connection because its queue was full.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Whether the hub dropped this connection because its session was signed out.
    pub fn signed_out(&self) -> bool {
        self.signed_out.load(Ordering::Relaxed)
    }

    /// The topics this connection is in.
    pub fn topics(&self) -> &HashSet<Topic> {
        &self.topics
    }

    /// Joins `topic` (authorization is the caller's job).
    pub fn subscribe(&mut self, topic: Topic) {
        if !self.topics.insert(topic) {
            return;
        }
        let mut registry = self.hub.write();
        if let Some(member) = registry.members.get_mut(&self.id) {
            member.topics.insert(topic);
            registry.topics.entry(topic).or_default().insert(self.id);
        }
    }

    /// Leaves `topic`. Returns whether it was joined.
    pub fn unsubscribe(&mut self, topic: Topic) -> bool {
        if !self.topics.remove(&topic) {
            return false;
        }
        let mut registry = self.hub.write();
        if let Some(member) = registry.members.get_mut(&self.id) {
            member.topics.remove(&topic);
        }
        if let Some(ids) = registry.topics.get_mut(&topic) {
            ids.remove(&self.id);
            if ids.is_empty() {
                registry.topics.remove(&topic);
            }
        }
        true
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.write().remove(self.id);
        // Whatever is still queued now never reaches the connection.
        telemetry::dropped(Dropped::Closed, self.receiver.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use telemed_domain::UserId;

    use super::*;

    fn delivery(topic: Topic, n: i64) -> Arc<Delivery> {
        Arc::new(Delivery::new(
            "appointment:updated",
            json!({ "n": n }),
            Position::new(1, n),
            vec![topic],
        ))
    }

    #[tokio::test]
    async fn a_delivery_reaches_each_member_of_its_topics_once() {
        let hub = Hub::new(8);
        let (alice, bob) = (UserId::new(), UserId::new());
        let mut a = hub.join([Topic::User(alice), Topic::Audit]);
        let mut b = hub.join([Topic::User(bob)]);
        let both = Arc::new(Delivery::new(
            "audit:event",
            json!({}),
            Position::new(1, 1),
            vec![Topic::User(alice), Topic::Audit],
        ));
        hub.publish(&[both, delivery(Topic::User(bob), 2)]);
        assert_eq!(a.next().await.unwrap().position, Some(Position::new(1, 1)));
        assert_eq!(b.next().await.unwrap().position, Some(Position::new(1, 2)));
        drop(hub);
        assert!(a.receiver.try_recv().is_err(), "alice got it once");
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_connection_and_says_why() {
        let hub = Hub::new(2);
        let user = UserId::new();
        let mut slow = hub.join([Topic::User(user)]);
        let batch: Vec<_> = (1..=3).map(|n| delivery(Topic::User(user), n)).collect();
        hub.publish(&batch);
        assert_eq!(hub.connections(), 0);
        assert!(slow.overflowed());
        assert!(slow.next().await.is_some());
        assert!(slow.next().await.is_some());
        assert!(slow.next().await.is_none(), "the queue ends");
    }

    #[tokio::test]
    async fn leaving_a_topic_stops_its_deliveries() {
        let hub = Hub::new(8);
        let user = UserId::new();
        let mut member = hub.join([Topic::User(user)]);
        member.subscribe(Topic::Audit);
        assert!(member.unsubscribe(Topic::Audit));
        assert!(!member.unsubscribe(Topic::Audit));
        hub.publish(&[delivery(Topic::Audit, 1), delivery(Topic::User(user), 2)]);
        assert_eq!(
            member.next().await.unwrap().position,
            Some(Position::new(1, 2))
        );
        drop(member);
        assert_eq!(hub.connections(), 0);
    }
}
