//! `GET /api/v1/me/export`: everything Telemed holds about the caller (right of access), as
//! one JSON download, streamed as it is read.
//!
//! ```text
//! {"format": "telemed-export/1", "exported_at", "user": {…/me},
//!  "audit_head": {…/audit/head when the export began},
//!  "bundle": {FHIR R4 Bundle, type collection: the Patient (and the medical history as
//!             Condition, AllergyIntolerance, MedicationStatement, Observation) or the
//!             Practitioner; per appointment the Appointment, its history (a Provenance per
//!             event, the event itself in an extension), its messages (Communication) and
//!             calls (Encounter); every notification (Communication, category notification)},
//!  "access_log": [the reads of the patient's data by others; a doctor's: their own reads]}
//! ```

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use telemed_domain::{Position, Role};
use telemed_projections::appointments::{self as read, AppointmentView, ListFilter};
use telemed_projections::{calls, conversations, notifications, profiles, stream};
use tokio::sync::mpsc;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access_log::{self, AccessEntry, Outcome};
use crate::error::{ApiError, Problem};
use crate::extract::AuthUser;
use crate::routes::audit::ChainHead;
use crate::routes::fhir::map;
use crate::routes::fhir::model::{Reference, Resource};
use crate::routes::views::UserView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// Rows read per query while exporting.
const CHUNK: i64 = 200;

/// The export document (streamed; this describes its shape).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Export {
    /// `telemed-export/1`.
    format: String,
    /// When the export began.
    #[schema(format = DateTime)]
    exported_at: String,
    /// The account.
    user: UserView,
    /// The head of the audit log's hash chain when the export began: keep it to prove later
    /// that the history up to it is unchanged (`telemed audit verify --head --at`).
    audit_head: ChainHead,
    /// A FHIR R4 `Bundle` of type `collection` holding everything about the caller.
    #[schema(value_type = Object)]
    bundle: serde_json::Value,
    /// Patients: every read of their data by someone else; doctors: their reads of patients'
    /// data.
    access_log: Vec<AccessEntry>,
}

/// Everything held about you (patients and doctors): a JSON download with your profile,
/// appointments with their history, messages, calls and notifications as a FHIR R4 `Bundle`,
/// the access log, and the audit chain's head.
#[utoipa::path(get, operation_id = "export_my_data", path = "/api/v1/me/export", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Export, description = "a download (Content-Disposition: attachment)",
            headers(("content-disposition" = String, description = "attachment; filename=\"telemed-export-<date>.json\""))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "staff accounts hold no such data")))]
