//! The one error an operation answers with, whichever door called it. Each door turns it
//! into its own answer: GraphQL sets `extensions.code` from [`OpError::code`] (see
//! `crate::error`), the CLI prints [`OpError::message`], a page shows it. Database and
//! internal details stay in `Internal`, which is logged and never shown.

use crate::db::{DbError, DbResult};

/// What went wrong, as the caller should hear it.
///
/// Deliberately not `Display`: async-graphql turns any `Display` error into a code-less error,
/// so leaving it out makes `?` in a resolver go through `crate::error`, which sets the code.
#[derive(Debug)]
pub enum OpError {
    Unauthenticated,
    /// Credentials that did not work, with what to tell the caller.
    AuthFailed(String),
    Forbidden(String),
    NotFound(&'static str),
    /// Invalid input on one field (`field` names it as the API spells it, `lines.0.quantity`).
    BadUserInput {
        field: Option<String>,
        message: String,
    },
    Conflict(String),
    /// The detail is logged, never shown.
    Internal(String),
}

impl OpError {
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

    /// The answer to a row that changed between reading and writing it.
    pub(crate) fn changed_meanwhile(what: &str) -> Self {
        Self::Conflict(format!("the {what} changed meanwhile; reload it"))
    }
}

impl From<DbError> for OpError {
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

impl From<diesel::result::Error> for OpError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::Query(error).into()
    }
}

impl From<crate::domain::validation::InvalidInput> for OpError {
    fn from(invalid: crate::domain::validation::InvalidInput) -> Self {
        Self::BadUserInput {
            field: Some(invalid.field),
            message: invalid.message,
        }
    }
}

impl From<crate::domain::schedule::ScheduleError> for OpError {
    fn from(error: crate::domain::schedule::ScheduleError) -> Self {
        Self::bad_input(error.field(), error.to_string())
    }
}

/// Turns "no row" into NOT_FOUND naming `what`; other errors pass through.
pub fn found<T>(result: DbResult<T>, what: &'static str) -> Result<T, OpError> {
    match result {
        Ok(value) => Ok(value),
        Err(DbError::Query(diesel::result::Error::NotFound)) => Err(OpError::NotFound(what)),
        Err(other) => Err(other.into()),
    }
}
