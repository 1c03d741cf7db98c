//! Appointments: booking, the lifecycle actions, lists and history.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use telemed_commands::Booking;
use telemed_domain::appointment::{Party, Status};
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, Role, UserId};
use telemed_projections::StoredEvent;
use telemed_projections::appointments::{self as read, AppointmentView, ListFilter};
use telemed_projections::availability::day_containing;
use telemed_projections::profiles;
use telemed_projections::stream::aggregate_events;
use time::OffsetDateTime;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::access_log::{self, Outcome};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::idempotency::{self, Begin};
use crate::routes::{fields, params};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(book, list))
        .routes(routes!(get_appointment))
        .routes(routes!(confirm))
        .routes(routes!(reschedule))
        .routes(routes!(cancel))
        .routes(routes!(complete))
        .routes(routes!(no_show))
        .routes(routes!(history))
}

/// A booking request.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    /// The doctor.
    #[schema(value_type = String, format = Uuid)]
    doctor_id: String,
    /// RFC 3339, any offset; at least the minimum notice ahead and within the booking horizon
    /// (checked by the server: 422).
    #[schema(value_type = fields::Instant)]
    start: String,
    /// RFC 3339, any offset; after `start`.
    #[schema(value_type = fields::Instant)]
    end: String,
    /// Why the patient consults (1–2000 characters).
    #[schema(value_type = fields::ReasonText)]
    reason: String,
}

/// A new time.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// RFC 3339, any offset; in the future (checked by the server: 422).
    #[schema(value_type = fields::Instant)]
    start: String,
    /// RFC 3339, any offset; after `start`.
    #[schema(value_type = fields::Instant)]
    end: String,
    /// Why (1–2000 characters).
    #[schema(value_type = fields::ReasonText)]
    reason: String,
}

/// Why an appointment is called off.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// 1–2000 characters.
    #[schema(value_type = fields::ReasonText)]
    reason: String,
}

/// List filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only appointments in this status.
    #[param(value_type = Option<fields::AppointmentStatus>, inline)]
    status: Option<String>,
    /// Only appointments ending after this instant (RFC 3339).
    #[param(value_type = Option<fields::Instant>, inline)]
    from: Option<String>,
    /// Only appointments starting before this instant (RFC 3339).
    #[param(value_type = Option<fields::Instant>, inline)]
    to: Option<String>,
}

/// A list of appointments.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AppointmentList {
    /// By start; at most 500.
    appointments: Vec<AppointmentView>,
}

/// An appointment's history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct History {
    /// Its events, in order.
    events: Vec<StoredEvent>,
}

use fields::MAX_REASON;

fn reason(errors: &mut FieldErrors, raw: &str) -> Option<FreeText> {
    let text = errors.check("reason", FreeText::parse(raw))?;
    if text.as_str().is_empty() {
        errors.push("reason", "must not be empty");
        return None;
    }
    if text.as_str().chars().count() > MAX_REASON {
        errors.push("reason", format!("must be at most {MAX_REASON} characters"));
        return None;
    }
    Some(text)
}

/// Checks a booking time against the rules and finds the doctor-day whose window holds it
/// (409 `slot_unavailable` when none does).
async fn bookable_day(
    state: &AppState,
    doctor_id: UserId,
    interval: telemed_domain::calendar::Interval,
) -> Result<telemed_domain::DayId, ApiError> {
    state
        .scheduling
        .check_time(&interval)
        .map_err(|e| ApiError::from(telemed_commands::CommandError::Rejected(e)))?;
    day_containing(&state.pool, doctor_id, interval)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "slot_unavailable",
            detail: "the requested time is not free in the doctor's availability".into(),
        })
}

fn no_such_appointment() -> ApiError {
    ApiError::NotFound("no such appointment".into())
}

