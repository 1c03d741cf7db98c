//! The conversation of an appointment: chat messages and read markers.
//!
//! Posting must cost the same at message 10 000 as at message 10, so a conversation is not one
//! aggregate that replays its history: each message is its own small aggregate
//! ([`ChatMessage`], id = the message id), decided against the appointment's current state
//! (its participants, status and end), and each participant's read marker is another
//! ([`ReadMarker`], id `"{appointment}:{user}"`). A message id derived from the sender's
//! `client_msg_id` makes a repeated post land on the same aggregate, where it is refused as
//! already posted and answered with the first message.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::appointment::{AppointmentState, Status};
use crate::values::MessageContent;
use crate::{AppointmentId, Decide, MessageId, NamedCommand, Position, UserId};

/// Aggregate type of a chat message in the event store.
pub const MESSAGE_AGGREGATE_TYPE: &str = "chat_message";
/// Aggregate type of a read marker in the event store.
pub const READ_AGGREGATE_TYPE: &str = "chat_read";

/// Namespace of message ids derived from client message ids (UUID v5).
const CLIENT_MESSAGE_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b1e_4d7a_4c1e_9b8e_3a52_d0c4_7e11);

/// The id of the message that `sender` posts in `appointment` with `client_msg_id`: the same
/// inputs always give the same id, so a retried post finds its first attempt.
pub fn message_id_for(
    appointment: AppointmentId,
    sender: UserId,
    client_msg_id: &str,
) -> MessageId {
    let name = format!("{appointment}:{sender}:{client_msg_id}");
    MessageId::from(Uuid::new_v5(&CLIENT_MESSAGE_NAMESPACE, name.as_bytes()))
}

/// The read marker aggregate id of `user` in `appointment`.
pub fn read_marker_id(appointment: AppointmentId, user: UserId) -> String {
    format!("{appointment}:{user}")
}

/// Commands of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum MessageCommand {
    /// Post it.
    Post {
        /// The appointment whose conversation it is.
        appointment_id: AppointmentId,
        /// The appointment as it is now.
        appointment: AppointmentState,
        /// Who posts.
        sender_id: UserId,
        /// What.
        content: MessageContent,
        /// The sender's idempotency key, if any.
        client_msg_id: Option<String>,
        /// Now.
        at: OffsetDateTime,
        /// How long after the appointment's end posting stays open.
        grace: Duration,
    },
}

/// Events of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MessageEvent {
    /// A participant posted a message.
    MessagePosted {
        /// The appointment.
        appointment_id: AppointmentId,
        /// Its doctor (for delivery).
        doctor_id: UserId,
        /// Its patient (for delivery).
        patient_id: UserId,
        /// The sender, one of the two.
        sender_id: UserId,
        /// The text, as sent.
        content: MessageContent,
        /// The sender's idempotency key.
        client_msg_id: Option<String>,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
    },
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// The sender is not the appointment's doctor or patient.
    #[error("only the appointment's doctor and patient can write in its conversation")]
    NotParticipant,
    /// The appointment was cancelled.
    #[error("the appointment was cancelled; its conversation is closed")]
    Cancelled,
    /// Too long after the appointment ended.
    #[error("the conversation closed {0} hours after the appointment ended")]
    Closed(i64),
    /// This message (id) exists already: a repeated `client_msg_id`.
    #[error("this message was already posted")]
    AlreadyPosted,
}

/// A chat message.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    posted: bool,
}

impl Decide for ChatMessage {
    fn decide(&self, command: MessageCommand) -> Result<Vec<MessageEvent>, ConversationError> {
        let MessageCommand::Post {
            appointment_id,
            appointment,
            sender_id,
            content,
            client_msg_id,
            at,
            grace,
        } = command;
        if self.posted {
            return Err(ConversationError::AlreadyPosted);
        }
        if sender_id != appointment.doctor_id && sender_id != appointment.patient_id {
            return Err(ConversationError::NotParticipant);
        }
        if appointment.status == Status::Cancelled {
            return Err(ConversationError::Cancelled);
        }
        if at > appointment.interval.end + grace {
            return Err(ConversationError::Closed(grace.whole_hours()));
        }
        Ok(vec![MessageEvent::MessagePosted {
            appointment_id,
            doctor_id: appointment.doctor_id,
            patient_id: appointment.patient_id,
            sender_id,
            content,
            client_msg_id,
            sent_at: at,
        }])
    }
}

