//! Call sessions: one video call of an appointment, from ringing to its end.
//!
//! `ringing` → `active` (the callee answers) → `ended`; or `missed` (nobody answered before
//! the ring timeout), `rejected` (the callee declined) or `failed` (the connection could not
//! be made). Only the lifecycle is recorded; the WebRTC signaling itself is relayed live and
//! never stored.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::appointment::{AppointmentState, Status as AppointmentStatus};
use crate::{AppointmentId, Decide, NamedCommand, UserId};

/// Aggregate type of a call in the event store.
pub const AGGREGATE_TYPE: &str = "call";

/// Where a call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Waiting for the callee.
    Ringing,
    /// Both are connected.
    Active,
    /// Over after being answered (or hung up while ringing by the caller).
    Ended,
    /// Not answered in time.
    Missed,
    /// Declined by the callee.
    Rejected,
    /// The connection could not be made or was lost.
    Failed,
}

impl CallStatus {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ringing => "ringing",
            CallStatus::Active => "active",
            CallStatus::Ended => "ended",
            CallStatus::Missed => "missed",
            CallStatus::Rejected => "rejected",
            CallStatus::Failed => "failed",
        }
    }

    /// Whether the call is still going (ringing or active).
    pub fn is_live(self) -> bool {
        matches!(self, CallStatus::Ringing | CallStatus::Active)
    }
}

/// Why a call ended, as clients report it (`user_hangup`, `ice_failed`, …): 1 to 40 characters
/// of `a-z`, `0-9` and `_`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndReason(String);

impl EndReason {
    /// A reason from its code.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=40).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| Self(text.to_string()))
    }

    /// A reason the server itself gives.
    fn of(code: &'static str) -> Self {
        Self(code.to_string())
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Commands of a call.
#[derive(Clone, Debug, PartialEq)]
pub enum CallCommand {
    /// `by` starts calling the other participant.
    Start {
        /// The appointment.
        appointment_id: AppointmentId,
        /// Its current state.
        appointment: AppointmentState,
        /// The caller.
        by: UserId,
        /// Now.
        at: OffsetDateTime,
        /// How long before the appointment's start a call may begin.
        early: Duration,
        /// How long after its end a call may still begin.
        late: Duration,
    },
    /// The callee picks up.
    Answer {
        /// Who.
        by: UserId,
        /// Now.
        at: OffsetDateTime,
    },
    /// The callee declines.
    Reject {
        /// Who.
        by: UserId,
        /// Now.
        at: OffsetDateTime,
    },
    /// A participant hangs up or reports why the call ended.
    End {
        /// Who.
        by: UserId,
        /// Why (`user_hangup` when not given).
        reason: EndReason,
        /// Now.
        at: OffsetDateTime,
    },
    /// The ring timeout passed (the server's sweeper).
    TimeOut {
        /// Now.
        at: OffsetDateTime,
    },
}

/// Events of a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CallEvent {
    /// A participant started calling the other.
    CallStarted {
        /// The appointment.
        appointment_id: AppointmentId,
        /// Its doctor.
        doctor_id: UserId,
        /// Its patient.
        patient_id: UserId,
        /// The caller.
        caller_id: UserId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The callee joined.
    CallAnswered {
        /// Who.
        by: UserId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The callee declined.
    CallRejected {
        /// Who.
        by: UserId,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Nobody answered in time.
    CallMissed {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The call ended (or failed, when `failed`).
    CallEnded {
        /// Who ended it.
        by: UserId,
        /// Why.
        reason: EndReason,
        /// Whether it ended as a failure (e.g. `ice_failed`).
        failed: bool,
        /// Seconds it was active (0 if never answered).
        duration_seconds: i64,
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// Why a call command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Not the appointment's doctor or patient.
    #[error("only the appointment's doctor and patient take part in its calls")]
    NotParticipant,
    /// The appointment is not confirmed.
    #[error("calls are for confirmed appointments")]
    NotConfirmed,
    /// Too early or too late for this appointment.
    #[error(
        "calls can start from {early} minutes before the appointment until {late} minutes after its end"
    )]
    OutsideJoinWindow {
        /// Minutes before the start.
        early: i64,
        /// Minutes after the end.
        late: i64,
    },
    /// No such call.
    #[error("no such call")]
    NotFound,
    /// The call exists already.
    #[error("this call was already started")]
    AlreadyStarted,
    /// The action does not fit the call's state.
    #[error("the call is {}; it cannot be {}", status.as_str(), action.as_str())]
    InvalidTransition {
        /// Where the call is.
        status: CallStatus,
        /// What was asked of it.
        action: CallAction,
    },
    /// The caller cannot answer or decline their own call.
    #[error("the caller cannot answer their own call")]
    OwnCall,
}

/// Whether `by` may start (or wait for) a call of `appointment` at `at`: a participant of a
/// confirmed appointment, from `early` before its start until `late` after its end. The one
/// rule for starting a call and for checking in to the waiting room.
pub fn joinable(
    appointment: &AppointmentState,
    by: UserId,
    at: OffsetDateTime,
    early: Duration,
    late: Duration,
) -> Result<(), CallError> {
    if by != appointment.doctor_id && by != appointment.patient_id {
        return Err(CallError::NotParticipant);
    }
    if appointment.status != AppointmentStatus::Confirmed {
        return Err(CallError::NotConfirmed);
    }
    if at < appointment.interval.start - early || at > appointment.interval.end + late {
        return Err(CallError::OutsideJoinWindow {
            early: early.whole_minutes(),
            late: late.whole_minutes(),
        });
    }
    Ok(())
}

/// What a callee tried to do to a ringing call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallAction {
    /// Take it.
    Answer,
    /// Decline it.
    Reject,
}

impl CallAction {
    /// The action as a past participle, for messages ("it cannot be answered").
    pub fn as_str(self) -> &'static str {
        match self {
            CallAction::Answer => "answered",
            CallAction::Reject => "rejected",
        }
    }
}

/// A call's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallState {
    /// The appointment.
    pub appointment_id: AppointmentId,
    /// Its doctor.
    pub doctor_id: UserId,
    /// Its patient.
    pub patient_id: UserId,
    /// The caller.
    pub caller_id: UserId,
    /// Where it is.
    pub status: CallStatus,
    /// When it was answered.
    pub answered_at: Option<OffsetDateTime>,
}