/// The appointment and the caller's side in it. Others than its doctor, its patient and
/// admins get 404 (`readers` may widen that, e.g. to auditors).
async fn load(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
    readers: &[Role],
) -> Result<(AppointmentView, Option<Party>), ApiError> {
    let view = read::appointment(&state.pool, id)
        .await?
        .ok_or_else(no_such_appointment)?;
    let party = side(user, &view, readers)?;
    Ok((view, party))
}

/// The caller's side in `view`; others than its doctor, its patient, admins and `readers` get
/// 404.
fn side(
    user: &AuthUser,
    view: &AppointmentView,
    readers: &[Role],
) -> Result<Option<Party>, ApiError> {
    match user.role {
        Role::Doctor if view.doctor_id == user.id => Ok(Some(Party::Doctor)),
        Role::Patient if view.patient_id == user.id => Ok(Some(Party::Patient)),
        role if role == Role::Admin || readers.contains(&role) => Ok(None),
        _ => Err(no_such_appointment()),
    }
}

/// [`load`] for reads of patient data: the read (or the refused attempt) is recorded in the
/// access log as `resource` first.
async fn load_audited(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
    readers: &[Role],
    resource: &'static str,
) -> Result<AppointmentView, ApiError> {
    let view = read::appointment(&state.pool, id)
        .await?
        .ok_or_else(no_such_appointment)?;
    let party = side(user, &view, readers);
    let outcome = match party {
        Ok(_) => Outcome::Allowed,
        Err(_) => Outcome::Denied,
    };
    access_log::record(
        &state.pool,
        user,
        view.patient_id,
        resource,
        &id.to_string(),
        outcome,
    )
    .await?;
    party.map(|_| view)
}

/// The caller's side, for actions: participants only (admins get 403, others 404).
async fn participant(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
) -> Result<(AppointmentView, Party), ApiError> {
    match load(state, user, id, &[]).await? {
        (view, Some(party)) => Ok((view, party)),
        (_, None) => Err(ApiError::Forbidden(
            "only the doctor and the patient can change an appointment".into(),
        )),
    }
}

/// Answers with the appointment after the read models caught up with `position`.
async fn settled(
    state: &AppState,
    id: AppointmentId,
    position: telemed_domain::Position,
) -> Result<Json<AppointmentView>, ApiError> {
    state.settle(position).await?;
    read::appointment(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the appointment is not in the read model yet".into()))
        })
}

fn problem_response(error: &ApiError) -> (StatusCode, serde_json::Value) {
    (
        error.status(),
        serde_json::to_value(error.problem()).unwrap_or_default(),
    )
}

