//! Feeds the hub from the event store: its own commit-safe reader (not cqrs-es queries), and
//! the mapping from stored events to the contract's server events and their topics.
//!
//! Each process tails the store itself, so every process delivers every event to its own
//! clients, whichever process executed the command. The reader waits until this process's
//! projections have applied a batch before publishing it, so the `appointment` in an
//! `appointment:updated` is what `GET /appointments/{id}` answers at that moment, and a client
//! reacting to an event reads a model that already has it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use telemed_domain::{
    AppointmentId, DayId, MessageId, Position, UserId, appointment, availability, call,
    conversation,
};
use telemed_projections::appointments::{AppointmentView, appointments_by_ids};
use telemed_projections::calls::{CallView, calls_by_ids};
use telemed_projections::conversations::MessageView;
use telemed_projections::event::StoredEvent;
use telemed_projections::notifications::{self, NotificationRow};
use telemed_projections::stream::read_after;
use telemed_projections::{Progress, Settled};
use telemed_tasks::{Background, CancellationToken};
use tokio::sync::watch;
use uuid::Uuid;

use crate::hub::{Delivery, Hub};
use crate::topic::Topic;
use crate::waiting::WaitingRoom;
use telemed_notify::NotificationView;

/// Events read per batch.
const BATCH: i64 = 500;
/// How long the feed waits for the projections before publishing anyway.
const PROJECTION_WAIT: Duration = Duration::from_secs(5);
/// How often the feed looks for events when no notification arrives.
const POLL: Duration = Duration::from_millis(500);

const HEAD: &str = "
SELECT transaction_id::text AS xid, global_position
  FROM events
 WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY transaction_id DESC, global_position DESC
 LIMIT 1";

/// The position of the newest event a commit-safe reader can see now.
pub async fn store_head(pool: &PgPool) -> Result<Position, sqlx::Error> {
    let row = sqlx::query(HEAD).fetch_optional(pool).await?;
    match row {
        Some(row) => telemed_projections::stream::position_from_row(&row),
        None => Ok(Position::START),
    }
}

/// Starts the feed: every event committed after the store's current head is published to
/// `hub`. The head is read before this returns, so a client that connects afterwards misses
/// nothing committed after it connected. It runs under `background` and stops with it.
pub async fn spawn(
    pool: PgPool,
    hub: Arc<Hub>,
    waiting: Arc<WaitingRoom>,
    progress: Progress,
    wakeups: watch::Receiver<u64>,
    background: &Background,
) -> Result<(), sqlx::Error> {
    let head = store_head(&pool).await?;
    hub.advance(head);
    // The calls live up to the head (the feed follows the later ones).
    if progress.wait_for(head, PROJECTION_WAIT).await != Settled::Reached {
        tracing::warn!(%head, "read models lag; the waiting room may miss a live call");
    }
    waiting.load_calls(&pool).await?;
    let feed = Feed {
        pool,
        hub,
        waiting,
        progress,
    };
    background.spawn(run(feed, wakeups, background.token(), head));
    Ok(())
}

/// What the feed reads from and publishes to.
struct Feed {
    pool: PgPool,
    hub: Arc<Hub>,
    waiting: Arc<WaitingRoom>,
    progress: Progress,
}

async fn run(
    feed: Feed,
    mut wakeups: watch::Receiver<u64>,
    stop: CancellationToken,
    mut cursor: Position,
) {
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        wakeups.borrow_and_update();
        let pause = match step(&feed, cursor).await {
            Ok(Some(last)) => {
                cursor = last;
                failures = 0;
                continue;
            }
            Ok(None) => {
                failures = 0;
                POLL
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "live feed cannot read the store; retrying");
                Duration::from_millis(100 * u64::from(failures.min(10)))
            }
        };
        tokio::select! {
            _ = wakeups.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Publishes the next batch after `cursor`; returns its last position, or `None` when there
/// was nothing new.
async fn step(feed: &Feed, cursor: Position) -> Result<Option<Position>, sqlx::Error> {
    let Feed {
        pool,
        hub,
        waiting,
        progress,
    } = feed;
    let events = read_after(pool, cursor, BATCH).await?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(None);
    };
    if progress.wait_for(last, PROJECTION_WAIT).await != Settled::Reached {
        tracing::warn!(%last, "read models lag; publishing live events without waiting longer");
    }
    let deliveries = deliveries(pool, &events).await?;
    hub.publish(&deliveries);
    waiting.observe(&events);
    hub.advance(last);
    Ok(Some(last))
}

