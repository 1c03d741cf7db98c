//! The appointment aggregate: a consultation's lifecycle.
//!
//! ```text
//! pending ──confirm(doctor)──► confirmed ──complete / no_show(doctor, once started)──► done
//!    │                            │
//!    └──reschedule(either)──► rescheduled ──confirm(the other party)──► confirmed
//! any of pending / confirmed / rescheduled ──cancel(either)──► cancelled
//! ```
//!
//! Aggregate id: [`AppointmentId`]. The appointment records which slot reservation it holds
//! (doctor-day and reservation id); the booking flow in `telemed-commands` keeps the two in step.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::calendar::Interval;
use crate::values::FreeText;
use crate::{DayId, Decide, NamedCommand, ReservationId, UserId};

/// The aggregate type under which these events are stored.
pub const AGGREGATE_TYPE: &str = "appointment";

/// Which side of the consultation acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The doctor.
    Doctor,
    /// The patient.
    Patient,
}

impl Party {
    /// The other side.
    pub fn other(self) -> Party {
        match self {
            Party::Doctor => Party::Patient,
            Party::Patient => Party::Doctor,
        }
    }
}

/// Where an appointment is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Requested by the patient; the doctor has not confirmed.
    Pending,
    /// Agreed by both.
    Confirmed,
    /// Moved to a new time; waits for the other party's confirmation.
    Rescheduled,
    /// Called off.
    Cancelled,
    /// Took place.
    Completed,
    /// The patient did not come.
    NoShow,
}

impl Status {
    /// The name used in the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Rescheduled => "rescheduled",
            Status::Cancelled => "cancelled",
            Status::Completed => "completed",
            Status::NoShow => "no_show",
        }
    }

    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Confirmed,
        Status::Rescheduled,
        Status::Cancelled,
        Status::Completed,
        Status::NoShow,
    ];

    /// The status named `name` in the API, if any.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the appointment can still change.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            Status::Pending | Status::Confirmed | Status::Rescheduled
        )
    }
}

/// The slot reservation an appointment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRef {
    /// The doctor-day aggregate holding it.
    pub day: DayId,
    /// The reservation on that day.
    pub reservation_id: ReservationId,
}

/// What can be asked of an appointment.
#[derive(Clone, Debug, PartialEq)]
pub enum AppointmentCommand {
    /// A patient requests a consultation in a slot already reserved for it.
    Request {
        /// The doctor.
        doctor_id: UserId,
        /// The patient.
        patient_id: UserId,
        /// When.
        interval: Interval,
        /// Why the patient consults.
        reason: FreeText,
        /// The reserved slot.
        slot: SlotRef,
        /// Now.
        at: OffsetDateTime,
    },
    /// Agree to the current time.
    Confirm {
        /// Who.
        by: Party,
        /// Now.
        at: OffsetDateTime,
    },
    /// Move to a new time (already reserved).
    Reschedule {
        /// New time.
        interval: Interval,
        /// Why.
        reason: FreeText,
        /// The new slot.
        slot: SlotRef,
        /// Who.
        by: Party,
        /// Now.
        at: OffsetDateTime,
    },
    /// Call it off.
    Cancel {
        /// Who.
        by: Party,
        /// Why.
        reason: FreeText,
        /// Now.
        at: OffsetDateTime,
    },
    /// It took place.
    Complete {
        /// Who.
        by: Party,
        /// Now.
        at: OffsetDateTime,
    },
    /// The patient did not come.
    MarkNoShow {
        /// Who.
        by: Party,
        /// Now.
        at: OffsetDateTime,
    },
}

