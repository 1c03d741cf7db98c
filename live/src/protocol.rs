//! The live protocol, typed: what a client may send ([`ClientEvent`]) and what the server sends
//! ([`ServerEvent`]). Both transports carry the same events: the WebSocket as JSON text frames
//! `{"event", "data", "ack"?}`, Socket.IO as events named `event` with `data` as argument.
//!
//! The types are published in the OpenAPI document's components (`ClientEvent`,
//! `ServerEvent`), so the web app's types come from them. Unknown fields are refused, and every
//! refusal names the field (`data.call_id`), as problem+json.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use telemed_domain::{AppointmentId, CallId, MessageId, Position, UserId};
use telemed_notify::NotificationView;
use telemed_problem::{ApiError, FieldError};
use telemed_projections::appointments::AppointmentView;
use telemed_projections::conversations::MessageView;
use telemed_projections::event::StoredEvent;

use crate::hub::Delivery;
use crate::topic::Topic;

/// Largest SDP relayed, in bytes.
pub const MAX_SDP: usize = 32 * 1024;
/// Largest ICE candidate relayed, in bytes (serialised).
pub const MAX_CANDIDATE: usize = 2 * 1024;
/// Largest hang-up reason, in bytes.
const MAX_REASON: usize = 64;

/// The protocol's types as OpenAPI components (`ClientEvent`, `ServerEvent` and their
/// payloads), merged into the API's document by `telemed-api`.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(ClientEvent, ServerEvent)))]
pub struct Schemas;

/// Every event a client may send, with its data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(tag = "event", content = "data", deny_unknown_fields)]
pub enum ClientEvent {
    /// Replays what the connection missed after a position token, in order, then acks
    /// `{replayed}`; live events committed meanwhile follow the ack, without those the replay
    /// covered, so from a resume on positions arrive in increasing order. Events sent live
    /// before the server read the resume are not sent again.
    #[serde(rename = "resume")]
    Resume(Resume),
    /// Follows a topic (`appointment:{id}`, `doctor:{id}:availability`, `audit`).
    #[serde(rename = "subscribe")]
    Subscribe(TopicRequest),
    /// Stops following a topic.
    #[serde(rename = "unsubscribe")]
    Unsubscribe(TopicRequest),
    /// Posts a chat message; the ack is the message.
    #[serde(rename = "chat:send")]
    ChatSend(ChatSend),
    /// Moves the sender's read marker.
    #[serde(rename = "chat:read")]
    ChatRead(ChatRead),
    /// Tells the other participant the sender is typing (never stored).
    #[serde(rename = "chat:typing")]
    ChatTyping(ForAppointment),
    /// A WebRTC offer for the call's other participant.
    #[serde(rename = "call:offer")]
    CallOffer(SdpSignal),
    /// A WebRTC answer; the callee's answer picks a ringing call up.
    #[serde(rename = "call:answer")]
    CallAnswer(SdpSignal),
    /// An ICE candidate for the call's other participant.
    #[serde(rename = "call:ice")]
    CallIce(IceSignal),
    /// Ends the call.
    #[serde(rename = "call:hangup")]
    CallHangup(Hangup),
    /// A patient checks in to the waiting room of a confirmed appointment.
    #[serde(rename = "waiting:checkin")]
    WaitingCheckin(ForAppointment),
    /// A patient leaves the waiting room.
    #[serde(rename = "waiting:leave")]
    WaitingLeave(ForAppointment),
    /// A doctor lists the patients waiting.
    #[serde(rename = "waiting:list")]
    WaitingList(Nothing),
}

/// The names of [`ClientEvent`], as clients write them.
pub const CLIENT_EVENTS: &[&str] = &[
    "resume",
    "subscribe",
    "unsubscribe",
    "chat:send",
    "chat:read",
    "chat:typing",
    "call:offer",
    "call:answer",
    "call:ice",
    "call:hangup",
    "waiting:checkin",
    "waiting:leave",
    "waiting:list",
];

