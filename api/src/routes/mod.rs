//! The REST routes, one module per resource; each exports `router()`.

mod appointments;
mod audit;
mod auth;
mod availability;
mod calendar;
pub mod calls;
mod dashboards;
mod doctors;
mod enums;
mod export;
mod fhir;
mod fields;
mod health;
mod ice;
mod me;
pub mod messages;
pub mod notifications;
mod openapi;
mod params;
mod patients;
mod time_off;
mod unread;
pub mod views;
mod waitlist;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::extract::request_id_layer;
use crate::state::AppState;

/// The whole HTTP application: the API, and the web app from `web_dir` for every other path.
pub fn router(state: AppState, body_limit: usize, web_dir: &std::path::Path) -> Router {
    let (router, api) = routes();
    let socketio = crate::live::socketio::layer(state.live.clone(), body_limit as u64);
    router
        .fallback_service(
            crate::web::router(web_dir).layer(middleware::from_fn(crate::rate_limit::per_caller)),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(openapi::Document::new(api)))
        .layer(axum::Extension(crate::extract::json::BodyLimit(body_limit)))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.progress.clone(),
            crate::outage::answer_promptly,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(
            state.jwt.clone(),
            crate::auth::identify,
        ))
        .layer(axum::Extension(state.rate_limits.clone()))
        .layer(middleware::from_fn(request_id_layer))
        .layer(middleware::from_fn(crate::telemetry::track))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_response(crate::telemetry::request_done),
        )
        .layer(socketio)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// The OpenAPI document `GET /api/v1/openapi.json` serves, built without a database (for
/// `telemed openapi`).
pub fn openapi_document() -> OpenApi {
    routes().1
}

/// Every REST route and the document that describes them: the one place both are built.
fn routes() -> (Router<AppState>, OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(auth::router())
        .merge(me::router())
        .merge(doctors::router())
        .merge(patients::router())
        .merge(availability::router())
        .merge(time_off::router())
        .merge(appointments::router())
        .merge(audit::router())
        .merge(messages::router())
        .merge(unread::router())
        .merge(notifications::router())
        .merge(ice::router())
        .merge(calls::router())
        .merge(dashboards::router())
        .merge(calendar::router())
        .merge(fhir::router())
        .merge(export::router())
        .merge(waitlist::router())
        .merge(crate::live::ws::router())
        .merge(openapi::router())
        .route_layer(middleware::from_fn(crate::rate_limit::per_caller))
        .merge(
            auth::sign_in_router()
                .route_layer(middleware::from_fn(crate::rate_limit::sign_in_attempts)),
        )
        .split_for_parts();
    openapi::document_common_answers(&mut api);
    enums::document_response_enums(&mut api);
    // The live protocol's types, for clients of /api/v1/ws and /socket.io/.
    api.merge(<crate::live::protocol::Schemas as utoipa::OpenApi>::openapi());
    (router, api)
}

/// A bug must not drop the connection: answer a problem (the panic itself is logged).
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    tracing::error!("a request handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