/// What happened to an appointment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AppointmentEvent {
    /// A patient requested a consultation.
    AppointmentRequested {
        /// The doctor.
        doctor_id: UserId,
        /// The patient.
        patient_id: UserId,
        /// When.
        interval: Interval,
        /// Why.
        reason: FreeText,
        /// The reserved slot.
        slot: SlotRef,
        /// When it was requested.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Confirmed by `by`.
    AppointmentConfirmed {
        /// Who.
        by: Party,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Moved from `previous` to `interval` by `by`.
    AppointmentRescheduled {
        /// The time before.
        previous: Interval,
        /// The slot before.
        previous_slot: SlotRef,
        /// The new time.
        interval: Interval,
        /// The new slot.
        slot: SlotRef,
        /// Why.
        reason: FreeText,
        /// Who.
        by: Party,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Called off by `by`.
    AppointmentCancelled {
        /// Who.
        by: Party,
        /// Why.
        reason: FreeText,
        /// The slot to give back.
        slot: SlotRef,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Took place.
    AppointmentCompleted {
        /// Who recorded it.
        by: Party,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The patient did not come.
    AppointmentMarkedNoShow {
        /// Who recorded it.
        by: Party,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// Why an appointment command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppointmentError {
    /// `Request` on an existing appointment.
    #[error("this appointment exists already")]
    AlreadyRequested,
    /// Any other command on an appointment that does not exist.
    #[error("no such appointment")]
    NotFound,
    /// This party may not do this (e.g. a patient confirming their own request).
    #[error("{0}")]
    NotAllowed(NotAllowed),
    /// Not possible in the current status (e.g. confirming a cancelled appointment).
    #[error("cannot {} an appointment that is {}", action.as_str(), status.as_str())]
    InvalidTransition {
        /// Current status.
        status: Status,
        /// The attempted action.
        action: Action,
    },
    /// Completion or no-show before the appointment has started.
    #[error("the appointment has not started yet")]
    NotStarted,
    /// Rescheduling to the time it already has.
    #[error("the new time is the current time")]
    SameTime,
}

/// Why a party may not do what it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// The patient tried to confirm their own request.
    #[error("only the doctor can confirm a request")]
    OnlyTheDoctorConfirmsARequest,
    /// The party who proposed a new time tried to confirm it.
    #[error("a reschedule is confirmed by the other party, not the one who proposed it")]
    TheProposerCannotConfirm,
    /// The patient tried to record the completion or a no-show.
    #[error("only the doctor can record the outcome")]
    OnlyTheDoctorRecordsTheOutcome,
}

/// What a party tried to do to an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Confirm it.
    Confirm,
    /// Move it.
    Reschedule,
    /// Cancel it.
    Cancel,
    /// Record that it took place.
    Complete,
    /// Record that the patient did not come.
    MarkNoShow,
}

impl Action {
    /// The action as a verb, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Reschedule => "reschedule",
            Action::Cancel => "cancel",
            Action::Complete => "complete",
            Action::MarkNoShow => "mark as no-show",
        }
    }
}

/// The appointment's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppointmentState {
    /// The doctor.
    pub doctor_id: UserId,
    /// The patient.
    pub patient_id: UserId,
    /// When.
    pub interval: Interval,
    /// Where in the lifecycle.
    pub status: Status,
    /// Who must confirm next, if anyone.
    pub awaiting: Option<Party>,
    /// The slot it holds.
    pub slot: SlotRef,
}

/// The appointment aggregate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Appointment {
    state: Option<AppointmentState>,
}

impl Appointment {
    /// The current state, if requested.
    pub fn state(&self) -> Option<&AppointmentState> {
        self.state.as_ref()
    }
}

fn transition(status: Status, action: Action) -> AppointmentError {
    AppointmentError::InvalidTransition { status, action }
}

type Decided = Result<Vec<AppointmentEvent>, AppointmentError>;

fn confirm(state: &AppointmentState, by: Party, at: OffsetDateTime) -> Decided {
    match (state.status, state.awaiting) {
        (Status::Pending | Status::Rescheduled, Some(awaiting)) if awaiting == by => {
            Ok(vec![AppointmentEvent::AppointmentConfirmed { by, at }])
        }
        (Status::Pending, _) => Err(AppointmentError::NotAllowed(
            NotAllowed::OnlyTheDoctorConfirmsARequest,
        )),
        (Status::Rescheduled, _) => Err(AppointmentError::NotAllowed(
            NotAllowed::TheProposerCannotConfirm,
        )),
        (status, _) => Err(transition(status, Action::Confirm)),
    }
}

