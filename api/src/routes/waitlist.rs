//! The waitlist: a patient joins a doctor's waitlist for a date range and a length, sees their
//! entries and open offers, leaves, and accepts or declines an offer of freed time.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use telemed_domain::calendar::local_date;
use telemed_domain::values::TimeZoneName;
use telemed_domain::waitlist::Request;
use telemed_domain::{Role, UserId};
use telemed_projections::appointments::{self as appointments_read, AppointmentView};
use telemed_projections::waitlist::{self as read, EntryView};
use time::OffsetDateTime;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiJson, ApiPath, AuthUser};
use crate::routes::availability::doctor_zone;
use crate::routes::{fields, params};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join))
        .routes(routes!(my_waitlist))
        .routes(routes!(leave))
        .routes(routes!(accept))
        .routes(routes!(decline))
}

/// What a patient waits for.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// First acceptable date (`YYYY-MM-DD`, the doctor's zone); not before today.
    #[schema(value_type = fields::CalendarDate)]
    from: String,
    /// Last acceptable date; not before `from`, within the booking horizon.
    #[schema(value_type = fields::CalendarDate)]
    to: String,
    /// Length of the appointment sought, in minutes (within the booking rules: 5–240).
    #[schema(minimum = 5, maximum = 240)]
    #[serde(deserialize_with = "fields::whole_number")]
    duration_minutes: i64,
}

/// The caller's waitlist.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Waitlist {
    /// Entries waiting or with an open offer, first joined first.
    entries: Vec<EntryView>,
}

impl JoinRequest {
    /// The typed request of `patient` for `doctor` (whose dates are in `zone`), or a 422
    /// naming every bad field.
    fn parse(
        &self,
        (patient, doctor): (UserId, UserId),
        zone: &TimeZoneName,
        now: OffsetDateTime,
        rules: telemed_commands::SchedulingRules,
    ) -> Result<Request, ApiError> {
        let mut errors = FieldErrors::default();
        let from = errors.check("from", params::date(&self.from));
        let to = errors.check("to", params::date(&self.to));
        // The doctor's calendar: the UTC date is a day off for much of the day in far zones.
        let today = local_date(now, zone.tz());
        let last = local_date(now + rules.horizon, zone.tz());
        if let Some(from) = from
            && from > last
        {
            errors.push(
                "from",
                format!("must be within {} days", rules.horizon.whole_days()),
            );
        }
        if let Some(to) = to {
            if to < today {
                errors.push("to", "must not be in the past");
            } else if to > last {
                errors.push(
                    "to",
                    format!("must be within {} days", rules.horizon.whole_days()),
                );
            } else if from.is_some_and(|from| to < from) {
                errors.push("to", "must not be before from");
            }
        }
        let (shortest, longest) = (
            rules.min_length.whole_minutes(),
            rules.max_length.whole_minutes(),
        );
        let duration = u16::try_from(self.duration_minutes)
            .ok()
            .filter(|d| (shortest..=longest).contains(&i64::from(*d)));
        if duration.is_none() {
            errors.push(
                "duration_minutes",
                format!("must be between {shortest} and {longest} minutes"),
            );
        }
        let (Some(from), Some(to), Some(duration_minutes)) = (from, to, duration) else {
            return Err(errors.fail());
        };
        errors.finish(Some(Request {
            patient_id: patient,
            doctor_id: doctor,
            // A range that starts in the past waits from today.
            from: from.max(today),
            to,
            duration_minutes,
        }))
    }
}

fn no_such_offer() -> ApiError {
    ApiError::NotFound("no such offer".into())
}

/// The entry offer `offer` was made to, if it is the caller's.
async fn offer_entry(state: &AppState, user: &AuthUser, offer: Uuid) -> Result<Uuid, ApiError> {
    user.require(&[Role::Patient], "answer waitlist offers")?;
    match read::entry_of_offer(&state.pool, offer).await? {
        Some((patient, entry)) if patient == user.id => Ok(entry.id),
        _ => Err(no_such_offer()),
    }
}

