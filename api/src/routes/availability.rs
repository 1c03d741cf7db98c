//! Doctors' availability: windows (single or weekly, in the doctor's zone) and free slots.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use telemed_domain::calendar::{Interval, local_date};
use telemed_domain::template::{self, Expansion, MAX_TEMPLATE_DAYS};
use telemed_domain::values::{SlotPolicy, TimeZoneName};
use telemed_domain::{Role, UserId, WindowId};
use telemed_projections::availability::{self as read, WindowView};
use telemed_projections::profiles;
use time::{Date, Duration, OffsetDateTime, Time, Weekday};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::routes::{fields, params};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_windows, free_slots))
        .routes(routes!(list_windows))
        .routes(routes!(change_window, remove_window))
}

/// One weekly rule, in the doctor's zone.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyRule {
    /// `mon` … `sun`.
    #[schema(value_type = fields::WeekdayName)]
    weekday: String,
    /// `HH:MM`.
    #[schema(value_type = fields::ClockTime)]
    start: String,
    /// `HH:MM`, or `24:00` for the end of the day.
    #[schema(value_type = fields::ClockTimeOrMidnight)]
    end: String,
}

/// Either one window (`start`, `end`) or a weekly template (`weekly`, `from`, `to`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenWindowsRequest {
    /// Start of a single window (RFC 3339).
    #[schema(value_type = Option<fields::Instant>)]
    start: Option<String>,
    /// End of a single window (RFC 3339).
    #[schema(value_type = Option<fields::Instant>)]
    end: Option<String>,
    /// Weekly rules.
    weekly: Option<Vec<WeeklyRule>>,
    /// First date of the template (inclusive, doctor's zone).
    #[schema(value_type = Option<fields::CalendarDate>)]
    from: Option<String>,
    /// Last date of the template (inclusive, doctor's zone; at most 366 days after `from`).
    #[schema(value_type = Option<fields::CalendarDate>)]
    to: Option<String>,
}

/// A day the template skipped.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SkippedDay {
    /// The date.
    date: String,
    /// The rule's weekday.
    #[schema(value_type = fields::WeekdayName)]
    weekday: String,
    /// Why.
    reason: String,
}

/// The windows opened.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenedWindows {
    /// In start order.
    windows: Vec<WindowView>,
    /// Template days that produced no window (a rule wholly inside a DST gap).
    skipped: Vec<SkippedDay>,
}

/// `{start, end}` of one window.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    /// RFC 3339.
    #[schema(value_type = fields::Instant)]
    start: String,
    /// RFC 3339.
    #[schema(value_type = fields::Instant)]
    end: String,
}

/// Slot query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// RFC 3339 instant or `YYYY-MM-DD` (default: now).
    #[param(value_type = Option<fields::InstantOrDate>, inline)]
    from: Option<String>,
    /// RFC 3339 instant or `YYYY-MM-DD` (default: 14 days after `from`; at most 62 days).
    #[param(value_type = Option<fields::InstantOrDate>, inline)]
    to: Option<String>,
    /// Slot length in minutes, 5–240 (default 30).
    #[param(value_type = Option<i64>, minimum = 5, maximum = 240)]
    duration: Option<String>,
    /// IANA zone for `local_start` / `local_end`.
    #[param(value_type = Option<fields::TimeZoneText>, inline)]
    tz: Option<String>,
}

/// A bookable slot.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Slot {
    /// UTC.
    start: String,
    /// UTC.
    end: String,
    /// In the `tz` zone, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    local_start: Option<String>,
    /// In the `tz` zone, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    local_end: Option<String>,
}

/// Free slots of a doctor.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Slots {
    #[schema(value_type = String, format = Uuid)]
    doctor_id: UserId,
    /// The doctor's zone.
    timezone: String,
    /// In start order.
    slots: Vec<Slot>,
}

