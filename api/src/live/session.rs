//! One client connection's live session, whatever the transport: its user, its topics, what it
//! has been sent, its place in the waiting room, and the client events it may send (`resume`,
//! `subscribe`, `unsubscribe`, chat, signaling, the waiting room).
//!
//! Ordering and exactly-once: every event frame derived from the store carries its position,
//! and the session never sends a position at or below its `floor`. `resume {after}` replays,
//! in order, what the user is entitled to in `(after, hub head]` straight from the store, then
//! raises the floor to that head; the live queue, which kept filling meanwhile, continues
//! above it. Events that already went out live before the resume (a client resumes a moment
//! after connecting; events can arrive in between) are not replayed again. So nothing is missed
//! and nothing is sent twice, even across a server restart (the token is a store position, not
//! a process-local counter).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use telemed_domain::{Position, Role, UserId};
use telemed_projections::appointments::appointment;
use telemed_projections::profiles;
use telemed_projections::stream::read_after;

use super::feed::{deliveries, store_head};
use super::hub::{Delivery, Membership};
use super::topic::Topic;
use super::waiting::{self, Presence};
use crate::error::{ApiError, FieldError};
use crate::extract::AuthUser;
use crate::rate_limit;
use crate::routes::{self, messages};
use crate::state::AppState;

/// Signaling events a client may send.
const SIGNALS: &[&str] = &["call:offer", "call:answer", "call:ice", "call:hangup"];

/// Events read from the store per page of a replay.
const REPLAY_PAGE: i64 = 500;
/// How long a resume waits for this process's live feed to reach the store's head.
const HUB_WAIT: Duration = Duration::from_secs(10);

/// Where a session's frames go. Implemented by each transport.
pub trait Outbound: Send {
    /// Sends one server event; `false` when the client is gone.
    fn deliver(&mut self, delivery: &Delivery) -> impl Future<Output = bool> + Send;
}

