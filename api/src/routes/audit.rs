//! The audit log: the whole event history, paged by position token, the head of its hash
//! chain (tamper evidence), and the access log, for auditors and admins.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use telemed_domain::{Position, Role};
use telemed_projections::StoredEvent;
use telemed_projections::audit::{AuditFilter, page};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access_log::{AccessEntry, page as access_page};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::extract::{ApiQuery, AuthUser};
use crate::routes::params;
use crate::state::AppState;

/// Default page size.
const DEFAULT_LIMIT: i64 = 100;
/// Largest page.
const MAX_LIMIT: i64 = 1_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(access))
        .routes(routes!(head))
}

/// The newest sealed link of the log's hash chain.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChainHead {
    /// Position token of the last sealed event (`0-0` before the first).
    #[schema(example = "812-7")]
    position: String,
    /// SHA-256 link after that event, 64 lowercase hex digits (64 zeros before the first).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    hash: String,
    /// How many events the chain seals.
    events: i64,
}

/// The head of the hash chain over the log: keep it, and `telemed audit verify --head HASH
/// --at POSITION` later proves the history up to it unchanged.
#[utoipa::path(get, path = "/api/v1/audit/head", tag = "audit",
    security(("bearer" = [])),
    responses((status = 200, body = ChainHead),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an auditor or admin")))]
async fn head(State(state): State<AppState>, user: AuthUser) -> Result<Json<ChainHead>, ApiError> {
    user.require(
        &[Role::Auditor, Role::Admin],
        "read the head of the audit chain",
    )?;
    Ok(Json(chain_head(&state.pool).await?))
}

/// The head of the hash chain now (also in every export, `GET /api/v1/me/export`).
pub(super) async fn chain_head(pool: &sqlx::PgPool) -> Result<ChainHead, ApiError> {
    let head = telemed_projections::chain::head(pool).await?;
    Ok(ChainHead {
        position: head.position.to_string(),
        hash: hex::encode(head.hash),
        events: head.events,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Position token: only events after it (default: from the beginning).
    #[param(pattern = "^[0-9]{1,19}-[0-9]{1,18}$")]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Only events of this aggregate type (e.g. `appointment`, `doctor_day`).
    #[param(max_length = 200, pattern = r"^[^\x00]*$")]
    aggregate_type: Option<String>,
    /// Only events of this aggregate id.
    #[param(max_length = 200, pattern = r"^[^\x00]*$")]
    aggregate_id: Option<String>,
}

/// A page of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// In commit-safe order.
    events: Vec<StoredEvent>,
    /// Pass as `after` for the next page (the last event's position, or `after` itself when
    /// the page is empty).
    next: String,
}

/// The global event history in commit-safe order.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditPage),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an auditor or admin"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad token, limit or filter")))]
async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    user.require(&[Role::Auditor, Role::Admin], "read the audit log")?;
    let AuditRequest {
        after,
        limit,
        filter,
    } = query.try_into()?;
    let events = page(&state.pool, after, &filter, limit).await?;
    let next = events.last().map_or(after, |e| e.position).to_string();
    Ok(Json(AuditPage { events, next }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    /// Entry number: only entries after it (default: from the first).
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Only reads of this patient's data.
    #[param(format = Uuid)]
    patient_id: Option<String>,
}

/// A page of the access log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessPage {
    /// Oldest first.
    entries: Vec<AccessEntry>,
    /// Pass as `after` for the next page.
    next: String,
}

/// Reads of patient data by anyone but the patient (who, what, when, outcome).
#[utoipa::path(get, path = "/api/v1/audit/access", tag = "audit", params(AccessQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AccessPage),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an auditor or admin"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn access(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<AccessQuery>,
) -> Result<Json<AccessPage>, ApiError> {
    user.require(&[Role::Auditor, Role::Admin], "read the access log")?;
    let AccessRequest {
        after,
        limit,
        patient,
    } = query.try_into()?;
    let entries = access_page(&state.pool, after, patient, limit).await?;
    let next = entries.last().map_or(after, |e| e.id).to_string();
    Ok(Json(AccessPage { entries, next }))
}

/// A typed [`AuditQuery`].
struct AuditRequest {
    after: Position,
    limit: i64,
    filter: AuditFilter,
}

/// An optional filter value, trimmed (blank is none), at most 200 characters.
fn filter_field(errors: &mut FieldErrors, field: &str, value: Option<String>) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
        errors.push(field, "must be at most 200 characters");
    }
    value
}

impl TryFrom<AuditQuery> for AuditRequest {
    type Error = ApiError;

    /// The page asked for, or a 422 naming every bad parameter.
    fn try_from(query: AuditQuery) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let after = params::optional::<Position>(
            &mut errors,
            "after",
            query.after.as_deref(),
            "is not a position token (use `next` of an earlier page)",
        )
        .map(Option::unwrap_or_default);
        let limit = params::limit(
            &mut errors,
            query.limit.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        );
        let filter = AuditFilter {
            aggregate_type: filter_field(&mut errors, "aggregate_type", query.aggregate_type),
            aggregate_id: filter_field(&mut errors, "aggregate_id", query.aggregate_id),
        };
        let (Some(after), Some(limit)) = (after, limit) else {
            return Err(errors.fail());
        };
        errors.finish(Some(Self {
            after,
            limit,
            filter,
        }))
    }
}

/// A typed [`AccessQuery`].
struct AccessRequest {
    after: i64,
    limit: i64,
    patient: Option<uuid::Uuid>,
}

impl TryFrom<AccessQuery> for AccessRequest {
    type Error = ApiError;

    /// The page asked for, or a 422 naming every bad parameter.
    fn try_from(query: AccessQuery) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let after = params::optional::<u64>(
            &mut errors,
            "after",
            query.after.as_deref(),
            "must be an entry number (use `next` of an earlier page)",
        )
        .map(|after| after.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)));
        let limit = params::limit(
            &mut errors,
            query.limit.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        );
        let patient = params::optional::<uuid::Uuid>(
            &mut errors,
            "patient_id",
            query.patient_id.as_deref(),
            "must be a patient id (a UUID)",
        );
        let (Some(after), Some(limit), Some(patient)) = (after, limit, patient) else {
            return Err(errors.fail());
        };
        Ok(Self {
            after,
            limit,
            patient,
        })
    }
}