/// Requests a consultation in a free slot of the doctor's availability.
#[utoipa::path(post, path = "/api/v1/appointments", tag = "appointments", request_body = BookRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeats return the first answer")),
    security(("bearer" = [])),
    responses((status = 201, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a patient"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "slot_unavailable or patient_busy"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn book(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BookRequest>,
) -> Result<Response, ApiError> {
    user.require(&[Role::Patient], "book appointments")?;
    let key = headers
        .get(idempotency::HEADER)
        .map(|v| idempotency::parse_key(v.to_str().unwrap_or_default()))
        .transpose()?;
    let Some(key) = key else {
        let view = book_once(&state, &user, body, AppointmentId::new()).await?;
        return Ok((StatusCode::CREATED, view).into_response());
    };
    let fingerprint = serde_json::to_string(&body).map_err(ApiError::internal)?;
    let claim = match state.idempotency.begin(user.id, &key, &fingerprint).await? {
        Begin::Replay(status, body) => return Ok(replay(status, body)),
        Begin::Fresh(claim) => claim,
    };
    let outcome = book_once(&state, &user, body, keyed_appointment_id(user.id, &key)).await;
    let (status, json) = match &outcome {
        Ok(Json(view)) => (
            StatusCode::CREATED,
            serde_json::to_value(view).map_err(ApiError::internal)?,
        ),
        Err(error) => problem_response(error),
    };
    if status.is_server_error() {
        claim.abandon().await;
    } else {
        claim.finish(status, &json).await?;
    }
    outcome.map(|view| (StatusCode::CREATED, view).into_response())
}

fn replay(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if !status.is_success() {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
    }
    response
}

/// Keyed bookings get ids derived from the user and key (UUID v5): a retry whose first
/// attempt was recorded, but not answered (the database went away), finds that booking.
fn keyed_appointment_id(user: UserId, key: &str) -> AppointmentId {
    const KEYED_BOOKINGS: Uuid = Uuid::from_u128(0x5d2b_8f6e_3c1a_4e57_9b0d_7a64_e2c1_f938);
    let name = format!("{user}/{key}");
    AppointmentId::from(Uuid::new_v5(&KEYED_BOOKINGS, name.as_bytes()))
}

async fn book_once(
    state: &AppState,
    user: &AuthUser,
    body: BookRequest,
    id: AppointmentId,
) -> Result<Json<AppointmentView>, ApiError> {
    let mut errors = FieldErrors::default();
    let doctor_id = match body.doctor_id.trim().parse::<UserId>() {
        Ok(id) => Some(id),
        Err(_) => {
            errors.push("doctor_id", "must be a doctor's id (a UUID)");
            None
        }
    };
    let interval = params::interval(&mut errors, &body.start, &body.end);
    let reason = reason(&mut errors, &body.reason);
    let (doctor_id, interval, reason) =
        errors.finish((|| Some((doctor_id?, interval?, reason?)))())?;
    let day = match bookable_day(state, doctor_id, interval).await {
        // No window holds the time: say so precisely when there is no such doctor at all.
        Err(ApiError::Conflict { .. })
            if profiles::doctor(&state.pool, doctor_id).await?.is_none() =>
        {
            return Err(ApiError::invalid("doctor_id", "no such doctor"));
        }
        other => other?,
    };
    let summary = (doctor_id, interval, reason.as_str().to_string());
    let booking = Booking {
        appointment_id: id,
        doctor_id,
        patient_id: user.id,
        day,
        interval,
        reason,
    };
    let id = booking.appointment_id;
    let position = state.scheduling.book(booking, &user.context()).await?;
    state.settle(position).await?;
    if let Some(view) = read::appointment(&state.pool, id).await? {
        // The read model keeps microseconds.
        let micros = |t: OffsetDateTime| t.unix_timestamp_nanos() / 1000;
        let same = (view.patient_id, view.doctor_id) == (user.id, doctor_id)
            && (micros(view.start), micros(view.end))
                == (micros(interval.start), micros(interval.end));
        if !same {
            // Only a keyed retry of a different request can find another booking here.
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "was already used for a different request",
            ));
        }
        return Ok(Json(view));
    }
    // The booking is recorded but the read models lag (a rebuild may be running): answer from
    // what was just recorded rather than fail a request that succeeded.
    let (doctor_id, interval, reason) = summary;
    let now = state.scheduling.clock().now();
    Ok(Json(AppointmentView {
        id,
        doctor_id,
        patient_id: user.id,
        start: interval.start,
        end: interval.end,
        status: Status::Pending.as_str().to_string(),
        awaiting_confirmation_by: Some("doctor".to_string()),
        reason,
        created_at: now,
        updated_at: now,
        rescheduled_from: None,
        cancellation: None,
        position: position.to_string(),
        revision: 0,
    }))
}

/// The caller's appointments (patient: as patient; doctor: as doctor; admin: all).
#[utoipa::path(get, operation_id = "list_appointments", path = "/api/v1/appointments", tag = "appointments", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AppointmentList), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<AppointmentList>, ApiError> {
    let mut errors = FieldErrors::default();
    let status = match query.status.as_deref() {
        Some(raw) => {
            match Status::from_name(raw) {
                Some(status) => Some(status),
                None => {
                    errors.push("status", "must be one of pending, confirmed, rescheduled, cancelled, completed, no_show");
                    None
                }
            }
        }
        None => None,
    };
    let from = query
        .from
        .as_deref()
        .and_then(|raw| errors.check("from", params::instant(raw)));
    let to = query
        .to
        .as_deref()
        .and_then(|raw| errors.check("to", params::instant(raw)));
    errors.finish(Some(()))?;
    let filter = ListFilter { status, from, to };
    let appointments = read::list(&state.pool, user.id, user.role, &filter).await?;
    Ok(Json(AppointmentList { appointments }))
}