/// The server events for `events`, in order.
pub async fn deliveries(
    pool: &PgPool,
    events: &[StoredEvent],
) -> Result<Vec<Arc<Delivery>>, sqlx::Error> {
    let ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.aggregate_type == appointment::AGGREGATE_TYPE)
        .filter_map(|e| e.aggregate_id.parse().ok())
        .collect();
    let views: HashMap<AppointmentId, AppointmentView> = if ids.is_empty() {
        HashMap::new()
    } else {
        appointments_by_ids(pool, &ids)
            .await?
            .into_iter()
            .map(|view| (view.id, view))
            .collect()
    };
    let call_ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.aggregate_type == call::AGGREGATE_TYPE)
        .filter_map(|e| e.aggregate_id.parse().ok())
        .collect();
    let calls: HashMap<telemed_domain::CallId, CallView> = if call_ids.is_empty() {
        HashMap::new()
    } else {
        calls_by_ids(pool, &call_ids)
            .await?
            .into_iter()
            .map(|view| (view.call_id, view))
            .collect()
    };
    let notified: Vec<i64> = events
        .iter()
        .filter(|e| {
            e.aggregate_type == appointment::AGGREGATE_TYPE
                || e.aggregate_type == conversation::MESSAGE_AGGREGATE_TYPE
        })
        .map(|e| e.position.global_position)
        .collect();
    let mut notifications: HashMap<i64, Vec<NotificationRow>> = HashMap::new();
    if !notified.is_empty() {
        for row in notifications::by_positions(pool, &notified).await? {
            notifications.entry(row.gpos).or_default().push(row);
        }
    }
    let mut out = Vec::with_capacity(events.len() * 2);
    for event in events {
        map(event, &views, &calls, &mut out);
        for row in notifications
            .get(&event.position.global_position)
            .into_iter()
            .flatten()
        {
            out.push(Arc::new(notification_delivery(row, event.position)));
        }
    }
    Ok(out)
}

/// `call:ringing` for a started call (to every device of the callee), `call:answered` and
/// `call:ended` to both participants (`participants` from the call log read model, which the
/// feed waits for).
fn call_delivery(
    id: &str,
    event: call::CallEvent,
    participants: Option<(UserId, UserId)>,
    position: Position,
) -> Option<Delivery> {
    let call_id: telemed_domain::CallId = id.parse().ok()?;
    let (doctor, patient) = participants?;
    let both = vec![Topic::User(doctor), Topic::User(patient)];
    let ended = |reason: &str| {
        Delivery::new(
            "call:ended",
            json!({ "call_id": call_id, "reason": reason, "position": position.to_string() }),
            position,
            both.clone(),
        )
    };
    match event {
        call::CallEvent::CallStarted {
            appointment_id,
            caller_id,
            ..
        } => {
            let callee = if caller_id == doctor { patient } else { doctor };
            Some(Delivery::new(
                "call:ringing",
                json!({
                    "call_id": call_id,
                    "appointment_id": appointment_id,
                    "from": caller_id,
                    "position": position.to_string(),
                }),
                position,
                vec![Topic::User(callee)],
            ))
        }
        call::CallEvent::CallAnswered { by, .. } => Some(Delivery::new(
            "call:answered",
            json!({ "call_id": call_id, "by": by, "position": position.to_string() }),
            position,
            both.clone(),
        )),
        call::CallEvent::CallMissed { .. } => Some(ended("invite_timeout")),
        call::CallEvent::CallRejected { .. } => Some(ended("rejected")),
        call::CallEvent::CallEnded { reason, .. } => Some(ended(reason.as_str())),
    }
}

