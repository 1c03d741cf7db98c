//! The availability aggregate: one doctor's open windows and slot reservations on one local day.
//!
//! Aggregate id: [`DayId`] (`"{doctor}:{local date}"`). Keeping each day separate keeps the
//! aggregate small and puts write contention only where it is real: two bookings race only
//! when they are for the same doctor on the same day, and then the event store's primary key
//! lets exactly one of them win; the loser retries, sees the reservation and is refused.
//!
//! Time off is recorded here too, on every day it may touch, so that a booking and the time
//! off that covers it are decided by the same aggregate: whichever commits second sees the
//! other (a booking is refused; time off lists the appointment as a conflict).

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use time::OffsetDateTime;

use crate::calendar::Interval;
use crate::values::{ShortNote, SlotPolicy};
use crate::{
    AppointmentId, DayId, Decide, NamedCommand, ReservationId, TimeOffId, UserId, WindowId,
};

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "doctor_day";

/// Why a slot is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The appointment was cancelled.
    Cancelled,
    /// The appointment moved to another time.
    Rescheduled,
    /// Booking failed after the slot was reserved (compensation).
    BookingFailed,
    /// The sweeper found a reservation no appointment holds.
    Orphaned,
}

/// Why a waitlist hold ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldEnd {
    /// The patient accepted: the hold became the appointment's reservation.
    Accepted,
    /// The patient declined the offer.
    Declined,
    /// The offer was not accepted in time.
    Expired,
    /// The patient left the waitlist while the offer was open.
    Withdrawn,
}

/// A slot held for a waitlisted patient while they decide (see [`crate::waitlist`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The appointment that accepting the offer creates (the only one that may take the time).
    pub appointment_id: AppointmentId,
    /// The patient it is held for.
    pub patient_id: UserId,
    /// When.
    pub interval: Interval,
}

/// A reserved slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The appointment holding it.
    pub appointment_id: AppointmentId,
    /// The patient it is for.
    pub patient_id: UserId,
    /// When.
    pub interval: Interval,
}

/// What can be asked of a doctor-day.
#[derive(Clone, Debug, PartialEq)]
pub enum AvailabilityCommand {
    /// Open windows on this day (all or none). `day_bounds` is the day in the doctor's zone.
    OpenWindows {
        /// Which day.
        day: DayId,
        /// Its bounds in the doctor's zone.
        day_bounds: Interval,
        /// The windows, with fresh ids.
        windows: Vec<(WindowId, Interval)>,
    },
    /// Move or resize a window on this day.
    ChangeWindow {
        /// Its bounds in the doctor's zone.
        day_bounds: Interval,
        /// Which window.
        window_id: WindowId,
        /// New times.
        interval: Interval,
    },
    /// Remove a window that holds no reservation.
    RemoveWindow {
        /// Which window.
        window_id: WindowId,
    },
    /// Reserve a slot for an appointment: inside one window, on its grid, outside time off,
    /// and keeping the buffers from every other reservation (all as `policy` says). With a
    /// `hold`, the reservation takes that waitlist hold, and is refused with
    /// [`AvailabilityError::NoSuchHold`] unless it is still held for this appointment and time.
    Reserve {
        /// Which day.
        day: DayId,
        /// Fresh id.
        reservation_id: ReservationId,
        /// For which appointment.
        appointment_id: AppointmentId,
        /// For which patient.
        patient_id: UserId,
        /// When.
        interval: Interval,
        /// The doctor's buffers and slot interval at the time of booking.
        policy: SlotPolicy,
        /// The waitlist hold (an offer's) this reservation must take, if any.
        hold: Option<ReservationId>,
    },
    /// Give a slot back. Releasing an unknown or already released reservation changes nothing.
    Release {
        /// Which reservation.
        reservation_id: ReservationId,
        /// Why.
        reason: ReleaseReason,
    },
    /// Hold free time for a waitlist offer, under the rules of a reservation: inside one
    /// window, on its grid, outside time off, keeping the buffers from every reservation and
    /// other hold. Only a reservation for `appointment_id` may take the time while it lasts.
    Hold {
        /// Which day.
        day: DayId,
        /// Fresh id (the offer's).
        hold_id: ReservationId,
        /// The appointment that accepting the offer creates.
        appointment_id: AppointmentId,
        /// For which patient.
        patient_id: UserId,
        /// When.
        interval: Interval,
        /// When the offer lapses (informational; the waitlist entry decides expiry).
        expires_at: OffsetDateTime,
        /// The doctor's buffers and slot interval (checked as for a reservation).
        policy: SlotPolicy,
    },
    /// End a hold that was not taken (declined, expired, withdrawn): refused with
    /// [`AvailabilityError::NoSuchHold`] when it is no longer there.
    EndHold {
        /// Which hold.
        hold_id: ReservationId,
        /// Why.
        reason: HoldEnd,
    },
    /// Block time off on this day (the whole span; it may reach into other days). Blocking an
    /// id already blocked here changes nothing.
    BlockTime {
        /// Which day.
        day: DayId,
        /// The time off's id.
        time_off_id: TimeOffId,
        /// The whole time off.
        interval: Interval,
        /// The doctor's note.
        note: ShortNote,
    },
    /// Lift time off from this day. Lifting one not blocked here changes nothing.
    UnblockTime {
        /// The time off's id.
        time_off_id: TimeOffId,
    },
}