fn weekday(raw: &str) -> Option<Weekday> {
    Some(match raw.trim().to_ascii_lowercase().as_str() {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// `HH:MM`; `24:00` is `None` (end of day).
fn clock_time(raw: &str) -> Result<Option<Time>, telemed_domain::values::InvalidValue> {
    let invalid =
        || telemed_domain::values::InvalidValue::new("must be a time HH:MM such as 09:30");
    let raw = raw.trim();
    if raw == "24:00" {
        return Ok(None);
    }
    let (h, m) = raw.split_once(':').ok_or_else(invalid)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(invalid());
    }
    let (h, m): (u8, u8) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    Time::from_hms(h, m, 0).map(Some).map_err(|_| invalid())
}

impl SkippedDay {
    fn from_domain(day: template::SkippedDay) -> Self {
        Self {
            date: day.date.to_string(),
            weekday: day.weekday.to_string().to_lowercase()[..3].to_string(),
            reason: day.reason.to_string(),
        }
    }
}

/// A template's `from` or `to`, required with `weekly`.
fn template_date(errors: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<Date> {
    match raw {
        Some(raw) => errors.check(field, params::date(raw)),
        None => {
            errors.push(field, "is required with weekly");
            None
        }
    }
}

/// Rule `index` of a template, recording what is wrong with it.
fn weekly_rule(
    errors: &mut FieldErrors,
    index: usize,
    rule: &WeeklyRule,
) -> Option<template::WeeklyRule> {
    let day = weekday(&rule.weekday);
    if day.is_none() {
        errors.push(
            &format!("weekly[{index}].weekday"),
            "must be one of mon, tue, wed, thu, fri, sat, sun",
        );
    }
    let start = errors.check(&format!("weekly[{index}].start"), clock_time(&rule.start));
    let end = errors.check(&format!("weekly[{index}].end"), clock_time(&rule.end));
    match (day, start, end) {
        (Some(_), Some(Some(start)), Some(Some(end))) if end <= start => {
            errors.push(&format!("weekly[{index}].end"), "must be after start");
            None
        }
        (Some(weekday), Some(Some(start)), Some(end)) => Some(template::WeeklyRule {
            weekday,
            start,
            end,
        }),
        (_, Some(None), _) => {
            errors.push(
                &format!("weekly[{index}].start"),
                "must be a time of day before 24:00",
            );
            None
        }
        _ => None,
    }
}

/// The template's valid rules and its dates, recording what is wrong; `None` when the dates
/// are (the valid rules are still expanded, to report a template that matches no day).
fn weekly_template(
    errors: &mut FieldErrors,
    rules: &[WeeklyRule],
    from: Option<&str>,
    to: Option<&str>,
) -> Option<(Vec<template::WeeklyRule>, Date, Date)> {
    let from = template_date(errors, "from", from);
    let to = template_date(errors, "to", to);
    if rules.is_empty() {
        errors.push("weekly", "must have at least one rule");
    }
    let parsed = (rules.iter().enumerate())
        .filter_map(|(index, rule)| weekly_rule(errors, index, rule))
        .collect();
    let (from, to) = (from?, to?);
    if to < from {
        errors.push("to", "must not be before from");
        return None;
    }
    if (to - from).whole_days() >= MAX_TEMPLATE_DAYS {
        errors.push(
            "to",
            format!("must be less than {MAX_TEMPLATE_DAYS} days after from"),
        );
        return None;
    }
    Some((parsed, from, to))
}

impl OpenWindowsRequest {
    /// Whether it asks for one window (`start`/`end`) rather than a template.
    fn single(&self) -> bool {
        self.start.is_some() || self.end.is_some()
    }

    /// The windows asked for in `zone`, recording what is wrong.
    fn windows(&self, errors: &mut FieldErrors, zone: &TimeZoneName) -> Option<Expansion> {
        match (&self.weekly, self.single()) {
            (Some(_), true) => {
                errors.push(
                    "weekly",
                    "give either start and end, or weekly with from and to, not both",
                );
                None
            }
            (Some(rules), false) => {
                let (from, to) = (self.from.as_deref(), self.to.as_deref());
                let (rules, from, to) = weekly_template(errors, rules, from, to)?;
                Some(template::expand(&rules, from, to, zone.tz()))
            }
            (None, _) => {
                if self.from.is_some() || self.to.is_some() {
                    errors.push("weekly", "is required with from and to");
                }
                let start = self.start.as_deref().unwrap_or_default();
                let end = self.end.as_deref().unwrap_or_default();
                params::interval(errors, start, end).map(|window| Expansion {
                    windows: vec![window],
                    skipped: vec![],
                })
            }
        }
    }

    /// The windows to open in `zone` as of `now` (template days already over are left out
    /// rather than refused), or a 422 naming every bad field.
    fn parse(&self, zone: &TimeZoneName, now: OffsetDateTime) -> Result<Expansion, ApiError> {
        let mut errors = FieldErrors::default();
        let expanded = self.windows(&mut errors, zone);
        if let Some(expanded) = &expanded {
            if self.single() && expanded.windows.iter().any(|w| w.end <= now) {
                errors.push("end", "must be in the future");
            }
            if !self.single() && expanded.windows.is_empty() && expanded.skipped.is_empty() {
                errors.push("weekly", "matches no day between from and to");
            }
        }
        let mut expanded = errors.finish(expanded)?;
        expanded.windows.retain(|w| w.end > now);
        Ok(expanded)
    }
}

/// The doctor's zone from their profile; 404 if there is no such doctor.
pub(super) async fn doctor_zone(
    state: &AppState,
    doctor_id: UserId,
) -> Result<TimeZoneName, ApiError> {
    let doctor = profiles::doctor(&state.pool, doctor_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such doctor".into()))?;
    TimeZoneName::parse(&doctor.timezone).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))
}

fn require_self(user: &AuthUser, doctor_id: UserId) -> Result<(), ApiError> {
    if user.role == Role::Doctor && user.id == doctor_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the doctor can manage their availability".into(),
        ))
    }
}

