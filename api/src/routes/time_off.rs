//! A doctor's time off: block a span (holiday, conference), list it with the appointments it
//! covers, lift it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use telemed_commands::scheduling::MAX_TIME_OFF_DAYS;
use telemed_domain::calendar::{Interval, day_bounds};
use telemed_domain::values::{ShortNote, TimeZoneName};
use telemed_domain::{Role, TimeOffId};
use telemed_projections::appointments::{self, AppointmentView};
use telemed_projections::availability::{self as read, TimeOffRow};
use time::{Duration, OffsetDateTime};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiJson, ApiPath, AuthUser};
use crate::routes::availability::doctor_zone;
use crate::routes::{fields, params};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(block_time, list_time_off))
        .routes(routes!(get_time_off, lift_time_off))
}

/// `{start, end, note?}`: instants, or dates (midnight in the doctor's zone).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOffRequest {
    /// First instant (RFC 3339), or a date `YYYY-MM-DD`: its midnight in the doctor's zone.
    #[schema(value_type = fields::InstantOrDate)]
    start: String,
    /// First instant after (RFC 3339), or a date: its midnight in the doctor's zone (so
    /// `2027-07-15` ends the time off as that day begins). After `start`, in the future, at
    /// most 366 days after `start`.
    #[schema(value_type = fields::InstantOrDate)]
    end: String,
    /// Why (shown to the doctor only), at most 500 characters.
    #[schema(value_type = Option<fields::ShortNoteText>)]
    note: Option<String>,
}

/// A doctor's time off, with the open appointments that fall inside it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TimeOffView {
    /// Time off id.
    #[schema(value_type = String, format = Uuid)]
    id: TimeOffId,
    /// First instant (UTC).
    #[schema(value_type = String, format = DateTime)]
    start: String,
    /// First instant after (UTC).
    #[schema(value_type = String, format = DateTime)]
    end: String,
    /// `start` in the doctor's zone.
    local_start: String,
    /// `end` in the doctor's zone.
    local_end: String,
    /// The doctor's note.
    note: String,
    /// When it was recorded.
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    /// Open appointments (pending, confirmed, rescheduled) overlapping it, by start (at most
    /// 100): never cancelled by the time off; reschedule or cancel them.
    conflicting_appointments: Vec<AppointmentView>,
}

/// A doctor's time off that has not ended.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TimeOffList {
    /// The doctor's zone.
    timezone: String,
    /// By start (at most 500).
    time_off: Vec<TimeOffView>,
}

fn require_doctor(user: &AuthUser) -> Result<(), ApiError> {
    if user.role == Role::Doctor {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only doctors have time off".into()))
    }
}

/// `start` or `end`: an instant, or a date at midnight in `zone`.
fn bound(
    errors: &mut FieldErrors,
    field: &str,
    raw: &str,
    zone: &TimeZoneName,
) -> Option<OffsetDateTime> {
    if raw.trim().len() == 10 {
        let date = errors.check(field, params::date(raw))?;
        return Some(day_bounds(date, zone.tz()).start);
    }
    errors.check(field, params::instant(raw))
}

impl TimeOffRequest {
    /// The span and note, or a 422 naming every bad field.
    fn parse(
        &self,
        zone: &TimeZoneName,
        now: OffsetDateTime,
    ) -> Result<(Interval, ShortNote), ApiError> {
        let mut errors = FieldErrors::default();
        let start = bound(&mut errors, "start", &self.start, zone);
        let end = bound(&mut errors, "end", &self.end, zone);
        let note = errors.check("note", ShortNote::parse(self.note.as_deref().unwrap_or("")));
        let interval = match (start, end) {
            (Some(start), Some(end)) => match Interval::new(start, end) {
                Err(e) => {
                    errors.push("end", e.to_string());
                    None
                }
                Ok(i) if i.end <= now => {
                    errors.push("end", "must be in the future");
                    None
                }
                Ok(i) if i.duration() > Duration::days(MAX_TIME_OFF_DAYS) => {
                    let why = format!("must be at most {MAX_TIME_OFF_DAYS} days after start");
                    errors.push("end", why);
                    None
                }
                Ok(i) => Some(i),
            },
            _ => None,
        };
        errors.finish(interval.zip(note))
    }
}

