//! The secret, revocable iCalendar (RFC 5545) feed of a user's appointments.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use icalendar::{Calendar, Component, EventStatus};
use serde::Serialize;
use telemed_commands::CalendarFeeds;
use telemed_domain::{Role, UserId};
use telemed_projections::appointments::{self as read, AppointmentView, ListFilter};
use telemed_projections::profiles;
use time::OffsetDateTime;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, Problem, command_failure};
use crate::extract::{ApiPath, AuthUser};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(feed_url, revoke_feed))
        .routes(routes!(feed))
}

/// Where the caller's feed is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedUrl {
    /// Secret URL; anyone holding it reads the calendar until it is revoked.
    url: String,
}

/// The feed service on the state's pool (it holds nothing else).
fn feeds(state: &AppState) -> CalendarFeeds {
    CalendarFeeds::new(&state.pool)
}

pub(super) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url.0 {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

/// The caller's secret feed URL (created on first use).
#[utoipa::path(get, path = "/api/v1/me/calendar-feed", tag = "calendar", security(("bearer" = [])),
    responses((status = 200, body = FeedUrl)))]
async fn feed_url(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<Json<FeedUrl>, ApiError> {
    let token = feeds(&state)
        .token(user.id)
        .await
        .map_err(command_failure)?;
    Ok(Json(FeedUrl {
        url: format!("{}/api/v1/calendar/{token}.ics", base_url(&state, &headers)),
    }))
}

/// Revokes the caller's feed URL; the next `GET` issues a new one.
#[utoipa::path(delete, path = "/api/v1/me/calendar-feed", tag = "calendar", security(("bearer" = [])),
    responses((status = 204)))]
async fn revoke_feed(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    feeds(&state)
        .revoke(user.id)
        .await
        .map_err(command_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user and role a feed file (`<token>.ics`) belongs to; 404 for any other.
async fn feed_owner(state: &AppState, file: &str) -> Result<(UserId, Role), ApiError> {
    let unknown = || ApiError::NotFound("no such calendar feed".into());
    // The router matches one parameter per segment: the segment is `<token>.ics`.
    // Tokens are 64 hex digits: anything else names no feed, and need not reach the database.
    let token = file
        .strip_suffix(".ics")
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(unknown)?;
    let owner = telemed_projections::feeds::owner(&state.pool, token).await?;
    owner.ok_or_else(unknown)
}

/// The iCalendar of `appointments`, each with its counterpart's name from `names`.
fn calendar(
    appointments: &[AppointmentView],
    counterparts: &[UserId],
    names: &HashMap<UserId, String>,
) -> Calendar {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", "-//Telemed//Telemed API//EN"))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"))
        .name("Telemed");
    for (appointment, counterpart) in appointments.iter().zip(counterparts) {
        let name = names
            .get(counterpart)
            .map_or("Telemed user", String::as_str);
        calendar.push(event(appointment, name));
    }
    calendar.done()
}

/// The calendar behind a feed URL (no other authentication).
#[utoipa::path(get, path = "/api/v1/calendar/{feed}", tag = "calendar",
    params(("feed" = String, Path, description = "`<feed_token>.ics`, as in the URL from /api/v1/me/calendar-feed")),
    responses((status = 200, description = "RFC 5545 calendar", content_type = "text/calendar"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn feed(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (user, role) = feed_owner(&state, &file).await?;
    // Only consultations the user takes part in (an admin's feed is not everyone's), from a
    // year back.
    let filter = ListFilter {
        from: Some(OffsetDateTime::now_utc() - time::Duration::days(365)),
        ..ListFilter::default()
    };
    let appointments = match role {
        Role::Patient | Role::Doctor => read::list(&state.pool, user, role, &filter).await?,
        Role::Admin | Role::Auditor => vec![],
    };
    let counterparts: Vec<UserId> = appointments
        .iter()
        .map(|a| {
            if role == Role::Patient {
                a.doctor_id
            } else {
                a.patient_id
            }
        })
        .collect();
    let names = profiles::names(&state.pool, &counterparts).await?;
    let calendar = calendar(&appointments, &counterparts, &names);
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        calendar.to_string(),
    ))
}

fn ical_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// One VEVENT. The reason for the consultation is health information and stays out of feeds,
/// which calendar services copy.
fn event(appointment: &AppointmentView, counterpart: &str) -> icalendar::Event {
    let status = match appointment.status.as_str() {
        "confirmed" | "completed" => EventStatus::Confirmed,
        "cancelled" => EventStatus::Cancelled,
        _ => EventStatus::Tentative,
    };
    icalendar::Event::new()
        .uid(&format!("{}@telemed", appointment.id))
        .summary(&format!("Telemed consultation with {counterpart}"))
        .add_property("DTSTART", ical_time(appointment.start))
        .add_property("DTEND", ical_time(appointment.end))
        .add_property("DTSTAMP", ical_time(appointment.updated_at))
        .add_property("LAST-MODIFIED", ical_time(appointment.updated_at))
        .add_property("CREATED", ical_time(appointment.created_at))
        .sequence(u32::try_from(appointment.revision.max(0)).unwrap_or(0))
        .status(status)
        .done()
}
