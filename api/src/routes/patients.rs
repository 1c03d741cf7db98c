//! Patients' profiles and medical records: private to the patient, their doctors and admins.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use telemed_domain::patient::{Contact, MedicalHistory, PatientCommand, PatientError};
use telemed_domain::values::{FreeText, LabelList, PersonName, PhoneNumber, TimeZoneName};
use telemed_domain::{Role, UserId};
use telemed_projections::profiles::{self, PatientView};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access_log::{self, Outcome};
use crate::error::{ApiError, FieldErrors, Problem, command_failure};
use crate::extract::{ApiJson, ApiPath, AuthUser};
use crate::routes::fields;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_patient))
        .routes(routes!(update_profile))
}

/// Contact details.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// Phone number, or null (blank counts as null).
    #[schema(value_type = Option<fields::PhoneText>)]
    phone: Option<String>,
    /// Postal address, or null.
    #[schema(value_type = Option<fields::FreeTextValue>)]
    address: Option<String>,
}

/// Medical history.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicalHistoryRequest {
    /// Known conditions.
    #[schema(value_type = fields::LabelListText)]
    conditions: Vec<String>,
    /// Known allergies.
    #[schema(value_type = fields::LabelListText)]
    allergies: Vec<String>,
    /// Current medications.
    #[schema(value_type = fields::LabelListText)]
    medications: Vec<String>,
    /// Free-text notes.
    #[schema(value_type = fields::FreeTextValue)]
    notes: String,
}

/// A patient's editable profile. `name` is optional: omitted, the name stays.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientProfileRequest {
    /// IANA time zone.
    #[schema(value_type = fields::TimeZoneText)]
    timezone: String,
    /// Contact details.
    contact: ContactRequest,
    /// Medical history.
    medical_history: MedicalHistoryRequest,
    /// New display name (blank or null: unchanged).
    #[schema(value_type = Option<fields::PersonNameText>)]
    name: Option<String>,
}

/// An optional text field: blank counts as absent.
fn optional<T>(
    errors: &mut FieldErrors,
    field: &str,
    raw: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, telemed_domain::values::InvalidValue>,
) -> Option<Option<T>> {
    match raw.filter(|r| !r.trim().is_empty()) {
        Some(raw) => errors.check(field, parse(&raw)).map(Some),
        None => Some(None),
    }
}

/// The medical history part of a profile, recording what is wrong under `medical_history.`.
fn medical_history(
    errors: &mut FieldErrors,
    history: &MedicalHistoryRequest,
) -> Option<MedicalHistory> {
    let conditions = errors.check(
        "medical_history.conditions",
        LabelList::parse(&history.conditions),
    );
    let allergies = errors.check(
        "medical_history.allergies",
        LabelList::parse(&history.allergies),
    );
    let medications = errors.check(
        "medical_history.medications",
        LabelList::parse(&history.medications),
    );
    let notes = errors.check("medical_history.notes", FreeText::parse(&history.notes));
    Some(MedicalHistory {
        conditions: conditions?,
        allergies: allergies?,
        medications: medications?,
        notes: notes?,
    })
}

impl TryFrom<PatientProfileRequest> for PatientCommand {
    type Error = ApiError;

    fn try_from(body: PatientProfileRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let name = optional(&mut errors, "name", body.name, PersonName::parse);
        let timezone = errors.check("timezone", TimeZoneName::parse(&body.timezone));
        let phone = optional(
            &mut errors,
            "contact.phone",
            body.contact.phone,
            PhoneNumber::parse,
        );
        let address = optional(
            &mut errors,
            "contact.address",
            body.contact.address,
            FreeText::parse,
        );
        let history = medical_history(&mut errors, &body.medical_history);
        let (Some(name), Some(timezone), Some(phone), Some(address), Some(medical_history)) =
            (name, timezone, phone, address, history)
        else {
            return Err(errors.fail());
        };
        errors.finish(Some(PatientCommand::UpdateProfile {
            name,
            timezone,
            contact: Contact { phone, address },
            medical_history,
        }))
    }
}

/// Whether `user` may read patient `patient_id`'s record: the patient, an admin, or a doctor
/// while they share an appointment.
pub(super) async fn may_read(
    state: &AppState,
    user: &AuthUser,
    patient_id: UserId,
) -> Result<bool, ApiError> {
    Ok(match user.role {
        Role::Patient => user.id == patient_id,
        Role::Admin => true,
        Role::Doctor => {
            telemed_projections::appointments::doctor_treats_patient(
                &state.pool,
                user.id,
                patient_id,
            )
            .await?
        }
        Role::Auditor => false,
    })
}

/// A patient's profile and record, if `user` may read them (`None`: unknown, or not theirs
/// to read); the read, allowed or refused, is in the access log first (REST and FHIR alike).
pub(crate) async fn read_audited(
    state: &AppState,
    user: &AuthUser,
    patient_id: UserId,
) -> Result<Option<PatientView>, ApiError> {
    let allowed = may_read(state, user, patient_id).await?;
    access_log::record(
        &state.pool,
        user,
        patient_id,
        "patient_profile",
        &patient_id.to_string(),
        Outcome::of(allowed),
    )
    .await?;
    if !allowed {
        return Ok(None);
    }
    Ok(profiles::patient(&state.pool, patient_id).await?)
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such patient".into())
}

/// A patient's profile and medical record.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}", tag = "profiles",
    params(("patient_id" = String, Path, format = Uuid)), security(("bearer" = [])),
    responses((status = 200, body = PatientView),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown, or not yours to read")))]
async fn get_patient(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(patient_id): ApiPath<UserId>,
) -> Result<Json<PatientView>, ApiError> {
    read_audited(&state, &user, patient_id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// Replaces the patient's own profile and medical record.
#[utoipa::path(put, operation_id = "update_patient_profile", path = "/api/v1/patients/{patient_id}/profile", tag = "profiles",
    params(("patient_id" = String, Path, format = Uuid)), request_body = PatientProfileRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PatientView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "may read but not edit (admins, treating doctors)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn update_profile(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(patient_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<PatientProfileRequest>,
) -> Result<Json<PatientView>, ApiError> {
    if user.role != Role::Patient || user.id != patient_id {
        return Err(if may_read(&state, &user, patient_id).await? {
            ApiError::Forbidden("only the patient can edit their profile".into())
        } else {
            not_found()
        });
    }
    let command = PatientCommand::try_from(body)?;
    let position = state
        .profiles
        .patient(patient_id, command, &user.context())
        .await
        .map_err(|error| match error {
            telemed_commands::CommandError::Rejected(PatientError::NotRegistered) => not_found(),
            other => command_failure(other),
        })?;
    state.settle(position).await?;
    profiles::patient(&state.pool, patient_id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::Unavailable(Some("the profile is not in the read model yet".into()))
        })
}
