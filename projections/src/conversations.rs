//! The `conversations` projection: chat messages (in commit-safe order) and read markers, and
//! the history pages served from them.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::conversation::{
    MESSAGE_AGGREGATE_TYPE, MessageEvent, READ_AGGREGATE_TYPE, ReadEvent,
};
use telemed_domain::{AppointmentId, MessageId, Position, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::runner::{Projection, ProjectionError};

/// Builds `chat_messages` and `chat_reads`.
pub struct ConversationsProjection;

/// A chat message as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    /// Message id.
    #[schema(value_type = String, format = Uuid)]
    pub id: MessageId,
    /// The appointment whose conversation it is.
    #[schema(value_type = String, format = Uuid)]
    pub appointment_id: AppointmentId,
    /// Its sender (the doctor or the patient).
    #[schema(value_type = String, format = Uuid)]
    pub sender_id: UserId,
    /// The text, exactly as sent (plain text: render it as text, never as HTML).
    pub content: String,
    /// When it was posted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: OffsetDateTime,
    /// The sender's idempotency key, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// Position of its event (a resume token).
    pub position: String,
}

impl MessageView {
    /// The view of a `MessagePosted` event at `position`.
    pub fn from_event(id: MessageId, event: &MessageEvent, position: Position) -> Self {
        let MessageEvent::MessagePosted {
            appointment_id,
            sender_id,
            content,
            client_msg_id,
            sent_at,
            ..
        } = event;
        Self {
            id,
            appointment_id: *appointment_id,
            sender_id: *sender_id,
            content: content.as_str().to_string(),
            sent_at: *sent_at,
            client_msg_id: client_msg_id.clone(),
            position: position.to_string(),
        }
    }
}

