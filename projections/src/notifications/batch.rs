//! The `notifications` projection's batches, set-based: the batch's appointments (as this
//! projection knows them) and their outbox rows are loaded once, the events are folded into them in memory exactly as
//! [`crate::notifications`]' per-event statements change them, and then written back: new
//! notifications in one INSERT, appointments in one upsert, new deliveries in one INSERT and
//! changed ones in one UPDATE.
//!
//! Timestamps are kept at PostgreSQL's precision (microseconds) where the per-event path
//! reads them back or compares them in SQL, so both paths compute the same rows.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, Row};
use telemed_domain::UserId;
use telemed_domain::appointment::{AppointmentEvent, Party};
use telemed_domain::conversation::MessageEvent;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{
    CHANGE_CHANNELS, New, REMINDER_CHANNELS, REMINDERS, STALE_AFTER, delivery_id, message_posted,
    notification_id, reminder_key,
};
use crate::event::StoredEvent;

/// An event of the batch this projection cares about, decoded.
pub(crate) enum Change<'e> {
    Appointment(&'e StoredEvent, Uuid, AppointmentEvent),
    Message(&'e StoredEvent, MessageEvent),
}

impl Change<'_> {
    fn appointment(&self) -> Uuid {
        match self {
            Change::Appointment(_, id, _) => *id,
            Change::Message(_, MessageEvent::MessagePosted { appointment_id, .. }) => {
                appointment_id.as_uuid()
            }
        }
    }
}

/// A timestamp as PostgreSQL stores it (sqlx truncates to microseconds when it binds one).
fn stored(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap_or(at)
}

/// A row of `notification_appointments`.
struct Appointment {
    doctor: Uuid,
    patient: Uuid,
    start: OffsetDateTime,
    end: OffsetDateTime,
    status: String,
}

/// A row of the outbox, with what the batch did to it.
struct Delivery {
    id: Uuid,
    key: String,
    channel: &'static str,
    user: Uuid,
    kind: String,
    appointment: Uuid,
    notification: Option<Uuid>,
    due: OffsetDateTime,
    next_attempt: OffsetDateTime,
    state: String,
    last_error: Option<String>,
    new: bool,
    changed: bool,
}

/// The batch's state.
#[derive(Default)]
pub(crate) struct Batch {
    appointments: HashMap<Uuid, Appointment>,
    changed_appointments: HashSet<Uuid>,
    deliveries: Vec<Delivery>,
    by_key: HashMap<(String, &'static str), usize>,
    by_appointment: HashMap<Uuid, Vec<usize>>,
    notifications: Notifications,
}

#[derive(Default)]
struct Notifications {
    ids: Vec<Uuid>,
    users: Vec<Uuid>,
    kinds: Vec<String>,
    appointments: Vec<Uuid>,
    actors: Vec<Uuid>,
    starts: Vec<Option<OffsetDateTime>>,
    previous: Vec<Option<OffsetDateTime>>,
    at: Vec<OffsetDateTime>,
    gpos: Vec<i64>,
    positions: Vec<String>,
}

fn channel(name: &str) -> &'static str {
    match name {
        "email" => "email",
        "push" => "push",
        _ => "sms",
    }
}

