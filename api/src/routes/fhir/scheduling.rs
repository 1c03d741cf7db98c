//! `Appointment` and `Communication`: the REST API's appointments and their conversations.

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use telemed_domain::appointment::Status;
use telemed_domain::{AppointmentId, MessageId, Role, UserId};
use telemed_projections::appointments::{
    self as read, AppointmentSearch, AppointmentView, StartCondition,
};
use telemed_projections::{conversations, profiles};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::directory::fhir_base;
use super::map;
use super::model::Resource;
use super::outcome::{Fhir, FhirError, FhirUser};
use super::search::{self, Search};
use crate::access_log::{self, Outcome};
use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::routes::appointments::load_audited;
use crate::state::AppState;

#[allow(unused_imports)]
use super::outcome::{BundleDoc, OutcomeDoc, ResourceDoc};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_appointment))
        .routes(routes!(search_appointments))
        .routes(routes!(read_communication))
        .routes(routes!(search_communications))
}

/// The appointment id in `raw`, else 404.
fn appointment_id(raw: &str) -> Result<AppointmentId, FhirError> {
    raw.parse()
        .map_err(|_| FhirError::not_found("Appointment", raw))
}

/// The names of `views`' doctors and patients.
pub(crate) async fn participant_names(
    state: &AppState,
    views: &[AppointmentView],
) -> Result<map::Names, sqlx::Error> {
    let mut people: Vec<UserId> = views
        .iter()
        .flat_map(|v| [v.doctor_id, v.patient_id])
        .collect();
    people.sort_by_key(|id| id.to_string());
    people.dedup();
    profiles::names(&state.pool, &people).await
}

/// `views` as `Appointment`s, their participants named.
async fn appointments(
    state: &AppState,
    views: &[AppointmentView],
) -> Result<Vec<Resource>, FhirError> {
    let names = participant_names(state, views).await?;
    Ok(views
        .iter()
        .map(|v| Resource::Appointment(map::appointment(v, &names)))
        .collect())
}

/// An appointment (its doctor, its patient and admins, as `GET /api/v1/appointments/{id}`;
/// the read is in the access log).
#[utoipa::path(get, path = "/fhir/R4/Appointment/{id}", operation_id = "fhir_read_appointment", tag = "fhir",
    params(("id" = String, Path, description = "the appointment's id")), security(("bearer" = [])),
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "Appointment"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json", description = "unknown, or not yours to read")))]
async fn read_appointment(
    State(state): State<AppState>,
    FhirUser(user): FhirUser,
    Path(id): Path<String>,
) -> Result<Fhir<Resource>, FhirError> {
    let view = load_audited(&state, &user, appointment_id(&id)?, &[], "appointment").await?;
    let mut resources = appointments(&state, std::slice::from_ref(&view)).await?;
    Ok(Fhir(resources.remove(0)))
}

/// The FHIR statuses asked for (comma-separated, repeatable), checked.
fn statuses(search: &mut Search) -> Result<Vec<String>, FhirError> {
    const KNOWN: [&str; 5] = ["pending", "booked", "cancelled", "fulfilled", "noshow"];
    let mut wanted = Vec::new();
    for value in search.all("status") {
        for status in value.split(',').map(str::trim) {
            if !KNOWN.contains(&status) {
                return Err(FhirError::parameter(
                    "status",
                    "must be pending, booked, cancelled, fulfilled or noshow",
                ));
            }
            wanted.push(status.to_string());
        }
    }
    Ok(wanted)
}