impl Aggregate for ChatMessage {
    const TYPE: &'static str = MESSAGE_AGGREGATE_TYPE;
    type Command = MessageCommand;
    type Event = MessageEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: MessageCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: MessageEvent) {
        match event {
            MessageEvent::MessagePosted { .. } => self.posted = true,
        }
    }
}

impl NamedCommand for MessageCommand {
    fn command_name(&self) -> &'static str {
        "chat.post"
    }
}

impl DomainEvent for MessageEvent {
    fn event_type(&self) -> String {
        "MessagePosted".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Commands of a read marker.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadCommand {
    /// `user` has read everything up to and including `up_to`.
    Mark {
        /// The appointment.
        appointment_id: AppointmentId,
        /// Its doctor.
        doctor_id: UserId,
        /// Its patient.
        patient_id: UserId,
        /// The reader.
        user_id: UserId,
        /// The last message read.
        up_to: MessageId,
        /// That message's position (markers only move forward).
        up_to_position: Position,
        /// Now.
        at: OffsetDateTime,
    },
}

/// Events of a read marker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReadEvent {
    /// The reader's marker moved forward.
    MessagesRead {
        /// The appointment.
        appointment_id: AppointmentId,
        /// Its doctor (for delivery).
        doctor_id: UserId,
        /// Its patient (for delivery).
        patient_id: UserId,
        /// The reader.
        user_id: UserId,
        /// The last message read.
        up_to: MessageId,
        /// Its position.
        up_to_position: Position,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// A participant's read marker in one conversation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReadMarker {
    up_to_position: Option<Position>,
}

impl Decide for ReadMarker {
    fn decide(&self, command: ReadCommand) -> Result<Vec<ReadEvent>, ConversationError> {
        let ReadCommand::Mark {
            appointment_id,
            doctor_id,
            patient_id,
            user_id,
            up_to,
            up_to_position,
            at,
        } = command;
        if user_id != doctor_id && user_id != patient_id {
            return Err(ConversationError::NotParticipant);
        }
        if self.up_to_position.is_some_and(|p| p >= up_to_position) {
            // Already read that far: nothing changes.
            return Ok(vec![]);
        }
        Ok(vec![ReadEvent::MessagesRead {
            appointment_id,
            doctor_id,
            patient_id,
            user_id,
            up_to,
            up_to_position,
            at,
        }])
    }
}

impl Aggregate for ReadMarker {
    const TYPE: &'static str = READ_AGGREGATE_TYPE;
    type Command = ReadCommand;
    type Event = ReadEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: ReadCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: ReadEvent) {
        match event {
            ReadEvent::MessagesRead { up_to_position, .. } => {
                self.up_to_position = Some(up_to_position);
            }
        }
    }
}

impl NamedCommand for ReadCommand {
    fn command_name(&self) -> &'static str {
        "chat.read"
    }
}