/// What happened on a doctor-day. Every event names its doctor and date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AvailabilityEvent {
    /// A window was opened.
    WindowOpened {
        /// Which day.
        day: DayId,
        /// Window id.
        window_id: WindowId,
        /// When.
        interval: Interval,
    },
    /// A window was moved or resized.
    WindowChanged {
        /// Which day.
        day: DayId,
        /// Window id.
        window_id: WindowId,
        /// New times.
        interval: Interval,
    },
    /// A window was removed.
    WindowRemoved {
        /// Which day.
        day: DayId,
        /// Window id.
        window_id: WindowId,
    },
    /// A slot was reserved for an appointment.
    SlotReserved {
        /// Which day.
        day: DayId,
        /// Reservation id.
        reservation_id: ReservationId,
        /// The appointment holding it.
        appointment_id: AppointmentId,
        /// The patient.
        patient_id: UserId,
        /// When.
        interval: Interval,
    },
    /// A reserved slot was given back.
    SlotReleased {
        /// Which day.
        day: DayId,
        /// Reservation id.
        reservation_id: ReservationId,
        /// The appointment that held it.
        appointment_id: AppointmentId,
        /// Why.
        reason: ReleaseReason,
    },
    /// Free time was held for a waitlist offer.
    SlotHeld {
        /// Which day.
        day: DayId,
        /// Hold id (the offer's).
        hold_id: ReservationId,
        /// The appointment that accepting the offer creates.
        appointment_id: AppointmentId,
        /// The patient.
        patient_id: UserId,
        /// When.
        interval: Interval,
        /// When the offer lapses.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// A hold ended: taken by its appointment (recorded right after that appointment's
    /// `SlotReserved`, in the same append), or given back.
    HoldEnded {
        /// Which day.
        day: DayId,
        /// Hold id.
        hold_id: ReservationId,
        /// The appointment it was held for.
        appointment_id: AppointmentId,
        /// Why.
        reason: HoldEnd,
    },
    /// Time off was blocked on this day (the whole span, which may reach into other days).
    TimeOffBlocked {
        /// Which day.
        day: DayId,
        /// The time off's id.
        time_off_id: TimeOffId,
        /// The whole time off.
        interval: Interval,
        /// The doctor's note.
        note: ShortNote,
    },
    /// Time off was lifted from this day.
    TimeOffUnblocked {
        /// Which day.
        day: DayId,
        /// The time off's id.
        time_off_id: TimeOffId,
    },
}

/// Why a doctor-day command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvailabilityError {
    /// A window must lie within the doctor's local day.
    #[error("a window must lie within one day in the doctor's time zone")]
    WindowOutsideDay,
    /// Windows on a day may not overlap (each other, or the ones given together).
    #[error("the window overlaps an existing window")]
    WindowOverlaps,
    /// No window with this id on this day.
    #[error("no such availability window")]
    UnknownWindow,
    /// The window holds a reservation.
    #[error("the window holds a booked appointment")]
    WindowHoldsAppointment,
    /// The change would leave a reservation outside the window.
    #[error("the change would drop a booked appointment")]
    WouldStrandAppointment,
    /// The time is not free: outside every window, or overlapping a reservation.
    #[error("the requested time is not free in the doctor's availability")]
    SlotUnavailable,
    /// The reservation id is used already.
    #[error("this reservation exists already")]
    DuplicateReservation,
    /// The hold was taken or given back already.
    #[error("the held slot is no longer held")]
    NoSuchHold,
    /// The time falls in the doctor's time off.
    #[error("the doctor is not available at this time (time off)")]
    DoctorUnavailable,
    /// The start is not on the doctor's slot grid.
    #[error(
        "must be a multiple of {0} minutes after the start of the doctor's availability window"
    )]
    OffGrid(i64),
}

/// One doctor's day: windows and live reservations.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DoctorDay {
    day: Option<DayId>,
    windows: BTreeMap<WindowId, Interval>,
    reservations: BTreeMap<ReservationId, Reservation>,
    #[serde(default)]
    holds: BTreeMap<ReservationId, Hold>,
    time_off: BTreeMap<TimeOffId, Interval>,
}

impl DoctorDay {
    /// Open windows.
    pub fn windows(&self) -> &BTreeMap<WindowId, Interval> {
        &self.windows
    }

    /// Live reservations.
    pub fn reservations(&self) -> &BTreeMap<ReservationId, Reservation> {
        &self.reservations
    }

    /// Live waitlist holds.
    pub fn holds(&self) -> &BTreeMap<ReservationId, Hold> {
        &self.holds
    }

    /// Time off blocked on this day.
    pub fn time_off(&self) -> &BTreeMap<TimeOffId, Interval> {
        &self.time_off
    }

    fn day(&self, given: Option<DayId>) -> Option<DayId> {
        self.day.or(given)
    }

    fn overlaps_window(&self, interval: &Interval, except: Option<WindowId>) -> bool {
        self.windows
            .iter()
            .any(|(id, w)| Some(*id) != except && w.overlaps(interval))
    }

    /// What occupies time inside `window`: reservations and holds.
    fn reservations_in(&self, window: &Interval) -> impl Iterator<Item = Interval> {
        let reserved = self.reservations.values().map(|r| r.interval);
        let held = self.holds.values().map(|h| h.interval);
        reserved
            .chain(held)
            .filter(move |interval| interval.overlaps(window))
    }

    /// Whether `interval`, widened by `policy`'s buffers, meets time reserved or held for an
    /// appointment other than `appointment_id` (a rescheduled appointment briefly holds its old
    /// and new slot, and an offer's appointment takes its own hold).
    fn taken(
        &self,
        interval: &Interval,
        appointment_id: Option<AppointmentId>,
        policy: &SlotPolicy,
    ) -> bool {
        let other = |id: AppointmentId| Some(id) != appointment_id;
        self.reservations
            .values()
            .any(|r| other(r.appointment_id) && policy.clash(&r.interval, interval))
            || self
                .holds
                .values()
                .any(|h| other(h.appointment_id) && policy.clash(&h.interval, interval))
    }

