//! One error type for every transport (REST, WebSocket, Socket.IO), rendered as RFC 9457
//! `application/problem+json`.
//!
//! A crate of its own because both `telemed-api` and `telemed-live` answer with it and `live`
//! must not depend on `api`; `telemed-commands` stays free of HTTP. It holds one module's worth:
//!
//! - [`ApiError`]: every failure with its status, code and title; `IntoResponse` for axum;
//!   [`ApiError::problem`] for the live transports' error frames and acks.
//! - [`Problem`], [`FieldError`]: the problem document and its field-level errors.
//! - [`FieldErrors`]: collects field errors while parsing a request into a typed command.
//! - The mapping of each command error (`CommandError<...>`) and of `sqlx::Error` to a status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use telemed_commands::CommandError;
use telemed_domain::values::InvalidValue;

/// A problem with one input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field (`contact.phone`, `specialties[2]`); `null` for the body.
    #[schema(required = true)]
    pub field: Option<String>,
    /// What is wrong, phrased to follow the field name.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// The problem+json body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Stable machine-readable code (`slot_unavailable`, `email_taken`, ...).
    pub code: String,
    /// Field-level problems, if any.
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with. Each variant documents its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be parsed (malformed JSON, bad query string or path).
    #[error("{detail}")]
    BadRequest {
        /// What is malformed.
        detail: String,
        /// Where, if known.
        errors: Vec<FieldError>,
    },
    /// 422: well-formed but invalid fields.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown, or not yours.
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with the current state.
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What conflicts.
        detail: String,
    },
    /// 405: the route exists, not with this method.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// 413: body over the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: not JSON.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 429: over a rate limit; retry after `retry_after`.
    #[error("{detail}")]
    RateLimited {
        /// Which limit.
        detail: String,
        /// When the next attempt is admitted.
        retry_after: std::time::Duration,
    },
    /// 503: a dependency (the database) is down; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// 500: a bug. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// 422 for a single field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The same error with its field paths under `prefix` (a live event's fields are in its
    /// `data`).
    pub fn under(self, prefix: &str) -> Self {
        let nest = |errors: Vec<FieldError>| {
            errors
                .into_iter()
                .map(|e| FieldError {
                    field: Some(match e.field {
                        Some(field) => format!("{prefix}.{field}"),
                        None => prefix.to_string(),
                    }),
                    message: e.message,
                })
                .collect()
        };
        match self {
            ApiError::Validation(errors) => ApiError::Validation(nest(errors)),
            ApiError::BadRequest { detail, errors } => ApiError::BadRequest {
                detail,
                errors: nest(errors),
            },
            other => other,
        }
    }

    /// 429 for a limit on `what` that admits the next attempt after `retry_after`.
    pub fn rate_limited(what: &str, retry_after: std::time::Duration) -> Self {
        Self::RateLimited {
            detail: format!("too many {what}; retry after the time in Retry-After"),
            retry_after,
        }
    }

    /// 500 from any error.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => {
                (StatusCode::BAD_REQUEST, "bad_request", "Malformed request")
            }
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Invalid input",
            ),
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code, "Conflict"),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let errors = match self {
            ApiError::BadRequest { errors, .. } | ApiError::Validation(errors) => errors.clone(),
            _ => vec![],
        };
        let detail = match self {
            ApiError::Validation(errors) => errors
                .iter()
                .map(|e| match &e.field {
                    Some(field) => format!("{field} {}", e.message),
                    None => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        Problem {
            kind: format!("https://telemed.dev/problems/{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            code: code.to_string(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "dependency unavailable")
            }
            _ => {}
        }
        let mut response = (self.status(), axum::Json(self.problem())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited { retry_after, .. } => {
                // Whole seconds, rounded up: a client retrying then is admitted.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match telemed_commands::error::classify_sqlx(error) {
            (true, source) => ApiError::Unavailable(Some(source)),
            (false, source) => ApiError::Internal(anyhow::anyhow!(source)),
        }
    }
}

/// Maps the infrastructure failures of a command; callers map `Rejected` to their own status
/// first (a `Rejected` reaching this is a bug: 500).
pub fn command_failure<E: std::error::Error + Send + Sync + 'static>(
    error: CommandError<E>,
) -> ApiError {
    match error {
        CommandError::Rejected(e) => ApiError::Internal(anyhow::anyhow!(e)),
        CommandError::Contention => ApiError::Conflict {
            code: "contention",
            detail: "the record is being changed by others right now; try again".into(),
        },
        CommandError::Unavailable(source) => ApiError::Unavailable(Some(source)),
        CommandError::Internal(source) => ApiError::Internal(anyhow::anyhow!(source)),
    }
}

/// Collects field errors while parsing a request into a typed command.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records the error of `result` under `field`, returning the value if valid.
    pub fn check<T>(&mut self, field: &str, result: Result<T, InvalidValue>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.0.push(FieldError::new(field, invalid.0));
                None
            }
        }
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// The 422 naming every recorded field, for a request some field of which failed to parse
    /// (500 if none was recorded: a parser forgot to say why).
    pub fn fail(self) -> ApiError {
        self.finish::<()>(None).err().unwrap_or_else(|| {
            ApiError::internal(anyhow::anyhow!("a field failed without an error"))
        })
    }

    /// `Ok(value)` when nothing was recorded and `value` is complete; 422 otherwise.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ if self.0.is_empty() => Err(ApiError::internal(anyhow::anyhow!(
                "a field failed to parse without recording an error"
            ))),
            _ => Err(ApiError::Validation(self.0)),
        }
    }
}

