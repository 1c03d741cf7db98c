//! [`Services`]: the live subsystem's real [`Context`]: the store for replays, the read models
//! for topic access, and the commands each client event calls (chat, signaling, the waiting
//! room). Built once per process by the composition root.
//!
//! - [`waiting`]: the waiting room's client events (`waiting:checkin`, `waiting:leave`,
//!   `waiting:list`).

mod waiting;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use telemed_commands::{Actor, Calls, Chat, CommandContext, NewPost, Participants, Relay};
use telemed_domain::call::EndReason;
use telemed_domain::{AppointmentId, CallId, Position, Role, UserId};
use telemed_problem::ApiError;
use telemed_projections::appointments::appointment;
use telemed_projections::profiles;
use telemed_projections::stream::read_after;
use telemed_projections::{Progress, Settled};

use crate::bus::Bus;
use crate::context::{Context, Page};
use crate::feed::{deliveries, store_head};
use crate::hub::{Delivery, Hub};
use crate::identity::{Identity, Tokens};
use crate::protocol::{ChatRead, ChatSend, ClientEvent, Hangup, ServerEvent, Typing};
use crate::session::Session;
use crate::topic::Topic;
use crate::waiting::WaitingRoom;

/// Events read from the store per page of a replay.
const REPLAY_PAGE: i64 = 500;
/// How long a resume waits for this process's live feed to reach the store's head.
const HUB_WAIT: Duration = Duration::from_secs(10);

/// What the live subsystem uses of the process.
pub struct Services {
    /// Database pool (store reads, read models).
    pub pool: PgPool,
    /// This process's hub.
    pub hub: Arc<Hub>,
    /// Ephemeral traffic between processes.
    pub bus: Bus,
    /// This process's waiting room.
    pub waiting: Arc<WaitingRoom>,
    /// Access tokens.
    pub tokens: Arc<dyn Tokens>,
    /// Chat commands.
    pub chat: Arc<Chat>,
    /// Call commands.
    pub calls: Arc<Calls>,
    /// Projection progress (an ack shows what its command wrote).
    pub progress: Progress,
    /// How long an ack waits for the read models.
    pub settle_timeout: Duration,
    /// Whether per-connection rate limits are enforced.
    pub limits_enabled: bool,
    /// Tests only (zero otherwise): how long each session waits before it joins the hub, so
    /// that any window between a client being told it is connected and its join (there must
    /// be none) stays open long enough for a test to commit an event into it.
    pub join_delay: Duration,
}

impl Services {
    /// Starts a session for `identity`, in their own topic (and the waiting room).
    pub async fn session(self: &Arc<Self>, identity: Identity) -> Result<Session<Self>, ApiError> {
        if !self.join_delay.is_zero() {
            tokio::time::sleep(self.join_delay).await;
        }
        let (membership, presence, pending) =
            self.waiting
                .join(identity.user, identity.role, identity.sid);
        // A sign-out between the token's check and the join would have missed this connection.
        if self.tokens.is_revoked(identity.sid) {
            return Err(ApiError::Unauthenticated(
                "the session of this access token has been signed out".into(),
            ));
        }
        // Live events start after what the store held before the connection existed (even
        // when this process's feed has not published all of it yet); earlier ones are a
        // resume's.
        let floor = self.hub.head().max(store_head(&self.pool).await?);
        let pending: VecDeque<Arc<Delivery>> = pending;
        Ok(Session::new(
            self.clone(),
            identity,
            membership,
            floor,
            pending,
            Some(presence),
        ))
    }

    /// Waits (bounded) until every projection has applied `position`; 503 as soon as the
    /// projections cannot reach the database (as the REST routes' `AppState::settle`).
    async fn settle(&self, position: Position) -> Result<(), ApiError> {
        match self.progress.wait_for(position, self.settle_timeout).await {
            Settled::Reached => Ok(()),
            Settled::TimedOut => {
                tracing::warn!(%position, timeout = ?self.settle_timeout, "read models did not catch up in time");
                Ok(())
            }
            Settled::Unreachable => Err(ApiError::Unavailable(Some(
                "the read models cannot reach the database".into(),
            ))),
        }
    }

    /// The conversation of `id` if `user` takes part in it (404 otherwise).
    pub(crate) async fn participants(
        &self,
        user: &Identity,
        id: AppointmentId,
    ) -> Result<Participants, ApiError> {
        Ok(self.chat.conversation_of(user.user, id).await?)
    }

    async fn chat_send(&self, user: &Identity, send: ChatSend) -> Result<Value, ApiError> {
        let (id, post) = <(AppointmentId, NewPost)>::try_from(send)?;
        let posted = self.chat.post(user.user, id, post, &context(user)).await?;
        self.settle(posted.position).await?;
        let view = self.chat.message(posted.id).await?;
        Ok(serde_json::to_value(view).unwrap_or_default())
    }

    async fn chat_read(&self, user: &Identity, read: ChatRead) -> Result<Value, ApiError> {
        let ChatRead {
            appointment_id,
            up_to,
        } = read;
        let at = self
            .chat
            .mark_read(user.user, appointment_id, up_to, &context(user))
            .await
            .map_err(|e| ApiError::from(e).under("data"))?;
        self.settle(at).await?;
        Ok(json!({ "ok": true }))
    }

