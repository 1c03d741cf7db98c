//! Time off: a doctor blocks a span of time in which nothing new may be booked.
//!
//! Time off is recorded on every doctor-day it may touch, all in one statement (one
//! transaction): the doctor-day decides reservations, so a booking and a time off that covers
//! it are decided by the same aggregate, and the events' primary key orders them. Whichever
//! commits second sees the other: a later booking is refused (`DoctorUnavailable`), a later
//! time off finds the appointment and the doctor is shown it as a conflict. Appointments are
//! never cancelled by it.
//!
//! Which days: doctor-days are keyed by local dates in the zone the doctor had when the
//! window was opened, and a local date is always within a day of the UTC date. Blocking every
//! UTC date the time off touches, and one more on each side, therefore reaches the day of any
//! window it overlaps, whatever the zone was or becomes.

use telemed_domain::availability::{AvailabilityCommand, DoctorDay};
use telemed_domain::calendar::Interval;
use telemed_domain::values::ShortNote;
use telemed_domain::{DayId, NamedCommand, Position, TimeOffId, UserId};
use time::{Date, Duration};

use super::{Result, Scheduling};
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::executor::{MAX_ATTEMPTS, backoff, decide};
use crate::store::{AppendError, Loaded, Rows, Source, insert};

/// Longest time off, in days.
pub const MAX_TIME_OFF_DAYS: i64 = 366;

/// The doctor-days of `doctor` that time off in `interval` may touch.
fn days_touched(doctor: UserId, interval: Interval) -> Vec<DayId> {
    let utc = |instant: time::OffsetDateTime| instant.to_offset(time::UtcOffset::UTC).date();
    let first = utc(interval.start) - Duration::days(1);
    let last = utc(interval.end - Duration::nanoseconds(1)) + Duration::days(1);
    let mut days = Vec::new();
    let mut date: Option<Date> = Some(first);
    while let Some(current) = date.filter(|d| *d <= last) {
        days.push(DayId::new(doctor, current));
        date = current.next_day();
    }
    days
}

/// The doctor-days a command was decided on, with the events to append.
struct Decided {
    loaded: Vec<(String, Loaded<DoctorDay>)>,
    rows: Vec<Rows>,
}

impl Scheduling {
    /// Blocks `interval` for `doctor` with `note`; returns the new time off's id.
    pub async fn block_time(
        &self,
        doctor: UserId,
        interval: Interval,
        note: ShortNote,
        context: &CommandContext,
    ) -> Result<(TimeOffId, Position)> {
        let time_off_id = TimeOffId::new();
        let command = |day| AvailabilityCommand::BlockTime {
            day,
            time_off_id,
            interval,
            note: note.clone(),
        };
        // Every day gets an event, so a stale cached day conflicts and is decided again.
        let days = days_touched(doctor, interval);
        let position = self.on_days(days, command, Source::Cache, context).await?;
        Ok((time_off_id, position))
    }

    /// Lifts time off `time_off_id` (blocked over `interval`) from every day it was recorded
    /// on, in one statement.
    pub async fn lift_time_off(
        &self,
        doctor: UserId,
        time_off_id: TimeOffId,
        interval: Interval,
        context: &CommandContext,
    ) -> Result<Position> {
        // A day without the block gets no event, so it is never decided on a cached state.
        let command = |_| AvailabilityCommand::UnblockTime { time_off_id };
        let days = days_touched(doctor, interval);
        self.on_days(days, command, Source::Database, context).await
    }

    /// Decides `command` on each of `days` and appends all their events in one statement;
    /// a lost race is decided again on fresh state, a bounded number of times.
    async fn on_days(
        &self,
        days: Vec<DayId>,
        command: impl Fn(DayId) -> AvailabilityCommand,
        mut source: Source,
        context: &CommandContext,
    ) -> Result<Position> {
        for attempt in 1..=MAX_ATTEMPTS {
            let decided = self.decide_days(&days, &command, source, context).await?;
            if decided.rows.is_empty() {
                return Ok(Position::START);
            }
            match insert(&self.pool, &decided.rows).await {
                Ok(positions) => {
                    let appended = decided.loaded.into_iter().zip(&decided.rows);
                    for (((id, loaded), rows), at) in appended.zip(&positions) {
                        let sequence = loaded.sequence + rows.len();
                        self.days.remember(&id, loaded.aggregate, sequence, *at);
                    }
                    return Ok(positions.into_iter().max().unwrap_or_default());
                }
                Err(AppendError::Conflict) => {
                    for day in &days {
                        self.days.forget(&day.to_string());
                    }
                    source = Source::Database;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Database(error)) => return Err(error.into()),
                Err(AppendError::Batch(error)) => {
                    return Err(CommandError::Internal(Box::new(error)));
                }
                Err(AppendError::Serialization(error)) => {
                    return Err(CommandError::Internal(error));
                }
            }
        }
        Err(CommandError::Contention)
    }

    /// Loads each day from `source` and decides `command` on it; the days with events come
    /// back with their rows, in the same order.
    async fn decide_days(
        &self,
        days: &[DayId],
        command: &impl Fn(DayId) -> AvailabilityCommand,
        source: Source,
        context: &CommandContext,
    ) -> Result<Decided> {
        let mut decided = Decided {
            loaded: Vec::new(),
            rows: Vec::new(),
        };
        for day in days {
            let id = day.to_string();
            let mut loaded = self.days.load(&id, source).await?;
            let command = command(*day);
            let metadata = context.metadata(command.command_name());
            let events = decide(&(), &mut loaded.aggregate, command)
                .await
                .map_err(|e| CommandError::Rejected(e.into()))?;
            if events.is_empty() {
                continue;
            }
            let rows = self
                .days
                .rows(&id, loaded.sequence, events, &metadata)
                .map_err(|e| CommandError::Internal(format!("{e:?}").into()))?;
            decided.loaded.push((id, loaded));
            decided.rows.push(rows);
        }
        Ok(decided)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn time_off_reaches_one_utc_date_beyond_each_end() {
        let doctor = UserId::new();
        let interval = Interval::new(
            datetime!(2027-07-01 22:00 UTC),
            datetime!(2027-07-03 00:00 UTC),
        )
        .unwrap();
        let dates: Vec<String> = days_touched(doctor, interval)
            .iter()
            .map(|d| d.date.to_string())
            .collect();
        assert_eq!(
            dates,
            vec!["2027-06-30", "2027-07-01", "2027-07-02", "2027-07-03"]
        );
    }
}
