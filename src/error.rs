//! The one user-facing error type. Every GraphQL error leaves through here with an
//! `extensions.code` from the contract; database and internal errors are logged and answered
//! as INTERNAL, never with SQL text or a stack trace.

use async_graphql::ErrorExtensions;

use crate::db::DbError;

/// What went wrong, as the caller should hear it.
///
/// Deliberately not `Display`: async-graphql turns any `Display` error into a code-less error,
/// so leaving it out makes `?` in a resolver go through the `From` below, which sets the code.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated,
    /// Credentials that did not work, with what to tell the caller.
    AuthFailed(String),
    Forbidden(String),
    NotFound(&'static str),
    BadUserInput {
        field: Option<String>,
        message: String,
    },
    Conflict(String),
    /// The detail is logged, never shown.
    Internal(String),
}

impl AppError {
    /// The contract's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::AuthFailed(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The message a person reads.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "sign in first: send a bearer token".into(),
            Self::Forbidden(message) | Self::Conflict(message) | Self::AuthFailed(message) => {
                message.clone()
            }
            Self::NotFound(what) => format!("{what} not found"),
            Self::BadUserInput { message, .. } => message.clone(),
            Self::Internal(_) => "internal error".into(),
        }
    }

    /// Bad input on one named input field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Query(diesel::result::Error::NotFound) => Self::NotFound("record"),
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Self::Conflict("this already exists".into()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::Query(error).into()
    }
}

impl From<crate::domain::validation::InvalidInput> for AppError {
    fn from(invalid: crate::domain::validation::InvalidInput) -> Self {
        Self::BadUserInput {
            field: Some(invalid.field),
            message: invalid.message,
        }
    }
}

impl From<crate::domain::validation::InvalidInput> for async_graphql::Error {
    fn from(invalid: crate::domain::validation::InvalidInput) -> Self {
        AppError::from(invalid).extend()
    }
}

impl From<crate::domain::schedule::ScheduleError> for AppError {
    fn from(error: crate::domain::schedule::ScheduleError) -> Self {
        Self::bad_input(error.field(), error.to_string())
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        if let Self::Internal(detail) = self {
            // Logged once here, where it becomes an answer; the caller sees only the code.
            tracing::error!(error = %detail, "internal error answered to a GraphQL caller");
        }
        async_graphql::Error::new(self.message()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            if let Self::BadUserInput {
                field: Some(field), ..
            } = self
            {
                extensions.set("field", field.as_str());
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        error.extend()
    }
}
