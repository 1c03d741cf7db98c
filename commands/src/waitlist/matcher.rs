//! The waitlist matcher: follows the event log like a projection and offers freed time.
//!
//! Durable and commit-safe: it reads the log after its own checkpoint (`waitlist_matcher` in
//! `projection_checkpoints`) in commit-safe order, but never past the `waitlist` projection's
//! checkpoint, so every entry that joined before an event is visible when that event is
//! matched. A doctor-day event that can free time (a slot released by a cancellation,
//! reschedule or sweep, a window opened or widened, time off lifted, a hold declined, expired
//! or withdrawn) marks its day; a doctor's new slot policy (shorter buffers, another grid) marks
//! every day of that doctor with windows that a waiting entry asks for; each marked day is matched from its current events, then the checkpoint
//! moves. A crash before the move matches the days again: harmless, since time offered is
//! held and no longer free, and an entry with an open offer gets no second one.
//!
//! Several processes: a round runs under a session-level advisory lock (no transaction, so
//! it holds back no one's commit-safe horizon); a process that does not get it skips the
//! round. The same round expires lapsed offers, whose `HoldEnded` then marks their day.

use sqlx::PgConnection;
use std::collections::BTreeSet;
use telemed_domain::availability::{AGGREGATE_TYPE as DAY_TYPE, AvailabilityEvent, HoldEnd};
use telemed_domain::calendar::Interval;
use telemed_domain::doctor::{AGGREGATE_TYPE as DOCTOR_TYPE, DoctorEvent};
use telemed_domain::{DayId, Position, UserId};
use telemed_projections::StoredEvent;
use telemed_projections::availability::{Busy, free_slots, slot_policy};
use telemed_projections::runner::{ensure_checkpoint, load_checkpoint};
use telemed_projections::stream::read_after;
use telemed_projections::waitlist::{Waiting, lapsed_offers, waiting_for};
use time::Duration;

use super::{Waitlist, WaitlistFailure};
use crate::context::CommandContext;
use crate::error::{BoxError, CommandError};
use crate::store::Source;

/// The matcher's checkpoint name.
pub const CHECKPOINT: &str = "waitlist_matcher";
/// The projection whose checkpoint bounds the matcher's reading.
const FOLLOWS: &str = "waitlist";
/// The advisory lock key of a round (any fixed number; "waitlist" in ASCII).
const LOCK_KEY: i64 = 0x7761_6974_6c69_7374;
/// Events per round.
const BATCH: i64 = 500;

const SAVE: &str = "UPDATE projection_checkpoints
   SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now() WHERE name = $1";

/// What a round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Whether this process held the lock.
    pub ran: bool,
    /// Offers made.
    pub offered: usize,
    /// Offers expired.
    pub expired: usize,
    /// Events read.
    pub events: usize,
}

/// The doctor-day an event may have freed time on.
fn freed_day(event: &StoredEvent) -> Option<DayId> {
    if event.aggregate_type != DAY_TYPE {
        return None;
    }
    match event.decode::<AvailabilityEvent>().ok()? {
        AvailabilityEvent::SlotReleased { day, .. }
        | AvailabilityEvent::WindowOpened { day, .. }
        | AvailabilityEvent::WindowChanged { day, .. }
        | AvailabilityEvent::TimeOffUnblocked { day, .. } => Some(day),
        AvailabilityEvent::HoldEnded { day, reason, .. } if reason != HoldEnd::Accepted => {
            Some(day)
        }
        _ => None,
    }
}

/// The doctor whose slot policy an event set: shorter buffers or another grid may free time on
/// any of their days.
fn policy_changed(event: &StoredEvent) -> Option<UserId> {
    if event.aggregate_type != DOCTOR_TYPE {
        return None;
    }
    match event.decode::<DoctorEvent>().ok()? {
        DoctorEvent::SlotPolicySet(_) => event
            .aggregate_id
            .parse::<uuid::Uuid>()
            .ok()
            .map(UserId::from),
        _ => None,
    }
}

/// The days of `doctor` with windows that a waiting entry asks for.
async fn waited_for_days(
    conn: &mut PgConnection,
    doctor: UserId,
) -> Result<Vec<DayId>, sqlx::Error> {
    let dates: Vec<(time::Date,)> = sqlx::query_as(
        "SELECT DISTINCT w.local_date FROM availability_windows w
          WHERE w.doctor_id = $1 AND EXISTS (
                SELECT 1 FROM waitlist_entries e
                 WHERE e.doctor_id = $1 AND e.status = 'waiting'
                   AND w.local_date BETWEEN e.from_date AND e.to_date)
          ORDER BY w.local_date",
    )
    .bind(doctor.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    Ok(dates
        .into_iter()
        .map(|(date,)| DayId::new(doctor, date))
        .collect())
}

/// One round on `conn` (a connection the caller keeps for the lock): expire lapsed offers,
/// then match the days freed by the events after the checkpoint.
pub async fn round(waitlist: &Waitlist, conn: &mut PgConnection) -> Result<Round, BoxError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Round::default());
    }
    let result = locked_round(waitlist, conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    result
}

