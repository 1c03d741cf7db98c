//! `Practitioner`, `Patient`, `Schedule` and `Slot`: the REST API's doctor directory, patient
//! record and free slots.

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use telemed_domain::UserId;
use telemed_domain::calendar::Interval;
use telemed_projections::profiles::{self, DoctorView};
use time::{Duration, OffsetDateTime};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::map;
use super::model::Resource;
use super::outcome::{Fhir, FhirError, FhirUser};
use super::search::{self, Search};
use crate::routes::calendar::base_url;
use crate::state::AppState;

#[allow(unused_imports)]
use super::outcome::{BundleDoc, OutcomeDoc, ResourceDoc};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_practitioner))
        .routes(routes!(search_practitioners))
        .routes(routes!(read_patient))
        .routes(routes!(read_schedule))
        .routes(routes!(search_schedules))
        .routes(routes!(read_slot))
        .routes(routes!(search_slots))
}

/// `…/fhir/R4` as the client reached it.
pub(super) fn fhir_base(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}{}", base_url(state, headers), super::BASE_PATH)
}

/// The user id in `raw`, else 404 for `kind/raw`.
fn user_id(kind: &str, raw: &str) -> Result<UserId, FhirError> {
    raw.parse().map_err(|_| FhirError::not_found(kind, raw))
}

async fn doctor(state: &AppState, kind: &str, raw: &str) -> Result<DoctorView, FhirError> {
    profiles::doctor(&state.pool, user_id(kind, raw)?)
        .await?
        .ok_or_else(|| FhirError::not_found(kind, raw))
}

/// A doctor (any signed-in user, as `GET /api/v1/doctors/{id}`).
#[utoipa::path(get, path = "/fhir/R4/Practitioner/{id}", operation_id = "fhir_read_practitioner", tag = "fhir",
    params(("id" = String, Path, description = "the doctor's id")), security(("bearer" = [])),
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "Practitioner"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json")))]
async fn read_practitioner(
    State(state): State<AppState>,
    _user: FhirUser,
    Path(id): Path<String>,
) -> Result<Fhir<Resource>, FhirError> {
    let doctor = doctor(&state, "Practitioner", &id).await?;
    Ok(Fhir(Resource::Practitioner(map::practitioner(&doctor))))
}

