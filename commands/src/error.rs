//! What executing a command can fail with.

/// A boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A command failed: refused by the domain, or the infrastructure could not complete it.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command; nothing was written.
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept changing the aggregate; every bounded retry lost. Nothing was written.
    #[error("the record is being changed by others right now; try again")]
    Contention,
    /// The database could not be reached; nothing is known to be written.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// An unexpected failure (a bug or a corrupt record).
    #[error("unexpected failure: {0}")]
    Internal(#[source] BoxError),
}

impl<E: std::error::Error> CommandError<E> {
    /// Maps the domain error, keeping infrastructure failures as they are.
    pub fn map_rejected<F: std::error::Error>(self, f: impl FnOnce(E) -> F) -> CommandError<F> {
        match self {
            CommandError::Rejected(e) => CommandError::Rejected(f(e)),
            CommandError::Contention => CommandError::Contention,
            CommandError::Unavailable(e) => CommandError::Unavailable(e),
            CommandError::Internal(e) => CommandError::Internal(e),
        }
    }
}

/// Classifies a database error: connection trouble is "unavailable", the rest "internal".
pub fn classify_sqlx(error: sqlx::Error) -> (bool, BoxError) {
    (is_unavailable(&error), Box::new(error))
}

/// Whether a database error is connection trouble (rather than a bug or a refusal).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    ) || matches!(error, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
}

impl<E: std::error::Error> From<sqlx::Error> for CommandError<E> {
    fn from(error: sqlx::Error) -> Self {
        match classify_sqlx(error) {
            (true, source) => CommandError::Unavailable(source),
            (false, source) => CommandError::Internal(source),
        }
    }
}