/// Joins the doctor's waitlist: when time in the date range frees up (a cancellation, a
/// reschedule, a new window), the first patient waiting whose request fits is offered it,
/// held for them for `TELEMED_WAITLIST_HOLD_MINUTES`.
#[utoipa::path(post, path = "/api/v1/doctors/{id}/waitlist", tag = "waitlist", request_body = JoinRequest,
    params(("id" = String, Path, format = Uuid, description = "the doctor")),
    security(("bearer" = [])),
    responses((status = 201, body = EntryView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a patient"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such doctor"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "already_waiting: the caller waits for this doctor already (one open entry per doctor); too_many_waitlist_entries: the caller has 10 open entries (the most a patient may have)"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(doctor): ApiPath<UserId>,
    ApiJson(body): ApiJson<JoinRequest>,
) -> Result<(StatusCode, Json<EntryView>), ApiError> {
    user.require(&[Role::Patient], "join a waitlist")?;
    let zone = doctor_zone(&state, doctor).await?;
    let scheduling = state.waitlist.scheduling();
    let request = body.parse(
        (user.id, doctor),
        &zone,
        scheduling.clock().now(),
        scheduling.rules(),
    )?;
    let (id, position) = state.waitlist.join(request, &user.context()).await?;
    state.settle(position).await?;
    let (_, view) = read::entry(&state.pool, id).await?.ok_or_else(|| {
        ApiError::Unavailable(Some("the entry is not in the read model yet".into()))
    })?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The caller's waitlist entries (waiting, or with an open offer; at most 10, the most a
/// patient may have open).
#[utoipa::path(get, path = "/api/v1/me/waitlist", tag = "waitlist", security(("bearer" = [])),
    responses((status = 200, body = Waitlist)))]
async fn my_waitlist(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Waitlist>, ApiError> {
    let entries = read::entries_of(&state.pool, user.id).await?;
    Ok(Json(Waitlist { entries }))
}

/// Leaves a waitlist; an open offer is withdrawn and its time given back.
#[utoipa::path(delete, path = "/api/v1/me/waitlist/{id}", tag = "waitlist",
    params(("id" = String, Path, format = Uuid, description = "the entry")),
    security(("bearer" = [])),
    responses((status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "waitlist_closed: the entry's offer was accepted")))]
async fn leave(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let position = state.waitlist.leave(id, user.id, &user.context()).await?;
    state.settle(position).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an offer: the held time is booked through the normal booking path.
#[utoipa::path(post, path = "/api/v1/waitlist/offers/{id}/accept", tag = "waitlist",
    params(("id" = String, Path, format = Uuid, description = "the offer")),
    security(("bearer" = [])),
    responses((status = 201, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a patient"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such offer of the caller's"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "offer_closed (accepted elsewhere, declined or withdrawn), offer_expired, patient_busy or doctor_unavailable (time off added over the hold)")))]
async fn accept(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(offer): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<AppointmentView>), ApiError> {
    let entry = offer_entry(&state, &user, offer).await?;
    let accepted = state
        .waitlist
        .accept(entry, offer, user.id, &user.context())
        .await?;
    state.settle(accepted.position).await?;
    let view = appointments_read::appointment(&state.pool, accepted.appointment_id)
        .await?
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the appointment is not in the read model yet".into()))
        })?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Declines an offer: its time is given back (and offered to the next patient waiting); the
/// entry keeps waiting for other times.
#[utoipa::path(post, path = "/api/v1/waitlist/offers/{id}/decline", tag = "waitlist",
    params(("id" = String, Path, format = Uuid, description = "the offer")),
    security(("bearer" = [])),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a patient"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "offer_closed, or offer_expired once the offer lapsed")))]
async fn decline(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(offer): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let entry = offer_entry(&state, &user, offer).await?;
    let position = state
        .waitlist
        .decline(entry, offer, user.id, &user.context())
        .await?;
    state.settle(position).await?;
    Ok(StatusCode::NO_CONTENT)
}
