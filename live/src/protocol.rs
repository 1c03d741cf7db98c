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
use telemed_problem::{ApiError, FieldError};

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
    /// Replays what the connection missed after a position token; the ack is `{replayed}`.
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

/// Every event the server sends, with its data (the `data` of stored events carries their
/// `position`, the resume token).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "event", content = "data")]
pub enum ServerEvent {
    /// An appointment changed: `{appointment, event_type, position}`.
    #[serde(rename = "appointment:updated")]
    AppointmentUpdated(Stored),
    /// A doctor's availability changed on a date: `{doctor_id, date, position}`.
    #[serde(rename = "availability:updated")]
    AvailabilityUpdated(Stored),
    /// A chat message was posted (the message, with `position`).
    #[serde(rename = "chat:message")]
    ChatMessage(Stored),
    /// A participant moved their read marker: `{appointment_id, user_id, up_to, position}`.
    #[serde(rename = "chat:read")]
    ChatRead(Stored),
    /// An in-app notification: `{id, kind, title, body, appointment_id?, at, position}`.
    #[serde(rename = "notification")]
    Notification(Stored),
    /// A stored event, for auditors (`audit` topic).
    #[serde(rename = "audit:event")]
    AuditEvent(Stored),
    /// A call rings: `{call_id, appointment_id, from, position}`.
    #[serde(rename = "call:ringing")]
    CallRinging(Stored),
    /// A call was answered: `{call_id, by, position}`.
    #[serde(rename = "call:answered")]
    CallAnswered(Stored),
    /// A call ended: `{call_id, reason, position}`.
    #[serde(rename = "call:ended")]
    CallEnded(Stored),
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

/// The data of an event derived from the store: its fields and its `position` token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stored {
    /// The resume token: pass it as `resume {after}`.
    #[schema(value_type = String)]
    pub position: Position,
    /// The event's own fields (see the contract's "Live events").
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
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
    fn waiting_list_takes_no_data() {
        assert_eq!(
            ClientEvent::parse("waiting:list", Value::Null).unwrap(),
            ClientEvent::WaitingList(Nothing {})
        );
    }
}