async fn export(
    State(state): State<AppState>,
    user: AuthUser,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    user.require(&[Role::Patient, Role::Doctor], "export personal data")?;
    let account = state
        .accounts
        .find(user.id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("this account no longer exists".into()))?;
    let me = crate::routes::me::user_view(&state, account).await?;
    let head = crate::routes::audit::chain_head(&state.pool).await?;
    let exported_at = map::now();
    let header = serde_json::json!({
        "format": "telemed-export/1",
        "exported_at": exported_at,
        "user": me,
        "audit_head": head,
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let base = format!(
        "{}{}",
        crate::routes::calendar::base_url(&state, &headers),
        crate::routes::fhir::BASE_PATH
    );
    tokio::spawn(async move {
        let mut out = Out { tx, base };
        let written = write(&state, &user, &header, &mut out).await;
        if let Err(error) = written {
            tracing::error!(error = %error, "the export stopped");
            let _ = out
                .tx
                .send(Err(std::io::Error::other("export failed")))
                .await;
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let filename = format!(
        "attachment; filename=\"telemed-export-{}.json\"",
        exported_at.get(..10).unwrap_or("now")
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Why the export stopped half-way.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("the client went away")]
    Gone,
}

/// The download being written.
struct Out {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    base: String,
}

impl Out {
    async fn raw(&mut self, text: String) -> Result<(), Stop> {
        self.tx
            .send(Ok(Bytes::from(text)))
            .await
            .map_err(|_| Stop::Gone)
    }

    /// One bundle entry (`first`: no comma before it).
    async fn entry(&mut self, resource: Resource, first: bool) -> Result<(), Stop> {
        let entry = crate::routes::fhir::collection_entry(&self.base, resource);
        let json = serde_json::to_string(&entry).map_err(ApiError::internal)?;
        self.raw(format!("{}{json}", if first { "" } else { "," }))
            .await
    }
}

/// Writes the whole document: header fields, the bundle entry by entry, the access log.
async fn write(
    state: &AppState,
    user: &AuthUser,
    header: &serde_json::Value,
    out: &mut Out,
) -> Result<(), Stop> {
    let mut text = header.to_string();
    text.pop(); // the closing brace: the document goes on
    text.push_str(&format!(
        ",\"bundle\":{{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":\"{}\",\"entry\":[",
        map::now()
    ));
    out.raw(text).await?;
    profile(state, user, out).await?;
    appointments(state, user, out).await?;
    notifications_of(state, user, out).await?;
    out.raw("]},\"access_log\":[".into()).await?;
    access(state, user, out).await?;
    out.raw("]}".into()).await
}

/// The caller's own resource (always the first entry) and, for patients, their history.
async fn profile(state: &AppState, user: &AuthUser, out: &mut Out) -> Result<(), Stop> {
    let unavailable =
        || ApiError::Unavailable(Some("the profile is not in the read model yet".into()));
    if user.role == Role::Doctor {
        let doctor = profiles::doctor(&state.pool, user.id)
            .await?
            .ok_or_else(unavailable)?;
        return out
            .entry(Resource::Practitioner(map::practitioner(&doctor)), true)
            .await;
    }
    let patient = profiles::patient(&state.pool, user.id)
        .await?
        .ok_or_else(unavailable)?;
    out.entry(Resource::Patient(map::patient(&patient)), true)
        .await?;
    for resource in map::medical_history(&patient) {
        out.entry(resource, false).await?;
    }
    Ok(())
}

/// Every appointment of the caller, page by page, each with its history, messages and calls.
async fn appointments(state: &AppState, user: &AuthUser, out: &mut Out) -> Result<(), Stop> {
    let mut filter = ListFilter::default();
    loop {
        let page = read::list(&state.pool, user.id, user.role, &filter).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        filter.after = Some((last.start, last.id));
        let names = crate::routes::fhir::scheduling::participant_names(state, &page).await?;
        for view in &page {
            // A doctor's export reads each patient's appointment, history and messages: an
            // audited read of patient data (a patient's own is not logged).
            let id = view.id.to_string();
            access_log::record(
                &state.pool,
                user,
                view.patient_id,
                "export",
                &id,
                Outcome::Allowed,
            )
            .await?;
            out.entry(Resource::Appointment(map::appointment(view, &names)), false)
                .await?;
            appointment_records(state, view, out).await?;
        }
    }
}

/// An appointment's history, messages and calls.
async fn appointment_records(
    state: &AppState,
    view: &AppointmentView,
    out: &mut Out,
) -> Result<(), Stop> {
    let events = stream::aggregate_events(
        &state.pool,
        telemed_domain::appointment::AGGREGATE_TYPE,
        &view.id.to_string(),
    )
    .await?;
    for event in &events {
        out.entry(Resource::Provenance(map::provenance(view, event)), false)
            .await?;
    }
    let mut after: Option<Position> = None;
    loop {
        let page = conversations::page_after(&state.pool, view.id, after, CHUNK).await?;
        for message in &page {
            out.entry(Resource::Communication(map::message(view, message)), false)
                .await?;
        }
        match page
            .last()
            .and_then(|m| m.position.parse::<Position>().ok())
        {
            Some(position) if page.len() as i64 == CHUNK => after = Some(position),
            _ => break,
        }
    }
    for call in calls::calls_of(&state.pool, view.id).await? {
        out.entry(Resource::Encounter(map::call(view, &call)), false)
            .await?;
    }
    Ok(())
}

/// Every in-app notification of the caller, newest first.
async fn notifications_of(state: &AppState, user: &AuthUser, out: &mut Out) -> Result<(), Stop> {
    let recipient = match user.role {
        Role::Doctor => Reference::to("Practitioner", user.id),
        _ => Reference::to("Patient", user.id),
    };
    let mut before = None;
    loop {
        let page = notifications::page(&state.pool, user.id, before, false, CHUNK).await?;
        for row in &page {
            out.entry(
                Resource::Communication(map::notification(row, recipient.clone())),
                false,
            )
            .await?;
        }
        match page.last() {
            Some(last) if page.len() as i64 == CHUNK => before = Some(last.gpos),
            _ => return Ok(()),
        }
    }
}

/// The access log: of the patient's data, or of the doctor's reads.
async fn access(state: &AppState, user: &AuthUser, out: &mut Out) -> Result<(), Stop> {
    let mut after = 0;
    let mut first = true;
    loop {
        let page = match user.role {
            Role::Doctor => access_log::page_by_actor(&state.pool, after, user.id, CHUNK).await?,
            _ => access_log::page(&state.pool, after, Some(user.id.as_uuid()), CHUNK).await?,
        };
        for entry in &page {
            let json = serde_json::to_string(entry).map_err(ApiError::internal)?;
            out.raw(format!("{}{json}", if first { "" } else { "," }))
                .await?;
            first = false;
        }
        match page.last() {
            Some(last) if page.len() as i64 == CHUNK => after = last.id,
            _ => return Ok(()),
        }
    }
}
