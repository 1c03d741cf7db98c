//! The `notifications` projection: every user's in-app notifications, and the outbox of
//! deliveries (e-mail, push, SMS) they and the appointment reminders cause.
//!
//! In-app notifications are a plain read model (rebuilt like any other; their ids derive from
//! the event's position and recipient, so a rebuild gives the same ids and keeps their read
//! state, which lives apart in `notification_reads`). The outbox (`notification_deliveries`) is
//! written in the same transaction but never emptied: it records what left the server. Every
//! write to it is keyed by `(dedupe_key, channel)`, so replaying an event finds its rows and
//! changes nothing — each change and each reminder is sent at most once per channel.
//!
//! What causes what:
//!
//! | event | in-app notification to | deliveries |
//! |---|---|---|
//! | requested | the doctor | e-mail, push |
//! | confirmed, rescheduled, cancelled | the other party | e-mail, push |
//! | confirmed | — | reminders 24 h and 1 h before, both parties: e-mail, push, SMS |
//! | rescheduled | — | pending reminders move with the appointment |
//! | cancelled, completed, no-show | — | pending reminders are cancelled |
//! | message posted | the other party | e-mail, push, [`UNREAD_DELAY`] later, unless read by then |
//! | waitlist offer made (`waitlist_offer`) | the patient offered the time | e-mail, push |

mod batch;

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::appointment::{AGGREGATE_TYPE as APPOINTMENT, AppointmentEvent, Party};
use telemed_domain::calendar::Interval;
use telemed_domain::conversation::{MESSAGE_AGGREGATE_TYPE, MessageEvent};
use telemed_domain::waitlist::{AGGREGATE_TYPE as WAITLIST, WaitlistEvent};
use telemed_domain::{AppointmentId, UserId};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::runner::{Projection, ProjectionError};
use batch::{Batch, Change};

/// Builds `notifications` and `notification_appointments`, and fills the outbox.
pub struct NotificationsProjection;

/// How long a new message waits unread before it is sent by e-mail or push.
pub const UNREAD_DELAY: Duration = Duration::minutes(5);

/// Changes older than this when projected (a replay after an upgrade or a restore) notify in
/// the app only: an e-mail about last week's confirmation helps nobody.
pub const STALE_AFTER: Duration = Duration::hours(1);

/// The reminders sent before each confirmed appointment: kind and lead time.
pub const REMINDERS: [(&str, Duration); 2] = [
    ("reminder_24h", Duration::hours(24)),
    ("reminder_1h", Duration::hours(1)),
];

/// Channels for changes and messages (SMS is for reminders only: it costs the operator money
/// and its body cannot say anything useful without health information).
pub(crate) const CHANGE_CHANNELS: [&str; 2] = ["email", "push"];
/// Channels for reminders.
pub(crate) const REMINDER_CHANNELS: [&str; 3] = ["email", "push", "sms"];

/// Namespace of notification and delivery ids (UUID v5).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6e6f_7469_6669_6361_7469_6f6e_7330_0001);

/// The id of the notification of the event at `position` for `user`.
pub fn notification_id(position: &str, user: UserId) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, format!("{position}/{user}").as_bytes())
}

pub(crate) fn delivery_id(dedupe_key: &str, channel: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, format!("{dedupe_key}#{channel}").as_bytes())
}

/// The dedupe key of a reminder.
pub fn reminder_key(appointment: Uuid, user: Uuid, kind: &str) -> String {
    format!("appointment:{appointment}:{user}:{kind}")
}

const UPSERT_APPOINTMENT: &str = "INSERT INTO notification_appointments
    (appointment_id, doctor_id, patient_id, start_at, end_at, status)
    VALUES ($1, $2, $3, $4, $5, 'pending')
    ON CONFLICT (appointment_id) DO NOTHING";

const INSERT_NOTIFICATION: &str = "INSERT INTO notifications
    (notification_id, user_id, kind, appointment_id, actor_id, start_at, previous_start_at,
     at, gpos, position)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (notification_id) DO NOTHING";