impl From<CommandError<telemed_commands::SchedulingError>> for ApiError {
    fn from(error: CommandError<telemed_commands::SchedulingError>) -> Self {
        use telemed_commands::SchedulingError as S;
        use telemed_domain::appointment::AppointmentError as Ap;
        use telemed_domain::availability::AvailabilityError as Av;
        let conflict = |code: &'static str, detail: String| ApiError::Conflict { code, detail };
        let rejection = match error {
            CommandError::Rejected(rejection) => rejection,
            other => return command_failure(other.map_rejected(|_| unreachable_rejection())),
        };
        let detail = rejection.to_string();
        match rejection {
            S::Availability(Av::WindowOutsideDay) => ApiError::invalid("end", detail),
            S::Availability(Av::WindowOverlaps) => conflict("window_overlap", detail),
            S::Availability(Av::UnknownWindow) => ApiError::NotFound(detail),
            S::Availability(Av::WindowHoldsAppointment) => {
                conflict("window_has_appointment", detail)
            }
            S::Availability(Av::WouldStrandAppointment) => {
                conflict("would_drop_appointment", detail)
            }
            S::Availability(Av::SlotUnavailable) => conflict("slot_unavailable", detail),
            S::Availability(Av::NoSuchHold) => conflict("offer_closed", detail),
            S::Availability(Av::DoctorUnavailable) => conflict("doctor_unavailable", detail),
            S::Availability(Av::OffGrid(_)) => ApiError::invalid("start", detail),
            S::Availability(Av::DuplicateReservation) | S::Appointment(Ap::AlreadyRequested) => {
                ApiError::internal(anyhow::anyhow!(detail))
            }
            S::Appointment(Ap::NotFound) => ApiError::NotFound("no such appointment".into()),
            S::Appointment(Ap::NotAllowed(why)) => ApiError::Forbidden(why.to_string()),
            S::Appointment(Ap::InvalidTransition { .. }) => conflict("invalid_transition", detail),
            S::Appointment(Ap::NotStarted) => conflict("not_started", detail),
            S::Appointment(Ap::SameTime) => ApiError::invalid("start", detail),
            S::InThePast | S::TooSoon(_) | S::TooFar(_) => ApiError::invalid("start", detail),
            S::BadLength(..) => ApiError::invalid("end", detail),
            S::PatientBusy => conflict("patient_busy", detail),
            S::NoSuchDoctor => ApiError::invalid("doctor_id", detail),
            S::KeyReused => ApiError::invalid("Idempotency-Key", detail),
        }
    }
}

impl From<CommandError<telemed_commands::WaitlistFailure>> for ApiError {
    fn from(error: CommandError<telemed_commands::WaitlistFailure>) -> Self {
        use telemed_commands::WaitlistFailure as F;
        use telemed_domain::waitlist::WaitlistError as W;
        let conflict = |code: &'static str, detail: String| ApiError::Conflict { code, detail };
        let rejection = match error {
            CommandError::Rejected(rejection) => rejection,
            other => return command_failure(other.map_rejected(|_| unreachable_rejection())),
        };
        let detail = rejection.to_string();
        match rejection {
            F::Entry(W::NotFound) => ApiError::NotFound(detail),
            F::Entry(W::AlreadyJoined) => ApiError::internal(anyhow::anyhow!(detail)),
            F::Entry(W::NotWaiting | W::PassedBefore | W::NotExpired) => {
                conflict("not_waiting", detail)
            }
            F::Entry(W::OfferNotOpen) => conflict("offer_closed", detail),
            F::Entry(W::OfferExpired) => conflict("offer_expired", detail),
            F::Entry(W::Closed) => conflict("waitlist_closed", detail),
            F::Entry(W::AlreadyWaiting(_)) => conflict("already_waiting", detail),
            F::Entry(W::TooManyEntries(_)) => conflict("too_many_waitlist_entries", detail),
            F::Day(error) => {
                CommandError::Rejected(telemed_commands::SchedulingError::from(error)).into()
            }
            F::Booking(error) => CommandError::Rejected(error).into(),
            F::NoSuchDoctor => ApiError::NotFound(detail),
        }
    }
}

