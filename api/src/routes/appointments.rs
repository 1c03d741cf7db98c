//! Appointments: booking, the lifecycle actions, lists and history.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use telemed_commands::{Booking, keyed_appointment_id};
use telemed_domain::appointment::{Party, Status};
use telemed_domain::calendar::Interval;
use telemed_domain::values::FreeText;
use telemed_domain::{AppointmentId, Role, UserId};
use telemed_projections::StoredEvent;
use telemed_projections::appointments::{self as read, AppointmentView, ListFilter};
use telemed_projections::stream::aggregate_events;
use utoipa_axum::{router::OpenApiRouter, routes};

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

impl BookRequest {
    /// The typed booking of `patient` under `id`, or a 422 naming every bad field.
    fn parse(&self, id: AppointmentId, patient: UserId) -> Result<Booking, ApiError> {
        let mut errors = FieldErrors::default();
        let doctor_id = self.doctor_id.trim().parse::<UserId>().ok();
        if doctor_id.is_none() {
            errors.push("doctor_id", "must be a doctor's id (a UUID)");
        }
        let interval = params::interval(&mut errors, &self.start, &self.end);
        let reason = reason(&mut errors, &self.reason);
        let (Some(doctor_id), Some(interval), Some(reason)) = (doctor_id, interval, reason) else {
            return Err(errors.fail());
        };
        Ok(Booking {
            appointment_id: id,
            doctor_id,
            patient_id: patient,
            interval,
            reason,
            hold: None,
        })
    }
}

impl TryFrom<RescheduleRequest> for (Interval, FreeText) {
    type Error = ApiError;

    /// The new time and why, or a 422 naming every bad field.
    fn try_from(body: RescheduleRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let interval = params::interval(&mut errors, &body.start, &body.end);
        let reason = reason(&mut errors, &body.reason);
        let (Some(interval), Some(reason)) = (interval, reason) else {
            return Err(errors.fail());
        };
        Ok((interval, reason))
    }
}

impl TryFrom<CancelRequest> for FreeText {
    type Error = ApiError;

    /// Why, or a 422 naming `reason`.
    fn try_from(body: CancelRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let reason = reason(&mut errors, &body.reason);
        errors.finish(reason)
    }
}

impl TryFrom<ListQuery> for ListFilter {
    type Error = ApiError;

    /// The filter, or a 422 naming every bad parameter.
    fn try_from(query: ListQuery) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let status = query.status.as_deref().and_then(|raw| {
            let status = Status::from_name(raw);
            if status.is_none() {
                errors.push(
                    "status",
                    "must be one of pending, confirmed, rescheduled, cancelled, completed, no_show",
                );
            }
            status
        });
        let from = query
            .from
            .as_deref()
            .and_then(|raw| errors.check("from", params::instant(raw)));
        let to = query
            .to
            .as_deref()
            .and_then(|raw| errors.check("to", params::instant(raw)));
        errors.finish(Some(ListFilter {
            status,
            from,
            to,
            after: None,
        }))
    }
}

pub(super) fn no_such_appointment() -> ApiError {
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
pub(super) fn side(
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
pub(super) async fn load_audited(
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
        (status = 409, body = Problem, content_type = "application/problem+json", description = "slot_unavailable (taken, or inside another appointment's buffers), doctor_unavailable (time off) or patient_busy"),
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
        let view = book_once(&state, &user, &body, AppointmentId::new()).await?;
        return Ok((StatusCode::CREATED, view).into_response());
    };
    let fingerprint = serde_json::to_string(&body).map_err(ApiError::internal)?;
    let claim = match state.idempotency.begin(user.id, &key, &fingerprint).await? {
        Begin::Replay(status, body) => return Ok(replay(status, body)),
        Begin::Fresh(claim) => claim,
    };
    let outcome = book_once(&state, &user, &body, keyed_appointment_id(user.id, &key)).await;
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

/// Parses, books and answers with the appointment (from the read model once it caught up,
/// else as the booking was just recorded).
async fn book_once(
    state: &AppState,
    user: &AuthUser,
    body: &BookRequest,
    id: AppointmentId,
) -> Result<Json<AppointmentView>, ApiError> {
    let booking = body.parse(id, user.id)?;
    let booked = state
        .scheduling
        .book(booking.clone(), &user.context())
        .await?;
    state.settle(booked.position).await?;
    if let Some(view) = read::appointment(&state.pool, id).await? {
        return Ok(Json(view));
    }
    Ok(Json(AppointmentView::requested(
        id,
        (booking.doctor_id, booking.patient_id),
        booking.interval,
        booking.reason.as_str(),
        booked.at,
        booked.position,
    )))
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
    let filter = ListFilter::try_from(query)?;
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
        (status = 409, body = Problem, content_type = "application/problem+json", description = "slot_unavailable, doctor_unavailable (time off), patient_busy or invalid_transition"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn reschedule(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(body): ApiJson<RescheduleRequest>,
) -> Result<Json<AppointmentView>, ApiError> {
    let (_, party) = participant(&state, &user, id).await?;
    let (interval, reason) = body.try_into()?;
    let position = state
        .scheduling
        .reschedule(id, party, interval, reason, &user.context())
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
    let reason = body.try_into()?;
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