/// An authenticated user's session.
pub struct Session {
    user: UserId,
    role: Role,
    expires_at: u64,
    state: AppState,
    membership: Membership,
    floor: Position,
    /// Per topic, the position of the first event sent live for it: every event of that topic
    /// from there to `live_last` has been sent.
    live_since: HashMap<Topic, Position>,
    /// The newest position sent live.
    live_last: Position,
    signals: governor::DefaultDirectRateLimiter,
    chat: governor::DefaultDirectRateLimiter,
    /// Events owed before any live one (a doctor's waiting room at connect).
    pending: VecDeque<Arc<Delivery>>,
    /// The connection's place in the waiting room.
    _presence: Presence,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeData {
    after: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicData {
    topic: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatSend {
    appointment_id: String,
    content: String,
    client_msg_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRead {
    appointment_id: String,
    up_to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatTyping {
    appointment_id: String,
}

fn appointment_id_field(text: &str) -> Result<telemed_domain::AppointmentId, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid("data.appointment_id", "must be an appointment id (a UUID)"))
}

impl Session {
    /// Starts a session for the holder of `token`, in their own topic.
    pub async fn start(
        state: AppState,
        token: &crate::auth::jwt::VerifiedToken,
    ) -> Result<Self, ApiError> {
        let (user, role, expires_at) = (token.user_id, token.role, token.expires_at);
        let (membership, presence, pending) = state.waiting.join(user, role, token.sid);
        // A sign-out between the token's check and the join would have missed this connection.
        if state.jwt.revocations().is_revoked(token.sid) {
            return Err(ApiError::Unauthenticated(
                "the session of this access token has been signed out".into(),
            ));
        }
        // Live events start after what the store held before the connection existed (even
        // when this process's feed has not published all of it yet); earlier ones are a
        // resume's.
        let floor = state.hub.head().max(store_head(&state.pool).await?);
        Ok(Self {
            user,
            role,
            expires_at,
            state,
            membership,
            floor,
            live_since: HashMap::new(),
            live_last: Position::START,
            signals: rate_limit::per_connection(rate_limit::SIGNALS_PER_CONNECTION),
            chat: rate_limit::per_connection(rate_limit::CHAT_PER_CONNECTION),
            pending,
            _presence: presence,
        })
    }

    /// The user.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// How long until the token expires.
    pub fn time_left(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Duration::from_secs(self.expires_at.saturating_sub(now))
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
            // At or below the floor: already sent by a replay.
            match delivery.position {
                Some(position) if position <= self.floor => {}
                Some(position) => {
                    for topic in &delivery.topics {
                        if self.membership.topics().contains(topic) {
                            self.live_since.entry(*topic).or_insert(position);
                        }
                    }
                    self.live_last = position;
                    return Ok(delivery);
                }
                None => return Ok(delivery),
            }
        }
    }

    /// Handles client event `event` with `data`; the answer is the ack data.
    pub async fn handle(
        &mut self,
        event: &str,
        data: Value,
        out: &mut impl Outbound,
    ) -> Result<Value, ApiError> {
        match event {
            "resume" => {
                let ResumeData { after } = parse(data)?;
                let after: Position = after
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::invalid("data.after", "is not a position token"))?;
                let replayed = self.resume(after, out).await?;
                Ok(json!({ "replayed": replayed }))
            }
            "subscribe" => {
                let topic = self.topic(parse(data)?).await?;
                self.membership.subscribe(topic);
                Ok(json!({ "ok": true }))
            }
            "unsubscribe" => {
                let TopicData { topic } = parse(data)?;
                let topic: Topic = topic.parse().map_err(|e: super::topic::UnknownTopic| {
                    ApiError::invalid("data.topic", e.to_string())
                })?;
                if topic == Topic::User(self.user) {
                    return Err(ApiError::invalid(
                        "data.topic",
                        "a connection always receives its own user's events",
                    ));
                }
                self.membership.unsubscribe(topic);
                self.live_since.remove(&topic);
                Ok(json!({ "ok": true }))
            }
            "chat:send" => {
                let ChatSend {
                    appointment_id,
                    content,
                    client_msg_id,
                } = parse(data)?;
                let id = appointment_id_field(&appointment_id)?;
                self.admit(&self.chat, "chat messages on this connection")?;
                let body = messages::NewMessage {
                    content,
                    client_msg_id,
                };
                let message = messages::post(&self.state, &self.actor(), id, body)
                    .await
                    .map_err(|e| e.under("data"))?;
                Ok(serde_json::to_value(message).unwrap_or_default())
            }
            "chat:read" => {
                let ChatRead {
                    appointment_id,
                    up_to,
                } = parse(data)?;
                let id = appointment_id_field(&appointment_id)?;
                messages::mark_read(&self.state, &self.actor(), id, &up_to)
                    .await
                    .map_err(|e| e.under("data"))?;
                Ok(json!({ "ok": true }))
            }
            "chat:typing" => {
                let ChatTyping { appointment_id } = parse(data)?;
                let id = appointment_id_field(&appointment_id)?;
                messages::typing(&self.state, &self.actor(), id).await?;
                Ok(json!({ "ok": true }))
            }
            "call:offer" | "call:answer" | "call:ice" | "call:hangup" => {
                let event = SIGNALS
                    .iter()
                    .find(|s| **s == event)
                    .copied()
                    .unwrap_or("call:hangup");
                self.admit(&self.signals, "signaling messages on this connection")?;
                routes::calls::signal(&self.state, &self.actor(), event, data).await
            }
            "waiting:checkin" => waiting::client::check_in(&self.state, &self.actor(), data).await,
            "waiting:leave" => waiting::client::leave(&self.state, &self.actor(), data).await,
            "waiting:list" => waiting::client::list(&self.state, &self.actor(), data),
            other => Err(unknown_event(other)),
        }
    }

    /// Takes one message of `limiter`'s kind, or refuses with 429 (when limits are on).
    fn admit(
        &self,
        limiter: &governor::DefaultDirectRateLimiter,
        what: &str,
    ) -> Result<(), ApiError> {
        if !self.state.rate_limits.enabled() {
            return Ok(());
        }
        limiter.check().map_err(|not_until| {
            use governor::clock::{Clock, DefaultClock};
            rate_limit::refused(
                what,
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// The user as a request's actor (each client event is its own request).
    fn actor(&self) -> AuthUser {
        AuthUser {
            id: self.user,
            role: self.role,
            request_id: format!("live-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Checks that this user may join the topic named in `data`.
    async fn topic(&self, TopicData { topic }: TopicData) -> Result<Topic, ApiError> {
        let topic: Topic = topic.parse().map_err(|e: super::topic::UnknownTopic| {
            ApiError::invalid("data.topic", e.to_string())
        })?;
        let staff = matches!(self.role, Role::Admin | Role::Auditor);
        match topic {
            Topic::Audit if staff => Ok(topic),
            Topic::Audit => Err(ApiError::Forbidden(
                "only auditors and admins may follow the audit log".into(),
            )),
            Topic::User(id) if id == self.user => Ok(topic),
            Topic::User(_) => Err(ApiError::Forbidden(
                "a connection receives only its own user's events".into(),
            )),
            Topic::DoctorAvailability(doctor) => {
                match profiles::doctor(&self.state.pool, doctor).await? {
                    Some(_) => Ok(topic),
                    None => Err(ApiError::NotFound("no such doctor".into())),
                }
            }
            Topic::Appointment(id) => match appointment(&self.state.pool, id).await? {
                Some(view)
                    if staff || view.doctor_id == self.user || view.patient_id == self.user =>
                {
                    Ok(topic)
                }
                _ => Err(ApiError::NotFound("no such appointment".into())),
            },
        }
    }

    /// Sends what this session is entitled to in `(after, head]`, in order, and returns how
    /// many events that was.
    async fn resume(&mut self, after: Position, out: &mut impl Outbound) -> Result<u64, ApiError> {
        // Replay up to what the store holds now, once this process's hub has published it
        // (so the read models the replay renders from have it too, and everything after it
        // reaches this connection live).
        let head = store_head(&self.state.pool).await?;
        tokio::time::timeout(HUB_WAIT, self.state.hub.wait_for(head))
            .await
            .map_err(|_| {
                ApiError::Unavailable(Some("the live feed is behind the event store".into()))
            })?;
        let topics: HashSet<Topic> = self.membership.topics().clone();
        let mut cursor = after;
        let mut sent = 0u64;
        'pages: while cursor < head {
            let events = read_after(&self.state.pool, cursor, REPLAY_PAGE).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            for delivery in deliveries(&self.state.pool, &events).await? {
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
        position <= self.live_last
            && delivery.topics.iter().any(|topic| {
                self.live_since
                    .get(topic)
                    .is_some_and(|since| *since <= position)
            })
    }
}

/// Decodes client event data, naming the offending field.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(data).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            "data".to_string()
        } else {
            format!("data.{path}")
        };
        ApiError::Validation(vec![FieldError::new(field, error.inner().to_string())])
    })
}

/// The client sent an event name this server does not know.
pub fn unknown_event(name: &str) -> ApiError {
    ApiError::BadRequest {
        detail: format!("unknown event {name:?}"),
        errors: vec![FieldError::new(
            "event",
            "must be one of resume, subscribe, unsubscribe, chat:send, chat:read, chat:typing, call:offer, call:answer, call:ice, call:hangup, waiting:checkin, waiting:leave, waiting:list",
        )],
    }
}
