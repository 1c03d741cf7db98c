//! Doctors' public profiles: search, read, edit (by the doctor).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use telemed_domain::doctor::{DoctorCommand, DoctorError};
use telemed_domain::values::{FreeText, LabelList, PersonName, SlotPolicy, TimeZoneName};
use telemed_domain::{Role, UserId};
use telemed_projections::profiles::{self, DoctorView};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, FieldErrors, Problem, command_failure};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::routes::fields;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_doctors))
        .routes(routes!(get_doctor))
        .routes(routes!(update_profile))
        .routes(routes!(set_slot_policy))
}

/// A doctor's buffers and slot interval.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotPolicyRequest {
    /// Minutes kept free before each appointment.
    #[schema(minimum = 0, maximum = 120)]
    #[serde(deserialize_with = "fields::whole_number")]
    buffer_before_minutes: i64,
    /// Minutes kept free after each appointment.
    #[schema(minimum = 0, maximum = 120)]
    #[serde(deserialize_with = "fields::whole_number")]
    buffer_after_minutes: i64,
    /// Slots start every this many minutes from the start of each availability window, and a
    /// booking must start on that grid; `null` or omitted: slots run back to back and a
    /// booking may start anywhere in a window.
    #[schema(minimum = 5, maximum = 120)]
    #[serde(default, deserialize_with = "fields::optional_whole_number")]
    slot_interval_minutes: Option<i64>,
}

impl TryFrom<SlotPolicyRequest> for SlotPolicy {
    type Error = ApiError;

    fn try_from(body: SlotPolicyRequest) -> Result<Self, ApiError> {
        SlotPolicy::parse(
            body.buffer_before_minutes,
            body.buffer_after_minutes,
            body.slot_interval_minutes,
        )
        .map_err(|invalid| {
            let mut errors = FieldErrors::default();
            for problem in invalid {
                errors.push(problem.field, problem.reason.0);
            }
            errors.fail()
        })
    }
}

/// Search filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DoctorSearch {
    /// Exact specialty, case-insensitive.
    #[param(max_length = 100, pattern = r"^[^\x00]*$")]
    specialty: Option<String>,
    /// Text contained in the name, bio or specialties, case-insensitive.
    #[param(max_length = 100, pattern = r"^[^\x00]*$")]
    q: Option<String>,
}

/// A list of doctors.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DoctorList {
    /// At most 100, by name.
    doctors: Vec<DoctorView>,
}

/// A doctor's editable profile. `name` is optional: omitted, the name stays.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorProfileRequest {
    /// Specialties (at most 50).
    #[schema(value_type = fields::LabelListText)]
    specialties: Vec<String>,
    /// Introduction (at most 10 000 characters).
    #[schema(value_type = fields::FreeTextValue)]
    bio: String,
    /// Languages (at most 50).
    #[schema(value_type = fields::LabelListText)]
    languages: Vec<String>,
    /// IANA time zone.
    #[schema(value_type = fields::TimeZoneText)]
    timezone: String,
    /// New display name.
    #[schema(value_type = Option<fields::PersonNameText>)]
    name: Option<String>,
}

impl TryFrom<DoctorProfileRequest> for DoctorCommand {
    type Error = ApiError;

    fn try_from(body: DoctorProfileRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let name = match body.name {
            Some(name) => errors.check("name", PersonName::parse(&name)).map(Some),
            None => Some(None),
        };
        let specialties = errors.check("specialties", LabelList::parse(&body.specialties));
        let bio = errors.check("bio", FreeText::parse(&body.bio));
        let languages = errors.check("languages", LabelList::parse(&body.languages));
        let timezone = errors.check("timezone", TimeZoneName::parse(&body.timezone));
        let (Some(name), Some(specialties), Some(bio), Some(languages), Some(timezone)) =
            (name, specialties, bio, languages, timezone)
        else {
            return Err(errors.fail());
        };
        errors.finish(Some(DoctorCommand::UpdateProfile {
            name,
            specialties,
            bio,
            languages,
            timezone,
        }))
    }
}

fn bounded_filter(field: &str, value: Option<String>, errors: &mut FieldErrors) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())?;
    if value.chars().count() > 100 {
        errors.push(field, "must be at most 100 characters");
        return None;
    }
    Some(value)
}

