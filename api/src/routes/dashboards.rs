//! Dashboards: a doctor's day and week, a patient's upcoming and past consultations.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use telemed_domain::Role;
use telemed_domain::calendar::{day_bounds, local_date};
use telemed_projections::appointments::{self as read, AppointmentView};
use telemed_projections::availability::minutes_per_day;
use time::Duration;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem};
use crate::extract::AuthUser;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(doctor_dashboard))
        .routes(routes!(patient_dashboard))
}

/// Availability of one local day.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DayLoad {
    /// `YYYY-MM-DD` in the doctor's zone.
    date: String,
    /// Open minutes neither reserved nor in time off.
    free_minutes: i64,
    /// Reserved minutes.
    booked_minutes: i64,
}

/// A doctor's dashboard.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DoctorDashboard {
    /// Requests and reschedules awaiting the doctor's confirmation.
    pending_requests: Vec<AppointmentView>,
    /// Open appointments today (doctor's zone).
    today: Vec<AppointmentView>,
    /// Open appointments after today (next 90 days).
    upcoming: Vec<AppointmentView>,
    /// The next 7 local days, today first.
    availability: Vec<DayLoad>,
}

/// A patient's dashboard.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PatientDashboard {
    /// Open appointments not yet over.
    upcoming: Vec<AppointmentView>,
    /// Over, cancelled, completed or missed; newest first.
    past: Vec<AppointmentView>,
}

/// The signed-in doctor's dashboard.
#[utoipa::path(get, path = "/api/v1/dashboard/doctor", tag = "dashboards", security(("bearer" = [])),
    responses((status = 200, body = DoctorDashboard), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn doctor_dashboard(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<DoctorDashboard>, ApiError> {
    user.require(&[Role::Doctor], "see the doctor dashboard")?;
    let zone = super::availability::doctor_zone(&state, user.id).await?;
    let now = state.scheduling.clock().now();
    let today = local_date(now, zone.tz());
    let bounds = day_bounds(today, zone.tz());
    let last = today.saturating_add(Duration::days(6));
    let availability = minutes_per_day(&state.pool, user.id, today, last)
        .await?
        .into_iter()
        .map(|(date, free, booked)| DayLoad {
            date: date.to_string(),
            free_minutes: free,
            booked_minutes: booked,
        })
        .collect();
    Ok(Json(DoctorDashboard {
        pending_requests: read::pending_for_doctor(&state.pool, user.id, now).await?,
        today: read::open_between(&state.pool, "doctor_id", user.id, bounds.start, bounds.end)
            .await?,
        upcoming: read::open_between(
            &state.pool,
            "doctor_id",
            user.id,
            bounds.end,
            bounds.end + Duration::days(90),
        )
        .await?
        .into_iter()
        .filter(|a| a.start >= bounds.end)
        .collect(),
        availability,
    }))
}

/// The signed-in patient's dashboard.
#[utoipa::path(get, path = "/api/v1/dashboard/patient", tag = "dashboards", security(("bearer" = [])),
    responses((status = 200, body = PatientDashboard), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn patient_dashboard(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<PatientDashboard>, ApiError> {
    user.require(&[Role::Patient], "see the patient dashboard")?;
    let now = state.scheduling.clock().now();
    Ok(Json(PatientDashboard {
        upcoming: read::open_between(
            &state.pool,
            "patient_id",
            user.id,
            now,
            now + Duration::days(3650),
        )
        .await?,
        past: read::past_for_patient(&state.pool, user.id, now).await?,
    }))
}
