//! One client connection's live session, whatever the transport: its user, its topics, what it
//! has been sent, its place in the waiting room, and the client events it may send (`resume`,
//! `subscribe`, `unsubscribe`, chat, signaling, the waiting room).
//!
//! Ordering and exactly-once: every event frame derived from the store carries its position,
//! and the session never sends a position at or below its `floor`. `resume {after}` replays,
//! in order, what the user is entitled to in `(after, hub head]` straight from the store, then
//! raises the floor to that head; the live queue, which kept filling meanwhile, is sent after
//! the replay, without what the replay covered. So from a resume on, positions go out in
//! increasing order: the replay first, then its ack, then live events above it. The
//! transports read a waiting client frame before waiting live events, so a `resume` is
//! replayed before live events that were queued when it arrived; before any other client
//! event the session sends the live events already waiting, so that frame's answer follows
//! them. Events that already went out live before the resume was read (a client resumes a
//! moment after connecting; events can arrive in between) are not replayed again: a delivery
//! is known by its position and its event name, since one stored event can make several (an
//! `appointment:updated` and a `notification` share a position). So nothing is missed and
//! nothing is sent twice, even across a server restart (the token is a store position, not a
//! process-local counter).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use serde_json::{Value, json};
use telemed_domain::{Position, Role, UserId};
use telemed_problem::ApiError;

use crate::context::Context;
use crate::hub::{Delivery, Membership};
use crate::identity::Identity;
use crate::limits;
use crate::protocol::{ClientEvent, TopicRequest};
use crate::telemetry::{Connection, Transport};
use crate::topic::Topic;
use crate::waiting::Presence;

/// Where a session's frames go. Implemented by each transport.
pub trait Outbound: Send {
    /// Sends one server event; `false` when the client is gone.
    fn deliver(&mut self, delivery: &Delivery) -> impl Future<Output = bool> + Send;
}

/// An authenticated user's session.
pub struct Session<C> {
    identity: Identity,
    context: Arc<C>,
    membership: Membership,
    floor: Position,
    /// Per topic, the position of the first event sent live for it: every event of that topic
    /// from there to `live_last` has been sent.
    live_since: HashMap<Topic, Position>,
    /// The newest position sent live.
    live_last: Position,
    /// The events sent live at `live_last` (one stored event can make several).
    live_last_events: Vec<&'static str>,
    signals: governor::DefaultDirectRateLimiter,
    chat: governor::DefaultDirectRateLimiter,
    /// Events owed before any live one (a doctor's waiting room at connect).
    pending: VecDeque<Arc<Delivery>>,
    /// The connection's place in the waiting room (none in unit tests).
    _presence: Option<Presence>,
}

/// Why a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The client could not keep up with its events.
    SlowConsumer,
    /// The access token expired.
    TokenExpired,
    /// The user signed out (or the session was revoked).
    SignedOut,
}

impl Ending {
    /// The reason given to the client.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::SlowConsumer => "slow consumer: too many undelivered events",
            Ending::TokenExpired => "token expired",
            Ending::SignedOut => "signed out",
        }
    }

    /// The error sent to the client before the connection ends.
    pub fn problem(self) -> ApiError {
        match self {
            Ending::TokenExpired | Ending::SignedOut => {
                ApiError::Unauthenticated(self.reason().into())
            }
            Ending::SlowConsumer => ApiError::Conflict {
                code: "slow_consumer",
                detail: self.reason().into(),
            },
        }
    }

    /// WebSocket close code (4000–4999 are the application's).
    pub fn close_code(self) -> u16 {
        match self {
            Ending::SlowConsumer => 4008,
            Ending::TokenExpired | Ending::SignedOut => 4001,
        }
    }
}