    /// Where a slot may go under `policy`, apart from what occupies time: outside time off,
    /// inside a window and on its grid.
    fn placeable(&self, interval: &Interval, policy: &SlotPolicy) -> Result<(), AvailabilityError> {
        use AvailabilityError as E;
        if self.time_off.values().any(|t| t.overlaps(interval)) {
            return Err(E::DoctorUnavailable);
        }
        let Some(window) = self.windows.values().find(|w| w.contains(interval)) else {
            return Err(E::SlotUnavailable);
        };
        if !policy.on_grid(window.start, interval.start) {
            return Err(E::OffGrid(policy.slot_interval_minutes().unwrap_or(1)));
        }
        Ok(())
    }
}

type Decided = Result<Vec<AvailabilityEvent>, AvailabilityError>;

/// One method per command, each deciding its events.
impl DoctorDay {
    fn open_windows(
        &self,
        day: DayId,
        day_bounds: Interval,
        windows: &[(WindowId, Interval)],
    ) -> Decided {
        let day = self.day(Some(day)).unwrap_or(day);
        let mut events = Vec::with_capacity(windows.len());
        for (index, (window_id, interval)) in windows.iter().enumerate() {
            if !day_bounds.contains(interval) {
                return Err(AvailabilityError::WindowOutsideDay);
            }
            let overlaps_given = windows[..index].iter().any(|(_, w)| w.overlaps(interval));
            if overlaps_given || self.overlaps_window(interval, None) {
                return Err(AvailabilityError::WindowOverlaps);
            }
            events.push(AvailabilityEvent::WindowOpened {
                day,
                window_id: *window_id,
                interval: *interval,
            });
        }
        Ok(events)
    }

    fn change_window(
        &self,
        day_bounds: Interval,
        window_id: WindowId,
        interval: Interval,
    ) -> Decided {
        use AvailabilityError as E;
        let (Some(day), Some(current)) = (self.day, self.windows.get(&window_id)) else {
            return Err(E::UnknownWindow);
        };
        if !day_bounds.contains(&interval) {
            return Err(E::WindowOutsideDay);
        }
        if self.overlaps_window(&interval, Some(window_id)) {
            return Err(E::WindowOverlaps);
        }
        if self
            .reservations_in(current)
            .any(|r| !interval.contains(&r))
        {
            return Err(E::WouldStrandAppointment);
        }
        if *current == interval {
            return Ok(vec![]);
        }
        Ok(vec![AvailabilityEvent::WindowChanged {
            day,
            window_id,
            interval,
        }])
    }

    fn remove_window(&self, window_id: WindowId) -> Decided {
        let (Some(day), Some(current)) = (self.day, self.windows.get(&window_id)) else {
            return Err(AvailabilityError::UnknownWindow);
        };
        if self.reservations_in(current).next().is_some() {
            return Err(AvailabilityError::WindowHoldsAppointment);
        }
        Ok(vec![AvailabilityEvent::WindowRemoved { day, window_id }])
    }

    fn reserve(
        &self,
        day: DayId,
        reservation: Reservation,
        (id, hold): (ReservationId, Option<ReservationId>),
        policy: SlotPolicy,
    ) -> Decided {
        use AvailabilityError as E;
        let interval = reservation.interval;
        if self.reservations.contains_key(&id) {
            return Err(E::DuplicateReservation);
        }
        // An offer's booking goes through only while its hold does: once the offer was declined,
        // withdrawn or expired (which end the hold), it is no ordinary booking either.
        if let Some(hold) = hold
            && !self.holds.get(&hold).is_some_and(|h| {
                h.appointment_id == reservation.appointment_id && h.interval == interval
            })
        {
            return Err(E::NoSuchHold);
        }
        self.placeable(&interval, &policy)?;
        if self.taken(&interval, Some(reservation.appointment_id), &policy) {
            return Err(E::SlotUnavailable);
        }
        let day = self.day(Some(day)).unwrap_or(day);
        let appointment_id = reservation.appointment_id;
        let mut events = vec![AvailabilityEvent::SlotReserved {
            day,
            reservation_id: id,
            appointment_id,
            patient_id: reservation.patient_id,
            interval,
        }];
        // Accepting a waitlist offer: the appointment takes the time held for it.
        events.extend(
            self.holds
                .iter()
                .filter(|(_, h)| h.appointment_id == appointment_id)
                .map(|(hold_id, h)| AvailabilityEvent::HoldEnded {
                    day,
                    hold_id: *hold_id,
                    appointment_id: h.appointment_id,
                    reason: HoldEnd::Accepted,
                }),
        );
        Ok(events)
    }

    fn hold(
        &self,
        day: DayId,
        hold_id: ReservationId,
        hold: Hold,
        expires_at: OffsetDateTime,
        policy: SlotPolicy,
    ) -> Decided {
        if self.reservations.contains_key(&hold_id) || self.holds.contains_key(&hold_id) {
            return Err(AvailabilityError::DuplicateReservation);
        }
        self.placeable(&hold.interval, &policy)?;
        if self.taken(&hold.interval, None, &policy) {
            return Err(AvailabilityError::SlotUnavailable);
        }
        Ok(vec![AvailabilityEvent::SlotHeld {
            day: self.day(Some(day)).unwrap_or(day),
            hold_id,
            appointment_id: hold.appointment_id,
            patient_id: hold.patient_id,
            interval: hold.interval,
            expires_at,
        }])
    }

