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

use sqlx::PgPool;
use telemed_domain::{
    AppointmentId, CallId, DayId, MessageId, Position, UserId, appointment, availability, call,
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
use crate::protocol::{
    AppointmentUpdated, AvailabilityUpdated, CallAnswered, CallEnded, CallRinging, Notice,
    ReadMoved, ServerEvent,
};
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
    let calls: HashMap<CallId, CallView> = if call_ids.is_empty() {
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
                || e.aggregate_type == telemed_domain::waitlist::AGGREGATE_TYPE
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
    let call_id: CallId = id.parse().ok()?;
    let (doctor, patient) = participants?;
    let both = vec![Topic::User(doctor), Topic::User(patient)];
    let ended = |reason: &str| {
        let reason = reason.to_string();
        ServerEvent::CallEnded(CallEnded {
            call_id,
            reason,
            position,
        })
    };
    let (event, topics) = match event {
        call::CallEvent::CallStarted {
            appointment_id,
            caller_id,
            ..
        } => {
            let callee = if caller_id == doctor { patient } else { doctor };
            let ringing = ServerEvent::CallRinging(CallRinging {
                call_id,
                appointment_id,
                from: caller_id,
                position,
            });
            (ringing, vec![Topic::User(callee)])
        }
        call::CallEvent::CallAnswered { by, .. } => {
            let answered = CallAnswered {
                call_id,
                by,
                position,
            };
            (ServerEvent::CallAnswered(answered), both)
        }
        call::CallEvent::CallMissed { .. } => (ended("invite_timeout"), both),
        call::CallEvent::CallRejected { .. } => (ended("rejected"), both),
        call::CallEvent::CallEnded { reason, .. } => (ended(reason.as_str()), both),
    };
    Some(event.stored(position, topics))
}

/// `notification` to its recipient: `{id, kind, title, body, appointment_id?, at}`.
fn notification_delivery(row: &NotificationRow, position: Position) -> Delivery {
    let notice = Notice::from(NotificationView::from(row));
    ServerEvent::Notification(notice).stored(position, vec![Topic::User(row.user_id)])
}

/// Appends the server events of one stored event: the event for its participants (if its kind
/// has one) and `audit:event` for auditors.
fn map(
    event: &StoredEvent,
    views: &HashMap<AppointmentId, AppointmentView>,
    calls: &HashMap<CallId, CallView>,
    out: &mut Vec<Arc<Delivery>>,
) {
    let position = event.position;
    let delivery = match event.aggregate_type.as_str() {
        appointment::AGGREGATE_TYPE => appointment_delivery(event, views),
        availability::AGGREGATE_TYPE => availability_delivery(event),
        conversation::MESSAGE_AGGREGATE_TYPE => message_delivery(event),
        conversation::READ_AGGREGATE_TYPE => read_delivery(event),
        call::AGGREGATE_TYPE => {
            let participants = event
                .aggregate_id
                .parse::<CallId>()
                .ok()
                .and_then(|id| calls.get(&id))
                .map(|view| (view.participants[0], view.participants[1]));
            serde_json::from_value::<call::CallEvent>(event.payload.clone())
                .ok()
                .and_then(|decoded| {
                    call_delivery(&event.aggregate_id, decoded, participants, position)
                })
        }
        _ => None,
    };
    out.extend(delivery.map(Arc::new));
    let audit = ServerEvent::AuditEvent(event.clone());
    out.push(Arc::new(audit.stored(position, vec![Topic::Audit])));
}

/// `appointment:updated` to both participants and the appointment's followers, with the
/// appointment as its read model has it.
fn appointment_delivery(
    event: &StoredEvent,
    views: &HashMap<AppointmentId, AppointmentView>,
) -> Option<Delivery> {
    let view = event
        .aggregate_id
        .parse::<AppointmentId>()
        .ok()
        .and_then(|id| views.get(&id));
    let Some(view) = view else {
        tracing::warn!(
            aggregate_id = %event.aggregate_id,
            "no read model row for an appointment event; not sent live"
        );
        return None;
    };
    let topics = vec![
        Topic::User(view.doctor_id),
        Topic::User(view.patient_id),
        Topic::Appointment(view.id),
    ];
    let updated = ServerEvent::AppointmentUpdated(AppointmentUpdated {
        appointment: view.clone(),
        event_type: event.event_type.clone(),
        position: event.position,
    });
    Some(updated.stored(event.position, topics))
}

/// `availability:updated` to the doctor and the followers of their availability.
fn availability_delivery(event: &StoredEvent) -> Option<Delivery> {
    let day = event.aggregate_id.parse::<DayId>().ok()?;
    let updated = ServerEvent::AvailabilityUpdated(AvailabilityUpdated {
        doctor_id: day.doctor,
        date: day.date.to_string(),
        position: event.position,
    });
    let topics = vec![
        Topic::DoctorAvailability(day.doctor),
        Topic::User(day.doctor),
    ];
    Some(updated.stored(event.position, topics))
}

/// `chat:message` to both participants and the appointment's followers.
fn message_delivery(event: &StoredEvent) -> Option<Delivery> {
    let id = event.aggregate_id.parse::<MessageId>().ok()?;
    let decoded =
        serde_json::from_value::<conversation::MessageEvent>(event.payload.clone()).ok()?;
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
    let view = MessageView::from_event(id, &decoded, event.position);
    Some(ServerEvent::ChatMessage(view).stored(event.position, topics))
}

/// `chat:read` to both participants and the appointment's followers.
fn read_delivery(event: &StoredEvent) -> Option<Delivery> {
    let conversation::ReadEvent::MessagesRead {
        appointment_id,
        doctor_id,
        patient_id,
        user_id,
        up_to,
        ..
    } = serde_json::from_value(event.payload.clone()).ok()?;
    let moved = ServerEvent::ChatRead(ReadMoved {
        appointment_id,
        user_id,
        up_to,
        position: event.position,
    });
    let topics = vec![
        Topic::User(doctor_id),
        Topic::User(patient_id),
        Topic::Appointment(appointment_id),
    ];
    Some(moved.stored(event.position, topics))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::macros::{date, datetime};

    use super::*;

    fn stored(aggregate_type: &str, aggregate_id: String, payload: Value) -> StoredEvent {
        StoredEvent {
            position: Position::new(7, 42),
            aggregate_type: aggregate_type.into(),
            aggregate_id,
            sequence: 1,
            event_type: "Happened".into(),
            event_version: "1".into(),
            payload,
            metadata: json!({}),
            recorded_at: datetime!(2026-01-02 03:04:05 UTC),
        }
    }

    /// The deliveries of `event` (no appointment or call views), as `(event, data)`.
    fn frames(
        event: &StoredEvent,
        calls: &HashMap<CallId, CallView>,
    ) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        map(event, &HashMap::new(), calls, &mut out);
        out.iter().map(|d| (d.event, d.data.clone())).collect()
    }

    #[test]
    fn typed_events_serialise_to_the_contracts_json() {
        let (doctor, patient) = (UserId::new(), UserId::new());
        let (appointment, message) = (AppointmentId::new(), MessageId::new());
        let read = conversation::ReadEvent::MessagesRead {
            appointment_id: appointment,
            doctor_id: doctor,
            patient_id: patient,
            user_id: patient,
            up_to: message,
            up_to_position: Position::new(6, 41),
            at: datetime!(2026-01-02 03:04:05 UTC),
        };
        let event = stored(
            conversation::READ_AGGREGATE_TYPE,
            uuid::Uuid::new_v4().to_string(),
            serde_json::to_value(&read).unwrap(),
        );
        let delivered = frames(&event, &HashMap::new());
        let expected = json!({
            "appointment_id": appointment,
            "user_id": patient,
            "up_to": message,
            "position": "7-42",
        });
        assert_eq!(delivered[0], ("chat:read", expected));
        assert_eq!(
            delivered[1],
            ("audit:event", serde_json::to_value(&event).unwrap())
        );

        let day = DayId {
            doctor,
            date: date!(2026 - 03 - 29),
        };
        let event = stored(availability::AGGREGATE_TYPE, day.to_string(), json!({}));
        let expected = json!({ "doctor_id": doctor, "date": "2026-03-29", "position": "7-42" });
        assert_eq!(
            frames(&event, &HashMap::new())[0],
            ("availability:updated", expected)
        );
    }

    #[test]
    fn call_events_serialise_to_the_contracts_json() {
        let (doctor, patient, call_id) = (UserId::new(), UserId::new(), CallId::new());
        let position = Position::new(7, 42);
        let answered = call::CallEvent::CallAnswered {
            by: patient,
            at: datetime!(2026-01-02 03:04:05 UTC),
        };
        let delivery = call_delivery(
            &call_id.to_string(),
            answered,
            Some((doctor, patient)),
            position,
        )
        .unwrap();
        let expected = json!({ "call_id": call_id, "by": patient, "position": "7-42" });
        assert_eq!((delivery.event, delivery.data), ("call:answered", expected));
        assert_eq!(
            delivery.topics,
            vec![Topic::User(doctor), Topic::User(patient)]
        );
        let rejected = call::CallEvent::CallRejected {
            by: patient,
            at: datetime!(2026-01-02 03:04:05 UTC),
        };
        let delivery = call_delivery(
            &call_id.to_string(),
            rejected,
            Some((doctor, patient)),
            position,
        )
        .unwrap();
        let expected = json!({ "call_id": call_id, "reason": "rejected", "position": "7-42" });
        assert_eq!((delivery.event, delivery.data), ("call:ended", expected));
    }
}