impl DomainEvent for ReadEvent {
    fn event_type(&self) -> String {
        "MessagesRead".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use time::macros::datetime;

    use super::*;
    use crate::ReservationId;
    use crate::appointment::{Party, SlotRef};
    use crate::calendar::Interval;

    const START: OffsetDateTime = datetime!(2027-03-01 10:00 UTC);

    fn appointment(status: Status) -> (AppointmentState, UserId, UserId) {
        let (doctor, patient) = (UserId::new(), UserId::new());
        let state = AppointmentState {
            doctor_id: doctor,
            patient_id: patient,
            interval: Interval::new(START, START + Duration::minutes(30)).unwrap(),
            status,
            awaiting: Some(Party::Doctor),
            slot: SlotRef {
                day: crate::DayId::new(doctor, START.date()),
                reservation_id: ReservationId::new(),
            },
        };
        (state, doctor, patient)
    }

    fn post(state: &AppointmentState, sender: UserId, at: OffsetDateTime) -> MessageCommand {
        MessageCommand::Post {
            appointment_id: AppointmentId::new(),
            appointment: state.clone(),
            sender_id: sender,
            content: MessageContent::parse("Hello, doctor").unwrap(),
            client_msg_id: Some("c-1".into()),
            at,
            grace: Duration::hours(72),
        }
    }

    fn posted(command: &MessageCommand) -> MessageEvent {
        let MessageCommand::Post {
            appointment_id,
            appointment,
            sender_id,
            content,
            client_msg_id,
            at,
            ..
        } = command.clone();
        MessageEvent::MessagePosted {
            appointment_id,
            doctor_id: appointment.doctor_id,
            patient_id: appointment.patient_id,
            sender_id,
            content,
            client_msg_id,
            sent_at: at,
        }
    }

    #[test]
    fn a_participant_posts_before_during_and_shortly_after() {
        let (state, doctor, patient) = appointment(Status::Confirmed);
        for (sender, at) in [
            (patient, START - Duration::days(3)),
            (doctor, START + Duration::minutes(10)),
            (patient, START + Duration::minutes(30) + Duration::hours(72)),
        ] {
            let command = post(&state, sender, at);
            let event = posted(&command);
            TestFramework::<ChatMessage>::with(())
                .given_no_previous_events()
                .when(command)
                .then_expect_events(vec![event]);
        }
    }

    #[test]
    fn a_stranger_cannot_post() {
        let (state, _, _) = appointment(Status::Pending);
        TestFramework::<ChatMessage>::with(())
            .given_no_previous_events()
            .when(post(&state, UserId::new(), START))
            .then_expect_error(ConversationError::NotParticipant);
    }

    #[test]
    fn a_cancelled_appointment_takes_no_messages() {
        let (state, _, patient) = appointment(Status::Cancelled);
        TestFramework::<ChatMessage>::with(())
            .given_no_previous_events()
            .when(post(&state, patient, START))
            .then_expect_error(ConversationError::Cancelled);
    }

    #[test]
    fn the_conversation_closes_after_the_grace_period() {
        let (state, _, patient) = appointment(Status::Completed);
        let late = START + Duration::minutes(30) + Duration::hours(72) + Duration::seconds(1);
        TestFramework::<ChatMessage>::with(())
            .given_no_previous_events()
            .when(post(&state, patient, late))
            .then_expect_error(ConversationError::Closed(72));
    }

    #[test]
    fn a_message_is_posted_once() {
        let (state, _, patient) = appointment(Status::Confirmed);
        let command = post(&state, patient, START);
        TestFramework::<ChatMessage>::with(())
            .given(vec![posted(&command)])
            .when(command)
            .then_expect_error(ConversationError::AlreadyPosted);
    }

    #[test]
    fn client_message_ids_give_stable_distinct_ids() {
        let (appointment, sender) = (AppointmentId::new(), UserId::new());
        assert_eq!(
            message_id_for(appointment, sender, "a"),
            message_id_for(appointment, sender, "a")
        );
        assert_ne!(
            message_id_for(appointment, sender, "a"),
            message_id_for(appointment, sender, "b")
        );
        assert_ne!(
            message_id_for(appointment, sender, "a"),
            message_id_for(appointment, UserId::new(), "a")
        );
    }

    fn mark(doctor: UserId, patient: UserId, user: UserId, position: Position) -> ReadCommand {
        ReadCommand::Mark {
            appointment_id: AppointmentId::default(),
            doctor_id: doctor,
            patient_id: patient,
            user_id: user,
            up_to: MessageId::default(),
            up_to_position: position,
            at: START,
        }
    }

    fn read(command: ReadCommand) -> ReadEvent {
        let ReadCommand::Mark {
            appointment_id,
            doctor_id,
            patient_id,
            user_id,
            up_to,
            up_to_position,
            at,
        } = command;
        ReadEvent::MessagesRead {
            appointment_id,
            doctor_id,
            patient_id,
            user_id,
            up_to,
            up_to_position,
            at,
        }
    }

    #[test]
    fn a_read_marker_only_moves_forward() {
        let (doctor, patient) = (UserId::new(), UserId::new());
        let first = mark(doctor, patient, patient, Position::new(5, 10));
        TestFramework::<ReadMarker>::with(())
            .given_no_previous_events()
            .when(first.clone())
            .then_expect_events(vec![read(first.clone())]);
        let later = mark(doctor, patient, patient, Position::new(6, 11));
        TestFramework::<ReadMarker>::with(())
            .given(vec![read(first.clone())])
            .when(later.clone())
            .then_expect_events(vec![read(later)]);
        TestFramework::<ReadMarker>::with(())
            .given(vec![read(first.clone())])
            .when(mark(doctor, patient, patient, Position::new(5, 9)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_participants_have_read_markers() {
        TestFramework::<ReadMarker>::with(())
            .given_no_previous_events()
            .when(mark(
                UserId::new(),
                UserId::new(),
                UserId::new(),
                Position::new(1, 1),
            ))
            .then_expect_error(ConversationError::NotParticipant);
    }
}
