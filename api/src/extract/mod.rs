//! Extractors whose rejections are problem+json, the authenticated user and the request id.

mod auth_user;
pub(crate) mod json;
mod path;
mod query;
mod request_id;

pub use auth_user::AuthUser;
pub use json::ApiJson;
pub use path::ApiPath;
pub use query::ApiQuery;
pub use request_id::{RequestId, request_id_layer};
