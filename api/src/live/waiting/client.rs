//! The waiting room's client events: `waiting:checkin`, `waiting:leave`, `waiting:list`.

use serde::Deserialize;
use serde_json::{Value, json};
use telemed_commands::CommandError;
use telemed_domain::call::CallError;
use telemed_domain::{AppointmentId, Role};

use super::message::{Entry, Reason, rfc3339};
use super::room::CallLive;
use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::live::session::parse;
use crate::routes::messages::participants;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForAppointment {
    appointment_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

fn appointment_id(data: Value) -> Result<AppointmentId, ApiError> {
    let ForAppointment { appointment_id } = parse(data)?;
    appointment_id
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("data.appointment_id", "must be an appointment id (a UUID)"))
}

/// Checks that `user` is the patient of appointment `id`: others 404, its doctor 403.
async fn patient_of(state: &AppState, user: &AuthUser, id: AppointmentId) -> Result<(), ApiError> {
    let who = participants(state, user, id).await?;
    if who.doctor_id == user.id {
        return Err(ApiError::Forbidden(
            "only the patient checks in to the waiting room; the doctor starts the call".into(),
        ));
    }
    Ok(())
}

/// The refusal of a check-in outside what the call rules allow.
fn refused(error: CommandError<CallError>) -> ApiError {
    match error {
        CommandError::Rejected(CallError::NotParticipant) => {
            ApiError::NotFound("no such appointment".into())
        }
        CommandError::Rejected(CallError::NotConfirmed) => ApiError::Conflict {
            code: "not_confirmed",
            detail:
                "the appointment is not confirmed; only confirmed appointments have a waiting room"
                    .into(),
        },
        CommandError::Rejected(CallError::OutsideJoinWindow { early, late }) => {
            ApiError::Conflict {
                code: "outside_join_window",
                detail: format!(
                    "the waiting room opens {early} minutes before the appointment and closes {late} minutes after its end"
                ),
            }
        }
        other => other.into(),
    }
}

/// `waiting:checkin {appointment_id}` → `{checked_in_at, doctor_status}`.
pub async fn check_in(state: &AppState, user: &AuthUser, data: Value) -> Result<Value, ApiError> {
    let id = appointment_id(data)?;
    patient_of(state, user, id).await?;
    let appointment = state.calls.joinable(id, user.id).await.map_err(refused)?;
    let names = telemed_projections::profiles::names(&state.pool, &[user.id]).await?;
    let entry = Entry {
        appointment_id: id,
        patient_id: user.id,
        patient_name: names.get(&user.id).cloned().unwrap_or_default(),
        doctor_id: appointment.doctor_id,
        checked_in_at: state.calls.now(),
        start: appointment.interval.start,
    };
    let (kept, status) = state
        .waiting
        .with(|room| room.check_in(entry))
        .map_err(|CallLive| ApiError::Conflict {
            code: "call_in_progress",
            detail: "a call of this appointment is ringing or active; join it instead".into(),
        })?;
    // A cancellation committed while this check-in was being decided would have found no
    // entry to drop: look again now that the entry exists.
    if let Err(error) = state.calls.joinable(id, user.id).await {
        state
            .waiting
            .with(|room| room.leave(id, user.id, Reason::Cancelled));
        return Err(refused(error));
    }
    Ok(json!({
        "checked_in_at": rfc3339(kept.checked_in_at),
        "doctor_status": status.as_str(),
    }))
}

/// `waiting:leave {appointment_id}` → `{ok: true}` (also when not waiting).
pub async fn leave(state: &AppState, user: &AuthUser, data: Value) -> Result<Value, ApiError> {
    let id = appointment_id(data)?;
    patient_of(state, user, id).await?;
    state
        .waiting
        .with(|room| room.leave(id, user.id, Reason::Left));
    Ok(json!({ "ok": true }))
}

/// `waiting:list {}` → `{entries}`: the patients waiting for the calling doctor.
pub fn list(state: &AppState, user: &AuthUser, data: Value) -> Result<Value, ApiError> {
    let Nothing {} = parse(match data {
        Value::Null => json!({}),
        other => other,
    })?;
    if user.role != Role::Doctor {
        return Err(ApiError::Forbidden(
            "only doctors see their waiting room".into(),
        ));
    }
    let entries: Vec<Value> = state
        .waiting
        .entries_for(user.id)
        .iter()
        .map(Entry::to_json)
        .collect();
    Ok(json!({ "entries": entries }))
}
