//! The waiting room's client events: `waiting:checkin`, `waiting:leave`, `waiting:list`.

use serde_json::{Value, json};
use telemed_commands::CommandError;
use telemed_domain::call::CallError;
use telemed_domain::{AppointmentId, Role};
use telemed_problem::ApiError;

use super::Services;
use crate::identity::Identity;
use crate::waiting::message::{Entry, Reason, rfc3339};
use crate::waiting::room::CallLive;

/// Checks that `user` is the patient of appointment `id`: others 404, its doctor 403.
async fn patient_of(live: &Services, user: &Identity, id: AppointmentId) -> Result<(), ApiError> {
    let who = live.participants(user, id).await?;
    if who.doctor_id == user.user {
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
pub async fn check_in(
    state: &Services,
    user: &Identity,
    id: AppointmentId,
) -> Result<Value, ApiError> {
    patient_of(state, user, id).await?;
    let appointment = state.calls.joinable(id, user.user).await.map_err(refused)?;
    let names = telemed_projections::profiles::names(&state.pool, &[user.user]).await?;
    let entry = Entry {
        appointment_id: id,
        patient_id: user.user,
        patient_name: names.get(&user.user).cloned().unwrap_or_default(),
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
    if let Err(error) = state.calls.joinable(id, user.user).await {
        state
            .waiting
            .with(|room| room.leave(id, user.user, Reason::Cancelled));
        return Err(refused(error));
    }
    Ok(json!({
        "checked_in_at": rfc3339(kept.checked_in_at),
        "doctor_status": status.as_str(),
    }))
}

/// `waiting:leave {appointment_id}` → `{ok: true}` (also when not waiting).
pub async fn leave(
    state: &Services,
    user: &Identity,
    id: AppointmentId,
) -> Result<Value, ApiError> {
    patient_of(state, user, id).await?;
    state
        .waiting
        .with(|room| room.leave(id, user.user, Reason::Left));
    Ok(json!({ "ok": true }))
}

/// `waiting:list {}` → `{entries}`: the patients waiting for the calling doctor.
pub fn list(state: &Services, user: &Identity) -> Result<Value, ApiError> {
    if user.role != Role::Doctor {
        return Err(ApiError::Forbidden(
            "only doctors see their waiting room".into(),
        ));
    }
    let entries: Vec<Value> = state
        .waiting
        .entries_for(user.user)
        .iter()
        .map(Entry::to_json)
        .collect();
    Ok(json!({ "entries": entries }))
}