/// The new time, its slot and why; who; when.
fn reschedule(
    state: &AppointmentState,
    (interval, slot, reason): (Interval, SlotRef, FreeText),
    by: Party,
    at: OffsetDateTime,
) -> Decided {
    if !state.status.is_open() {
        return Err(transition(state.status, Action::Reschedule));
    }
    if interval == state.interval {
        return Err(AppointmentError::SameTime);
    }
    Ok(vec![AppointmentEvent::AppointmentRescheduled {
        previous: state.interval,
        previous_slot: state.slot,
        interval,
        slot,
        reason,
        by,
        at,
    }])
}

fn cancel(state: &AppointmentState, by: Party, reason: FreeText, at: OffsetDateTime) -> Decided {
    if !state.status.is_open() {
        return Err(transition(state.status, Action::Cancel));
    }
    Ok(vec![AppointmentEvent::AppointmentCancelled {
        by,
        reason,
        slot: state.slot,
        at,
    }])
}

/// Records that the consultation took place (`no_show` false) or that the patient did not come.
fn outcome(state: &AppointmentState, by: Party, at: OffsetDateTime, no_show: bool) -> Decided {
    let action = if no_show {
        Action::MarkNoShow
    } else {
        Action::Complete
    };
    if by != Party::Doctor {
        return Err(AppointmentError::NotAllowed(
            NotAllowed::OnlyTheDoctorRecordsTheOutcome,
        ));
    }
    if state.status != Status::Confirmed {
        return Err(transition(state.status, action));
    }
    if at < state.interval.start {
        return Err(AppointmentError::NotStarted);
    }
    Ok(vec![if no_show {
        AppointmentEvent::AppointmentMarkedNoShow { by, at }
    } else {
        AppointmentEvent::AppointmentCompleted { by, at }
    }])
}

impl Decide for Appointment {
    fn decide(&self, command: AppointmentCommand) -> Decided {
        use AppointmentCommand as C;
        match (&self.state, command) {
            (Some(_), C::Request { .. }) => Err(AppointmentError::AlreadyRequested),
            (
                None,
                C::Request {
                    doctor_id,
                    patient_id,
                    interval,
                    reason,
                    slot,
                    at,
                },
            ) => Ok(vec![AppointmentEvent::AppointmentRequested {
                doctor_id,
                patient_id,
                interval,
                reason,
                slot,
                at,
            }]),
            (None, _) => Err(AppointmentError::NotFound),
            (Some(state), C::Confirm { by, at }) => confirm(state, by, at),
            (
                Some(state),
                C::Reschedule {
                    interval,
                    reason,
                    slot,
                    by,
                    at,
                },
            ) => reschedule(state, (interval, slot, reason), by, at),
            (Some(state), C::Cancel { by, reason, at }) => cancel(state, by, reason, at),
            (Some(state), C::Complete { by, at }) => outcome(state, by, at, false),
            (Some(state), C::MarkNoShow { by, at }) => outcome(state, by, at, true),
        }
    }
}