/// Schedules a delivery. A reminder that exists already (an appointment confirmed again after
/// a reschedule) moves if it is still pending; anything else is left as it is.
const SCHEDULE: &str = "INSERT INTO notification_deliveries
    (delivery_id, dedupe_key, channel, user_id, kind, appointment_id, notification_id,
     due_at, state, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled', $8)
    ON CONFLICT (dedupe_key, channel) DO UPDATE
       SET due_at = EXCLUDED.due_at, next_attempt_at = EXCLUDED.due_at, updated_at = now()
     WHERE notification_deliveries.state IN ('scheduled', 'retrying')
       AND notification_deliveries.kind LIKE 'reminder%'
       AND notification_deliveries.due_at <> EXCLUDED.due_at";

/// Moves an appointment's pending reminders with it (`$2`: new start, `$3`: the instant of
/// the reschedule; a reminder whose new time has passed already is cancelled).
const REPLAN_REMINDERS: &str = "UPDATE notification_deliveries
    SET due_at = $2 - lead, next_attempt_at = $2 - lead,
        state = CASE WHEN $2 - lead <= $3 THEN 'cancelled' ELSE state END,
        last_error = CASE WHEN $2 - lead <= $3
                          THEN 'the appointment was rescheduled to less than this reminder''s lead time away'
                          ELSE last_error END,
        updated_at = now()
    FROM (VALUES ('reminder_24h', interval '24 hours'), ('reminder_1h', interval '1 hour'))
         AS leads(kind, lead)
    WHERE notification_deliveries.appointment_id = $1
      AND notification_deliveries.kind = leads.kind
      AND notification_deliveries.state IN ('scheduled', 'retrying')";

/// Cancels an appointment's pending reminders (`$2`: why).
const CANCEL_REMINDERS: &str = "UPDATE notification_deliveries
    SET state = 'cancelled', last_error = $2, updated_at = now()
    WHERE appointment_id = $1 AND kind LIKE 'reminder%' AND state IN ('scheduled', 'retrying')";

#[async_trait]
impl Projection for NotificationsProjection {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["notifications", "notification_appointments"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            APPOINTMENT => {
                let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
                    return Ok(());
                };
                let decoded: AppointmentEvent = event.decode()?;
                apply_appointment(tx, event, id, decoded).await
            }
            MESSAGE_AGGREGATE_TYPE => {
                let decoded: MessageEvent = event.decode()?;
                apply_message(tx, event, decoded).await
            }
            WAITLIST => apply_waitlist(tx, event).await,
            _ => Ok(()),
        }
    }

    /// Set-based: see [`batch`].
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut changes = Vec::new();
        let mut offers = Vec::new();
        for event in events {
            match event.aggregate_type.as_str() {
                // Rare, and touching no appointment row: after the batch, one at a time.
                WAITLIST => offers.push(event),
                APPOINTMENT => {
                    let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
                        continue;
                    };
                    changes.push(Change::Appointment(event, id, event.decode()?));
                }
                MESSAGE_AGGREGATE_TYPE => changes.push(Change::Message(event, event.decode()?)),
                _ => {}
            }
        }
        if !changes.is_empty() {
            let mut batch = Batch::load(tx, &changes).await?;
            for change in changes {
                batch.fold(change);
            }
            batch.store(tx).await?;
        }
        for event in offers {
            apply_waitlist(tx, event).await?;
        }
        Ok(())
    }
}

/// A waitlist offer: the patient is told (in the app, by e-mail and push) that time is held
/// for them. The notification names the appointment that accepting books.
async fn apply_waitlist(tx: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
    if let WaitlistEvent::OfferMade {
        offer,
        patient_id,
        at,
    } = event.decode()?
    {
        let new = New {
            user: patient_id.as_uuid(),
            kind: "waitlist_offer",
            appointment: offer.appointment_id().as_uuid(),
            actor: offer.day.doctor.as_uuid(),
            start: Some(offer.interval.start),
            previous_start: None,
            at,
        };
        notify(tx, event, new, at).await?;
    }
    Ok(())
}

/// The appointment's two parties and its current time, as this projection knows them.
struct Parties {
    doctor: Uuid,
    patient: Uuid,
    start: OffsetDateTime,
}

impl Parties {
    fn of(&self, party: Party) -> Uuid {
        match party {
            Party::Doctor => self.doctor,
            Party::Patient => self.patient,
        }
    }

    /// The notification, to the other party, of the change `kind` that `by` made at `at` to
    /// appointment `id` (at its current time).
    fn change<'a>(&self, kind: &'a str, id: Uuid, by: Party, at: OffsetDateTime) -> New<'a> {
        New {
            user: self.of(by.other()),
            kind,
            appointment: id,
            actor: self.of(by),
            start: Some(self.start),
            previous_start: None,
            at,
        }
    }
}

