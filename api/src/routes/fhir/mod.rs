//! The FHIR R4 read API under `/fhir/R4` (`application/fhir+json`): Telemed's read models
//! projected as `Practitioner`, `Patient`, `Schedule`, `Slot`, `Appointment` and
//! `Communication`, with a `CapabilityStatement` at `/fhir/R4/metadata`.
//!
//! The same access rules, queries and access log as the REST routes: each handler calls the
//! functions the REST handler for the same data calls, and maps the views with [`map`]. Errors
//! are `OperationOutcome`s with the REST status; searches answer `Bundle`s of type `searchset`
//! with `total` and `self`/`next`/`previous` links.
//!
//! - `model`: the resources and data types served, as serde structs.
//! - [`map`]: views to resources (also used by the patient's export, `GET /api/v1/me/export`).
//! - `search`: search parameters, paging and bundles.
//! - `outcome`: errors as `OperationOutcome`, the authenticated user, the response type.
//! - `directory`, `scheduling`: the handlers.

mod directory;
pub mod map;
mod metadata;
pub mod model;
pub mod outcome;
pub(crate) mod scheduling;
mod search;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Where the FHIR API is mounted.
pub const BASE_PATH: &str = "/fhir/R4";

/// A `collection` bundle's entry of `resource`, read at `base`/Type/id.
pub fn collection_entry(base: &str, resource: model::Resource) -> model::Entry {
    search::entry(base, resource, false)
}

/// The FHIR routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(metadata::router())
        .merge(directory::router())
        .merge(scheduling::router())
}