/// Opens availability windows: one, or a weekly template over a date range.
#[utoipa::path(post, path = "/api/v1/doctors/{doctor_id}/availability", tag = "availability",
    params(("doctor_id" = String, Path, format = Uuid)), request_body = OpenWindowsRequest,
    security(("bearer" = [])),
    responses((status = 201, body = OpenedWindows),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "window_overlap"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn open_windows(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(doctor_id): ApiPath<UserId>,
    ApiJson(body): ApiJson<OpenWindowsRequest>,
) -> Result<(StatusCode, Json<OpenedWindows>), ApiError> {
    require_self(&user, doctor_id)?;
    let zone = doctor_zone(&state, doctor_id).await?;
    let expanded = body.parse(&zone, state.scheduling.clock().now())?;
    let (opened, position) = state
        .scheduling
        .open_windows(doctor_id, zone.tz(), &expanded.windows, &user.context())
        .await?;
    state.settle(position).await?;
    let windows = opened
        .into_iter()
        .map(|(id, interval)| WindowView {
            id,
            start: interval.start,
            end: interval.end,
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(OpenedWindows {
            windows,
            skipped: expanded
                .skipped
                .into_iter()
                .map(SkippedDay::from_domain)
                .collect(),
        }),
    ))
}

/// Moves or resizes a window within its day.
#[utoipa::path(put, path = "/api/v1/doctors/{doctor_id}/availability/{window_id}", tag = "availability",
    params(("doctor_id" = String, Path, format = Uuid), ("window_id" = String, Path, format = Uuid)),
    request_body = WindowRequest, security(("bearer" = [])),
    responses((status = 200, body = WindowView),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not this doctor"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "would_drop_appointment or window_overlap"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn change_window(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((doctor_id, window_id)): ApiPath<(UserId, WindowId)>,
    ApiJson(body): ApiJson<WindowRequest>,
) -> Result<Json<WindowView>, ApiError> {
    require_self(&user, doctor_id)?;
    let zone = doctor_zone(&state, doctor_id).await?;
    let interval = Interval::try_from(body)?;
    let current = read::window(&state.pool, doctor_id, window_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such availability window".into()))?;
    if local_date(interval.start, zone.tz()) != current.day.date {
        return Err(ApiError::invalid(
            "start",
            "a window cannot move to another day; remove it and open a new one",
        ));
    }
    let position = state
        .scheduling
        .change_window(current.day, zone.tz(), window_id, interval, &user.context())
        .await?;
    state.settle(position).await?;
    Ok(Json(WindowView {
        id: window_id,
        start: interval.start,
        end: interval.end,
    }))
}

/// Removes a window that holds no appointment.
#[utoipa::path(delete, path = "/api/v1/doctors/{doctor_id}/availability/{window_id}", tag = "availability",
    params(("doctor_id" = String, Path, format = Uuid), ("window_id" = String, Path, format = Uuid)),
    security(("bearer" = [])),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not this doctor"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "window_has_appointment")))]
async fn remove_window(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath((doctor_id, window_id)): ApiPath<(UserId, WindowId)>,
) -> Result<StatusCode, ApiError> {
    require_self(&user, doctor_id)?;
    let current = read::window(&state.pool, doctor_id, window_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such availability window".into()))?;
    let position = state
        .scheduling
        .remove_window(current.day, window_id, &user.context())
        .await?;
    state.settle(position).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads `from`/`to`: an instant, or a date at midnight in `zone`.
fn bound(
    errors: &mut FieldErrors,
    field: &str,
    raw: &str,
    zone: &TimeZoneName,
) -> Option<OffsetDateTime> {
    if raw.len() == 10 {
        let date = errors.check(field, params::date(raw))?;
        return Some(telemed_domain::calendar::day_bounds(date, zone.tz()).start);
    }
    errors.check(field, params::instant(raw))
}

/// Longest range of one slot or window query.
const MAX_RANGE_DAYS: i64 = 62;

/// Reads a query's `from`/`to` (instants, or dates at midnight in `zone`): `from` defaults to
/// `now`, `to` to `default_length` after `from`; `to` must follow `from` by at most
/// [`MAX_RANGE_DAYS`].
fn date_range(
    errors: &mut FieldErrors,
    (raw_from, raw_to): (Option<&str>, Option<&str>),
    zone: &TimeZoneName,
    now: OffsetDateTime,
    default_length: Duration,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let from = match raw_from {
        Some(raw) => bound(errors, "from", raw, zone),
        None => Some(now),
    };
    let to = match (raw_to, from) {
        (Some(raw), _) => bound(errors, "to", raw, zone),
        (None, Some(from)) => from.checked_add(default_length).or_else(|| {
            errors.push("from", "is too far in the future");
            None
        }),
        (None, None) => None,
    };
    let (from, to) = (from?, to?);
    if to <= from {
        errors.push("to", "must be after from");
        return None;
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        errors.push(
            "to",
            format!("must be at most {MAX_RANGE_DAYS} days after from"),
        );
        return None;
    }
    Some((from, to))
}

/// Query of a doctor's windows.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// RFC 3339 instant or `YYYY-MM-DD` in the doctor's zone (default: now).
    #[param(value_type = Option<fields::InstantOrDate>, inline)]
    from: Option<String>,
    /// RFC 3339 instant or `YYYY-MM-DD` in the doctor's zone, exclusive (default: 28 days after
    /// `from`; at most 62 days).
    #[param(value_type = Option<fields::InstantOrDate>, inline)]
    to: Option<String>,
}

/// A doctor's open windows.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WindowList {
    /// The doctor.
    #[schema(value_type = String, format = Uuid)]
    doctor_id: UserId,
    /// The doctor's IANA zone, in which the windows were opened.
    timezone: String,
    /// Windows overlapping the range, by start.
    windows: Vec<WindowView>,
}

/// The doctor's open windows (to edit or delete them): that doctor, or an admin.
#[utoipa::path(get, path = "/api/v1/doctors/{doctor_id}/availability/windows", tag = "availability",
    params(("doctor_id" = String, Path, format = Uuid), WindowQuery), security(("bearer" = [])),
    responses((status = 200, body = WindowList),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn list_windows(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(doctor_id): ApiPath<UserId>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Json<WindowList>, ApiError> {
    if user.role != Role::Admin {
        require_self(&user, doctor_id)?;
    }
    let zone = doctor_zone(&state, doctor_id).await?;
    let mut errors = FieldErrors::default();
    let now = state.scheduling.clock().now();
    let range = date_range(
        &mut errors,
        (query.from.as_deref(), query.to.as_deref()),
        &zone,
        now,
        Duration::days(28),
    );
    let (from, to) = errors.finish(range)?;
    let windows = read::windows_between(&state.pool, doctor_id, from, to).await?;
    Ok(Json(WindowList {
        doctor_id,
        timezone: zone.as_str().to_string(),
        windows: windows.into_iter().map(|w| w.window).collect(),
    }))
}

/// Free, bookable slots of a doctor.
#[utoipa::path(get, path = "/api/v1/doctors/{doctor_id}/availability", tag = "availability",
    params(("doctor_id" = String, Path, format = Uuid), SlotQuery), security(("bearer" = [])),
    responses((status = 200, body = Slots),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn free_slots(
    State(state): State<AppState>,
    _user: AuthUser,
    ApiPath(doctor_id): ApiPath<UserId>,
    ApiQuery(query): ApiQuery<SlotQuery>,
) -> Result<Json<Slots>, ApiError> {
    let zone = doctor_zone(&state, doctor_id).await?;
    let now = state.scheduling.clock().now();
    let SlotRequest {
        from,
        to,
        duration,
        local,
    } = query.parse(&zone, now)?;
    let slots = free_between(&state, doctor_id, (from, to), duration)
        .await?
        .into_iter()
        .map(|slot| Slot {
            start: params::utc(slot.start),
            end: params::utc(slot.end),
            local_start: local.as_ref().map(|z| params::local(slot.start, z)),
            local_end: local.as_ref().map(|z| params::local(slot.end, z)),
        })
        .collect();
    Ok(Json(Slots {
        doctor_id,
        timezone: zone.as_str().to_string(),
        slots,
    }))
}

/// Doctor `doctor_id`'s free slots of `minutes` starting in `[from, to)` that the booking
/// rules admit now (also the FHIR API's `Slot`s).
pub(super) async fn free_between(
    state: &AppState,
    doctor_id: UserId,
    (from, to): (OffsetDateTime, OffsetDateTime),
    minutes: i64,
) -> Result<Vec<Interval>, ApiError> {
    let now = state.scheduling.clock().now();
    let windows: Vec<Interval> = read::windows_between(&state.pool, doctor_id, from, to)
        .await?
        .into_iter()
        .map(|w| Interval {
            start: w.window.start,
            end: w.window.end,
        })
        .collect();
    // Reservations just outside the range still keep their buffers clear.
    let margin = Duration::minutes(2 * SlotPolicy::MAX_BUFFER);
    let reserved =
        read::reserved_between(&state.pool, doctor_id, from - margin, to + margin).await?;
    let time_off = read::time_off_between(&state.pool, doctor_id, from, to).await?;
    let policy = read::slot_policy(&state.pool, doctor_id).await?;
    let rules = state.scheduling.rules();
    let not_before = from.max(now + rules.min_notice);
    let not_after = (now + rules.horizon).min(to);
    let busy = read::Busy {
        reserved: &reserved,
        time_off: &time_off,
        policy,
    };
    Ok(read::free_slots(
        &windows,
        busy,
        Duration::minutes(minutes),
        not_before,
        not_after,
    )
    .into_iter()
    .filter(|slot| slot.start < to)
    .collect())
}

/// A typed [`SlotQuery`].
struct SlotRequest {
    from: OffsetDateTime,
    to: OffsetDateTime,
    duration: i64,
    local: Option<TimeZoneName>,
}

impl SlotQuery {
    /// The slots asked for of a doctor in `zone` as of `now` (dates are read in `tz` when
    /// given), or a 422 naming every bad parameter.
    fn parse(&self, zone: &TimeZoneName, now: OffsetDateTime) -> Result<SlotRequest, ApiError> {
        let mut errors = FieldErrors::default();
        let local = params::zone(&mut errors, "tz", self.tz.as_deref());
        let reading_zone = local.clone().flatten().unwrap_or_else(|| zone.clone());
        let range = date_range(
            &mut errors,
            (self.from.as_deref(), self.to.as_deref()),
            &reading_zone,
            now,
            Duration::days(14),
        );
        let duration = match self.duration.as_deref() {
            None => Some(30),
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(minutes) if (5..=240).contains(&minutes) => Some(minutes),
                _ => {
                    errors.push(
                        "duration",
                        "must be a whole number of minutes from 5 to 240",
                    );
                    None
                }
            },
        };
        let (Some((from, to)), Some(duration), Some(local)) = (range, duration, local) else {
            return Err(errors.fail());
        };
        Ok(SlotRequest {
            from,
            to,
            duration,
            local,
        })
    }
}

impl TryFrom<WindowRequest> for Interval {
    type Error = ApiError;

    /// The window's new time, or a 422 naming `start` or `end`.
    fn try_from(body: WindowRequest) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let interval = params::interval(&mut errors, &body.start, &body.end);
        errors.finish(interval)
    }
}
