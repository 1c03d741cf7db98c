//! Chat: every decision about an appointment's conversation, for the REST routes and the live
//! session alike: who takes part ([`Chat::conversation_of`]), posting ([`Chat::post`]),
//! moving a read marker ([`Chat::mark_read`], which finds the message's position), and where a
//! page of history starts ([`Chat::position_before`]). Transports parse into [`NewPost`] and
//! message ids, call one of these, and render.
//!
//! A post decides on the appointment's current state (loaded from its few events) and
//! appends to a brand-new message aggregate without reading anything else, so its cost does
//! not depend on how long the conversation is.

use sqlx::PgPool;
use telemed_domain::appointment::Appointment;
use telemed_domain::conversation::{
    ChatMessage, ConversationError, MESSAGE_AGGREGATE_TYPE, MessageCommand, ReadCommand,
    ReadMarker, message_id_for, read_marker_id,
};
use telemed_domain::values::{ClientMsgId, InvalidValue, MessageContent};
use telemed_domain::{AppointmentId, MessageId, Position, UserId};
use telemed_projections::appointments::appointment;
use telemed_projections::conversations::{self, MessageView};
use time::Duration;

use crate::clock::Clock;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::executor::{Executor, last_position};
use crate::store::{Source, Store};

type Result<T> = std::result::Result<T, CommandError<ChatError>>;

/// Why a chat command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Refused by the conversation.
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    /// There is no such appointment.
    #[error("no such appointment")]
    NoAppointment,
    /// Fields of the request are invalid: each with why (`content`, `client_msg_id`, `up_to`,
    /// `before`; a live event's are under its `data`).
    #[error("invalid {}", .0.iter().map(|(field, _)| *field).collect::<Vec<_>>().join(", "))]
    Invalid(Vec<(&'static str, InvalidValue)>),
}

impl ChatError {
    fn invalid(field: &'static str, why: &str) -> Self {
        Self::Invalid(vec![(field, InvalidValue::new(why))])
    }
}

/// A message to post, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPost {
    /// What it says.
    pub content: MessageContent,
    /// The client's key for it: posting again with it returns the first message.
    pub client_msg_id: Option<ClientMsgId>,
}

impl NewPost {
    /// Parses a post's `content` and optional `client_msg_id`, naming each invalid one.
    pub fn parse(
        content: &str,
        client_msg_id: Option<&str>,
    ) -> std::result::Result<Self, ChatError> {
        let content = MessageContent::parse(content).map_err(|why| ("content", why));
        let client_msg_id = client_msg_id
            .map(ClientMsgId::parse)
            .transpose()
            .map_err(|why| ("client_msg_id", why));
        match (content, client_msg_id) {
            (Ok(content), Ok(client_msg_id)) => Ok(Self {
                content,
                client_msg_id,
            }),
            (content, client_msg_id) => Err(ChatError::Invalid(
                [content.err(), client_msg_id.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )),
        }
    }
}

/// A conversation and its two participants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Participants {
    /// The appointment.
    pub appointment_id: AppointmentId,
    /// Its doctor.
    pub doctor_id: UserId,
    /// Its patient.
    pub patient_id: UserId,
}

impl Participants {
    /// Whether `user` is the doctor or the patient.
    pub fn includes(&self, user: UserId) -> bool {
        self.doctor_id == user || self.patient_id == user
    }

    /// The participant who is not `user`.
    pub fn other(&self, user: UserId) -> UserId {
        if self.doctor_id == user {
            self.patient_id
        } else {
            self.doctor_id
        }
    }
}

/// A posted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posted {
    /// Its id.
    pub id: MessageId,
    /// Where its event is.
    pub position: Position,
    /// Whether this repeated an earlier post with the same `client_msg_id`.
    pub repeated: bool,
}

/// Chat commands.
pub struct Chat {
    pool: PgPool,
    executor: Executor,
    appointments: Store<Appointment>,
    messages: Store<ChatMessage>,
    reads: Store<ReadMarker>,
    clock: Clock,
    grace: Duration,
}

impl Chat {
    /// Chat on `pool`; conversations close `grace` after their appointment ends.
    pub fn new(pool: &PgPool, clock: Clock, grace: Duration) -> Self {
        Self {
            pool: pool.clone(),
            executor: Executor::new(pool.clone()),
            appointments: Store::new(pool, ()),
            messages: Store::batched(pool, ()),
            reads: Store::new(pool, ()),
            clock,
            grace,
        }
    }