impl Batch {
    /// Loads what `changes` may touch.
    pub(crate) async fn load(
        tx: &mut PgConnection,
        changes: &[Change<'_>],
    ) -> Result<Self, sqlx::Error> {
        let mut ids: Vec<Uuid> = changes.iter().map(Change::appointment).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut batch = Self::default();
        for row in sqlx::query(
            "SELECT appointment_id, doctor_id, patient_id, start_at, end_at, status
               FROM notification_appointments WHERE appointment_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        {
            batch.appointments.insert(
                row.try_get("appointment_id")?,
                Appointment {
                    doctor: row.try_get("doctor_id")?,
                    patient: row.try_get("patient_id")?,
                    start: row.try_get("start_at")?,
                    end: row.try_get("end_at")?,
                    status: row.try_get("status")?,
                },
            );
        }
        // Read, not locked: most batches (all of a rebuild's, nearly) change none of them, and
        // the write of a changed one re-checks that it is still pending, as the per-event
        // statements do (the dispatchers may have claimed it meanwhile).
        for row in sqlx::query(
            "SELECT delivery_id, dedupe_key, channel, user_id, kind, appointment_id,
                    notification_id, due_at, next_attempt_at, state, last_error
               FROM notification_deliveries WHERE appointment_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        {
            let name: String = row.try_get("channel")?;
            batch.add(Delivery {
                id: row.try_get("delivery_id")?,
                key: row.try_get("dedupe_key")?,
                channel: channel(&name),
                user: row.try_get("user_id")?,
                kind: row.try_get("kind")?,
                appointment: row.try_get("appointment_id")?,
                notification: row.try_get("notification_id")?,
                due: row.try_get("due_at")?,
                next_attempt: row.try_get("next_attempt_at")?,
                state: row.try_get("state")?,
                last_error: row.try_get("last_error")?,
                new: false,
                changed: false,
            });
        }
        Ok(batch)
    }

    fn add(&mut self, delivery: Delivery) {
        let index = self.deliveries.len();
        self.by_key
            .insert((delivery.key.clone(), delivery.channel), index);
        self.by_appointment
            .entry(delivery.appointment)
            .or_default()
            .push(index);
        self.deliveries.push(delivery);
    }

    /// Applies one change, as `apply` does.
    pub(crate) fn fold(&mut self, change: Change<'_>) {
        match change {
            Change::Appointment(event, id, decoded) => self.appointment(event, id, decoded),
            Change::Message(event, decoded) => {
                let (new, due) = message_posted(decoded);
                self.notify(event, &new, due);
            }
        }
    }

    fn appointment(&mut self, event: &StoredEvent, id: Uuid, decoded: AppointmentEvent) {
        if let AppointmentEvent::AppointmentRequested {
            doctor_id,
            patient_id,
            interval,
            at,
            ..
        } = decoded
        {
            // INSERT … ON CONFLICT DO NOTHING.
            if !self.appointments.contains_key(&id) {
                self.changed_appointments.insert(id);
                self.appointments.insert(
                    id,
                    Appointment {
                        doctor: doctor_id.as_uuid(),
                        patient: patient_id.as_uuid(),
                        start: stored(interval.start),
                        end: stored(interval.end),
                        status: "pending".to_string(),
                    },
                );
            }
            let new = New {
                user: doctor_id.as_uuid(),
                kind: "appointment_requested",
                appointment: id,
                actor: patient_id.as_uuid(),
                start: Some(interval.start),
                previous_start: None,
                at,
            };
            self.notify(event, &new, at);
            return;
        }
        let Some(parties) = self.appointments.get(&id) else {
            tracing::warn!(appointment = %id, "an appointment event before its request; no notification");
            return;
        };
        let parties = (parties.doctor, parties.patient, parties.start);
        self.changed(event, id, parties, decoded);
    }

    /// A change after the request, to the appointment whose parties and start are `parties`.
    fn changed(
        &mut self,
        event: &StoredEvent,
        id: Uuid,
        (doctor, patient, start): (Uuid, Uuid, OffsetDateTime),
        decoded: AppointmentEvent,
    ) {
        let of = |party: Party| match party {
            Party::Doctor => doctor,
            Party::Patient => patient,
        };
        let change = |kind, by: Party, at| New {
            user: of(by.other()),
            kind,
            appointment: id,
            actor: of(by),
            start: Some(start),
            previous_start: None,
            at,
        };
        match decoded {
            AppointmentEvent::AppointmentRequested { .. } => {}
            AppointmentEvent::AppointmentConfirmed { by, at } => {
                self.set_status(id, "confirmed");
                self.notify(event, &change("appointment_confirmed", by, at), at);
                self.plan_reminders(id, (doctor, patient, start), at);
            }
            AppointmentEvent::AppointmentRescheduled {
                previous,
                interval,
                by,
                at,
                ..
            } => {
                if let Some(row) = self.appointments.get_mut(&id) {
                    row.start = stored(interval.start);
                    row.end = stored(interval.end);
                }
                self.set_status(id, "rescheduled");
                self.replan(id, stored(interval.start), stored(at));
                let new = New {
                    start: Some(interval.start),
                    previous_start: Some(previous.start),
                    ..change("appointment_rescheduled", by, at)
                };
                self.notify(event, &new, at);
            }
            AppointmentEvent::AppointmentCancelled { by, at, .. } => {
                self.close(id, "cancelled", "the appointment was cancelled");
                self.notify(event, &change("appointment_cancelled", by, at), at);
            }
            AppointmentEvent::AppointmentCompleted { .. }
            | AppointmentEvent::AppointmentMarkedNoShow { .. } => {
                self.close(id, "over", "the appointment is over");
            }
        }
    }

    fn set_status(&mut self, id: Uuid, status: &'static str) {
        if let Some(row) = self.appointments.get_mut(&id) {
            row.status = status.to_string();
            self.changed_appointments.insert(id);
        }
    }

    fn notify(&mut self, event: &StoredEvent, new: &New<'_>, due: OffsetDateTime) {
        let position = event.position.to_string();
        let id = notification_id(&position, UserId::from(new.user));
        let n = &mut self.notifications;
        n.ids.push(id);
        n.users.push(new.user);
        n.kinds.push(new.kind.to_string());
        n.appointments.push(new.appointment);
        n.actors.push(new.actor);
        n.starts.push(new.start);
        n.previous.push(new.previous_start);
        n.at.push(new.at);
        n.gpos.push(event.position.global_position);
        n.positions.push(position);
        if event.recorded_at < OffsetDateTime::now_utc() - STALE_AFTER {
            return;
        }
        let key = format!("notification:{id}");
        for channel in CHANGE_CHANNELS {
            self.schedule(
                &key,
                channel,
                (new.user, new.kind, new.appointment),
                Some(id),
                due,
            );
        }
    }

    /// The outbox upsert: a new row, or a pending reminder moved to `due`.
    fn schedule(
        &mut self,
        key: &str,
        channel: &'static str,
        (user, kind, appointment): (Uuid, &str, Uuid),
        notification: Option<Uuid>,
        due: OffsetDateTime,
    ) {
        let due = stored(due);
        if let Some(&index) = self.by_key.get(&(key.to_string(), channel)) {
            let row = &mut self.deliveries[index];
            if pending(&row.state) && row.kind.starts_with("reminder") && row.due != due {
                row.due = due;
                row.next_attempt = due;
                row.changed = true;
            }
            return;
        }
        self.add(Delivery {
            id: delivery_id(key, channel),
            key: key.to_string(),
            channel,
            user,
            kind: kind.to_string(),
            appointment,
            notification,
            due,
            next_attempt: due,
            state: "scheduled".to_string(),
            last_error: None,
            new: true,
            changed: false,
        });
    }

    fn plan_reminders(
        &mut self,
        id: Uuid,
        (doctor, patient, start): (Uuid, Uuid, OffsetDateTime),
        at: OffsetDateTime,
    ) {
        for (kind, lead) in REMINDERS {
            let due = start - lead;
            if due <= at {
                continue;
            }
            for user in [doctor, patient] {
                let key = reminder_key(id, user, kind);
                for channel in REMINDER_CHANNELS {
                    self.schedule(&key, channel, (user, kind, id), None, due);
                }
            }
        }
    }

    /// Pending reminders of `id` move with its new `start`; those already past at `at` are
    /// cancelled.
    fn replan(&mut self, id: Uuid, start: OffsetDateTime, at: OffsetDateTime) {
        for &index in self.by_appointment.get(&id).into_iter().flatten() {
            let row = &mut self.deliveries[index];
            let lead = match row.kind.as_str() {
                "reminder_24h" => Duration::hours(24),
                "reminder_1h" => Duration::hours(1),
                _ => continue,
            };
            if !pending(&row.state) {
                continue;
            }
            row.due = start - lead;
            row.next_attempt = row.due;
            if row.due <= at {
                row.state = "cancelled".to_string();
                row.last_error = Some(
                    "the appointment was rescheduled to less than this reminder's lead time away"
                        .to_string(),
                );
            }
            row.changed = true;
        }
    }

    fn close(&mut self, id: Uuid, status: &'static str, why: &str) {
        self.set_status(id, status);
        for &index in self.by_appointment.get(&id).into_iter().flatten() {
            let row = &mut self.deliveries[index];
            if row.kind.starts_with("reminder") && pending(&row.state) {
                row.state = "cancelled".to_string();
                row.last_error = Some(why.to_string());
                row.changed = true;
            }
        }
    }

    /// Writes what the batch did.
    pub(crate) async fn store(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.store_notifications(tx).await?;
        self.store_appointments(tx).await?;
        self.store_deliveries(tx).await
    }

    async fn store_notifications(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        let n = &self.notifications;
        if n.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO notifications (notification_id, user_id, kind, appointment_id, actor_id,
                 start_at, previous_start_at, at, gpos, position)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[],
                 $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::bigint[], $10::text[])
             ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(&n.ids)
        .bind(&n.users)
        .bind(&n.kinds)
        .bind(&n.appointments)
        .bind(&n.actors)
        .bind(&n.starts)
        .bind(&n.previous)
        .bind(&n.at)
        .bind(&n.gpos)
        .bind(&n.positions)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn store_appointments(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.changed_appointments.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = self.changed_appointments.iter().copied().collect();
        let rows: Vec<&Appointment> = ids.iter().map(|id| &self.appointments[id]).collect();
        sqlx::query(
            "INSERT INTO notification_appointments
                 (appointment_id, doctor_id, patient_id, start_at, end_at, status)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[],
                                  $5::timestamptz[], $6::text[])
             ON CONFLICT (appointment_id) DO UPDATE SET start_at = EXCLUDED.start_at,
                 end_at = EXCLUDED.end_at, status = EXCLUDED.status",
        )
        .bind(&ids)
        .bind(rows.iter().map(|a| a.doctor).collect::<Vec<_>>())
        .bind(rows.iter().map(|a| a.patient).collect::<Vec<_>>())
        .bind(rows.iter().map(|a| a.start).collect::<Vec<_>>())
        .bind(rows.iter().map(|a| a.end).collect::<Vec<_>>())
        .bind(rows.iter().map(|a| a.status.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn store_deliveries(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        // New to this batch; another transaction (the live runner beside a rebuild) may have
        // added the same row meanwhile: then it is the outbox upsert's case.
        let new: Vec<&Delivery> = self.deliveries.iter().filter(|d| d.new).collect();
        if !new.is_empty() {
            sqlx::query(
                "INSERT INTO notification_deliveries (delivery_id, dedupe_key, channel, user_id,
                     kind, appointment_id, notification_id, due_at, state, next_attempt_at,
                     last_error)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                     $6::uuid[], $7::uuid[], $8::timestamptz[], $9::text[], $10::timestamptz[],
                     $11::text[])
                 ON CONFLICT (dedupe_key, channel) DO UPDATE
                    SET due_at = EXCLUDED.due_at, next_attempt_at = EXCLUDED.due_at,
                        updated_at = now()
                  WHERE notification_deliveries.state IN ('scheduled', 'retrying')
                    AND notification_deliveries.kind LIKE 'reminder%'
                    AND notification_deliveries.due_at <> EXCLUDED.due_at",
            )
            .bind(new.iter().map(|d| d.id).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.key.clone()).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.channel).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.user).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.kind.clone()).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.appointment).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.notification).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.due).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.state.clone()).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.next_attempt).collect::<Vec<_>>())
            .bind(new.iter().map(|d| d.last_error.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        let changed: Vec<&Delivery> = self
            .deliveries
            .iter()
            .filter(|d| d.changed && !d.new)
            .collect();
        if !changed.is_empty() {
            sqlx::query(
                "UPDATE notification_deliveries d
                    SET due_at = x.due, next_attempt_at = x.next, state = x.state,
                        last_error = x.error, updated_at = now()
                   FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[],
                               $5::text[]) AS x(id, due, next, state, error)
                  WHERE d.delivery_id = x.id AND d.state IN ('scheduled', 'retrying')",
            )
            .bind(changed.iter().map(|d| d.id).collect::<Vec<_>>())
            .bind(changed.iter().map(|d| d.due).collect::<Vec<_>>())
            .bind(changed.iter().map(|d| d.next_attempt).collect::<Vec<_>>())
            .bind(changed.iter().map(|d| d.state.clone()).collect::<Vec<_>>())
            .bind(
                changed
                    .iter()
                    .map(|d| d.last_error.clone())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

/// Whether a delivery has yet to leave (the states the per-event statements touch).
fn pending(state: &str) -> bool {
    matches!(state, "scheduled" | "retrying")
}