async fn parties(tx: &mut PgConnection, id: Uuid) -> Result<Option<Parties>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT doctor_id, patient_id, start_at FROM notification_appointments
          WHERE appointment_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|row| {
        Ok(Parties {
            doctor: row.try_get("doctor_id")?,
            patient: row.try_get("patient_id")?,
            start: row.try_get("start_at")?,
        })
    })
    .transpose()
}

/// One in-app notification about to be recorded.
struct New<'a> {
    user: Uuid,
    kind: &'a str,
    appointment: Uuid,
    actor: Uuid,
    start: Option<OffsetDateTime>,
    previous_start: Option<OffsetDateTime>,
    at: OffsetDateTime,
}

/// Records `new` for the event, and schedules its deliveries on `channels` at `due` unless
/// the event is stale.
async fn notify(
    tx: &mut PgConnection,
    event: &StoredEvent,
    new: New<'_>,
    due: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    let position = event.position.to_string();
    let id = notification_id(&position, UserId::from(new.user));
    sqlx::query(INSERT_NOTIFICATION)
        .bind(id)
        .bind(new.user)
        .bind(new.kind)
        .bind(new.appointment)
        .bind(new.actor)
        .bind(new.start)
        .bind(new.previous_start)
        .bind(new.at)
        .bind(event.position.global_position)
        .bind(&position)
        .execute(&mut *tx)
        .await?;
    if event.recorded_at < OffsetDateTime::now_utc() - STALE_AFTER {
        return Ok(());
    }
    let key = format!("notification:{id}");
    for channel in CHANGE_CHANNELS {
        schedule(
            tx,
            &key,
            channel,
            new.user,
            new.kind,
            new.appointment,
            Some(id),
            due,
        )
        .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn schedule(
    tx: &mut PgConnection,
    key: &str,
    channel: &str,
    user: Uuid,
    kind: &str,
    appointment: Uuid,
    notification: Option<Uuid>,
    due: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(SCHEDULE)
        .bind(delivery_id(key, channel))
        .bind(key)
        .bind(channel)
        .bind(user)
        .bind(kind)
        .bind(appointment)
        .bind(notification)
        .bind(due)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Plans both parties' reminders for an appointment confirmed at `at` (those whose time has
/// passed already are not planned).
async fn plan_reminders(
    tx: &mut PgConnection,
    id: Uuid,
    parties: &Parties,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    for (kind, lead) in REMINDERS {
        let due = parties.start - lead;
        if due <= at {
            continue;
        }
        for user in [parties.doctor, parties.patient] {
            let key = reminder_key(id, user, kind);
            for channel in REMINDER_CHANNELS {
                schedule(tx, &key, channel, user, kind, id, None, due).await?;
            }
        }
    }
    Ok(())
}

async fn set_status(tx: &mut PgConnection, id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notification_appointments SET status = $2 WHERE appointment_id = $1")
        .bind(id)
        .bind(status)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An appointment that will not take place (any more): its status, and its pending reminders
/// cancelled for `why`.
async fn close(
    tx: &mut PgConnection,
    id: Uuid,
    status: &str,
    why: &str,
) -> Result<(), sqlx::Error> {
    set_status(tx, id, status).await?;
    sqlx::query(CANCEL_REMINDERS)
        .bind(id)
        .bind(why)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn apply_appointment(
    tx: &mut PgConnection,
    event: &StoredEvent,
    id: Uuid,
    decoded: AppointmentEvent,
) -> Result<(), ProjectionError> {
    if let AppointmentEvent::AppointmentRequested {
        doctor_id,
        patient_id,
        interval,
        at,
        ..
    } = decoded
    {
        requested(tx, event, id, (doctor_id, patient_id), interval, at).await?;
        return Ok(());
    }
    let Some(parties) = parties(tx, id).await? else {
        tracing::warn!(appointment = %id, "an appointment event before its request; no notification");
        return Ok(());
    };
    match decoded {
        AppointmentEvent::AppointmentRequested { .. } => {}
        AppointmentEvent::AppointmentConfirmed { by, at } => {
            confirmed(tx, event, id, &parties, by, at).await?;
        }
        AppointmentEvent::AppointmentRescheduled {
            previous,
            interval,
            by,
            at,
            ..
        } => rescheduled(tx, event, id, &parties, by, (previous, interval), at).await?,
        AppointmentEvent::AppointmentCancelled { by, at, .. } => {
            close(tx, id, "cancelled", "the appointment was cancelled").await?;
            let new = parties.change("appointment_cancelled", id, by, at);
            notify(tx, event, new, at).await?;
        }
        AppointmentEvent::AppointmentCompleted { .. }
        | AppointmentEvent::AppointmentMarkedNoShow { .. } => {
            close(tx, id, "over", "the appointment is over").await?;
        }
    }
    Ok(())
}

/// A new request: the appointment as this projection knows it, and the doctor notified.
async fn requested(
    tx: &mut PgConnection,
    event: &StoredEvent,
    id: Uuid,
    (doctor_id, patient_id): (UserId, UserId),
    interval: Interval,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(UPSERT_APPOINTMENT)
        .bind(id)
        .bind(doctor_id.as_uuid())
        .bind(patient_id.as_uuid())
        .bind(interval.start)
        .bind(interval.end)
        .execute(&mut *tx)
        .await?;
    let new = New {
        user: doctor_id.as_uuid(),
        kind: "appointment_requested",
        appointment: id,
        actor: patient_id.as_uuid(),
        start: Some(interval.start),
        previous_start: None,
        at,
    };
    notify(tx, event, new, at).await
}

/// Confirmed by `by` at `at`: the other party notified, both parties' reminders planned.
async fn confirmed(
    tx: &mut PgConnection,
    event: &StoredEvent,
    id: Uuid,
    parties: &Parties,
    by: Party,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    set_status(tx, id, "confirmed").await?;
    let new = parties.change("appointment_confirmed", id, by, at);
    notify(tx, event, new, at).await?;
    plan_reminders(tx, id, parties, at).await
}

/// Moved from `previous` to `interval` by `by` at `at`: pending reminders move with it, the
/// other party is notified.
async fn rescheduled(
    tx: &mut PgConnection,
    event: &StoredEvent,
    id: Uuid,
    parties: &Parties,
    by: Party,
    (previous, interval): (Interval, Interval),
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notification_appointments
            SET start_at = $2, end_at = $3, status = 'rescheduled'
          WHERE appointment_id = $1",
    )
    .bind(id)
    .bind(interval.start)
    .bind(interval.end)
    .execute(&mut *tx)
    .await?;
    sqlx::query(REPLAN_REMINDERS)
        .bind(id)
        .bind(interval.start)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    let new = New {
        start: Some(interval.start),
        previous_start: Some(previous.start),
        ..parties.change("appointment_rescheduled", id, by, at)
    };
    notify(tx, event, new, at).await
}

/// A posted message's notification for the participant who did not send it, and when its
/// deliveries are due (after [`UNREAD_DELAY`], unless read by then).
fn message_posted(decoded: MessageEvent) -> (New<'static>, OffsetDateTime) {
    let MessageEvent::MessagePosted {
        appointment_id,
        doctor_id,
        patient_id,
        sender_id,
        sent_at,
        ..
    } = decoded;
    let recipient = if sender_id == doctor_id {
        patient_id
    } else {
        doctor_id
    };
    let new = New {
        user: recipient.as_uuid(),
        kind: "message",
        appointment: appointment_id.as_uuid(),
        actor: sender_id.as_uuid(),
        start: None,
        previous_start: None,
        at: sent_at,
    };
    (new, sent_at + UNREAD_DELAY)
}

async fn apply_message(
    tx: &mut PgConnection,
    event: &StoredEvent,
    decoded: MessageEvent,
) -> Result<(), ProjectionError> {
    let (new, due) = message_posted(decoded);
    notify(tx, event, new, due).await?;
    Ok(())
}

/// An in-app notification, with what rendering it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRow {
    /// Id.
    pub id: Uuid,
    /// Recipient.
    pub user_id: UserId,
    /// `appointment_requested`, `appointment_confirmed`, `appointment_rescheduled`,
    /// `appointment_cancelled`, `message` or `waitlist_offer` (time held for the patient; the
    /// appointment is the one accepting the offer books).
    pub kind: String,
    /// The appointment it is about.
    pub appointment_id: Option<AppointmentId>,
    /// Who caused it.
    pub actor_id: Option<UserId>,
    /// Their display name, if known.
    pub actor_name: Option<String>,
    /// The appointment's start (its new start, for a reschedule).
    pub start_at: Option<OffsetDateTime>,
    /// The start before a reschedule.
    pub previous_start_at: Option<OffsetDateTime>,
    /// When it happened.
    pub at: OffsetDateTime,
    /// The recipient's time zone (IANA name), if known.
    pub timezone: Option<String>,
    /// When the recipient marked it read.
    pub read_at: Option<OffsetDateTime>,
    /// The global position of its event (the paging key).
    pub gpos: i64,
}

const SELECT_ROWS: &str = "SELECT n.notification_id, n.user_id, n.kind, n.appointment_id,
       n.actor_id, actor.name AS actor_name, n.start_at, n.previous_start_at, n.at,
       recipient.timezone, r.read_at, n.gpos
  FROM notifications n
  LEFT JOIN user_profiles actor ON actor.user_id = n.actor_id
  LEFT JOIN user_profiles recipient ON recipient.user_id = n.user_id
  LEFT JOIN notification_reads r ON r.notification_id = n.notification_id";

fn row(row: &PgRow) -> Result<NotificationRow, sqlx::Error> {
    Ok(NotificationRow {
        id: row.try_get("notification_id")?,
        user_id: UserId::from(row.try_get::<Uuid, _>("user_id")?),
        kind: row.try_get("kind")?,
        appointment_id: row
            .try_get::<Option<Uuid>, _>("appointment_id")?
            .map(AppointmentId::from),
        actor_id: row
            .try_get::<Option<Uuid>, _>("actor_id")?
            .map(UserId::from),
        actor_name: row.try_get("actor_name")?,
        start_at: row.try_get("start_at")?,
        previous_start_at: row.try_get("previous_start_at")?,
        at: row.try_get("at")?,
        timezone: row.try_get("timezone")?,
        read_at: row.try_get("read_at")?,
        gpos: row.try_get("gpos")?,
    })
}

/// A page of `user`'s notifications, newest first, older than `before` (a `gpos`).
pub async fn page(
    db: impl PgExecutor<'_>,
    user: UserId,
    before: Option<i64>,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query(&format!(
        "{SELECT_ROWS}
          WHERE n.user_id = $1 AND ($2::bigint IS NULL OR n.gpos < $2)
            AND (NOT $3 OR r.read_at IS NULL)
          ORDER BY n.gpos DESC, n.notification_id
          LIMIT $4"
    ))
    .bind(user.as_uuid())
    .bind(before)
    .bind(unread_only)
    .bind(limit)
    .fetch_all(db)
    .await?
    .iter()
    .map(row)
    .collect()
}

/// How many of `user`'s notifications are unread.
pub async fn unread_count(db: impl PgExecutor<'_>, user: UserId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notifications n
          WHERE n.user_id = $1
            AND NOT EXISTS (SELECT 1 FROM notification_reads r
                             WHERE r.notification_id = n.notification_id)",
    )
    .bind(user.as_uuid())
    .fetch_one(db)
    .await
}

/// The notifications of the events at global positions `gpos` (for the live feed).
pub async fn by_positions(
    db: impl PgExecutor<'_>,
    gpos: &[i64],
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query(&format!(
        "{SELECT_ROWS} WHERE n.gpos = ANY($1) ORDER BY n.gpos"
    ))
    .bind(gpos)
    .fetch_all(db)
    .await?
    .iter()
    .map(row)
    .collect()
}

/// One notification, if it exists.
pub async fn by_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<NotificationRow>, sqlx::Error> {
    sqlx::query(&format!("{SELECT_ROWS} WHERE n.notification_id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

/// Marks `user`'s notification `id` read (no-op when read already). Returns whether it is
/// theirs.
pub async fn mark_read(
    db: impl PgExecutor<'_>,
    user: UserId,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "WITH mine AS (SELECT notification_id FROM notifications
                        WHERE notification_id = $2 AND user_id = $1),
              marked AS (INSERT INTO notification_reads (notification_id, user_id, read_at)
                         SELECT notification_id, $1, now() FROM mine
                         ON CONFLICT (notification_id) DO NOTHING)
         SELECT true FROM mine",
    )
    .bind(user.as_uuid())
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// Marks all of `user`'s notifications read; returns how many were unread.
pub async fn mark_all_read(db: impl PgExecutor<'_>, user: UserId) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO notification_reads (notification_id, user_id, read_at)
         SELECT notification_id, $1, now() FROM notifications WHERE user_id = $1
         ON CONFLICT (notification_id) DO NOTHING",
    )
    .bind(user.as_uuid())
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