/// `notification` to its recipient: `{id, kind, title, body, appointment_id?, at}`.
fn notification_delivery(row: &NotificationRow, position: Position) -> Delivery {
    let mut data = serde_json::to_value(NotificationView::from(row)).unwrap_or_default();
    if let Some(fields) = data.as_object_mut() {
        fields.remove("read");
    }
    Delivery::new(
        "notification",
        data,
        position,
        vec![Topic::User(row.user_id)],
    )
}

/// Appends the server events of one stored event.
#[expect(clippy::too_many_lines, reason = "to be split (issue 12)")]
fn map(
    event: &StoredEvent,
    views: &HashMap<AppointmentId, AppointmentView>,
    calls: &HashMap<telemed_domain::CallId, CallView>,
    out: &mut Vec<Arc<Delivery>>,
) {
    let position = event.position;
    match event.aggregate_type.as_str() {
        appointment::AGGREGATE_TYPE => {
            let view = event
                .aggregate_id
                .parse::<AppointmentId>()
                .ok()
                .and_then(|id| views.get(&id));
            match view {
                Some(view) => out.push(Arc::new(Delivery::new(
                    "appointment:updated",
                    json!({
                        "appointment": view,
                        "event_type": event.event_type,
                        "position": position.to_string(),
                    }),
                    position,
                    vec![
                        Topic::User(view.doctor_id),
                        Topic::User(view.patient_id),
                        Topic::Appointment(view.id),
                    ],
                ))),
                None => tracing::warn!(
                    aggregate_id = %event.aggregate_id,
                    "no read model row for an appointment event; not sent live"
                ),
            }
        }
        availability::AGGREGATE_TYPE => {
            if let Ok(day) = event.aggregate_id.parse::<DayId>() {
                out.push(Arc::new(Delivery::new(
                    "availability:updated",
                    json!({
                        "doctor_id": day.doctor,
                        "date": day.date.to_string(),
                        "position": position.to_string(),
                    }),
                    position,
                    vec![
                        Topic::DoctorAvailability(day.doctor),
                        Topic::User(day.doctor),
                    ],
                )));
            }
        }
        conversation::MESSAGE_AGGREGATE_TYPE => {
            let decoded =
                serde_json::from_value::<conversation::MessageEvent>(event.payload.clone());
            if let (Ok(id), Ok(decoded)) = (event.aggregate_id.parse::<MessageId>(), decoded) {
                let conversation::MessageEvent::MessagePosted {
                    appointment_id,
                    doctor_id,
                    patient_id,
                    ..
                } = &decoded;
                let topics = vec![
                    Topic::User(*doctor_id),
                    Topic::User(*patient_id),
                    Topic::Appointment(*appointment_id),
                ];
                let view = MessageView::from_event(id, &decoded, position);
                out.push(Arc::new(Delivery::new(
                    "chat:message",
                    serde_json::to_value(view).unwrap_or_default(),
                    position,
                    topics,
                )));
            }
        }
        call::AGGREGATE_TYPE => {
            let participants = event
                .aggregate_id
                .parse::<telemed_domain::CallId>()
                .ok()
                .and_then(|id| calls.get(&id))
                .map(|view| (view.participants[0], view.participants[1]));
            if let Ok(decoded) = serde_json::from_value::<call::CallEvent>(event.payload.clone())
                && let Some(delivery) =
                    call_delivery(&event.aggregate_id, decoded, participants, position)
            {
                out.push(Arc::new(delivery));
            }
        }
        conversation::READ_AGGREGATE_TYPE => {
            if let Ok(conversation::ReadEvent::MessagesRead {
                appointment_id,
                doctor_id,
                patient_id,
                user_id,
                up_to,
                ..
            }) = serde_json::from_value(event.payload.clone())
            {
                out.push(Arc::new(Delivery::new(
                    "chat:read",
                    json!({
                        "appointment_id": appointment_id,
                        "user_id": user_id,
                        "up_to": up_to,
                        "position": position.to_string(),
                    }),
                    position,
                    vec![
                        Topic::User(doctor_id),
                        Topic::User(patient_id),
                        Topic::Appointment(appointment_id),
                    ],
                )));
            }
        }
        _ => {}
    }
    out.push(Arc::new(Delivery::new(
        "audit:event",
        serde_json::to_value(event).unwrap_or_default(),
        position,
        vec![Topic::Audit],
    )));
}
