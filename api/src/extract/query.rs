//! A query-string extractor with problem+json rejections.

use axum::extract::{FromRequestParts, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::extract::Query`, but a bad query string is a 400 problem naming the parameter,
/// and a value with a NUL character (which no text column can hold) is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        reject_nul(&parts.uri)?;
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::BadRequest {
                detail: rejection.body_text(),
                errors: vec![],
            })
    }
}

/// 422 naming the first parameter whose name or value decodes to text with a NUL in it.
fn reject_nul(uri: &Uri) -> Result<(), ApiError> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    match pairs
        .iter()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        Some((name, _)) => Err(ApiError::invalid(
            &name.replace('\0', "\\0"),
            "must not contain NUL characters",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(query: &str) -> Uri {
        format!("/api/v1/doctors?{query}").parse().unwrap()
    }

    #[test]
    fn a_nul_in_a_value_is_named() {
        let Err(ApiError::Validation(errors)) = reject_nul(&uri("q=card%00io&limit=2")) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field.as_deref(), Some("q"));
    }

    #[test]
    fn ordinary_and_undecodable_queries_pass_to_the_parser() {
        assert!(reject_nul(&uri("q=cardio&specialty=%C3%A9")).is_ok());
        assert!(reject_nul(&uri("q=%FF%FE")).is_ok());
        assert!(reject_nul(&"/path".parse().unwrap()).is_ok());
    }
}