impl ClientEvent {
    /// Parses event `name` with `data` (the transports' two halves of a client event); errors
    /// name the field under `data`, or `event` for an unknown name.
    pub fn parse(name: &str, data: Value) -> Result<Self, ApiError> {
        Ok(match name {
            "resume" => Self::Resume(data_of(data)?),
            "subscribe" => Self::Subscribe(data_of(data)?),
            "unsubscribe" => Self::Unsubscribe(data_of(data)?),
            "chat:send" => Self::ChatSend(data_of(data)?),
            "chat:read" => Self::ChatRead(data_of(data)?),
            "chat:typing" => Self::ChatTyping(data_of(data)?),
            "call:offer" => Self::CallOffer(signal_of(data)?),
            "call:answer" => Self::CallAnswer(signal_of(data)?),
            "call:ice" => Self::CallIce(signal_of(data)?),
            "call:hangup" => Self::CallHangup(signal_of(data)?),
            "waiting:checkin" => Self::WaitingCheckin(data_of(data)?),
            "waiting:leave" => Self::WaitingLeave(data_of(data)?),
            "waiting:list" => Self::WaitingList(data_of(match data {
                Value::Null => Value::Object(Default::default()),
                other => other,
            })?),
            other => return Err(unknown_event(other)),
        })
    }
}

/// Decodes client event data, naming the offending field.
fn data_of<T: DeserializeOwned>(data: Value) -> Result<T, ApiError> {
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

/// Decodes signaling data: an object first (so a bad `data` is named as such).
fn signal_of<T: DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    if !data.is_object() {
        return Err(ApiError::invalid("data", "must be an object"));
    }
    data_of(data)
}

/// The client sent an event name this server does not know.
pub fn unknown_event(name: &str) -> ApiError {
    ApiError::BadRequest {
        detail: format!("unknown event {name:?}"),
        errors: vec![FieldError::new(
            "event",
            format!("must be one of {}", CLIENT_EVENTS.join(", ")),
        )],
    }
}

/// Deserializes a UUID newtype from text, refusing anything else with `message`.
fn id_from_text<'de, D: Deserializer<'de>, T: std::str::FromStr>(
    deserializer: D,
    message: &'static str,
) -> Result<T, D::Error> {
    let text = String::deserialize(deserializer).map_err(|_| D::Error::custom(message))?;
    text.trim().parse().map_err(|_| D::Error::custom(message))
}

fn appointment_id<'de, D: Deserializer<'de>>(d: D) -> Result<AppointmentId, D::Error> {
    id_from_text(d, "must be an appointment id (a UUID)")
}

fn call_id<'de, D: Deserializer<'de>>(d: D) -> Result<CallId, D::Error> {
    id_from_text(d, "must be a call id (a UUID)")
}

fn message_id<'de, D: Deserializer<'de>>(d: D) -> Result<MessageId, D::Error> {
    id_from_text(d, "must be a message id (a UUID)")
}

fn position<'de, D: Deserializer<'de>>(d: D) -> Result<Position, D::Error> {
    id_from_text(d, "is not a position token")
}

fn topic<'de, D: Deserializer<'de>>(d: D) -> Result<Topic, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map_err(|e: crate::topic::UnknownTopic| D::Error::custom(e))
}

/// `resume` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The `position` of the last event the client handled.
    #[serde(deserialize_with = "position")]
    #[schema(value_type = String)]
    pub after: Position,
}

/// `subscribe` and `unsubscribe` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicRequest {
    /// `appointment:{id}`, `doctor:{id}:availability`, `user:{id}` or `audit`.
    #[serde(deserialize_with = "topic")]
    #[schema(value_type = String, example = "appointment:9b2f0c4e-1d2a-4c1e-9a55-3f1d2c3b4a5e")]
    pub topic: Topic,
}

/// `chat:send` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatSend {
    /// The appointment whose conversation this is.
    #[serde(deserialize_with = "appointment_id")]
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// 1 to 4 000 characters (checked by the command, as over REST).
    pub content: String,
    /// The client's id for the message (posting again returns the first message).
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

impl TryFrom<ChatSend> for (AppointmentId, telemed_commands::NewPost) {
    type Error = ApiError;

    /// The conversation and the parsed post; invalid fields are named under `data`.
    fn try_from(send: ChatSend) -> Result<Self, ApiError> {
        let post = telemed_commands::NewPost::parse(&send.content, send.client_msg_id.as_deref())
            .map_err(|e| ApiError::from(e).under("data"))?;
        Ok((send.appointment_id, post))
    }
}

/// `chat:read` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRead {
    /// The appointment whose conversation this is.
    #[serde(deserialize_with = "appointment_id")]
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// The last message read.
    #[serde(deserialize_with = "message_id")]
    #[schema(value_type = String, format = Uuid)]
    pub up_to: MessageId,
}

/// Data naming one appointment (`chat:typing`, `waiting:checkin`, `waiting:leave`).
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForAppointment {
    /// The appointment.
    #[serde(deserialize_with = "appointment_id")]
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
}

/// No data (`waiting:list`): `{}` or none.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

/// A session description (RFC 8866), non-empty, at most [`MAX_SDP`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String)]
pub struct Sdp(String);