impl Aggregate for Appointment {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = AppointmentCommand;
    type Event = AppointmentEvent;
    type Error = AppointmentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AppointmentCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AppointmentError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: AppointmentEvent) {
        use AppointmentEvent as Ev;
        if let Ev::AppointmentRequested {
            doctor_id,
            patient_id,
            interval,
            slot,
            ..
        } = &event
        {
            self.state = Some(AppointmentState {
                doctor_id: *doctor_id,
                patient_id: *patient_id,
                interval: *interval,
                status: Status::Pending,
                awaiting: Some(Party::Doctor),
                slot: *slot,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            Ev::AppointmentRequested { .. } => {}
            Ev::AppointmentConfirmed { .. } => {
                state.status = Status::Confirmed;
                state.awaiting = None;
            }
            Ev::AppointmentRescheduled {
                interval, slot, by, ..
            } => {
                state.status = Status::Rescheduled;
                state.awaiting = Some(by.other());
                state.interval = interval;
                state.slot = slot;
            }
            Ev::AppointmentCancelled { .. } => {
                state.status = Status::Cancelled;
                state.awaiting = None;
            }
            Ev::AppointmentCompleted { .. } => state.status = Status::Completed,
            Ev::AppointmentMarkedNoShow { .. } => state.status = Status::NoShow,
        }
    }
}

impl NamedCommand for AppointmentCommand {
    fn command_name(&self) -> &'static str {
        match self {
            AppointmentCommand::Request { .. } => "appointment.request",
            AppointmentCommand::Confirm { .. } => "appointment.confirm",
            AppointmentCommand::Reschedule { .. } => "appointment.reschedule",
            AppointmentCommand::Cancel { .. } => "appointment.cancel",
            AppointmentCommand::Complete { .. } => "appointment.complete",
            AppointmentCommand::MarkNoShow { .. } => "appointment.no_show",
        }
    }
}