/// Finds doctors by specialty and free text.
#[utoipa::path(get, path = "/api/v1/doctors", tag = "profiles", params(DoctorSearch),
    security(("bearer" = [])),
    responses((status = 200, body = DoctorList), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn search_doctors(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiQuery(search): ApiQuery<DoctorSearch>,
) -> Result<Json<DoctorList>, ApiError> {
    let mut errors = FieldErrors::default();
    let specialty = bounded_filter("specialty", search.specialty, &mut errors);
    let q = bounded_filter("q", search.q, &mut errors);
    errors.finish(Some(()))?;
    let doctors = profiles::search_doctors(&state.pool, specialty.as_deref(), q.as_deref()).await?;
    Ok(Json(DoctorList { doctors }))
}

/// A doctor's public profile.
#[utoipa::path(get, path = "/api/v1/doctors/{doctor_id}", tag = "profiles",
    params(("doctor_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = DoctorView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_doctor(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiPath(doctor_id): ApiPath<UserId>,
) -> Result<Json<DoctorView>, ApiError> {
    profiles::doctor(&state.pool, doctor_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no such doctor".into()))
}

/// Doctor-days are keyed by local dates in the doctor's zone: moving zones while windows are
/// open would file the same instants under other days and defeat the overlap checks. The
/// doctor removes (or lets pass) future windows first.
async fn refuse_zone_change_with_availability(
    state: &AppState,
    doctor_id: UserId,
    command: &DoctorCommand,
) -> Result<(), ApiError> {
    let DoctorCommand::UpdateProfile { timezone, .. } = command else {
        return Ok(());
    };
    let Some(current) = profiles::doctor(&state.pool, doctor_id).await? else {
        return Ok(());
    };
    let now = state.scheduling.clock().now();
    if current.timezone != timezone.as_str()
        && telemed_projections::availability::has_future_windows(&state.pool, doctor_id, now)
            .await?
    {
        return Err(ApiError::Conflict {
            code: "timezone_change_with_availability",
            detail: "remove your future availability windows before changing time zone".into(),
        });
    }
    Ok(())
}

/// Replaces the doctor's own profile.
#[utoipa::path(put, operation_id = "update_doctor_profile", path = "/api/v1/doctors/{doctor_id}/profile", tag = "profiles",
    params(("doctor_id" = String, Path, format = Uuid)), request_body = DoctorProfileRequest,
    security(("bearer" = [])),
    responses((status = 200, body = DoctorView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not this doctor"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "timezone_change_with_availability"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(doctor_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<DoctorProfileRequest>,
) -> Result<Json<DoctorView>, ApiError> {
    if user.role != Role::Doctor || user.id != doctor_id {
        return Err(ApiError::Forbidden(
            "only the doctor can edit their profile".into(),
        ));
    }
    let command = DoctorCommand::try_from(body)?;
    refuse_zone_change_with_availability(&state, doctor_id, &command).await?;
    let position = state
        .profiles
        .doctor(doctor_id, command, &user.context())
        .await
        .map_err(|error| match error {
            telemed_commands::CommandError::Rejected(DoctorError::NotRegistered) => {
                ApiError::NotFound("no such doctor".into())
            }
            other => command_failure(other),
        })?;
    state.settle(position).await?;
    profiles::doctor(&state.pool, doctor_id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the profile is not in the read model yet".into()))
        })
}

/// Sets the signed-in doctor's buffers and slot interval, which free slots and every booking
/// from then on honour; answers the public profile that shows them.
#[utoipa::path(put, operation_id = "set_slot_policy", path = "/api/v1/doctors/me/scheduling", tag = "profiles",
    request_body = SlotPolicyRequest, security(("bearer" = [])),
    responses((status = 200, body = DoctorView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not a doctor"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn set_slot_policy(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<SlotPolicyRequest>,
) -> Result<Json<DoctorView>, ApiError> {
    if user.role != Role::Doctor {
        return Err(ApiError::Forbidden(
            "only doctors have buffers and a slot interval".into(),
        ));
    }
    let policy = SlotPolicy::try_from(body)?;
    let position = state
        .profiles
        .doctor(
            user.id,
            DoctorCommand::SetSlotPolicy(policy),
            &user.context(),
        )
        .await
        .map_err(|error| match error {
            telemed_commands::CommandError::Rejected(DoctorError::NotRegistered) => {
                ApiError::NotFound("no such doctor".into())
            }
            other => command_failure(other),
        })?;
    state.settle(position).await?;
    profiles::doctor(&state.pool, user.id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the profile is not in the read model yet".into()))
        })
}