impl<'de> Deserialize<'de> for Sdp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .ok()
            .filter(|sdp| !sdp.is_empty())
            .ok_or_else(|| D::Error::custom("must be a non-empty SDP string"))?;
        if Value::String(text.clone()).to_string().len() > MAX_SDP {
            return Err(D::Error::custom(format!("must be at most {MAX_SDP} bytes")));
        }
        Ok(Self(text))
    }
}

/// An ICE candidate: the browser's `RTCIceCandidateInit` object, or its candidate line; at most
/// [`MAX_CANDIDATE`] bytes serialised.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Candidate(Value);

impl<'de> Deserialize<'de> for Candidate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        if !(value.is_object() || value.is_string()) {
            return Err(D::Error::custom(
                "must be an ICE candidate (object or string)",
            ));
        }
        if value.to_string().len() > MAX_CANDIDATE {
            return Err(D::Error::custom(format!(
                "must be at most {MAX_CANDIDATE} bytes"
            )));
        }
        Ok(Self(value))
    }
}

/// `call:offer` and `call:answer` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SdpSignal {
    /// The call.
    #[serde(deserialize_with = "call_id")]
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The session description (non-empty, at most 32 KiB).
    #[schema(min_length = 1, max_length = 32768)]
    pub sdp: Sdp,
}

impl SdpSignal {
    /// The offer or answer as the other participant gets it, from `from`.
    pub fn relayed(self, from: UserId) -> Relayed<SdpPayload> {
        let payload = SdpPayload { sdp: self.sdp };
        Relayed {
            call_id: self.call_id,
            from,
            payload,
        }
    }
}

/// `call:ice` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IceSignal {
    /// The call.
    #[serde(deserialize_with = "call_id")]
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// The candidate.
    pub candidate: Candidate,
}

impl IceSignal {
    /// The candidate as the other participant gets it, from `from`.
    pub fn relayed(self, from: UserId) -> Relayed<CandidatePayload> {
        let payload = CandidatePayload {
            candidate: self.candidate,
        };
        Relayed {
            call_id: self.call_id,
            from,
            payload,
        }
    }
}

/// `call:hangup` data.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hangup {
    /// The call.
    #[serde(deserialize_with = "call_id")]
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// Why (an end reason such as `user_hangup`; default `user_hangup`).
    #[serde(default, deserialize_with = "reason")]
    #[schema(max_length = 64)]
    pub reason: Option<String>,
}

fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(text) if text.len() <= MAX_REASON => Ok(Some(text)),
        Value::String(_) => Err(D::Error::custom(format!(
            "must be at most {MAX_REASON} bytes"
        ))),
        _ => Err(D::Error::custom("must be a string")),
    }
}

/// Every event the server sends, with its data. The data of an event derived from a stored
/// event carries its `position` (the resume token), but a `notification`'s, which shares the
/// position of the `appointment:updated` or `chat:message` it comes with.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "event", content = "data")]
pub enum ServerEvent {
    /// An appointment changed.
    #[serde(rename = "appointment:updated")]
    AppointmentUpdated(AppointmentUpdated),
    /// A doctor's availability changed on a date.
    #[serde(rename = "availability:updated")]
    AvailabilityUpdated(AvailabilityUpdated),
    /// A chat message was posted (the message, with `position`).
    #[serde(rename = "chat:message")]
    ChatMessage(MessageView),
    /// A participant moved their read marker.
    #[serde(rename = "chat:read")]
    ChatRead(ReadMoved),
    /// An in-app notification.
    #[serde(rename = "notification")]
    Notification(Notice),
    /// A stored event, for auditors (`audit` topic).
    #[serde(rename = "audit:event")]
    AuditEvent(StoredEvent),
    /// A call rings.
    #[serde(rename = "call:ringing")]
    CallRinging(CallRinging),
    /// A call was answered.
    #[serde(rename = "call:answered")]
    CallAnswered(CallAnswered),
    /// A call ended.
    #[serde(rename = "call:ended")]
    CallEnded(CallEnded),
    /// The other participant is typing.
    #[serde(rename = "chat:typing")]
    ChatTyping(Typing),
    /// A relayed offer.
    #[serde(rename = "call:offer")]
    CallOffer(Relayed<SdpPayload>),
    /// A relayed answer.
    #[serde(rename = "call:answer")]
    CallAnswer(Relayed<SdpPayload>),
    /// A relayed ICE candidate.
    #[serde(rename = "call:ice")]
    CallIce(Relayed<CandidatePayload>),
    /// A patient is waiting (to their doctor).
    #[serde(rename = "waiting:joined")]
    WaitingJoined(Object),
    /// A patient stopped waiting: `{appointment_id, patient_id, reason}`.
    #[serde(rename = "waiting:left")]
    WaitingLeft(Object),
    /// The doctor's presence changed (to waiting patients): `{appointment_id, doctor_status}`.
    #[serde(rename = "waiting:doctor")]
    WaitingDoctor(Object),
    /// The answer to a client event that asked for one (WebSocket; Socket.IO uses its acks):
    /// `{ack, data}` or `{ack, error}`.
    #[serde(rename = "ack")]
    Ack(Object),
    /// A refused frame, or why the connection ends: a problem document.
    #[serde(rename = "error")]
    Error(Object),
}