impl CallState {
    /// Whether `user` takes part in the call.
    pub fn has(&self, user: UserId) -> bool {
        user == self.doctor_id || user == self.patient_id
    }

    /// The participant who is not `user`.
    pub fn other(&self, user: UserId) -> UserId {
        if user == self.doctor_id {
            self.patient_id
        } else {
            self.doctor_id
        }
    }
}

/// A call session.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Call {
    state: Option<CallState>,
}

impl Call {
    /// The current state, once started.
    pub fn state(&self) -> Option<&CallState> {
        self.state.as_ref()
    }
}

type Decided = Result<Vec<CallEvent>, CallError>;

/// `by` starts calling the other participant of `appointment`.
fn start(
    appointment_id: AppointmentId,
    appointment: &AppointmentState,
    by: UserId,
    at: OffsetDateTime,
    early: Duration,
    late: Duration,
) -> Decided {
    joinable(appointment, by, at, early, late)?;
    Ok(vec![CallEvent::CallStarted {
        appointment_id,
        doctor_id: appointment.doctor_id,
        patient_id: appointment.patient_id,
        caller_id: by,
        at,
    }])
}

/// Whether `by` may `action` the call: a participant, the call ringing, and not the caller.
fn callee_of_ringing(state: &CallState, by: UserId, action: CallAction) -> Result<(), CallError> {
    if !state.has(by) {
        return Err(CallError::NotParticipant);
    }
    if state.status != CallStatus::Ringing {
        return Err(CallError::InvalidTransition {
            status: state.status,
            action,
        });
    }
    if by == state.caller_id {
        return Err(CallError::OwnCall);
    }
    Ok(())
}

/// The callee picks up; answering a call already active changes nothing.
fn answer(state: &CallState, by: UserId, at: OffsetDateTime) -> Decided {
    if state.has(by) && state.status == CallStatus::Active {
        return Ok(vec![]);
    }
    callee_of_ringing(state, by, CallAction::Answer)?;
    Ok(vec![CallEvent::CallAnswered { by, at }])
}