/// 403 (and a refused read in the access log) when a patient searches another patient's
/// appointments, or a doctor another doctor's.
async fn may_search(
    state: &AppState,
    user: &AuthUser,
    patient: Option<UserId>,
    practitioner: Option<UserId>,
) -> Result<(), FhirError> {
    match (user.role, patient, practitioner) {
        (Role::Patient, Some(patient), _) if patient != user.id => {
            let id = patient.to_string();
            access_log::record(
                &state.pool,
                user,
                patient,
                "appointments",
                &id,
                Outcome::Denied,
            )
            .await?;
            Err(
                ApiError::Forbidden("a patient can search only their own appointments".into())
                    .into(),
            )
        }
        (Role::Doctor, _, Some(doctor)) if doctor != user.id => Err(ApiError::Forbidden(
            "a doctor can search only their own appointments".into(),
        )
        .into()),
        _ => Ok(()),
    }
}

/// The caller's appointments (as `GET /api/v1/appointments`: a patient's, a doctor's, an
/// admin's all), by start: `patient`, `practitioner`, `date` (the start; FHIR
/// prefixes), `status` (FHIR's; `pending` includes rescheduled ones awaiting confirmation).
#[utoipa::path(get, path = "/fhir/R4/Appointment", operation_id = "fhir_search_appointments", tag = "fhir",
    params(("patient" = Option<String>, Query, description = "Patient/{id}"),
        ("practitioner" = Option<String>, Query, description = "Practitioner/{id}"),
        ("date" = Option<Vec<String>>, Query, description = "the start, e.g. ge2027-03-14"),
        ("status" = Option<String>, Query, description = "pending, booked, cancelled, fulfilled, noshow (comma-separated)"),
        ("_count" = Option<i64>, Query, minimum = 1, maximum = 200, description = "page size (default 50)"),
        ("_offset" = Option<i64>, Query, minimum = 0, maximum = 1000000, description = "matches to skip")),
    security(("bearer" = [])),
    responses((status = 200, body = BundleDoc, content_type = "application/fhir+json"),
        (status = 400, body = OutcomeDoc, content_type = "application/fhir+json", description = "a bad or unknown search parameter, named"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 403, body = OutcomeDoc, content_type = "application/fhir+json", description = "another patient's or doctor's appointments")))]