/// The view of `row`, with its conflicts from the appointments read model.
async fn view(
    state: &AppState,
    user: &AuthUser,
    zone: &TimeZoneName,
    row: TimeOffRow,
) -> Result<TimeOffView, ApiError> {
    let (start, end) = (row.interval.start, row.interval.end);
    let conflicts =
        appointments::open_between(&state.pool, "doctor_id", user.id, start, end).await?;
    Ok(TimeOffView {
        id: row.id,
        start: params::utc(start),
        end: params::utc(end),
        local_start: params::local(start, zone),
        local_end: params::local(end, zone),
        note: row.note,
        created_at: params::utc(row.created_at),
        conflicting_appointments: conflicts,
    })
}

/// Blocks time off: new bookings inside it are refused (`409 doctor_unavailable`); open
/// appointments already inside are listed in `conflicting_appointments`, never cancelled.
#[utoipa::path(post, path = "/api/v1/doctors/me/time-off", tag = "availability",
    request_body = TimeOffRequest, security(("bearer" = [])),
    responses((status = 201, body = TimeOffView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a doctor"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn block_time(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<TimeOffRequest>,
) -> Result<(StatusCode, Json<TimeOffView>), ApiError> {
    require_doctor(&user)?;
    let zone = doctor_zone(&state, user.id).await?;
    let (interval, note) = body.parse(&zone, state.scheduling.clock().now())?;
    let (id, position) = state
        .scheduling
        .block_time(user.id, interval, note, &user.context())
        .await?;
    state.settle(position).await?;
    let row = read::time_off(&state.pool, user.id, id)
        .await?
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the time off is not in the read model yet".into()))
        })?;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &user, &zone, row).await?),
    ))
}

/// The doctor's time off that has not ended, each with its conflicting appointments.
#[utoipa::path(get, path = "/api/v1/doctors/me/time-off", tag = "availability",
    security(("bearer" = [])),
    responses((status = 200, body = TimeOffList),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a doctor")))]
async fn list_time_off(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<TimeOffList>, ApiError> {
    require_doctor(&user)?;
    let zone = doctor_zone(&state, user.id).await?;
    let now = state.scheduling.clock().now();
    let mut time_off = Vec::new();
    for row in read::time_off_after(&state.pool, user.id, now).await? {
        time_off.push(view(&state, &user, &zone, row).await?);
    }
    Ok(Json(TimeOffList {
        timezone: zone.as_str().to_string(),
        time_off,
    }))
}

/// One time off of the doctor's, with its conflicting appointments.
#[utoipa::path(get, path = "/api/v1/doctors/me/time-off/{time_off_id}", tag = "availability",
    params(("time_off_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = TimeOffView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a doctor"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_time_off(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TimeOffId>,
) -> Result<Json<TimeOffView>, ApiError> {
    require_doctor(&user)?;
    let zone = doctor_zone(&state, user.id).await?;
    let row = read::time_off(&state.pool, user.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such time off".into()))?;
    Ok(Json(view(&state, &user, &zone, row).await?))
}

/// Lifts time off: its time is bookable again (where windows are open).
#[utoipa::path(delete, path = "/api/v1/doctors/me/time-off/{time_off_id}", tag = "availability",
    params(("time_off_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a doctor"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn lift_time_off(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<TimeOffId>,
) -> Result<StatusCode, ApiError> {
    require_doctor(&user)?;
    let row = read::time_off(&state.pool, user.id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such time off".into()))?;
    let position = state
        .scheduling
        .lift_time_off(user.id, id, row.interval, &user.context())
        .await?;
    state.settle(position).await?;
    Ok(StatusCode::NO_CONTENT)
}