impl<C: Context> Session<C> {
    /// A session of `identity` whose live events come through `membership`, above `floor`,
    /// starting with `pending` (the transports get theirs from [`crate::Services::session`]).
    pub fn new(
        context: Arc<C>,
        identity: Identity,
        membership: Membership,
        floor: Position,
        pending: VecDeque<Arc<Delivery>>,
        presence: Option<Presence>,
    ) -> Self {
        Self {
            identity,
            context,
            membership,
            floor,
            live_since: HashMap::new(),
            live_last: Position::START,
            live_last_events: Vec::new(),
            signals: limits::per_connection(limits::SIGNALS_PER_CONNECTION),
            chat: limits::per_connection(limits::CHAT_PER_CONNECTION),
            pending,
            _presence: presence,
        }
    }

    /// The user.
    pub fn user(&self) -> UserId {
        self.identity.user
    }

    /// How long until the token expires.
    pub fn time_left(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Duration::from_secs(self.identity.expires_at.saturating_sub(now))
    }

    /// The next live event not yet sent. Cancel-safe (for `select!`). `Err` when the
    /// session must end.
    pub async fn next_live(&mut self) -> Result<Arc<Delivery>, Ending> {
        if let Some(delivery) = self.pending.pop_front() {
            return Ok(delivery);
        }
        loop {
            let Some(delivery) = self.membership.next().await else {
                return Err(if self.membership.signed_out() {
                    Ending::SignedOut
                } else {
                    Ending::SlowConsumer
                });
            };
            if self.take_live(&delivery) {
                return Ok(delivery);
            }
        }
    }

    /// The next live event not yet sent, if one is waiting already.
    fn waiting_live(&mut self) -> Option<Arc<Delivery>> {
        if let Some(delivery) = self.pending.pop_front() {
            return Some(delivery);
        }
        // `None` when nothing waits or the queue ended (`next_live` reports that).
        while let Some(delivery) = self.membership.next().now_or_never().flatten() {
            if self.take_live(&delivery) {
                return Some(delivery);
            }
        }
        None
    }

    /// Sends the live events waiting now.
    async fn flush_live(&mut self, out: &mut impl Outbound) -> Result<(), ApiError> {
        while let Some(delivery) = self.waiting_live() {
            if !out.deliver(&delivery).await {
                return Err(ApiError::Unavailable(None));
            }
        }
        Ok(())
    }

    /// Whether a live `delivery` is to be sent (and records it as sent): not at or below the
    /// floor, which a replay sent already.
    fn take_live(&mut self, delivery: &Delivery) -> bool {
        let Some(position) = delivery.position else {
            return true;
        };
        if position <= self.floor {
            return false;
        }
        for topic in &delivery.topics {
            if self.membership.topics().contains(topic) {
                self.live_since.entry(*topic).or_insert(position);
            }
        }
        if position > self.live_last {
            self.live_last = position;
            self.live_last_events.clear();
        }
        self.live_last_events.push(delivery.event);
        true
    }

    /// Handles client event `event` with `data`; the answer is the ack data.
    pub async fn handle(
        &mut self,
        event: &str,
        data: Value,
        out: &mut impl Outbound,
    ) -> Result<Value, ApiError> {
        let event = ClientEvent::parse(event, data)?;
        if !matches!(event, ClientEvent::Resume(_)) {
            // What was published before this event reaches the client before its answer.
            self.flush_live(out).await?;
        }
        match event {
            ClientEvent::Resume(resume) => {
                let replayed = self.resume(resume.after, out).await?;
                Ok(json!({ "replayed": replayed }))
            }
            ClientEvent::Subscribe(TopicRequest { topic }) => {
                self.authorize(topic).await?;
                self.membership.subscribe(topic);
                Ok(json!({ "ok": true }))
            }
            ClientEvent::Unsubscribe(TopicRequest { topic }) => {
                if topic == Topic::User(self.identity.user) {
                    return Err(ApiError::invalid(
                        "data.topic",
                        "a connection always receives its own user's events",
                    ));
                }
                self.membership.unsubscribe(topic);
                self.live_since.remove(&topic);
                Ok(json!({ "ok": true }))
            }
            ClientEvent::ChatSend(_) => {
                self.admit(&self.chat, "chat messages on this connection")?;
                self.context.execute(&self.identity, event).await
            }
            ClientEvent::CallOffer(_)
            | ClientEvent::CallAnswer(_)
            | ClientEvent::CallIce(_)
            | ClientEvent::CallHangup(_) => {
                self.admit(&self.signals, "signaling messages on this connection")?;
                self.context.execute(&self.identity, event).await
            }
            other => self.context.execute(&self.identity, other).await,
        }
    }