impl ServerEvent {
    /// The event's name, as the `event` of its frame.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AppointmentUpdated(_) => "appointment:updated",
            Self::AvailabilityUpdated(_) => "availability:updated",
            Self::ChatMessage(_) => "chat:message",
            Self::ChatRead(_) => "chat:read",
            Self::Notification(_) => "notification",
            Self::AuditEvent(_) => "audit:event",
            Self::CallRinging(_) => "call:ringing",
            Self::CallAnswered(_) => "call:answered",
            Self::CallEnded(_) => "call:ended",
            Self::ChatTyping(_) => "chat:typing",
            Self::CallOffer(_) => "call:offer",
            Self::CallAnswer(_) => "call:answer",
            Self::CallIce(_) => "call:ice",
            Self::WaitingJoined(_) => "waiting:joined",
            Self::WaitingLeft(_) => "waiting:left",
            Self::WaitingDoctor(_) => "waiting:doctor",
            Self::Ack(_) => "ack",
            Self::Error(_) => "error",
        }
    }

    /// The event's `data`, as JSON.
    pub fn data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut frame)) => frame.remove("data").unwrap_or_default(),
            _ => Value::Null,
        }
    }

    /// A delivery of this event, derived from the stored event at `position`, to `topics`.
    pub fn stored(&self, position: Position, topics: Vec<Topic>) -> Delivery {
        Delivery::new(self.name(), self.data(), position, topics)
    }
}

/// `appointment:updated` data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppointmentUpdated {
    /// The appointment as `GET /appointments/{id}` answers now.
    pub appointment: AppointmentView,
    /// The stored event's type, e.g. `AppointmentConfirmed`.
    pub event_type: String,
    /// The resume token.
    #[schema(value_type = String)]
    pub position: Position,
}

/// `availability:updated` data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AvailabilityUpdated {
    /// The doctor.
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: UserId,
    /// The date whose availability changed, in the doctor's time zone.
    #[schema(value_type = String, format = Date)]
    pub date: String,
    /// The resume token.
    #[schema(value_type = String)]
    pub position: Position,
}

/// `chat:read` data (server to client).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReadMoved {
    /// The conversation's appointment.
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// Whose read marker moved.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    /// The last message they have read.
    #[schema(value_type = String, format = Uuid)]
    pub up_to: MessageId,
    /// The resume token.
    #[schema(value_type = String)]
    pub position: Position,
}

/// `notification` data: the inbox entry without `read`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notice {
    /// Id (the same as in the inbox).
    #[schema(format = Uuid)]
    pub id: uuid::Uuid,
    /// What happened (as in the inbox).
    pub kind: String,
    /// Short title.
    pub title: String,
    /// Text, with times in the recipient's time zone.
    pub body: String,
    /// The appointment it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub appointment_id: Option<AppointmentId>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: time::OffsetDateTime,
}

impl From<NotificationView> for Notice {
    fn from(view: NotificationView) -> Self {
        let NotificationView {
            id,
            kind,
            title,
            body,
            appointment_id,
            at,
            read: _,
        } = view;
        Self {
            id,
            kind,
            title,
            body,
            appointment_id,
            at,
        }
    }
}

/// `call:ringing` data (to the callee).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallRinging {
    /// The call.
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// Its appointment.
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// The caller.
    #[schema(value_type = String, format = Uuid)]
    pub from: UserId,
    /// The resume token.
    #[schema(value_type = String)]
    pub position: Position,
}

/// `call:answered` data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallAnswered {
    /// The call.
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// Who answered.
    #[schema(value_type = String, format = Uuid)]
    pub by: UserId,
    /// The resume token.
    #[schema(value_type = String)]
    pub position: Position,
}

/// `call:ended` data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallEnded {
    /// The call.
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// Why: `invite_timeout`, `rejected`, or the hang-up's reason (e.g. `user_hangup`).
    pub reason: String,
    /// The resume token.
    #[schema(value_type = String)]
    pub position: Position,
}