/// The callee declines.
fn reject(state: &CallState, by: UserId, at: OffsetDateTime) -> Decided {
    callee_of_ringing(state, by, CallAction::Reject)?;
    Ok(vec![CallEvent::CallRejected { by, at }])
}

/// A participant ends a live call, as a failure when the reason says the connection failed;
/// ending a call that is over changes nothing.
fn end(state: &CallState, by: UserId, reason: EndReason, at: OffsetDateTime) -> Decided {
    if !state.has(by) {
        return Err(CallError::NotParticipant);
    }
    if !state.status.is_live() {
        return Ok(vec![]);
    }
    let failed = matches!(
        reason.as_str(),
        "ice_failed" | "connection_failed" | "media_failed"
    );
    let duration_seconds = state
        .answered_at
        .map_or(0, |answered| (at - answered).whole_seconds().max(0));
    Ok(vec![CallEvent::CallEnded {
        by,
        reason,
        failed,
        duration_seconds,
        at,
    }])
}

/// The ring timeout passed: a call still ringing is missed.
fn time_out(state: &CallState, at: OffsetDateTime) -> Decided {
    match state.status {
        CallStatus::Ringing => Ok(vec![CallEvent::CallMissed { at }]),
        _ => Ok(vec![]),
    }
}

impl Decide for Call {
    fn decide(&self, command: CallCommand) -> Decided {
        use CallCommand as C;
        match (&self.state, command) {
            (
                None,
                C::Start {
                    appointment_id,
                    appointment,
                    by,
                    at,
                    early,
                    late,
                },
            ) => start(appointment_id, &appointment, by, at, early, late),
            (None, _) => Err(CallError::NotFound),
            (Some(_), C::Start { .. }) => Err(CallError::AlreadyStarted),
            (Some(state), C::Answer { by, at }) => answer(state, by, at),
            (Some(state), C::Reject { by, at }) => reject(state, by, at),
            (Some(state), C::End { by, reason, at }) => end(state, by, reason, at),
            (Some(state), C::TimeOut { at }) => time_out(state, at),
        }
    }
}

impl Aggregate for Call {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = CallCommand;
    type Event = CallEvent;
    type Error = CallError;
    type Services = ();

    async fn handle(
        &mut self,
        command: CallCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), CallError> {
        self.decide_into(command, sink).await
    }

    fn apply(&mut self, event: CallEvent) {
        match event {
            CallEvent::CallStarted {
                appointment_id,
                doctor_id,
                patient_id,
                caller_id,
                ..
            } => {
                self.state = Some(CallState {
                    appointment_id,
                    doctor_id,
                    patient_id,
                    caller_id,
                    status: CallStatus::Ringing,
                    answered_at: None,
                });
            }
            other => {
                if let Some(state) = &mut self.state {
                    match other {
                        CallEvent::CallAnswered { at, .. } => {
                            state.status = CallStatus::Active;
                            state.answered_at = Some(at);
                        }
                        CallEvent::CallRejected { .. } => state.status = CallStatus::Rejected,
                        CallEvent::CallMissed { .. } => state.status = CallStatus::Missed,
                        CallEvent::CallEnded { failed, .. } => {
                            state.status = if failed {
                                CallStatus::Failed
                            } else {
                                CallStatus::Ended
                            };
                        }
                        CallEvent::CallStarted { .. } => {}
                    }
                }
            }
        }
    }
}

impl NamedCommand for CallCommand {
    fn command_name(&self) -> &'static str {
        match self {
            CallCommand::Start { .. } => "call.start",
            CallCommand::Answer { .. } => "call.answer",
            CallCommand::Reject { .. } => "call.reject",
            CallCommand::End { .. } => "call.end",
            CallCommand::TimeOut { .. } => "call.time_out",
        }
    }
}