    /// Takes one message of `limiter`'s kind, or refuses with 429 (when limits are on).
    fn admit(
        &self,
        limiter: &governor::DefaultDirectRateLimiter,
        what: &str,
    ) -> Result<(), ApiError> {
        if !self.context.limits_enabled() {
            return Ok(());
        }
        limiter.check().map_err(|not_until| {
            use governor::clock::{Clock, DefaultClock};
            ApiError::rate_limited(
                what,
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Checks that this user may follow `topic`.
    async fn authorize(&self, topic: Topic) -> Result<(), ApiError> {
        let staff = matches!(self.identity.role, Role::Admin | Role::Auditor);
        match topic {
            Topic::Audit if staff => Ok(()),
            Topic::Audit => Err(ApiError::Forbidden(
                "only auditors and admins may follow the audit log".into(),
            )),
            Topic::User(id) if id == self.identity.user => Ok(()),
            Topic::User(_) => Err(ApiError::Forbidden(
                "a connection receives only its own user's events".into(),
            )),
            Topic::DoctorAvailability(_) | Topic::Appointment(_) => {
                self.context.may_follow(&self.identity, topic).await
            }
        }
    }

    /// Sends what this session is entitled to in `(after, head]`, in order, and returns how
    /// many events that was.
    async fn resume(&mut self, after: Position, out: &mut impl Outbound) -> Result<u64, ApiError> {
        // Replay up to what the store holds now, once this process's hub has published it
        // (so the read models the replay renders from have it too, and everything after it
        // reaches this connection live).
        let head = self.context.replay_head().await?;
        let topics: HashSet<Topic> = self.membership.topics().clone();
        let mut cursor = after;
        let mut sent = 0u64;
        'pages: while cursor < head {
            let Some((last, deliveries)) = self.context.replay_page(cursor).await? else {
                break;
            };
            for delivery in deliveries {
                if delivery.position.is_some_and(|p| p > head) {
                    break 'pages;
                }
                if delivery.is_for(&topics) && !self.sent_live(&delivery) {
                    if !out.deliver(&delivery).await {
                        return Err(ApiError::Unavailable(None));
                    }
                    sent += 1;
                }
            }
            cursor = last;
        }
        self.floor = self.floor.max(head);
        Ok(sent)
    }

    /// Whether `delivery` already went out live on this connection.
    fn sent_live(&self, delivery: &Delivery) -> bool {
        let Some(position) = delivery.position else {
            return false;
        };
        let went_out = position < self.live_last
            || (position == self.live_last && self.live_last_events.contains(&delivery.event));
        went_out
            && delivery.topics.iter().any(|topic| {
                self.live_since
                    .get(topic)
                    .is_some_and(|since| *since <= position)
            })
    }
}

/// A transport's [`Outbound`] that counts what it sends (and what it could not send) and
/// holds the connection's place in [`crate::telemetry::CONNECTIONS`].
pub struct Counted<O> {
    /// The transport.
    pub inner: O,
    connection: Connection,
}

impl<O> Counted<O> {
    /// `inner`, counted as an open connection of `transport`.
    pub fn new(inner: O, transport: Transport) -> Self {
        Self {
            inner,
            connection: Connection::open(transport),
        }
    }
}

impl<O: Outbound> Outbound for Counted<O> {
    async fn deliver(&mut self, delivery: &Delivery) -> bool {
        let delivered = self.inner.deliver(delivery).await;
        if delivered {
            self.connection.sent();
        } else {
            self.connection.lost();
        }
        delivered
    }
}

#[cfg(test)]
mod tests;