impl From<CommandError<telemed_commands::ChatError>> for ApiError {
    fn from(error: CommandError<telemed_commands::ChatError>) -> Self {
        match error {
            CommandError::Rejected(rejection) => rejection.into(),
            other => command_failure(other.map_rejected(|_| unreachable_rejection())),
        }
    }
}

impl From<telemed_commands::ChatError> for ApiError {
    fn from(rejection: telemed_commands::ChatError) -> Self {
        use telemed_commands::ChatError as C;
        use telemed_domain::conversation::ConversationError as Co;
        let detail = rejection.to_string();
        match rejection {
            C::NoAppointment | C::Conversation(Co::NotParticipant) => {
                ApiError::NotFound("no such appointment".into())
            }
            C::Conversation(Co::Cancelled | Co::Closed(_)) => ApiError::Conflict {
                code: "conversation_closed",
                detail,
            },
            C::Conversation(Co::AlreadyPosted) => ApiError::internal(anyhow::anyhow!(detail)),
            C::Invalid(fields) => ApiError::Validation(
                fields
                    .into_iter()
                    .map(|(field, why)| FieldError::new(field, why.0))
                    .collect(),
            ),
        }
    }
}

impl From<CommandError<telemed_domain::call::CallError>> for ApiError {
    fn from(error: CommandError<telemed_domain::call::CallError>) -> Self {
        use telemed_domain::call::CallError as C;
        let rejection = match error {
            CommandError::Rejected(rejection) => rejection,
            other => return command_failure(other.map_rejected(|_| unreachable_rejection())),
        };
        let detail = rejection.to_string();
        let conflict = |code: &'static str| ApiError::Conflict {
            code,
            detail: detail.clone(),
        };
        match rejection {
            C::NotParticipant | C::NotFound => ApiError::NotFound("no such call".into()),
            C::NotConfirmed => conflict("not_confirmed"),
            C::OutsideJoinWindow { .. } => conflict("outside_join_window"),
            C::InvalidTransition { .. } => conflict("invalid_transition"),
            C::OwnCall => ApiError::Forbidden(detail),
            C::AlreadyStarted => ApiError::internal(anyhow::anyhow!(detail)),
        }
    }
}

/// Stands in for a domain error that cannot occur (infrastructure failures carry none).
fn unreachable_rejection() -> std::io::Error {
    std::io::Error::other("no rejection")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_problem_lists_every_field_in_its_detail() {
        let problem = ApiError::Validation(vec![
            FieldError::new("email", "must not be empty"),
            FieldError::new("timezone", "must be an IANA time zone name"),
        ])
        .problem();
        assert_eq!(problem.status, 422);
        assert_eq!(
            problem.detail,
            "email must not be empty; timezone must be an IANA time zone name"
        );
        assert_eq!(problem.errors.len(), 2);
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let problem = ApiError::internal(anyhow::anyhow!("password=hunter2")).problem();
        assert_eq!(problem.detail, "internal error");
    }

    #[test]
    fn field_errors_collect_every_failure() {
        let mut errors = FieldErrors::default();
        let a = errors.check("a", Err::<(), _>(InvalidValue::new("is bad")));
        let b = errors.check("b", Ok(2));
        assert!(matches!(errors.finish(a.zip(b)), Err(ApiError::Validation(v)) if v.len() == 1));
    }

    #[test]
    fn failing_names_every_recorded_field_and_is_a_bug_without_one() {
        let mut errors = FieldErrors::default();
        errors.push("start", "is bad");
        errors.push("end", "is bad too");
        let ApiError::Validation(fields) = errors.fail() else {
            panic!("not a 422");
        };
        assert_eq!(
            fields,
            [
                FieldError::new("start", "is bad"),
                FieldError::new("end", "is bad too")
            ]
        );
        assert!(matches!(
            FieldErrors::default().fail(),
            ApiError::Internal(_)
        ));
    }
}