    async fn chat_typing(&self, user: &Identity, id: AppointmentId) -> Result<Value, ApiError> {
        let conversation = self.participants(user, id).await?;
        let other = conversation.other(user.user);
        let typing = ServerEvent::ChatTyping(Typing {
            appointment_id: id,
            user_id: user.user,
        });
        self.bus
            .publish(typing.name(), typing.data(), vec![Topic::User(other)]);
        Ok(json!({ "ok": true }))
    }

    /// Relays a signaling event (`call:offer`, `call:answer`, `call:ice`, made by `event` from
    /// the sender) to the call's other participant.
    async fn relay(
        &self,
        user: &Identity,
        call_id: CallId,
        answer: bool,
        event: impl FnOnce(UserId) -> ServerEvent,
    ) -> Result<Value, ApiError> {
        let relay = self
            .calls
            .signal(call_id, user.user, answer, &context(user))
            .await?;
        let to = match relay {
            Relay::To(to) => to,
            Relay::CallOver(status) => {
                return Err(ApiError::Conflict {
                    code: "call_over",
                    detail: format!("the call is {}", status.as_str()),
                });
            }
        };
        let event = event(user.user);
        self.bus
            .publish(event.name(), event.data(), vec![Topic::User(to)]);
        Ok(json!({ "ok": true }))
    }

    async fn hangup(&self, user: &Identity, hangup: Hangup) -> Result<Value, ApiError> {
        let reason = match hangup.reason.as_deref() {
            None => EndReason::user_hangup(),
            Some(text) => EndReason::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    "data.reason",
                    "must be 1 to 40 of a-z, 0-9 and _ (e.g. user_hangup)",
                )
            })?,
        };
        let call = self
            .calls
            .state(hangup.call_id)
            .await?
            .filter(|call| call.has(user.user));
        if call.is_none() {
            return Err(ApiError::NotFound("no such call".into()));
        }
        self.calls
            .end(hangup.call_id, user.user, reason, &context(user))
            .await?;
        Ok(json!({ "ok": true }))
    }
}

/// The command context of a client event (each is its own request).
pub(crate) fn context(user: &Identity) -> CommandContext {
    CommandContext::new(
        Actor::User {
            id: user.user,
            role: user.role,
        },
        format!("live-{}", uuid::Uuid::new_v4().simple()),
    )
}

impl Context for Services {
    async fn replay_head(&self) -> Result<Position, ApiError> {
        let head = store_head(&self.pool).await?;
        tokio::time::timeout(HUB_WAIT, self.hub.wait_for(head))
            .await
            .map_err(|_| {
                ApiError::Unavailable(Some("the live feed is behind the event store".into()))
            })?;
        Ok(head)
    }

    async fn replay_page(&self, after: Position) -> Result<Option<Page>, ApiError> {
        let events = read_after(&self.pool, after, REPLAY_PAGE).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(None);
        };
        Ok(Some((last, deliveries(&self.pool, &events).await?)))
    }

    async fn may_follow(&self, user: &Identity, topic: Topic) -> Result<(), ApiError> {
        let staff = matches!(user.role, Role::Admin | Role::Auditor);
        match topic {
            Topic::DoctorAvailability(doctor) => {
                match profiles::doctor(&self.pool, doctor).await? {
                    Some(_) => Ok(()),
                    None => Err(ApiError::NotFound("no such doctor".into())),
                }
            }
            Topic::Appointment(id) => match appointment(&self.pool, id).await? {
                Some(view)
                    if staff || view.doctor_id == user.user || view.patient_id == user.user =>
                {
                    Ok(())
                }
                _ => Err(ApiError::NotFound("no such appointment".into())),
            },
            Topic::Audit | Topic::User(_) => Err(ApiError::Forbidden(
                "this topic is not followed by subscription".into(),
            )),
        }
    }

    async fn execute(&self, user: &Identity, event: ClientEvent) -> Result<Value, ApiError> {
        match event {
            ClientEvent::ChatSend(send) => self.chat_send(user, send).await,
            ClientEvent::ChatRead(read) => self.chat_read(user, read).await,
            ClientEvent::ChatTyping(chat) => self.chat_typing(user, chat.appointment_id).await,
            ClientEvent::CallOffer(s) => {
                let call_id = s.call_id;
                let offer = |from| ServerEvent::CallOffer(s.relayed(from));
                self.relay(user, call_id, false, offer).await
            }
            ClientEvent::CallAnswer(s) => {
                let call_id = s.call_id;
                let answer = |from| ServerEvent::CallAnswer(s.relayed(from));
                self.relay(user, call_id, true, answer).await
            }
            ClientEvent::CallIce(s) => {
                let call_id = s.call_id;
                let ice = |from| ServerEvent::CallIce(s.relayed(from));
                self.relay(user, call_id, false, ice).await
            }
            ClientEvent::CallHangup(hangup) => self.hangup(user, hangup).await,
            ClientEvent::WaitingCheckin(w) => waiting::check_in(self, user, w.appointment_id).await,
            ClientEvent::WaitingLeave(w) => waiting::leave(self, user, w.appointment_id).await,
            ClientEvent::WaitingList(_) => waiting::list(self, user),
            ClientEvent::Resume(_) | ClientEvent::Subscribe(_) | ClientEvent::Unsubscribe(_) => {
                Err(ApiError::internal(anyhow_free(
                    "a session event reached the services",
                )))
            }
        }
    }

    fn limits_enabled(&self) -> bool {
        self.limits_enabled
    }
}

fn anyhow_free(message: &'static str) -> std::io::Error {
    std::io::Error::other(message)
}