async fn locked_round(waitlist: &Waitlist, conn: &mut PgConnection) -> Result<Round, BoxError> {
    let mut round = Round {
        ran: true,
        ..Round::default()
    };
    round.expired = expire_lapsed(waitlist).await?;
    ensure_checkpoint(&mut *conn, CHECKPOINT).await?;
    let from = load_checkpoint(&mut *conn, CHECKPOINT).await?;
    let bound = load_checkpoint(&mut *conn, FOLLOWS).await?;
    if bound <= from {
        return Ok(round);
    }
    let mut events = read_after(&mut *conn, from, BATCH).await?;
    events.retain(|e| e.position <= bound);
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(round);
    };
    round.events = events.len();
    let mut days: BTreeSet<DayId> = events.iter().filter_map(freed_day).collect();
    let doctors: BTreeSet<UserId> = events.iter().filter_map(policy_changed).collect();
    for doctor in doctors {
        days.extend(waited_for_days(&mut *conn, doctor).await?);
    }
    for day in days {
        round.offered += match_day(waitlist, day).await?;
    }
    save(conn, last).await?;
    Ok(round)
}

async fn save(conn: &mut PgConnection, position: Position) -> Result<(), sqlx::Error> {
    sqlx::query(SAVE)
        .bind(CHECKPOINT)
        .bind(position.transaction_id.to_string())
        .bind(position.global_position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Expires the offers whose time is up. Returns how many.
async fn expire_lapsed(waitlist: &Waitlist) -> Result<usize, BoxError> {
    let now = waitlist.scheduling.clock().now();
    let context = CommandContext::system("waitlist-expiry");
    let mut expired = 0;
    for (entry, offer) in lapsed_offers(&waitlist.pool, now).await? {
        match waitlist.expire(entry, offer, &context).await {
            Ok(_) => expired += 1,
            // Accepted, declined or expired by someone else since the read model looked.
            Err(CommandError::Rejected(_)) => {}
            Err(error) => return Err(Box::new(error)),
        }
    }
    Ok(expired)
}

/// Offers the free time of `day` to the entries waiting for it, first come first: each gets
/// the earliest free slot of its length that it has not passed on, laid out by the slot
/// list's own [`free_slots`] (window grid, buffers around reservations and holds, time off). Returns how many offers were made.
pub async fn match_day(waitlist: &Waitlist, day: DayId) -> Result<usize, BoxError> {
    let waiting = waiting_for(&waitlist.pool, day).await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let loaded = waitlist
        .days
        .load::<WaitlistFailure>(&day.to_string(), Source::Database)
        .await?;
    let windows: Vec<Interval> = loaded.aggregate.windows().values().copied().collect();
    let mut taken: Vec<Interval> = loaded
        .aggregate
        .reservations()
        .values()
        .map(|r| r.interval)
        .chain(loaded.aggregate.holds().values().map(|h| h.interval))
        .collect();
    let time_off: Vec<Interval> = loaded.aggregate.time_off().values().copied().collect();
    let policy = slot_policy(&waitlist.pool, day.doctor).await?;
    let rules = waitlist.scheduling.rules();
    let now = waitlist.scheduling.clock().now();
    // The time must still be bookable when the offer is accepted at the last moment.
    let not_before = now + rules.min_notice + waitlist.hold_for;
    let not_after = now + rules.horizon;
    let context = CommandContext::system("waitlist-matcher");
    let mut offered = 0;
    for entry in waiting {
        let length = Duration::minutes(entry.duration_minutes);
        let busy = Busy {
            reserved: &taken,
            time_off: &time_off,
            policy,
        };
        let Some(slot) = first_fit(&windows, busy, &entry, length, (not_before, not_after)) else {
            continue;
        };
        if patient_busy(waitlist, &entry, slot).await? {
            continue;
        }
        match waitlist
            .offer(
                entry.entry_id,
                entry.patient_id,
                (day, policy),
                slot,
                &context,
            )
            .await
        {
            Ok(_) => {
                offered += 1;
                taken.push(slot);
            }
            // The entry moved on, or the time was taken meanwhile: whatever freed it again
            // marks the day again.
            Err(CommandError::Rejected(_)) => {}
            Err(error) => return Err(Box::new(error)),
        }
    }
    Ok(offered)
}

fn first_fit(
    windows: &[Interval],
    busy: Busy<'_>,
    entry: &Waiting,
    length: Duration,
    (not_before, not_after): (time::OffsetDateTime, time::OffsetDateTime),
) -> Option<Interval> {
    free_slots(windows, busy, length, not_before, not_after)
        .into_iter()
        .find(|slot| !entry.passed.iter().any(|p| p.overlaps(slot)))
}

/// Whether the patient holds another appointment overlapping `slot`.
async fn patient_busy(
    waitlist: &Waitlist,
    entry: &Waiting,
    slot: Interval,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM patient_time_claims
          WHERE patient_id = $1 AND tstzrange(start_at, end_at) && tstzrange($2, $3))",
    )
    .bind(entry.patient_id.as_uuid())
    .bind(slot.start)
    .bind(slot.end)
    .fetch_one(&waitlist.pool)
    .await
}