    fn end_hold(&self, hold_id: ReservationId, reason: HoldEnd) -> Decided {
        match (self.day, self.holds.get(&hold_id)) {
            (Some(day), Some(hold)) => Ok(vec![AvailabilityEvent::HoldEnded {
                day,
                hold_id,
                appointment_id: hold.appointment_id,
                reason,
            }]),
            _ => Err(AvailabilityError::NoSuchHold),
        }
    }

    fn block_time(
        &self,
        day: DayId,
        time_off_id: TimeOffId,
        interval: Interval,
        note: ShortNote,
    ) -> Decided {
        if self.time_off.contains_key(&time_off_id) {
            return Ok(vec![]);
        }
        Ok(vec![AvailabilityEvent::TimeOffBlocked {
            day: self.day(Some(day)).unwrap_or(day),
            time_off_id,
            interval,
            note,
        }])
    }

    fn unblock_time(&self, time_off_id: TimeOffId) -> Decided {
        match (self.day, self.time_off.contains_key(&time_off_id)) {
            (Some(day), true) => Ok(vec![AvailabilityEvent::TimeOffUnblocked {
                day,
                time_off_id,
            }]),
            _ => Ok(vec![]),
        }
    }

    fn release(&self, reservation_id: ReservationId, reason: ReleaseReason) -> Decided {
        match (self.day, self.reservations.get(&reservation_id)) {
            (Some(day), Some(reservation)) => Ok(vec![AvailabilityEvent::SlotReleased {
                day,
                reservation_id,
                appointment_id: reservation.appointment_id,
                reason,
            }]),
            _ => Ok(vec![]),
        }
    }
}

impl Decide for DoctorDay {
    fn decide(&self, command: AvailabilityCommand) -> Decided {
        match command {
            AvailabilityCommand::OpenWindows {
                day,
                day_bounds,
                windows,
            } => self.open_windows(day, day_bounds, &windows),
            AvailabilityCommand::ChangeWindow {
                day_bounds,
                window_id,
                interval,
            } => self.change_window(day_bounds, window_id, interval),
            AvailabilityCommand::RemoveWindow { window_id } => self.remove_window(window_id),
            AvailabilityCommand::Reserve {
                day,
                reservation_id,
                appointment_id,
                patient_id,
                interval,
                policy,
                hold,
            } => {
                let reservation = Reservation {
                    appointment_id,
                    patient_id,
                    interval,
                };
                self.reserve(day, reservation, (reservation_id, hold), policy)
            }
            AvailabilityCommand::Release {
                reservation_id,
                reason,
            } => self.release(reservation_id, reason),
            AvailabilityCommand::Hold {
                day,
                hold_id,
                appointment_id,
                patient_id,
                interval,
                expires_at,
                policy,
            } => self.hold(
                day,
                hold_id,
                Hold {
                    appointment_id,
                    patient_id,
                    interval,
                },
                expires_at,
                policy,
            ),
            AvailabilityCommand::EndHold { hold_id, reason } => self.end_hold(hold_id, reason),
            AvailabilityCommand::BlockTime {
                day,
                time_off_id,
                interval,
                note,
            } => self.block_time(day, time_off_id, interval, note),
            AvailabilityCommand::UnblockTime { time_off_id } => self.unblock_time(time_off_id),
        }
    }
}

impl Aggregate for DoctorDay {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = AvailabilityCommand;
    type Event = AvailabilityEvent;
    type Error = AvailabilityError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AvailabilityCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AvailabilityError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: AvailabilityEvent) {
        match event {
            AvailabilityEvent::WindowOpened {
                day,
                window_id,
                interval,
            }
            | AvailabilityEvent::WindowChanged {
                day,
                window_id,
                interval,
            } => {
                self.day = Some(day);
                self.windows.insert(window_id, interval);
            }
            AvailabilityEvent::WindowRemoved { window_id, .. } => {
                self.windows.remove(&window_id);
            }
            AvailabilityEvent::SlotReserved {
                day,
                reservation_id,
                appointment_id,
                patient_id,
                interval,
            } => {
                self.day = Some(day);
                self.reservations.insert(
                    reservation_id,
                    Reservation {
                        appointment_id,
                        patient_id,
                        interval,
                    },
                );
            }
            AvailabilityEvent::SlotReleased { reservation_id, .. } => {
                self.reservations.remove(&reservation_id);
            }
            held @ AvailabilityEvent::SlotHeld { .. } => self.apply_held(held),
            AvailabilityEvent::HoldEnded { hold_id, .. } => {
                self.holds.remove(&hold_id);
            }
            AvailabilityEvent::TimeOffBlocked {
                day,
                time_off_id,
                interval,
                ..
            } => {
                self.day = Some(day);
                self.time_off.insert(time_off_id, interval);
            }
            AvailabilityEvent::TimeOffUnblocked { time_off_id, .. } => {
                self.time_off.remove(&time_off_id);
            }
        }
    }
}

impl DoctorDay {
    fn apply_held(&mut self, event: AvailabilityEvent) {
        if let AvailabilityEvent::SlotHeld {
            day,
            hold_id,
            appointment_id,
            patient_id,
            interval,
            ..
        } = event
        {
            self.day = Some(day);
            self.holds.insert(
                hold_id,
                Hold {
                    appointment_id,
                    patient_id,
                    interval,
                },
            );
        }
    }
}

