//! The `profiles` projection: who every user is (name, role, zone), doctors' public profiles
//! and patients' records; with the queries the API serves from them.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::doctor::{DoctorEvent, DoctorProfile};
use telemed_domain::patient::{PatientEvent, PatientProfile};
use telemed_domain::staff::StaffEvent;
use telemed_domain::{Role, UserId};
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::runner::{Projection, ProjectionError};

/// Builds `user_profiles`, `doctor_profiles` and `patient_profiles`.
pub struct ProfilesProjection;

const UPSERT_USER: &str = "
INSERT INTO user_profiles (user_id, role, name, timezone, version) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id) DO UPDATE
   SET role = EXCLUDED.role, name = EXCLUDED.name, timezone = EXCLUDED.timezone,
       version = EXCLUDED.version
 WHERE user_profiles.version < EXCLUDED.version";

const UPSERT_DOCTOR: &str = "
INSERT INTO doctor_profiles
       (doctor_id, name, specialties, specialties_key, bio, languages, timezone, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (doctor_id) DO UPDATE
   SET name = EXCLUDED.name, specialties = EXCLUDED.specialties,
       specialties_key = EXCLUDED.specialties_key, bio = EXCLUDED.bio,
       languages = EXCLUDED.languages, timezone = EXCLUDED.timezone, version = EXCLUDED.version
 WHERE doctor_profiles.version < EXCLUDED.version";

const SET_SLOT_POLICY: &str = "
UPDATE doctor_profiles
   SET buffer_before_minutes = $2, buffer_after_minutes = $3, slot_interval_minutes = $4,
       version = $5
 WHERE doctor_id = $1 AND version < $5";

const UPSERT_PATIENT: &str = "
INSERT INTO patient_profiles
       (patient_id, name, timezone, phone, address, conditions, allergies, medications, notes, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (patient_id) DO UPDATE
   SET name = EXCLUDED.name, timezone = EXCLUDED.timezone, phone = EXCLUDED.phone,
       address = EXCLUDED.address, conditions = EXCLUDED.conditions,
       allergies = EXCLUDED.allergies, medications = EXCLUDED.medications,
       notes = EXCLUDED.notes, version = EXCLUDED.version
 WHERE patient_profiles.version < EXCLUDED.version";

#[async_trait]
impl Projection for ProfilesProjection {
    fn name(&self) -> &'static str {
        "profiles"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["user_profiles", "doctor_profiles", "patient_profiles"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        let Ok(id) = event.aggregate_id.parse::<Uuid>() else {
            return Ok(());
        };
        match event.aggregate_type.as_str() {
            telemed_domain::doctor::AGGREGATE_TYPE => {
                doctor_changed(tx, id, event.decode()?, event.sequence).await?;
            }
            telemed_domain::patient::AGGREGATE_TYPE => {
                patient_changed(tx, id, event.decode()?, event.sequence).await?;
            }
            telemed_domain::staff::AGGREGATE_TYPE => {
                staff_registered(tx, id, event.decode()?, event.sequence).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Doctor `id` registered or updated their profile (the doctor aggregate's `version`th event).
async fn doctor_changed(
    tx: &mut PgConnection,
    id: Uuid,
    event: DoctorEvent,
    version: i64,
) -> Result<(), sqlx::Error> {
    let profile = match event {
        DoctorEvent::DoctorRegistered { name, timezone } => DoctorProfile {
            name,
            timezone,
            specialties: Default::default(),
            bio: Default::default(),
            languages: Default::default(),
        },
        DoctorEvent::DoctorProfileUpdated(profile) => profile,
        DoctorEvent::SlotPolicySet(policy) => {
            sqlx::query(SET_SLOT_POLICY)
                .bind(id)
                .bind(policy.buffer_before_minutes() as i32)
                .bind(policy.buffer_after_minutes() as i32)
                .bind(policy.slot_interval_minutes().map(|m| m as i32))
                .bind(version)
                .execute(&mut *tx)
                .await?;
            return Ok(());
        }
    };
    let (name, timezone) = (profile.name.as_str(), profile.timezone.as_str());
    upsert_user(tx, id, Role::Doctor, name, timezone, version).await?;
    let specialties = profile.specialties.to_strings();
    let keys: Vec<String> = specialties.iter().map(|s| s.to_lowercase()).collect();
    sqlx::query(UPSERT_DOCTOR)
        .bind(id)
        .bind(name)
        .bind(&specialties)
        .bind(&keys)
        .bind(profile.bio.as_str())
        .bind(profile.languages.to_strings())
        .bind(timezone)
        .bind(version)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Patient `id` registered or updated their profile (the patient aggregate's `version`th
/// event).
async fn patient_changed(
    tx: &mut PgConnection,
    id: Uuid,
    event: PatientEvent,
    version: i64,
) -> Result<(), sqlx::Error> {
    let profile = match event {
        PatientEvent::PatientRegistered { name, timezone } => PatientProfile {
            name,
            timezone,
            contact: Default::default(),
            medical_history: Default::default(),
        },
        PatientEvent::PatientProfileUpdated(profile) => profile,
    };
    let (name, timezone) = (profile.name.as_str(), profile.timezone.as_str());
    upsert_user(tx, id, Role::Patient, name, timezone, version).await?;
    let history = &profile.medical_history;
    sqlx::query(UPSERT_PATIENT)
        .bind(id)
        .bind(name)
        .bind(timezone)
        .bind(profile.contact.phone.as_ref().map(|p| p.as_str()))
        .bind(profile.contact.address.as_ref().map(|a| a.as_str()))
        .bind(history.conditions.to_strings())
        .bind(history.allergies.to_strings())
        .bind(history.medications.to_strings())
        .bind(history.notes.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An admin or an auditor registered.
async fn staff_registered(
    tx: &mut PgConnection,
    id: Uuid,
    event: StaffEvent,
    version: i64,
) -> Result<(), sqlx::Error> {
    let StaffEvent::StaffRegistered {
        role,
        name,
        timezone,
    } = event;
    upsert_user(tx, id, role, name.as_str(), timezone.as_str(), version).await
}

async fn upsert_user(
    tx: &mut PgConnection,
    id: Uuid,
    role: Role,
    name: &str,
    timezone: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(UPSERT_USER)
        .bind(id)
        .bind(role.as_str())
        .bind(name)
        .bind(timezone)
        .bind(version)
        .execute(tx)
        .await?;
    Ok(())
}

/// A user's name and zone, as shown on `GET /me`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserProfileView {
    /// User id.
    pub id: UserId,
    /// Role.
    pub role: Role,
    /// Display name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
}

/// A doctor's public profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DoctorView {
    /// Doctor (user) id.
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Specialties.
    pub specialties: Vec<String>,
    /// Introduction.
    pub bio: String,
    /// Languages.
    pub languages: Vec<String>,
    /// IANA time zone.
    pub timezone: String,
    /// Minutes kept free before each appointment (0–120).
    pub buffer_before_minutes: i32,
    /// Minutes kept free after each appointment (0–120).
    pub buffer_after_minutes: i32,
    /// Slots start every this many minutes from the start of each availability window
    /// (5–120); `null`: slots run back to back and a booking may start anywhere in a window.
    #[schema(required = true)]
    pub slot_interval_minutes: Option<i32>,
}

/// How to reach a patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    /// Phone number.
    #[schema(required = true)]
    pub phone: Option<String>,
    /// Postal address.
    #[schema(required = true)]
    pub address: Option<String>,
}

/// A patient's medical history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MedicalHistoryView {
    /// Known conditions.
    pub conditions: Vec<String>,
    /// Known allergies.
    pub allergies: Vec<String>,
    /// Current medications.
    pub medications: Vec<String>,
    /// Free-text notes.
    pub notes: String,
}

/// A patient's profile and record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PatientView {
    /// Patient (user) id.
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
    /// Contact details.
    pub contact: ContactView,
    /// Medical history.
    pub medical_history: MedicalHistoryView,
}

const SELECT_USER: &str =
    "SELECT user_id, role, name, timezone FROM user_profiles WHERE user_id = $1";
const DOCTOR_COLUMNS: &str = "doctor_id, name, specialties, bio, languages, timezone,
       buffer_before_minutes, buffer_after_minutes, slot_interval_minutes";
const SELECT_PATIENT: &str = "SELECT patient_id, name, timezone, phone, address, conditions,
       allergies, medications, notes
  FROM patient_profiles WHERE patient_id = $1";

/// Most doctors one search returns.
pub const SEARCH_LIMIT: i64 = 100;

/// The profile of user `id`.
pub async fn user_profile(
    db: impl PgExecutor<'_>,
    id: UserId,
) -> Result<Option<UserProfileView>, sqlx::Error> {
    let row = sqlx::query(SELECT_USER)
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        let role: String = row.try_get("role")?;
        Ok(UserProfileView {
            id: UserId::from(row.try_get::<Uuid, _>("user_id")?),
            role: role.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            name: row.try_get("name")?,
            timezone: row.try_get("timezone")?,
        })
    })
    .transpose()
}

/// Display names of `ids` (unknown ids are left out).
pub async fn names(
    db: impl PgExecutor<'_>,
    ids: &[UserId],
) -> Result<std::collections::HashMap<UserId, String>, sqlx::Error> {
    let ids: Vec<Uuid> = ids.iter().map(UserId::as_uuid).collect();
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT user_id, name FROM user_profiles WHERE user_id = ANY($1)")
            .bind(&ids)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| (UserId::from(id), name))
        .collect())
}

/// The public profile of doctor `id`.
pub async fn doctor(
    db: impl PgExecutor<'_>,
    id: UserId,
) -> Result<Option<DoctorView>, sqlx::Error> {
    let sql = format!("SELECT {DOCTOR_COLUMNS} FROM doctor_profiles WHERE doctor_id = $1");
    let row = sqlx::query(&sql)
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(doctor_from_row).transpose()
}

/// Doctors with `specialty` (exact, case-insensitive) whose name, bio or specialties contain
/// `q` (case-insensitive), by name; at most [`SEARCH_LIMIT`].
pub async fn search_doctors(
    db: impl PgExecutor<'_>,
    specialty: Option<&str>,
    q: Option<&str>,
) -> Result<Vec<DoctorView>, sqlx::Error> {
    let sql = format!(
        "SELECT {DOCTOR_COLUMNS} FROM doctor_profiles
          WHERE ($1::text IS NULL OR specialties_key @> ARRAY[lower($1)])
            AND ($2::text IS NULL
                 OR strpos(lower(name), lower($2)) > 0
                 OR strpos(lower(bio), lower($2)) > 0
                 OR strpos(lower(array_to_string(specialties, ' ')), lower($2)) > 0)
          ORDER BY lower(name), doctor_id
          LIMIT $3"
    );
    sqlx::query(&sql)
        .bind(specialty)
        .bind(q)
        .bind(SEARCH_LIMIT)
        .fetch_all(db)
        .await?
        .iter()
        .map(doctor_from_row)
        .collect()
}

/// The profile and record of patient `id`.
pub async fn patient(
    db: impl PgExecutor<'_>,
    id: UserId,
) -> Result<Option<PatientView>, sqlx::Error> {
    let row = sqlx::query(SELECT_PATIENT)
        .bind(id.as_uuid())
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        Ok(PatientView {
            id: UserId::from(row.try_get::<Uuid, _>("patient_id")?),
            name: row.try_get("name")?,
            timezone: row.try_get("timezone")?,
            contact: ContactView {
                phone: row.try_get("phone")?,
                address: row.try_get("address")?,
            },
            medical_history: MedicalHistoryView {
                conditions: row.try_get("conditions")?,
                allergies: row.try_get("allergies")?,
                medications: row.try_get("medications")?,
                notes: row.try_get("notes")?,
            },
        })
    })
    .transpose()
}

fn doctor_from_row(row: &PgRow) -> Result<DoctorView, sqlx::Error> {
    Ok(DoctorView {
        id: UserId::from(row.try_get::<Uuid, _>("doctor_id")?),
        name: row.try_get("name")?,
        specialties: row.try_get("specialties")?,
        bio: row.try_get("bio")?,
        languages: row.try_get("languages")?,
        timezone: row.try_get("timezone")?,
        buffer_before_minutes: row.try_get("buffer_before_minutes")?,
        buffer_after_minutes: row.try_get("buffer_after_minutes")?,
        slot_interval_minutes: row.try_get("slot_interval_minutes")?,
    })
}