impl DomainEvent for AppointmentEvent {
    fn event_type(&self) -> String {
        match self {
            AppointmentEvent::AppointmentRequested { .. } => "AppointmentRequested",
            AppointmentEvent::AppointmentConfirmed { .. } => "AppointmentConfirmed",
            AppointmentEvent::AppointmentRescheduled { .. } => "AppointmentRescheduled",
            AppointmentEvent::AppointmentCancelled { .. } => "AppointmentCancelled",
            AppointmentEvent::AppointmentCompleted { .. } => "AppointmentCompleted",
            AppointmentEvent::AppointmentMarkedNoShow { .. } => "AppointmentMarkedNoShow",
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

    fn doctor() -> UserId {
        UserId::from(uuid::Uuid::from_u128(1))
    }

    fn patient() -> UserId {
        UserId::from(uuid::Uuid::from_u128(2))
    }

    fn slot(n: u128) -> SlotRef {
        SlotRef {
            day: DayId::new(doctor(), date!(2027 - 06 - 01)),
            reservation_id: ReservationId::from(uuid::Uuid::from_u128(n)),
        }
    }

    fn at_10() -> Interval {
        Interval::new(
            datetime!(2027-06-01 10:00 UTC),
            datetime!(2027-06-01 10:30 UTC),
        )
        .unwrap()
    }

    fn at_11() -> Interval {
        Interval::new(
            datetime!(2027-06-01 11:00 UTC),
            datetime!(2027-06-01 11:30 UTC),
        )
        .unwrap()
    }

    fn before() -> OffsetDateTime {
        datetime!(2027-05-01 08:00 UTC)
    }

    fn during() -> OffsetDateTime {
        datetime!(2027-06-01 10:05 UTC)
    }

    fn text(s: &str) -> FreeText {
        FreeText::parse(s).unwrap()
    }

    fn requested() -> AppointmentEvent {
        AppointmentEvent::AppointmentRequested {
            doctor_id: doctor(),
            patient_id: patient(),
            interval: at_10(),
            reason: text("cough"),
            slot: slot(10),
            at: before(),
        }
    }

    fn confirmed(by: Party) -> AppointmentEvent {
        AppointmentEvent::AppointmentConfirmed { by, at: before() }
    }

    fn rescheduled(by: Party) -> AppointmentEvent {
        AppointmentEvent::AppointmentRescheduled {
            previous: at_10(),
            previous_slot: slot(10),
            interval: at_11(),
            slot: slot(11),
            reason: text("clash"),
            by,
            at: before(),
        }
    }

    fn cancelled() -> AppointmentEvent {
        AppointmentEvent::AppointmentCancelled {
            by: Party::Patient,
            reason: text("better"),
            slot: slot(10),
            at: before(),
        }
    }

    fn reschedule(by: Party) -> AppointmentCommand {
        AppointmentCommand::Reschedule {
            interval: at_11(),
            reason: text("clash"),
            slot: slot(11),
            by,
            at: before(),
        }
    }

    fn framework() -> TestFramework<Appointment> {
        TestFramework::with(())
    }

    #[test]
    fn a_request_records_a_pending_appointment() {
        framework()
            .given_no_previous_events()
            .when(AppointmentCommand::Request {
                doctor_id: doctor(),
                patient_id: patient(),
                interval: at_10(),
                reason: text("cough"),
                slot: slot(10),
                at: before(),
            })
            .then_expect_events(vec![requested()]);
    }

    #[test]
    fn requesting_twice_is_refused() {
        framework()
            .given(vec![requested()])
            .when(AppointmentCommand::Request {
                doctor_id: doctor(),
                patient_id: patient(),
                interval: at_10(),
                reason: text("cough"),
                slot: slot(10),
                at: before(),
            })
            .then_expect_error(AppointmentError::AlreadyRequested);
    }

    #[test]
    fn commands_on_an_unknown_appointment_are_refused() {
        framework()
            .given_no_previous_events()
            .when(AppointmentCommand::Confirm {
                by: Party::Doctor,
                at: before(),
            })
            .then_expect_error(AppointmentError::NotFound);
    }

    #[test]
    fn the_doctor_confirms_a_request() {
        framework()
            .given(vec![requested()])
            .when(AppointmentCommand::Confirm {
                by: Party::Doctor,
                at: before(),
            })
            .then_expect_events(vec![confirmed(Party::Doctor)]);
    }

    #[test]
    fn the_patient_cannot_confirm_their_own_request() {
        framework()
            .given(vec![requested()])
            .when(AppointmentCommand::Confirm {
                by: Party::Patient,
                at: before(),
            })
            .then_expect_error(AppointmentError::NotAllowed(
                NotAllowed::OnlyTheDoctorConfirmsARequest,
            ));
    }

    #[test]
    fn after_the_doctor_reschedules_the_patient_confirms() {
        framework()
            .given(vec![
                requested(),
                confirmed(Party::Doctor),
                rescheduled(Party::Doctor),
            ])
            .when(AppointmentCommand::Confirm {
                by: Party::Patient,
                at: before(),
            })
            .then_expect_events(vec![confirmed(Party::Patient)]);
    }

    #[test]
    fn the_party_who_rescheduled_cannot_confirm_it() {
        framework()
            .given(vec![requested(), rescheduled(Party::Doctor)])
            .when(AppointmentCommand::Confirm {
                by: Party::Doctor,
                at: before(),
            })
            .then_expect_error(AppointmentError::NotAllowed(
                NotAllowed::TheProposerCannotConfirm,
            ));
    }

    #[test]
    fn confirming_a_confirmed_appointment_is_an_invalid_transition() {
        framework()
            .given(vec![requested(), confirmed(Party::Doctor)])
            .when(AppointmentCommand::Confirm {
                by: Party::Doctor,
                at: before(),
            })
            .then_expect_error(transition(Status::Confirmed, Action::Confirm));
    }

    #[test]
    fn confirming_a_cancelled_appointment_is_an_invalid_transition() {
        framework()
            .given(vec![requested(), cancelled()])
            .when(AppointmentCommand::Confirm {
                by: Party::Doctor,
                at: before(),
            })
            .then_expect_error(transition(Status::Cancelled, Action::Confirm));
    }

    #[test]
    fn either_party_reschedules_an_open_appointment() {
        framework()
            .given(vec![requested(), confirmed(Party::Doctor)])
            .when(reschedule(Party::Patient))
            .then_expect_events(vec![rescheduled(Party::Patient)]);
    }

    #[test]
    fn rescheduling_to_the_same_time_is_refused() {
        framework()
            .given(vec![requested()])
            .when(AppointmentCommand::Reschedule {
                interval: at_10(),
                reason: text("x"),
                slot: slot(12),
                by: Party::Patient,
                at: before(),
            })
            .then_expect_error(AppointmentError::SameTime);
    }

    #[test]
    fn rescheduling_a_cancelled_appointment_is_refused() {
        framework()
            .given(vec![requested(), cancelled()])
            .when(reschedule(Party::Doctor))
            .then_expect_error(transition(Status::Cancelled, Action::Reschedule));
    }

    #[test]
    fn cancelling_records_who_why_and_the_slot_to_free() {
        framework()
            .given(vec![requested()])
            .when(AppointmentCommand::Cancel {
                by: Party::Patient,
                reason: text("better"),
                at: before(),
            })
            .then_expect_events(vec![cancelled()]);
    }

    #[test]
    fn cancelling_twice_is_refused() {
        framework()
            .given(vec![requested(), cancelled()])
            .when(AppointmentCommand::Cancel {
                by: Party::Doctor,
                reason: text("again"),
                at: before(),
            })
            .then_expect_error(transition(Status::Cancelled, Action::Cancel));
    }

    #[test]
    fn the_doctor_completes_a_started_confirmed_appointment() {
        framework()
            .given(vec![requested(), confirmed(Party::Doctor)])
            .when(AppointmentCommand::Complete {
                by: Party::Doctor,
                at: during(),
            })
            .then_expect_events(vec![AppointmentEvent::AppointmentCompleted {
                by: Party::Doctor,
                at: during(),
            }]);
    }

    #[test]
    fn completing_before_the_start_is_refused() {
        framework()
            .given(vec![requested(), confirmed(Party::Doctor)])
            .when(AppointmentCommand::Complete {
                by: Party::Doctor,
                at: before(),
            })
            .then_expect_error(AppointmentError::NotStarted);
    }

    #[test]
    fn refusals_read_as_the_api_answers_them() {
        let reason = |why| AppointmentError::NotAllowed(why).to_string();
        assert_eq!(
            reason(NotAllowed::OnlyTheDoctorConfirmsARequest),
            "only the doctor can confirm a request"
        );
        assert_eq!(
            reason(NotAllowed::TheProposerCannotConfirm),
            "a reschedule is confirmed by the other party, not the one who proposed it"
        );
        assert_eq!(
            reason(NotAllowed::OnlyTheDoctorRecordsTheOutcome),
            "only the doctor can record the outcome"
        );
        assert_eq!(
            transition(Status::Completed, Action::MarkNoShow).to_string(),
            "cannot mark as no-show an appointment that is completed"
        );
    }

    #[test]
    fn the_patient_cannot_complete() {
        framework()
            .given(vec![requested(), confirmed(Party::Doctor)])
            .when(AppointmentCommand::Complete {
                by: Party::Patient,
                at: during(),
            })
            .then_expect_error(AppointmentError::NotAllowed(
                NotAllowed::OnlyTheDoctorRecordsTheOutcome,
            ));
    }

    #[test]
    fn completing_a_pending_appointment_is_refused() {
        framework()
            .given(vec![requested()])
            .when(AppointmentCommand::Complete {
                by: Party::Doctor,
                at: during(),
            })
            .then_expect_error(transition(Status::Pending, Action::Complete));
    }

    #[test]
    fn the_doctor_marks_a_no_show() {
        framework()
            .given(vec![requested(), confirmed(Party::Doctor)])
            .when(AppointmentCommand::MarkNoShow {
                by: Party::Doctor,
                at: during(),
            })
            .then_expect_events(vec![AppointmentEvent::AppointmentMarkedNoShow {
                by: Party::Doctor,
                at: during(),
            }]);
    }

    #[test]
    fn a_no_show_after_completion_is_refused() {
        framework()
            .given(vec![
                requested(),
                confirmed(Party::Doctor),
                AppointmentEvent::AppointmentCompleted {
                    by: Party::Doctor,
                    at: during(),
                },
            ])
            .when(AppointmentCommand::MarkNoShow {
                by: Party::Doctor,
                at: during(),
            })
            .then_expect_error(transition(Status::Completed, Action::MarkNoShow));
    }
}
