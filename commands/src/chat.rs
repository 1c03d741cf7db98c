//! Chat: posting messages and moving read markers in an appointment's conversation.
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
use telemed_domain::values::{ClientMsgId, MessageContent};
use telemed_domain::{AppointmentId, MessageId, Position, UserId};
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

    /// Posts `content` by `sender`; a repeated `client_msg_id` returns the first post.
    pub async fn post(
        &self,
        appointment_id: AppointmentId,
        sender: UserId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
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

    /// Records that `user` has read `conversation` up to message `up_to` (at `up_to_position`).
    pub async fn mark_read(
        &self,
        conversation: Participants,
        user: UserId,
        up_to: MessageId,
        up_to_position: Position,
        context: &CommandContext,
    ) -> Result<Position> {
        let Participants {
            appointment_id,
            doctor_id,
            patient_id,
        } = conversation;
        let command = ReadCommand::Mark {
            appointment_id,
            doctor_id,
            patient_id,
            user_id: user,
            up_to,
            up_to_position,
            at: self.clock.now(),
        };
        self.executor
            .execute(
                &self.reads,
                &read_marker_id(appointment_id, user),
                command,
                context,
            )
            .await
            .map_err(|e| e.map_rejected(ChatError::from))
    }
}
