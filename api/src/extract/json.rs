//! A JSON body extractor that answers malformed input with a problem naming the field.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Like `axum::Json`, but rejects with [`ApiError`]: 415 when not JSON, 413 when too large,
/// 400 for JSON syntax errors, 422 with the field's path for missing, unknown or mistyped fields.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or_default();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge(limit),
                other => ApiError::BadRequest {
                    detail: other.body_text(),
                    errors: vec![],
                },
            })?;
        parse(&bytes).map(ApiJson)
    }
}

/// The configured body limit, recorded in request extensions for error messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct BodyLimit(pub usize);

fn is_json(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as `T`, classifying failures.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(classify)?;
    deserializer.end().map_err(|e| ApiError::BadRequest {
        detail: format!("the body is not valid JSON: {}", e),
        errors: vec![],
    })?;
    Ok(value)
}

fn classify(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = strip_location(&inner.to_string());
    match inner.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => ApiError::BadRequest {
            detail: format!(
                "the body is not valid JSON: {message} (line {}, column {})",
                inner.line(),
                inner.column()
            ),
            errors: vec![],
        },
        serde_json::error::Category::Data => {
            let (field, message) = field_and_message(&path, &message);
            ApiError::Validation(vec![FieldError { field, message }])
        }
    }
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Names the field of a data error. serde reports missing and unknown fields at the parent's
/// path with the name in backquotes; we move the name into the path.
fn field_and_message(path: &str, message: &str) -> (Option<String>, String) {
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_string()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            // Unknown fields are reported at their own path already.
            path.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    for (prefix, text) in [
        ("missing field `", "is required"),
        ("unknown field `", "is not allowed"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
        {
            return (Some(join(&rest[..end])), text.to_string());
        }
    }
    let field = (path != "." && !path.is_empty()).then(|| path.to_string());
    (field, message.to_string())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_error(json: &str) -> FieldError {
        match parse::<Body>(json.as_bytes()) {
            Err(ApiError::Validation(mut errors)) => errors.remove(0),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(field_error("{}"), FieldError::new("name", "is required"));
    }

    #[test]
    fn an_unknown_nested_field_is_named_with_its_path() {
        let error = field_error(r#"{"name":"a","inner":{"count":1,"extra":2}}"#);
        assert_eq!(error, FieldError::new("inner.extra", "is not allowed"));
    }

    #[test]
    fn a_mistyped_field_is_named() {
        let error = field_error(r#"{"name":"a","inner":{"count":"three"}}"#);
        assert_eq!(error.field.as_deref(), Some("inner.count"));
        assert!(
            error.message.starts_with("invalid type"),
            "{}",
            error.message
        );
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Body>(b"{\"name\":"),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            parse::<Body>(b"{\"name\":\"a\"} trailing"),
            Err(ApiError::BadRequest { .. })
        ));
    }
}