impl DomainEvent for CallEvent {
    fn event_type(&self) -> String {
        match self {
            CallEvent::CallStarted { .. } => "CallStarted",
            CallEvent::CallAnswered { .. } => "CallAnswered",
            CallEvent::CallRejected { .. } => "CallRejected",
            CallEvent::CallMissed { .. } => "CallMissed",
            CallEvent::CallEnded { .. } => "CallEnded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The server's own end reasons.
impl EndReason {
    /// A participant hung up.
    pub fn user_hangup() -> Self {
        Self::of("user_hangup")
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use time::macros::datetime;

    use super::*;
    use crate::appointment::{Party, SlotRef};
    use crate::calendar::Interval;
    use crate::{DayId, ReservationId};

    const START: OffsetDateTime = datetime!(2027-03-01 10:00 UTC);

    fn appointment(status: AppointmentStatus) -> AppointmentState {
        let doctor = UserId::new();
        AppointmentState {
            doctor_id: doctor,
            patient_id: UserId::new(),
            interval: Interval::new(START, START + Duration::minutes(30)).unwrap(),
            status,
            awaiting: Some(Party::Doctor),
            slot: SlotRef {
                day: DayId::new(doctor, START.date()),
                reservation_id: ReservationId::new(),
            },
        }
    }

    fn start(appointment: &AppointmentState, by: UserId, at: OffsetDateTime) -> CallCommand {
        CallCommand::Start {
            appointment_id: AppointmentId::default(),
            appointment: appointment.clone(),
            by,
            at,
            early: Duration::minutes(15),
            late: Duration::minutes(60),
        }
    }

    fn started(appointment: &AppointmentState, by: UserId) -> CallEvent {
        let CallCommand::Start { appointment_id, .. } = start(appointment, by, START) else {
            unreachable!()
        };
        CallEvent::CallStarted {
            appointment_id,
            doctor_id: appointment.doctor_id,
            patient_id: appointment.patient_id,
            caller_id: by,
            at: START,
        }
    }

    fn framework() -> TestFramework<Call> {
        TestFramework::with(())
    }

    #[test]
    fn a_participant_starts_a_call_inside_the_join_window() {
        let a = appointment(AppointmentStatus::Confirmed);
        let command = start(&a, a.doctor_id, START);
        let CallCommand::Start { appointment_id, .. } = command.clone() else {
            unreachable!()
        };
        framework()
            .given_no_previous_events()
            .when(command)
            .then_expect_events(vec![CallEvent::CallStarted {
                appointment_id,
                doctor_id: a.doctor_id,
                patient_id: a.patient_id,
                caller_id: a.doctor_id,
                at: START,
            }]);
    }

    #[test]
    fn calls_need_a_confirmed_appointment_a_participant_and_the_window() {
        let pending = appointment(AppointmentStatus::Pending);
        framework()
            .given_no_previous_events()
            .when(start(&pending, pending.patient_id, START))
            .then_expect_error(CallError::NotConfirmed);
        let a = appointment(AppointmentStatus::Confirmed);
        framework()
            .given_no_previous_events()
            .when(start(&a, UserId::new(), START))
            .then_expect_error(CallError::NotParticipant);
        for at in [START - Duration::minutes(16), START + Duration::minutes(91)] {
            framework()
                .given_no_previous_events()
                .when(start(&a, a.patient_id, at))
                .then_expect_error(CallError::OutsideJoinWindow {
                    early: 15,
                    late: 60,
                });
        }
    }

    #[test]
    fn the_callee_answers_then_either_side_ends_with_a_duration() {
        let a = appointment(AppointmentStatus::Confirmed);
        let answered = CallEvent::CallAnswered {
            by: a.patient_id,
            at: START,
        };
        framework()
            .given(vec![started(&a, a.doctor_id)])
            .when(CallCommand::Answer {
                by: a.patient_id,
                at: START,
            })
            .then_expect_events(vec![answered.clone()]);
        framework()
            .given(vec![started(&a, a.doctor_id), answered.clone()])
            .when(CallCommand::End {
                by: a.doctor_id,
                reason: EndReason::user_hangup(),
                at: START + Duration::seconds(95),
            })
            .then_expect_events(vec![CallEvent::CallEnded {
                by: a.doctor_id,
                reason: EndReason::user_hangup(),
                failed: false,
                duration_seconds: 95,
                at: START + Duration::seconds(95),
            }]);
    }

    #[test]
    fn the_caller_cannot_answer_and_a_finished_call_stays_finished() {
        let a = appointment(AppointmentStatus::Confirmed);
        framework()
            .given(vec![started(&a, a.doctor_id)])
            .when(CallCommand::Answer {
                by: a.doctor_id,
                at: START,
            })
            .then_expect_error(CallError::OwnCall);
        framework()
            .given(vec![
                started(&a, a.doctor_id),
                CallEvent::CallMissed { at: START },
            ])
            .when(CallCommand::Answer {
                by: a.patient_id,
                at: START,
            })
            .then_expect_error(CallError::InvalidTransition {
                status: CallStatus::Missed,
                action: CallAction::Answer,
            });
        framework()
            .given(vec![
                started(&a, a.doctor_id),
                CallEvent::CallMissed { at: START },
            ])
            .when(CallCommand::End {
                by: a.patient_id,
                reason: EndReason::user_hangup(),
                at: START,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_active_call_answered_again_stays_as_it_is_and_cannot_be_rejected() {
        let a = appointment(AppointmentStatus::Confirmed);
        let active = vec![
            started(&a, a.doctor_id),
            CallEvent::CallAnswered {
                by: a.patient_id,
                at: START,
            },
        ];
        framework()
            .given(active.clone())
            .when(CallCommand::Answer {
                by: a.patient_id,
                at: START,
            })
            .then_expect_events(vec![]);
        framework()
            .given(active.clone())
            .when(CallCommand::Reject {
                by: a.patient_id,
                at: START,
            })
            .then_expect_error(CallError::InvalidTransition {
                status: CallStatus::Active,
                action: CallAction::Reject,
            });
        framework()
            .given(active.clone())
            .when(CallCommand::Answer {
                by: UserId::new(),
                at: START,
            })
            .then_expect_error(CallError::NotParticipant);
        framework()
            .given(active)
            .when(CallCommand::End {
                by: UserId::new(),
                reason: EndReason::user_hangup(),
                at: START,
            })
            .then_expect_error(CallError::NotParticipant);
        framework()
            .given_no_previous_events()
            .when(CallCommand::TimeOut { at: START })
            .then_expect_error(CallError::NotFound);
        framework()
            .given(vec![started(&a, a.doctor_id)])
            .when(start(&a, a.patient_id, START))
            .then_expect_error(CallError::AlreadyStarted);
    }

    #[test]
    fn an_invalid_transition_reads_as_the_api_answers_it() {
        let error = CallError::InvalidTransition {
            status: CallStatus::Missed,
            action: CallAction::Reject,
        };
        assert_eq!(
            error.to_string(),
            "the call is missed; it cannot be rejected"
        );
    }

    #[test]
    fn ringing_times_out_into_missed_and_rejection_is_recorded() {
        let a = appointment(AppointmentStatus::Confirmed);
        framework()
            .given(vec![started(&a, a.patient_id)])
            .when(CallCommand::TimeOut { at: START })
            .then_expect_events(vec![CallEvent::CallMissed { at: START }]);
        framework()
            .given(vec![started(&a, a.patient_id)])
            .when(CallCommand::Reject {
                by: a.doctor_id,
                at: START,
            })
            .then_expect_events(vec![CallEvent::CallRejected {
                by: a.doctor_id,
                at: START,
            }]);
    }

    #[test]
    fn an_ice_failure_ends_the_call_as_failed() {
        let a = appointment(AppointmentStatus::Confirmed);
        let failed = CallEvent::CallEnded {
            by: a.patient_id,
            reason: EndReason::parse("ice_failed").unwrap(),
            failed: true,
            duration_seconds: 0,
            at: START,
        };
        framework()
            .given(vec![started(&a, a.patient_id)])
            .when(CallCommand::End {
                by: a.patient_id,
                reason: EndReason::parse("ice_failed").unwrap(),
                at: START,
            })
            .then_expect_events(vec![failed]);
        assert!(EndReason::parse("Bad Reason").is_none());
        assert!(EndReason::parse("").is_none());
    }
}