const INSERT_MESSAGE: &str = "INSERT INTO chat_messages
    (message_id, appointment_id, sender_id, content, client_msg_id, sent_at, xid, gpos, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (message_id) DO NOTHING";

const UPSERT_READ: &str = "INSERT INTO chat_reads (appointment_id, user_id, up_to, read_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (appointment_id, user_id) DO UPDATE SET up_to = $3, read_at = $4";

#[async_trait]
impl Projection for ConversationsProjection {
    fn name(&self) -> &'static str {
        "conversations"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["chat_messages", "chat_reads"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            MESSAGE_AGGREGATE_TYPE => {
                let Ok(id) = event.aggregate_id.parse::<MessageId>() else {
                    return Ok(());
                };
                let decoded: MessageEvent = event.decode()?;
                let view = MessageView::from_event(id, &decoded, event.position);
                sqlx::query(INSERT_MESSAGE)
                    .bind(view.id.as_uuid())
                    .bind(view.appointment_id.as_uuid())
                    .bind(view.sender_id.as_uuid())
                    .bind(&view.content)
                    .bind(&view.client_msg_id)
                    .bind(view.sent_at)
                    .bind(event.position.transaction_id as i64)
                    .bind(event.position.global_position)
                    .bind(&view.position)
                    .execute(&mut *tx)
                    .await?;
            }
            READ_AGGREGATE_TYPE => {
                let decoded: ReadEvent = event.decode()?;
                let ReadEvent::MessagesRead {
                    appointment_id,
                    user_id,
                    up_to,
                    at,
                    ..
                } = decoded;
                sqlx::query(UPSERT_READ)
                    .bind(appointment_id.as_uuid())
                    .bind(user_id.as_uuid())
                    .bind(up_to.as_uuid())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Messages in one multi-row INSERT, read markers in one upsert (the last of each
    /// reader's markers in the batch, as applying them in turn would leave).
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut messages = Messages::default();
        let mut reads: Vec<(Uuid, Uuid, Uuid, OffsetDateTime)> = Vec::new();
        for event in events {
            match event.aggregate_type.as_str() {
                MESSAGE_AGGREGATE_TYPE => {
                    let Ok(id) = event.aggregate_id.parse::<MessageId>() else {
                        continue;
                    };
                    let decoded: MessageEvent = event.decode()?;
                    messages.push(MessageView::from_event(id, &decoded, event.position), event);
                }
                READ_AGGREGATE_TYPE => {
                    let ReadEvent::MessagesRead {
                        appointment_id,
                        user_id,
                        up_to,
                        at,
                        ..
                    } = event.decode()?;
                    let key = (appointment_id.as_uuid(), user_id.as_uuid());
                    reads.retain(|(a, u, ..)| (*a, *u) != key);
                    reads.push((key.0, key.1, up_to.as_uuid(), at));
                }
                _ => {}
            }
        }
        messages.insert(tx).await?;
        if !reads.is_empty() {
            sqlx::query(UPSERT_READS)
                .bind(reads.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(reads.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(reads.iter().map(|r| r.2).collect::<Vec<_>>())
                .bind(reads.iter().map(|r| r.3).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

const INSERT_MESSAGES: &str = "INSERT INTO chat_messages
    (message_id, appointment_id, sender_id, content, client_msg_id, sent_at, xid, gpos, position)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::bigint[], $8::bigint[], $9::text[])
ON CONFLICT (message_id) DO NOTHING";

const UPSERT_READS: &str = "INSERT INTO chat_reads (appointment_id, user_id, up_to, read_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[])
ON CONFLICT (appointment_id, user_id) DO UPDATE SET up_to = EXCLUDED.up_to,
                                                    read_at = EXCLUDED.read_at";

/// Message rows of a batch, column by column.
#[derive(Default)]
struct Messages {
    ids: Vec<Uuid>,
    appointments: Vec<Uuid>,
    senders: Vec<Uuid>,
    contents: Vec<String>,
    client_ids: Vec<Option<String>>,
    sent: Vec<OffsetDateTime>,
    xids: Vec<i64>,
    gpos: Vec<i64>,
    positions: Vec<String>,
}

impl Messages {
    fn push(&mut self, view: MessageView, event: &StoredEvent) {
        self.ids.push(view.id.as_uuid());
        self.appointments.push(view.appointment_id.as_uuid());
        self.senders.push(view.sender_id.as_uuid());
        self.contents.push(view.content);
        self.client_ids.push(view.client_msg_id);
        self.sent.push(view.sent_at);
        self.xids.push(event.position.transaction_id as i64);
        self.gpos.push(event.position.global_position);
        self.positions.push(view.position);
    }

    async fn insert(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(INSERT_MESSAGES)
            .bind(self.ids)
            .bind(self.appointments)
            .bind(self.senders)
            .bind(self.contents)
            .bind(self.client_ids)
            .bind(self.sent)
            .bind(self.xids)
            .bind(self.gpos)
            .bind(self.positions)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

const COLUMNS: &str =
    "message_id, appointment_id, sender_id, content, client_msg_id, sent_at, xid, gpos, position";

fn view_from_row(row: &PgRow) -> Result<MessageView, sqlx::Error> {
    Ok(MessageView {
        id: MessageId::from(row.try_get::<Uuid, _>("message_id")?),
        appointment_id: AppointmentId::from(row.try_get::<Uuid, _>("appointment_id")?),
        sender_id: UserId::from(row.try_get::<Uuid, _>("sender_id")?),
        content: row.try_get("content")?,
        sent_at: row.try_get("sent_at")?,
        client_msg_id: row.try_get("client_msg_id")?,
        position: row.try_get("position")?,
    })
}

/// Message `id`, with the position of its event.
pub async fn message(
    db: impl PgExecutor<'_>,
    id: MessageId,
) -> Result<Option<(MessageView, Position)>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chat_messages WHERE message_id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(db)
    .await?
    .map(|row| {
        let position = Position::new(row.try_get::<i64, _>("xid")? as u64, row.try_get("gpos")?);
        Ok((view_from_row(&row)?, position))
    })
    .transpose()
}

/// A page of history, oldest first.
#[derive(Debug)]
pub struct Page {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// Whether older messages exist.
    pub more: bool,
}

/// Up to `limit` messages of `appointment` older than `before` (the newest ones when `None`),
/// oldest first.
pub async fn page(
    db: impl PgExecutor<'_>,
    appointment: AppointmentId,
    before: Option<Position>,
    limit: i64,
) -> Result<Page, sqlx::Error> {
    let before = before.unwrap_or(Position::new(i64::MAX as u64, i64::MAX));
    let mut messages = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chat_messages
          WHERE appointment_id = $1 AND (xid, gpos) < ($2, $3)
          ORDER BY xid DESC, gpos DESC
          LIMIT $4"
    ))
    .bind(appointment.as_uuid())
    .bind(before.transaction_id as i64)
    .bind(before.global_position)
    .bind(limit + 1)
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    let more = messages.len() as i64 > limit;
    messages.truncate(limit as usize);
    messages.reverse();
    Ok(Page { messages, more })
}

/// Up to `limit` messages of `appointment`'s conversation after `after` (from the first),
/// oldest first: a whole conversation read forwards, a page at a time.
pub async fn page_after(
    db: impl PgExecutor<'_>,
    appointment: AppointmentId,
    after: Option<Position>,
    limit: i64,
) -> Result<Vec<MessageView>, sqlx::Error> {
    let after = after.unwrap_or(Position::START);
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chat_messages
          WHERE appointment_id = $1 AND (xid, gpos) > ($2, $3)
          ORDER BY xid, gpos
          LIMIT $4"
    ))
    .bind(appointment.as_uuid())
    .bind(after.transaction_id as i64)
    .bind(after.global_position)
    .bind(limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(view_from_row)
    .collect()
}

/// How many messages `appointment`'s conversation holds.
pub async fn count(
    db: impl PgExecutor<'_>,
    appointment: AppointmentId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE appointment_id = $1")
        .bind(appointment.as_uuid())
        .fetch_one(db)
        .await
}

/// How far a participant has read a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadMarker {
    /// The reader (the doctor or the patient).
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    /// The last message they have read.
    #[schema(value_type = String, format = Uuid)]
    pub up_to: MessageId,
    /// When they read it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// Every participant's read marker in `appointment`'s conversation (none before a first read),
/// ordered by reader.
pub async fn read_markers(
    db: impl PgExecutor<'_>,
    appointment: AppointmentId,
) -> Result<Vec<ReadMarker>, sqlx::Error> {
    sqlx::query(
        "SELECT user_id, up_to, read_at FROM chat_reads WHERE appointment_id = $1 ORDER BY user_id",
    )
    .bind(appointment.as_uuid())
    .fetch_all(db)
    .await?
    .iter()
    .map(|row| {
        Ok(ReadMarker {
            user_id: UserId::from(row.try_get::<Uuid, _>("user_id")?),
            up_to: MessageId::from(row.try_get::<Uuid, _>("up_to")?),
            at: row.try_get("read_at")?,
        })
    })
    .collect()
}

/// Messages of `appointment` that `reader` has not read: sent by someone else after the
/// message `reader`'s marker points at (all of them without a marker). The bound is an index
/// range on `chat_messages_page`.
const UNREAD_IN_ONE: &str = "SELECT count(*) FROM chat_messages m
  LEFT JOIN chat_reads r ON r.appointment_id = $1 AND r.user_id = $2
  LEFT JOIN chat_messages rm ON rm.message_id = r.up_to
 WHERE m.appointment_id = $1 AND m.sender_id <> $2
   AND (m.xid, m.gpos) > (COALESCE(rm.xid, -1), COALESCE(rm.gpos, -1))";

/// The same count for every appointment `$1` takes part in, keeping those above zero.
const UNREAD_IN_ALL: &str = "SELECT a.appointment_id, unread.count
  FROM appointments a
  LEFT JOIN chat_reads r ON r.appointment_id = a.appointment_id AND r.user_id = $1
  LEFT JOIN chat_messages rm ON rm.message_id = r.up_to
 CROSS JOIN LATERAL (
       SELECT count(*) AS count FROM chat_messages m
        WHERE m.appointment_id = a.appointment_id AND m.sender_id <> $1
          AND (m.xid, m.gpos) > (COALESCE(rm.xid, -1), COALESCE(rm.gpos, -1))) unread
 WHERE (a.doctor_id = $1 OR a.patient_id = $1) AND unread.count > 0
 ORDER BY a.appointment_id";

/// How many messages of `appointment` `reader` has not read (see [`UNREAD_IN_ONE`]).
pub async fn unread_count(
    db: impl PgExecutor<'_>,
    appointment: AppointmentId,
    reader: UserId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(UNREAD_IN_ONE)
        .bind(appointment.as_uuid())
        .bind(reader.as_uuid())
        .fetch_one(db)
        .await
}

/// Every conversation of `reader` that has unread messages, with their count, ordered by
/// appointment id: one query, whatever the number of appointments.
pub async fn unread_counts(
    db: impl PgExecutor<'_>,
    reader: UserId,
) -> Result<Vec<(AppointmentId, i64)>, sqlx::Error> {
    sqlx::query(UNREAD_IN_ALL)
        .bind(reader.as_uuid())
        .fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok((
                AppointmentId::from(row.try_get::<Uuid, _>("appointment_id")?),
                row.try_get("count")?,
            ))
        })
        .collect()
}