impl NamedCommand for AvailabilityCommand {
    fn command_name(&self) -> &'static str {
        match self {
            AvailabilityCommand::OpenWindows { .. } => "availability.open_windows",
            AvailabilityCommand::ChangeWindow { .. } => "availability.change_window",
            AvailabilityCommand::RemoveWindow { .. } => "availability.remove_window",
            AvailabilityCommand::Reserve { .. } => "availability.reserve",
            AvailabilityCommand::Release { .. } => "availability.release",
            AvailabilityCommand::Hold { .. } => "availability.hold",
            AvailabilityCommand::EndHold { .. } => "availability.end_hold",
            AvailabilityCommand::BlockTime { .. } => "availability.block_time",
            AvailabilityCommand::UnblockTime { .. } => "availability.unblock_time",
        }
    }
}

impl DomainEvent for AvailabilityEvent {
    fn event_type(&self) -> String {
        match self {
            AvailabilityEvent::WindowOpened { .. } => "WindowOpened",
            AvailabilityEvent::WindowChanged { .. } => "WindowChanged",
            AvailabilityEvent::WindowRemoved { .. } => "WindowRemoved",
            AvailabilityEvent::SlotReserved { .. } => "SlotReserved",
            AvailabilityEvent::SlotReleased { .. } => "SlotReleased",
            AvailabilityEvent::SlotHeld { .. } => "SlotHeld",
            AvailabilityEvent::HoldEnded { .. } => "HoldEnded",
            AvailabilityEvent::TimeOffBlocked { .. } => "TimeOffBlocked",
            AvailabilityEvent::TimeOffUnblocked { .. } => "TimeOffUnblocked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use time::macros::{date, datetime};

    use super::*;

    fn day() -> DayId {
        DayId::new(UserId::from(uuid::Uuid::nil()), date!(2027 - 06 - 01))
    }

    fn bounds() -> Interval {
        at(0, 24 * 60)
    }

    /// Minutes after midnight UTC on 2027-06-01.
    fn at(from: i64, to: i64) -> Interval {
        let midnight = datetime!(2027-06-01 00:00 UTC);
        Interval::new(
            midnight + time::Duration::minutes(from),
            midnight + time::Duration::minutes(to),
        )
        .unwrap()
    }

    fn window() -> WindowId {
        WindowId::from(uuid::Uuid::from_u128(1))
    }

    fn opened(from: i64, to: i64) -> AvailabilityEvent {
        AvailabilityEvent::WindowOpened {
            day: day(),
            window_id: window(),
            interval: at(from, to),
        }
    }

    fn reservation() -> ReservationId {
        ReservationId::from(uuid::Uuid::from_u128(7))
    }

    fn appointment() -> AppointmentId {
        AppointmentId::from(uuid::Uuid::from_u128(8))
    }

    fn patient() -> UserId {
        UserId::from(uuid::Uuid::from_u128(9))
    }

    fn reserve(from: i64, to: i64) -> AvailabilityCommand {
        AvailabilityCommand::Reserve {
            day: day(),
            reservation_id: reservation(),
            appointment_id: appointment(),
            patient_id: patient(),
            interval: at(from, to),
            policy: SlotPolicy::default(),
            hold: None,
        }
    }

    fn reserved(from: i64, to: i64) -> AvailabilityEvent {
        AvailabilityEvent::SlotReserved {
            day: day(),
            reservation_id: reservation(),
            appointment_id: appointment(),
            patient_id: patient(),
            interval: at(from, to),
        }
    }

    fn framework() -> TestFramework<DoctorDay> {
        TestFramework::with(())
    }

    fn open(windows: Vec<(WindowId, Interval)>) -> AvailabilityCommand {
        AvailabilityCommand::OpenWindows {
            day: day(),
            day_bounds: bounds(),
            windows,
        }
    }

    #[test]
    fn opening_windows_records_each() {
        let second = WindowId::from(uuid::Uuid::from_u128(2));
        framework()
            .given_no_previous_events()
            .when(open(vec![(window(), at(540, 720)), (second, at(780, 900))]))
            .then_expect_events(vec![
                opened(540, 720),
                AvailabilityEvent::WindowOpened {
                    day: day(),
                    window_id: second,
                    interval: at(780, 900),
                },
            ]);
    }

    #[test]
    fn a_window_outside_the_day_is_refused() {
        framework()
            .given_no_previous_events()
            .when(open(vec![(window(), at(23 * 60, 25 * 60))]))
            .then_expect_error(AvailabilityError::WindowOutsideDay);
    }

    #[test]
    fn a_window_overlapping_an_existing_one_is_refused() {
        framework()
            .given(vec![opened(540, 720)])
            .when(open(vec![(WindowId::new(), at(700, 800))]))
            .then_expect_error(AvailabilityError::WindowOverlaps);
    }

    #[test]
    fn windows_given_together_may_not_overlap_each_other() {
        framework()
            .given_no_previous_events()
            .when(open(vec![
                (WindowId::new(), at(540, 720)),
                (WindowId::new(), at(600, 660)),
            ]))
            .then_expect_error(AvailabilityError::WindowOverlaps);
    }

    #[test]
    fn a_slot_inside_a_window_is_reserved() {
        framework()
            .given(vec![opened(540, 720)])
            .when(reserve(540, 570))
            .then_expect_events(vec![reserved(540, 570)]);
    }

    #[test]
    fn a_slot_outside_every_window_is_unavailable() {
        framework()
            .given(vec![opened(540, 720)])
            .when(reserve(700, 730))
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn an_overlapping_slot_is_unavailable() {
        let mut second = reserve(555, 585);
        if let AvailabilityCommand::Reserve { reservation_id, .. } = &mut second {
            *reservation_id = ReservationId::new();
        }
        if let AvailabilityCommand::Reserve { appointment_id, .. } = &mut second {
            *appointment_id = AppointmentId::new();
        }
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(second)
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn an_appointment_may_overlap_its_own_reservation_while_rescheduling() {
        let moved = AvailabilityCommand::Reserve {
            day: day(),
            reservation_id: ReservationId::from(uuid::Uuid::from_u128(70)),
            appointment_id: appointment(),
            patient_id: patient(),
            interval: at(555, 585),
            policy: SlotPolicy::default(),
            hold: None,
        };
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(moved)
            .then_expect_events(vec![AvailabilityEvent::SlotReserved {
                day: day(),
                reservation_id: ReservationId::from(uuid::Uuid::from_u128(70)),
                appointment_id: appointment(),
                patient_id: patient(),
                interval: at(555, 585),
            }]);
    }

    #[test]
    fn reserving_with_a_used_id_is_refused() {
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(reserve(600, 630))
            .then_expect_error(AvailabilityError::DuplicateReservation);
    }

    #[test]
    fn a_released_slot_can_be_reserved_again() {
        let released = AvailabilityEvent::SlotReleased {
            day: day(),
            reservation_id: reservation(),
            appointment_id: appointment(),
            reason: ReleaseReason::Cancelled,
        };
        let mut again = reserve(540, 570);
        let fresh = ReservationId::new();
        if let AvailabilityCommand::Reserve { reservation_id, .. } = &mut again {
            *reservation_id = fresh;
        }
        let mut expected = reserved(540, 570);
        if let AvailabilityEvent::SlotReserved { reservation_id, .. } = &mut expected {
            *reservation_id = fresh;
        }
        framework()
            .given(vec![opened(540, 720), reserved(540, 570), released])
            .when(again)
            .then_expect_events(vec![expected]);
    }

    #[test]
    fn releasing_records_the_reason() {
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(AvailabilityCommand::Release {
                reservation_id: reservation(),
                reason: ReleaseReason::Cancelled,
            })
            .then_expect_events(vec![AvailabilityEvent::SlotReleased {
                day: day(),
                reservation_id: reservation(),
                appointment_id: appointment(),
                reason: ReleaseReason::Cancelled,
            }]);
    }

    #[test]
    fn releasing_an_unknown_reservation_changes_nothing() {
        framework()
            .given(vec![opened(540, 720)])
            .when(AvailabilityCommand::Release {
                reservation_id: reservation(),
                reason: ReleaseReason::Orphaned,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn changing_a_window_records_the_new_times() {
        framework()
            .given(vec![opened(540, 720)])
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(600, 780),
            })
            .then_expect_events(vec![AvailabilityEvent::WindowChanged {
                day: day(),
                window_id: window(),
                interval: at(600, 780),
            }]);
    }

    #[test]
    fn changing_a_window_may_not_drop_a_reservation() {
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(560, 720),
            })
            .then_expect_error(AvailabilityError::WouldStrandAppointment);
    }

    #[test]
    fn changing_a_window_into_another_is_refused() {
        let other = AvailabilityEvent::WindowOpened {
            day: day(),
            window_id: WindowId::new(),
            interval: at(800, 900),
        };
        framework()
            .given(vec![opened(540, 720), other])
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(540, 810),
            })
            .then_expect_error(AvailabilityError::WindowOverlaps);
    }

    #[test]
    fn changing_a_window_beyond_the_day_is_refused() {
        framework()
            .given(vec![opened(540, 720)])
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(1400, 1500),
            })
            .then_expect_error(AvailabilityError::WindowOutsideDay);
    }

    #[test]
    fn changing_an_unknown_window_is_refused() {
        framework()
            .given_no_previous_events()
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(540, 600),
            })
            .then_expect_error(AvailabilityError::UnknownWindow);
    }

    #[test]
    fn a_change_to_the_same_times_records_nothing() {
        framework()
            .given(vec![opened(540, 720)])
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(540, 720),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn removing_an_empty_window_records_it() {
        framework()
            .given(vec![opened(540, 720)])
            .when(AvailabilityCommand::RemoveWindow {
                window_id: window(),
            })
            .then_expect_events(vec![AvailabilityEvent::WindowRemoved {
                day: day(),
                window_id: window(),
            }]);
    }

    #[test]
    fn removing_a_window_with_a_reservation_is_refused() {
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(AvailabilityCommand::RemoveWindow {
                window_id: window(),
            })
            .then_expect_error(AvailabilityError::WindowHoldsAppointment);
    }

    #[test]
    fn removing_an_unknown_window_is_refused() {
        framework()
            .given_no_previous_events()
            .when(AvailabilityCommand::RemoveWindow {
                window_id: window(),
            })
            .then_expect_error(AvailabilityError::UnknownWindow);
    }

    fn hold_at(from: i64, to: i64) -> AvailabilityCommand {
        AvailabilityCommand::Hold {
            day: day(),
            hold_id: ReservationId::from(uuid::Uuid::from_u128(50)),
            appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
            patient_id: UserId::from(uuid::Uuid::from_u128(51)),
            interval: at(from, to),
            expires_at: datetime!(2027-05-01 00:00 UTC),
            policy: SlotPolicy::default(),
        }
    }

    fn held(from: i64, to: i64) -> AvailabilityEvent {
        AvailabilityEvent::SlotHeld {
            day: day(),
            hold_id: ReservationId::from(uuid::Uuid::from_u128(50)),
            appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
            patient_id: UserId::from(uuid::Uuid::from_u128(51)),
            interval: at(from, to),
            expires_at: datetime!(2027-05-01 00:00 UTC),
        }
    }

    fn with_policy(command: AvailabilityCommand, policy: SlotPolicy) -> AvailabilityCommand {
        match command {
            AvailabilityCommand::Reserve {
                day,
                reservation_id,
                appointment_id,
                patient_id,
                interval,
                hold,
                ..
            } => AvailabilityCommand::Reserve {
                day,
                reservation_id,
                appointment_id,
                patient_id,
                interval,
                policy,
                hold,
            },
            other => other,
        }
    }

    fn other_reserved(from: i64, to: i64) -> AvailabilityEvent {
        AvailabilityEvent::SlotReserved {
            day: day(),
            reservation_id: ReservationId::from(uuid::Uuid::from_u128(71)),
            appointment_id: AppointmentId::from(uuid::Uuid::from_u128(72)),
            patient_id: patient(),
            interval: at(from, to),
        }
    }

    fn time_off() -> TimeOffId {
        TimeOffId::from(uuid::Uuid::from_u128(40))
    }

    fn blocked(from: i64, to: i64) -> AvailabilityEvent {
        AvailabilityEvent::TimeOffBlocked {
            day: day(),
            time_off_id: time_off(),
            interval: at(from, to),
            note: ShortNote::parse("Conference").unwrap(),
        }
    }

    #[test]
    fn free_time_is_held_and_then_reserved_for_nobody_else() {
        framework()
            .given(vec![opened(540, 720)])
            .when(hold_at(540, 570))
            .then_expect_events(vec![held(540, 570)]);
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(reserve(555, 585))
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn reserved_or_held_time_is_not_held() {
        framework()
            .given(vec![opened(540, 720), reserved(540, 570)])
            .when(hold_at(560, 590))
            .then_expect_error(AvailabilityError::SlotUnavailable);
        framework()
            .given(vec![opened(540, 720)])
            .when(hold_at(700, 730))
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn the_offered_appointment_takes_its_hold() {
        let id = AppointmentId::from(uuid::Uuid::from_u128(50));
        let reservation = ReservationId::from(uuid::Uuid::from_u128(60));
        let patient = UserId::from(uuid::Uuid::from_u128(51));
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(AvailabilityCommand::Reserve {
                day: day(),
                reservation_id: reservation,
                appointment_id: id,
                patient_id: patient,
                interval: at(540, 570),
                policy: SlotPolicy::default(),
                hold: Some(ReservationId::from(uuid::Uuid::from_u128(50))),
            })
            .then_expect_events(vec![
                AvailabilityEvent::SlotReserved {
                    day: day(),
                    reservation_id: reservation,
                    appointment_id: id,
                    patient_id: patient,
                    interval: at(540, 570),
                },
                AvailabilityEvent::HoldEnded {
                    day: day(),
                    hold_id: ReservationId::from(uuid::Uuid::from_u128(50)),
                    appointment_id: id,
                    reason: HoldEnd::Accepted,
                },
            ]);
    }

    #[test]
    fn an_offers_booking_is_refused_once_its_hold_ended() {
        let ended = AvailabilityEvent::HoldEnded {
            day: day(),
            hold_id: ReservationId::from(uuid::Uuid::from_u128(50)),
            appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
            reason: HoldEnd::Expired,
        };
        let take = AvailabilityCommand::Reserve {
            day: day(),
            reservation_id: ReservationId::from(uuid::Uuid::from_u128(60)),
            appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
            patient_id: UserId::from(uuid::Uuid::from_u128(51)),
            interval: at(540, 570),
            policy: SlotPolicy::default(),
            hold: Some(ReservationId::from(uuid::Uuid::from_u128(50))),
        };
        // The time is free again, but the offer's booking needed the hold.
        framework()
            .given(vec![opened(540, 720), held(540, 570), ended])
            .when(take.clone())
            .then_expect_error(AvailabilityError::NoSuchHold);
        // Nor may it take the hold for another time.
        let elsewhere = match take {
            AvailabilityCommand::Reserve { hold, .. } => AvailabilityCommand::Reserve {
                day: day(),
                reservation_id: ReservationId::from(uuid::Uuid::from_u128(60)),
                appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
                patient_id: UserId::from(uuid::Uuid::from_u128(51)),
                interval: at(600, 630),
                policy: SlotPolicy::default(),
                hold,
            },
            other => other,
        };
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(elsewhere)
            .then_expect_error(AvailabilityError::NoSuchHold);
    }

    #[test]
    fn an_ended_hold_cannot_end_again_and_a_held_window_stays() {
        let ended = AvailabilityEvent::HoldEnded {
            day: day(),
            hold_id: ReservationId::from(uuid::Uuid::from_u128(50)),
            appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
            reason: HoldEnd::Declined,
        };
        framework()
            .given(vec![opened(540, 720), held(540, 570), ended])
            .when(AvailabilityCommand::EndHold {
                hold_id: ReservationId::from(uuid::Uuid::from_u128(50)),
                reason: HoldEnd::Expired,
            })
            .then_expect_error(AvailabilityError::NoSuchHold);
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(AvailabilityCommand::RemoveWindow {
                window_id: window(),
            })
            .then_expect_error(AvailabilityError::WindowHoldsAppointment);
    }

    #[test]
    fn a_slot_inside_the_buffer_of_another_is_unavailable() {
        let policy = SlotPolicy::parse(10, 15, None).unwrap();
        framework()
            .given(vec![opened(540, 720), other_reserved(540, 570)])
            .when(with_policy(reserve(580, 610), policy))
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn a_slot_that_keeps_both_buffers_is_reserved() {
        let policy = SlotPolicy::parse(10, 15, None).unwrap();
        framework()
            .given(vec![opened(540, 720), other_reserved(540, 570)])
            .when(with_policy(reserve(595, 625), policy))
            .then_expect_events(vec![reserved(595, 625)]);
    }

    #[test]
    fn a_start_off_the_grid_is_refused() {
        let policy = SlotPolicy::parse(0, 0, Some(20)).unwrap();
        framework()
            .given(vec![opened(540, 720)])
            .when(with_policy(reserve(550, 580), policy))
            .then_expect_error(AvailabilityError::OffGrid(20));
    }

    #[test]
    fn a_start_on_the_grid_is_reserved() {
        let policy = SlotPolicy::parse(0, 0, Some(20)).unwrap();
        framework()
            .given(vec![opened(540, 720)])
            .when(with_policy(reserve(560, 590), policy))
            .then_expect_events(vec![reserved(560, 590)]);
    }

    #[test]
    fn a_slot_in_time_off_is_refused() {
        framework()
            .given(vec![opened(540, 720), blocked(600, 2000)])
            .when(reserve(630, 660))
            .then_expect_error(AvailabilityError::DoctorUnavailable);
    }

    #[test]
    fn blocking_time_off_records_it_once() {
        let block = AvailabilityCommand::BlockTime {
            day: day(),
            time_off_id: time_off(),
            interval: at(600, 2000),
            note: ShortNote::parse("Conference").unwrap(),
        };
        framework()
            .given_no_previous_events()
            .when(block.clone())
            .then_expect_events(vec![blocked(600, 2000)]);
        framework()
            .given(vec![blocked(600, 2000)])
            .when(block)
            .then_expect_events(vec![]);
    }

    #[test]
    fn time_off_may_cover_an_existing_reservation() {
        framework()
            .given(vec![opened(540, 720), reserved(630, 660)])
            .when(AvailabilityCommand::BlockTime {
                day: day(),
                time_off_id: time_off(),
                interval: at(600, 2000),
                note: ShortNote::parse("Conference").unwrap(),
            })
            .then_expect_events(vec![blocked(600, 2000)]);
    }

    #[test]
    fn lifted_time_off_frees_the_time() {
        let lifted = AvailabilityEvent::TimeOffUnblocked {
            day: day(),
            time_off_id: time_off(),
        };
        framework()
            .given(vec![opened(540, 720), blocked(600, 2000), lifted])
            .when(reserve(630, 660))
            .then_expect_events(vec![reserved(630, 660)]);
    }

    #[test]
    fn lifting_time_off_records_it_where_it_was_blocked() {
        framework()
            .given(vec![blocked(600, 2000)])
            .when(AvailabilityCommand::UnblockTime {
                time_off_id: time_off(),
            })
            .then_expect_events(vec![AvailabilityEvent::TimeOffUnblocked {
                day: day(),
                time_off_id: time_off(),
            }]);
        framework()
            .given_no_previous_events()
            .when(AvailabilityCommand::UnblockTime {
                time_off_id: time_off(),
            })
            .then_expect_events(vec![]);
    }

    fn hold_with(from: i64, to: i64, policy: SlotPolicy) -> AvailabilityCommand {
        match hold_at(from, to) {
            AvailabilityCommand::Hold {
                day,
                hold_id,
                appointment_id,
                patient_id,
                interval,
                expires_at,
                ..
            } => AvailabilityCommand::Hold {
                day,
                hold_id,
                appointment_id,
                patient_id,
                interval,
                expires_at,
                policy,
            },
            other => other,
        }
    }

    #[test]
    fn a_hold_obeys_time_off_the_grid_and_the_buffers() {
        framework()
            .given(vec![opened(540, 720), blocked(600, 2000)])
            .when(hold_at(630, 660))
            .then_expect_error(AvailabilityError::DoctorUnavailable);
        framework()
            .given(vec![opened(540, 720)])
            .when(hold_with(
                550,
                580,
                SlotPolicy::parse(0, 0, Some(20)).unwrap(),
            ))
            .then_expect_error(AvailabilityError::OffGrid(20));
        framework()
            .given(vec![opened(540, 720), other_reserved(540, 570)])
            .when(hold_with(
                580,
                610,
                SlotPolicy::parse(10, 15, None).unwrap(),
            ))
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn a_reservation_keeps_the_buffers_from_a_hold_for_another() {
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(with_policy(
                reserve(580, 610),
                SlotPolicy::parse(10, 15, None).unwrap(),
            ))
            .then_expect_error(AvailabilityError::SlotUnavailable);
    }

    #[test]
    fn a_window_cannot_shrink_over_a_hold() {
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(AvailabilityCommand::ChangeWindow {
                day_bounds: bounds(),
                window_id: window(),
                interval: at(560, 720),
            })
            .then_expect_error(AvailabilityError::WouldStrandAppointment);
    }

    #[test]
    fn time_off_over_a_hold_is_recorded_and_the_hold_cannot_be_taken() {
        framework()
            .given(vec![opened(540, 720), held(540, 570)])
            .when(AvailabilityCommand::BlockTime {
                day: day(),
                time_off_id: time_off(),
                interval: at(500, 2000),
                note: ShortNote::parse("Conference").unwrap(),
            })
            .then_expect_events(vec![blocked(500, 2000)]);
        framework()
            .given(vec![opened(540, 720), held(540, 570), blocked(500, 2000)])
            .when(AvailabilityCommand::Reserve {
                day: day(),
                reservation_id: ReservationId::from(uuid::Uuid::from_u128(60)),
                appointment_id: AppointmentId::from(uuid::Uuid::from_u128(50)),
                patient_id: UserId::from(uuid::Uuid::from_u128(51)),
                interval: at(540, 570),
                policy: SlotPolicy::default(),
                hold: Some(ReservationId::from(uuid::Uuid::from_u128(50))),
            })
            .then_expect_error(AvailabilityError::DoctorUnavailable);
    }
}