/// Doctors (as `GET /api/v1/doctors`: at most 100, by name); `name`: text the name contains,
/// case-insensitive.
#[utoipa::path(get, path = "/fhir/R4/Practitioner", operation_id = "fhir_search_practitioners", tag = "fhir",
    params(("name" = Option<String>, Query, description = "text the name contains"),
        ("_count" = Option<i64>, Query, minimum = 1, maximum = 200, description = "page size (default 50)"),
        ("_offset" = Option<i64>, Query, minimum = 0, maximum = 1000000, description = "matches to skip")),
    security(("bearer" = [])),
    responses((status = 200, body = BundleDoc, content_type = "application/fhir+json"),
        (status = 400, body = OutcomeDoc, content_type = "application/fhir+json", description = "a bad or unknown search parameter, named"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json")))]
async fn search_practitioners(
    State(state): State<AppState>,
    _user: FhirUser,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Fhir<Resource>, FhirError> {
    let mut search = Search::new(&uri, &fhir_base(&state, &headers), "Practitioner")?;
    let name = search.one("name")?.filter(|n| !n.is_empty());
    let page = search.page()?;
    search.finish()?;
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(FhirError::parameter(
            "name",
            "must be at most 100 characters",
        ));
    }
    let doctors = profiles::search_doctors(&state.pool, None, name.as_deref()).await?;
    let needle = name.map(|n| n.to_lowercase());
    let matches = doctors
        .iter()
        .filter(|d| {
            needle
                .as_ref()
                .is_none_or(|n| d.name.to_lowercase().contains(n))
        })
        .map(|d| Resource::Practitioner(map::practitioner(d)))
        .collect();
    Ok(Fhir(Resource::Bundle(search.bundle(page, matches))))
}

/// A patient (the patient, their doctors and admins, as `GET /api/v1/patients/{id}`; the read
/// is in the access log).
#[utoipa::path(get, path = "/fhir/R4/Patient/{id}", operation_id = "fhir_read_patient", tag = "fhir",
    params(("id" = String, Path, description = "the patient's id")), security(("bearer" = [])),
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "Patient"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json", description = "unknown, or not yours to read")))]
async fn read_patient(
    State(state): State<AppState>,
    FhirUser(user): FhirUser,
    Path(id): Path<String>,
) -> Result<Fhir<Resource>, FhirError> {
    let patient_id = user_id("Patient", &id)?;
    let view = crate::routes::patients::read_audited(&state, &user, patient_id)
        .await?
        .ok_or_else(|| FhirError::not_found("Patient", &id))?;
    Ok(Fhir(Resource::Patient(map::patient(&view))))
}

/// A doctor's schedule (its id is the doctor's).
#[utoipa::path(get, path = "/fhir/R4/Schedule/{id}", operation_id = "fhir_read_schedule", tag = "fhir",
    params(("id" = String, Path, description = "the doctor's id")), security(("bearer" = [])),
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "Schedule"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json")))]
async fn read_schedule(
    State(state): State<AppState>,
    _user: FhirUser,
    Path(id): Path<String>,
) -> Result<Fhir<Resource>, FhirError> {
    let doctor = doctor(&state, "Schedule", &id).await?;
    Ok(Fhir(Resource::Schedule(map::schedule(&doctor))))
}

/// Doctors' schedules; `actor`: one doctor's (`Practitioner/{id}`).
#[utoipa::path(get, path = "/fhir/R4/Schedule", operation_id = "fhir_search_schedules", tag = "fhir",
    params(("actor" = Option<String>, Query, description = "Practitioner/{id}"),
        ("_count" = Option<i64>, Query, minimum = 1, maximum = 200, description = "page size (default 50)"),
        ("_offset" = Option<i64>, Query, minimum = 0, maximum = 1000000, description = "matches to skip")),
    security(("bearer" = [])),
    responses((status = 200, body = BundleDoc, content_type = "application/fhir+json"),
        (status = 400, body = OutcomeDoc, content_type = "application/fhir+json", description = "a bad or unknown search parameter, named"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json")))]
async fn search_schedules(
    State(state): State<AppState>,
    _user: FhirUser,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Fhir<Resource>, FhirError> {
    let mut search = Search::new(&uri, &fhir_base(&state, &headers), "Schedule")?;
    let actor = search
        .one("actor")?
        .map(|raw| search::reference::<UserId>("actor", "Practitioner", &raw))
        .transpose()?;
    let page = search.page()?;
    search.finish()?;
    let doctors = match actor {
        Some(id) => profiles::doctor(&state.pool, id)
            .await?
            .into_iter()
            .collect(),
        None => profiles::search_doctors(&state.pool, None, None).await?,
    };
    let matches = doctors
        .iter()
        .map(|d| Resource::Schedule(map::schedule(d)))
        .collect();
    Ok(Fhir(Resource::Bundle(search.bundle(page, matches))))
}

/// A free slot's doctor and time, from its id `{doctor}-{start, Unix seconds}-{minutes}`.
fn slot_of(id: &str) -> Option<(UserId, Interval)> {
    let mut parts = id.rsplitn(3, '-');
    let minutes: i64 = parts.next()?.parse().ok()?;
    let start: i64 = parts.next()?.parse().ok()?;
    let doctor: UserId = parts.next()?.parse().ok()?;
    // The years a search's `start` may name (so the search around it cannot overflow).
    let start = OffsetDateTime::from_unix_timestamp(start)
        .ok()
        .filter(|start| (1..=9998).contains(&start.year()))?;
    let end = start.checked_add(Duration::minutes(minutes))?;
    Some((doctor, Interval { start, end }))
}

/// A free slot, while it is free (else 404).
#[utoipa::path(get, path = "/fhir/R4/Slot/{id}", operation_id = "fhir_read_slot", tag = "fhir",
    params(("id" = String, Path, description = "{doctor}-{start, Unix seconds}-{minutes}")), security(("bearer" = [])),
    responses((status = 200, body = ResourceDoc, content_type = "application/fhir+json", description = "Slot"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json"),
        (status = 404, body = OutcomeDoc, content_type = "application/fhir+json", description = "no such slot, or no longer free")))]
async fn read_slot(
    State(state): State<AppState>,
    _user: FhirUser,
    Path(id): Path<String>,
) -> Result<Fhir<Resource>, FhirError> {
    let (doctor, slot) = slot_of(&id)
        .filter(|(_, slot)| (5..=240).contains(&(slot.end - slot.start).whole_minutes()))
        .ok_or_else(|| FhirError::not_found("Slot", &id))?;
    let minutes = (slot.end - slot.start).whole_minutes();
    let range = (slot.start, slot.start + Duration::seconds(1));
    let free = crate::routes::availability::free_between(&state, doctor, range, minutes).await?;
    if !free.contains(&slot) {
        return Err(FhirError::not_found("Slot", &id));
    }
    Ok(Fhir(Resource::Slot(map::slot(doctor, &slot))))
}

/// Longest range of one slot search (as the REST API's).
const MAX_RANGE_DAYS: i64 = 62;

/// The `[from, to)` of a slot search: the tightest bounds of its `start` conditions, from now
/// and for 14 days by default.
fn slot_range(
    conditions: &[search::DateCondition],
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), FhirError> {
    let from = conditions
        .iter()
        .filter_map(|c| c.lower_bound())
        .max()
        .unwrap_or(now);
    let to = conditions
        .iter()
        .filter_map(|c| c.upper_bound())
        .min()
        .unwrap_or(from + Duration::days(14));
    if to <= from {
        return Err(FhirError::parameter(
            "start",
            "must leave a range (its upper bound after its lower bound)",
        ));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(FhirError::parameter(
            "start",
            format!("must span at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// The free slots of a doctor's schedule (as `GET /api/v1/doctors/{id}/availability`), by
/// start: `schedule` (required), `start` (`ge`/`gt`/`lt`/`le`/`eq`; default the next 14 days,
/// at most 62), `duration` (minutes, 5–240, default 30).
#[utoipa::path(get, path = "/fhir/R4/Slot", operation_id = "fhir_search_slots", tag = "fhir",
    params(("schedule" = String, Query, description = "Schedule/{doctor id}"),
        ("start" = Option<Vec<String>>, Query, description = "e.g. ge2027-03-14 and lt2027-03-21T00:00:00Z"),
        ("duration" = Option<i64>, Query, minimum = 5, maximum = 240, description = "slot length in minutes (default 30)"),
        ("_count" = Option<i64>, Query, minimum = 1, maximum = 200, description = "page size (default 50)"),
        ("_offset" = Option<i64>, Query, minimum = 0, maximum = 1000000, description = "matches to skip")),
    security(("bearer" = [])),
    responses((status = 200, body = BundleDoc, content_type = "application/fhir+json"),
        (status = 400, body = OutcomeDoc, content_type = "application/fhir+json", description = "a bad, missing or unknown search parameter, named"),
        (status = 401, body = OutcomeDoc, content_type = "application/fhir+json")))]
async fn search_slots(
    State(state): State<AppState>,
    _user: FhirUser,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Result<Fhir<Resource>, FhirError> {
    let mut search = Search::new(&uri, &fhir_base(&state, &headers), "Slot")?;
    let doctor: UserId = match search.one("schedule")? {
        Some(raw) => search::reference("schedule", "Schedule", &raw)?,
        None => return Err(FhirError::parameter("schedule", "is required")),
    };
    let conditions = search::dates(&mut search, "start")?;
    let minutes = match search.one("duration")? {
        None => 30,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|m| (5..=240).contains(m))
            .ok_or_else(|| {
                FhirError::parameter(
                    "duration",
                    "must be a whole number of minutes from 5 to 240",
                )
            })?,
    };
    let page = search.page()?;
    search.finish()?;
    let range = slot_range(&conditions, state.scheduling.clock().now())?;
    let matches = if profiles::doctor(&state.pool, doctor).await?.is_some() {
        crate::routes::availability::free_between(&state, doctor, range, minutes)
            .await?
            .iter()
            .filter(|slot| conditions.iter().all(|c| c.matches(slot.start)))
            .map(|slot| Resource::Slot(map::slot(doctor, slot)))
            .collect()
    } else {
        vec![]
    };
    Ok(Fhir(Resource::Bundle(search.bundle(page, matches))))
}