/// Any JSON object (documented in the contract).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct Object(pub serde_json::Map<String, Value>);

/// `chat:typing` data.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Typing {
    /// The conversation's appointment.
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// Who is typing.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
}

/// Signaling relayed from the call's other participant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Relayed<P> {
    /// The call.
    #[schema(value_type = String, format = Uuid)]
    pub call_id: CallId,
    /// Who sent it.
    #[schema(value_type = String, format = Uuid)]
    pub from: UserId,
    /// The payload.
    #[serde(flatten)]
    pub payload: P,
}

/// An SDP payload.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SdpPayload {
    /// The session description (non-empty, at most 32 KiB).
    #[schema(min_length = 1, max_length = 32768)]
    pub sdp: Sdp,
}

/// An ICE candidate payload.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CandidatePayload {
    /// The candidate.
    pub candidate: Candidate,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(error: ApiError) -> String {
        error.problem().errors[0].field.clone().unwrap_or_default()
    }

    #[test]
    fn the_tagged_form_and_the_transports_form_agree() {
        let id = CallId::new();
        let data = json!({ "call_id": id.to_string(), "sdp": "v=0" });
        let tagged: ClientEvent =
            serde_json::from_value(json!({ "event": "call:offer", "data": data })).unwrap();
        assert_eq!(ClientEvent::parse("call:offer", data).unwrap(), tagged);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let id = CallId::new().to_string();
        let error = ClientEvent::parse(
            "call:ice",
            json!({ "call_id": id, "candidate": "c", "extra": 1 }),
        )
        .unwrap_err();
        assert_eq!(error.status(), 422);
        assert!(error.problem().detail.contains("extra"), "{error:?}");
        let tagged = serde_json::from_value::<ClientEvent>(
            json!({ "event": "waiting:list", "data": {}, "more": 1 }),
        );
        assert!(tagged.is_err());
    }

    #[test]
    fn each_refusal_names_its_field() {
        let call = CallId::new().to_string();
        let cases = [
            (
                "call:offer",
                json!({ "call_id": "x", "sdp": "v=0" }),
                "data.call_id",
            ),
            (
                "call:offer",
                json!({ "call_id": call, "sdp": 42 }),
                "data.sdp",
            ),
            (
                "call:offer",
                json!({ "call_id": call, "sdp": "x".repeat(40_000) }),
                "data.sdp",
            ),
            (
                "call:ice",
                json!({ "call_id": call, "candidate": 1 }),
                "data.candidate",
            ),
            (
                "call:hangup",
                json!({ "call_id": call, "reason": 1 }),
                "data.reason",
            ),
            ("call:hangup", json!([]), "data"),
            ("resume", json!({ "after": "nope" }), "data.after"),
            ("subscribe", json!({ "topic": "nope" }), "data.topic"),
            (
                "chat:read",
                json!({ "appointment_id": "x", "up_to": "y" }),
                "data.appointment_id",
            ),
            ("waiting:list", json!({ "x": 1 }), "data.x"),
        ];
        for (event, data, expected) in cases {
            let error = ClientEvent::parse(event, data).unwrap_err();
            assert_eq!(field(error), expected, "{event}");
        }
        assert_eq!(
            field(ClientEvent::parse("nope", Value::Null).unwrap_err()),
            "event"
        );
    }

    #[test]
    fn each_server_event_is_named_as_it_is_serialised() {
        let object = Object(serde_json::Map::new());
        let typing = Typing {
            appointment_id: AppointmentId::new(),
            user_id: UserId::new(),
        };
        let ended = CallEnded {
            call_id: CallId::new(),
            reason: "rejected".into(),
            position: Position::new(1, 2),
        };
        let events = [
            ServerEvent::ChatTyping(typing),
            ServerEvent::CallEnded(ended),
            ServerEvent::WaitingJoined(object.clone()),
            ServerEvent::WaitingLeft(object.clone()),
            ServerEvent::WaitingDoctor(object.clone()),
            ServerEvent::Ack(object.clone()),
            ServerEvent::Error(object),
        ];
        for event in events {
            let frame = serde_json::to_value(&event).unwrap();
            assert_eq!(frame["event"], event.name());
            assert_eq!(frame["data"], event.data());
        }
    }

    #[test]
    fn waiting_list_takes_no_data() {
        assert_eq!(
            ClientEvent::parse("waiting:list", Value::Null).unwrap(),
            ClientEvent::WaitingList(Nothing {})
        );
    }
}