/// One appointment (its participants and admins).
#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = AppointmentView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_appointment(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<Json<AppointmentView>, ApiError> {
    load_audited(&state, &user, id, &[], "appointment")
        .await
        .map(Json)
}

/// Confirms: the doctor a request; after a reschedule, the other party.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/confirm", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "invalid_transition")))]
async fn confirm(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<Json<AppointmentView>, ApiError> {
    let (_, party) = participant(&state, &user, id).await?;
    let position = state.scheduling.confirm(id, party, &user.context()).await?;
    settled(&state, id, position).await
}

/// Moves to a new time, reserved before the old one is released.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/reschedule", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), request_body = RescheduleRequest, security(("bearer" = [])),
    responses((status = 200, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a participant (an admin)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "slot_unavailable, patient_busy or invalid_transition"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn reschedule(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(body): ApiJson<RescheduleRequest>,
) -> Result<Json<AppointmentView>, ApiError> {
    let (view, party) = participant(&state, &user, id).await?;
    let mut errors = FieldErrors::default();
    let interval = params::interval(&mut errors, &body.start, &body.end);
    let reason = reason(&mut errors, &body.reason);
    let (interval, reason) = errors.finish((|| Some((interval?, reason?)))())?;
    if interval.start == view.start && interval.end == view.end {
        return Err(ApiError::invalid(
            "start",
            "the new time is the current time",
        ));
    }
    let day = bookable_day(&state, view.doctor_id, interval).await?;
    let position = state
        .scheduling
        .reschedule(id, party, day, interval, reason, &user.context())
        .await?;
    settled(&state, id, position).await
}

/// Calls it off; the slot is free again.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/cancel", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), request_body = CancelRequest, security(("bearer" = [])),
    responses((status = 200, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a participant (an admin)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "invalid_transition")))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(body): ApiJson<CancelRequest>,
) -> Result<Json<AppointmentView>, ApiError> {
    let (_, party) = participant(&state, &user, id).await?;
    let mut errors = FieldErrors::default();
    let reason = reason(&mut errors, &body.reason);
    let reason = errors.finish(reason)?;
    let position = state
        .scheduling
        .cancel(id, party, reason, &user.context())
        .await?;
    settled(&state, id, position).await
}

/// Records that it took place (the doctor, once it has started).
#[utoipa::path(post, path = "/api/v1/appointments/{id}/complete", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "invalid_transition or not_started")))]
async fn complete(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<Json<AppointmentView>, ApiError> {
    let (_, party) = participant(&state, &user, id).await?;
    let position = state
        .scheduling
        .complete(id, party, &user.context())
        .await?;
    settled(&state, id, position).await
}

/// Records that the patient did not come (the doctor, once it has started).
#[utoipa::path(post, path = "/api/v1/appointments/{id}/no-show", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = AppointmentView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "invalid_transition or not_started")))]
async fn no_show(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<Json<AppointmentView>, ApiError> {
    let (_, party) = participant(&state, &user, id).await?;
    let position = state.scheduling.no_show(id, party, &user.context()).await?;
    settled(&state, id, position).await
}

/// The appointment's events (participants, auditors, admins).
#[utoipa::path(get, operation_id = "appointment_history", path = "/api/v1/appointments/{id}/history", tag = "appointments",
    params(("id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = History), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
) -> Result<Json<History>, ApiError> {
    load_audited(&state, &user, id, &[Role::Auditor], "appointment_history").await?;
    let events = aggregate_events(
        &state.pool,
        telemed_domain::appointment::AGGREGATE_TYPE,
        &id.to_string(),
    )
    .await?;
    Ok(Json(History { events }))
}