async fn search_appointments(
    State(state): State<AppState>,
    FhirUser(user): FhirUser,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Fhir<Resource>, FhirError> {
    let mut search = Search::new(&uri, &fhir_base(&state, &headers), "Appointment")?;
    let patient = search
        .one("patient")?
        .map(|raw| search::reference::<UserId>("patient", "Patient", &raw))
        .transpose()?;
    let practitioner = search
        .one("practitioner")?
        .map(|raw| search::reference::<UserId>("practitioner", "Practitioner", &raw))
        .transpose()?;
    let dates = search::dates(&mut search, "date")?;
    let statuses = statuses(&mut search)?;
    let page = search.page()?;
    search.finish()?;
    may_search(&state, &user, patient, practitioner).await?;
    let wanted = (!statuses.is_empty()).then(|| {
        Status::ALL
            .into_iter()
            .filter(|s| {
                statuses
                    .iter()
                    .any(|f| f == map::appointment_status(s.as_str()))
            })
            .collect()
    });
    let starts = dates
        .iter()
        .map(|c| {
            let (low, high, negated) = c.bounds();
            StartCondition { low, high, negated }
        })
        .collect();
    let filter = AppointmentSearch {
        patient,
        doctor: practitioner,
        statuses: wanted,
        starts,
    };
    let window = (page.offset as i64, page.count as i64);
    let (total, views) = read::search(&state.pool, user.id, user.role, &filter, window).await?;
    let matches = appointments(&state, &views).await?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    Ok(Fhir(Resource::Bundle(
        search.bundle_page(page, total, matches),
    )))
}

/// The appointment of a conversation, if `user` takes part in it; the read (or the refused
/// attempt) is in the access log, as `GET /api/v1/appointments/{id}/messages` logs it.
async fn conversation(
    state: &AppState,
    user: &AuthUser,
    id: AppointmentId,
) -> Result<AppointmentView, FhirError> {
    crate::routes::messages::conversation_audited(state, user, id).await?;
    let resource_id = id.to_string();
    read::appointment(&state.pool, id)
        .await?
        .ok_or_else(|| FhirError::not_found("Appointment", &resource_id))
}

/// A chat message (the appointment's doctor and patient, as its conversation).
#[utoipa::path(get, path = "/fhir/R4/Communication/{id}", operation_id = "fhir_read_communication", tag = "fhir",
    params(("id" = String, Path, description = "the message's id")), security(("bearer" = [])),
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "Communication"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json", description = "unknown, or not yours to read")))]
async fn read_communication(
    State(state): State<AppState>,
    FhirUser(user): FhirUser,
    Path(id): Path<String>,
) -> Result<Fhir<Resource>, FhirError> {
    let message_id: MessageId = id
        .parse()
        .map_err(|_| FhirError::not_found("Communication", &id))?;
    let (message, _) = conversations::message(&state.pool, message_id)
        .await?
        .ok_or_else(|| FhirError::not_found("Communication", &id))?;
    let view = conversation(&state, &user, message.appointment_id)
        .await
        .map_err(|error| match error.0 {
            ApiError::NotFound(_) => FhirError::not_found("Communication", &id),
            other => FhirError(other),
        })?;
    Ok(Fhir(Resource::Communication(map::message(&view, &message))))
}

/// The messages of an appointment (its doctor and patient, as `GET
/// /api/v1/appointments/{id}/messages`): `part-of` (required, `Appointment/{id}`); pages run
/// from the newest back, each oldest first, and `next` carries `_cursor`.
#[utoipa::path(get, path = "/fhir/R4/Communication", operation_id = "fhir_search_communications", tag = "fhir",
    params(("part-of" = String, Query, description = "Appointment/{id}"),
        ("_cursor" = Option<String>, Query, description = "from a next link: messages before this one"),
        ("_count" = Option<i64>, Query, minimum = 1, maximum = 200, description = "page size (default 50)")),
    security(("bearer" = [])),
    responses((status = 200, body = BundleDoc, content_type = "application/fhir+json"),
        (status = 400, body = OutcomeDoc, content_type = "application/fhir+json", description = "a bad, missing or unknown search parameter, named"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json", description = "unknown appointment, or not yours")))]
async fn search_communications(
    State(state): State<AppState>,
    FhirUser(user): FhirUser,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Fhir<Resource>, FhirError> {
    let mut search = Search::new(&uri, &fhir_base(&state, &headers), "Communication")?;
    let appointment: AppointmentId = match search.one("part-of")? {
        Some(raw) => search::reference("part-of", "Appointment", &raw)?,
        None => return Err(FhirError::parameter("part-of", "is required")),
    };
    let cursor = search
        .one("_cursor")?
        .map(|raw| {
            raw.parse::<MessageId>()
                .map_err(|_| FhirError::parameter("_cursor", "must come from a next link"))
        })
        .transpose()?;
    let page = search.page()?;
    if page.offset > 0 {
        return Err(FhirError::parameter(
            "_offset",
            "is not supported here; follow the next link (_cursor)",
        ));
    }
    search.finish()?;
    let view = conversation(&state, &user, appointment).await?;
    let before = state
        .chat
        .position_before(appointment, cursor)
        .await
        .map_err(|error| match ApiError::from(error) {
            ApiError::Validation(_) => {
                FhirError::parameter("_cursor", "must be a message of this appointment")
            }
            other => FhirError(other),
        })?;
    let messages = conversations::page(&state.pool, appointment, before, page.count as i64).await?;
    let total = conversations::count(&state.pool, appointment).await?;
    let next = match (messages.more, messages.messages.first()) {
        (true, Some(oldest)) => Some(oldest.id.to_string()),
        _ => None,
    };
    let resources = messages
        .messages
        .iter()
        .map(|m| Resource::Communication(map::message(&view, m)))
        .collect();
    Ok(Fhir(Resource::Bundle(search.bundle_with_cursor(
        total as usize,
        resources,
        next,
    ))))
}