    /// The conversation of appointment `id` (from the appointments read model).
    pub async fn conversation(&self, id: AppointmentId) -> Result<Participants> {
        let view = appointment(&self.pool, id)
            .await?
            .ok_or(CommandError::Rejected(ChatError::NoAppointment))?;
        Ok(Participants {
            appointment_id: view.id,
            doctor_id: view.doctor_id,
            patient_id: view.patient_id,
        })
    }

    /// The conversation of appointment `id` if `user` takes part in it (its doctor or
    /// patient); refused as [`ConversationError::NotParticipant`] otherwise.
    pub async fn conversation_of(&self, user: UserId, id: AppointmentId) -> Result<Participants> {
        let conversation = self.conversation(id).await?;
        if !conversation.includes(user) {
            return Err(CommandError::Rejected(
                ConversationError::NotParticipant.into(),
            ));
        }
        Ok(conversation)
    }

    /// Posts `post` by `sender` in appointment `id`'s conversation; a repeated
    /// `client_msg_id` returns the first post. The conversation decides who may post (its
    /// participants) and until when.
    pub async fn post(
        &self,
        sender: UserId,
        appointment_id: AppointmentId,
        post: NewPost,
        context: &CommandContext,
    ) -> Result<Posted> {
        // The appointment's own events (a handful), never the conversation's.
        let loaded = self
            .appointments
            .load(&appointment_id.to_string(), Source::Database)
            .await?;
        let appointment = loaded
            .aggregate
            .state()
            .cloned()
            .ok_or(CommandError::Rejected(ChatError::NoAppointment))?;
        let NewPost {
            content,
            client_msg_id,
        } = post;
        let id = match &client_msg_id {
            Some(key) => message_id_for(appointment_id, sender, key.as_str()),
            None => MessageId::new(),
        };
        let client_msg_id = client_msg_id.map(ClientMsgId::into_string);
        let command = MessageCommand::Post {
            appointment_id,
            appointment,
            sender_id: sender,
            content,
            client_msg_id,
            at: self.clock.now(),
            grace: self.grace,
        };
        match self
            .executor
            .create(&self.messages, &id.to_string(), command, context)
            .await
        {
            Ok(position) => Ok(Posted {
                id,
                position,
                repeated: false,
            }),
            Err(CommandError::Rejected(ConversationError::AlreadyPosted)) => {
                let position = last_position(&self.pool, MESSAGE_AGGREGATE_TYPE, &id.to_string())
                    .await?
                    .unwrap_or_default();
                Ok(Posted {
                    id,
                    position,
                    repeated: true,
                })
            }
            Err(other) => Err(other.map_rejected(ChatError::from)),
        }
    }

    /// A message as the read model has it (call once the read models have its position);
    /// unavailable while it is not there yet.
    pub async fn message(&self, id: MessageId) -> Result<MessageView> {
        conversations::message(&self.pool, id)
            .await?
            .map(|(view, _)| view)
            .ok_or_else(|| {
                CommandError::Unavailable("the message is not in the read model yet".into())
            })
    }

    /// Moves `user`'s read marker in appointment `id`'s conversation to message `up_to`
    /// (which must be one of its messages). Returns where the marker's event is.
    pub async fn mark_read(
        &self,
        user: UserId,
        id: AppointmentId,
        up_to: MessageId,
        context: &CommandContext,
    ) -> Result<Position> {
        let conversation = self.conversation_of(user, id).await?;
        let up_to_position = self.position_in(id, up_to, "up_to").await?;
        let command = ReadCommand::Mark {
            appointment_id: id,
            doctor_id: conversation.doctor_id,
            patient_id: conversation.patient_id,
            user_id: user,
            up_to,
            up_to_position,
            at: self.clock.now(),
        };
        self.executor
            .execute(&self.reads, &read_marker_id(id, user), command, context)
            .await
            .map_err(|e| e.map_rejected(ChatError::from))
    }

    /// Where a page of history that ends before message `before` starts (`None`: at the
    /// newest); `before` must be a message of appointment `id`'s conversation.
    pub async fn position_before(
        &self,
        id: AppointmentId,
        before: Option<MessageId>,
    ) -> Result<Option<Position>> {
        match before {
            Some(message) => self.position_in(id, message, "before").await.map(Some),
            None => Ok(None),
        }
    }

    /// The position of `message`, which must be in `id`'s conversation (else `field` is
    /// invalid).
    async fn position_in(
        &self,
        id: AppointmentId,
        message: MessageId,
        field: &'static str,
    ) -> Result<Position> {
        conversations::message(&self.pool, message)
            .await?
            .filter(|(view, _)| view.appointment_id == id)
            .map(|(_, position)| position)
            .ok_or_else(|| {
                CommandError::Rejected(ChatError::invalid(
                    field,
                    "is not a message of this conversation",
                ))
            })
    }
}
