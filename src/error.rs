//! The edge of the one error type: an operation's [`OpError`] (here also named `AppError`,
//! the name the GraphQL modules use) becomes a GraphQL error with an `extensions.code` from
//! the contract. Database and internal errors are logged and answered as INTERNAL, never with
//! SQL text or a stack trace. The enum itself lives with the operations (`crate::ops::error`),
//! so no operation depends on GraphQL.

use async_graphql::ErrorExtensions;

pub use crate::ops::OpError;

/// The name resolvers use for [`OpError`].
pub type AppError = OpError;

impl From<crate::domain::validation::InvalidInput> for async_graphql::Error {
    fn from(invalid: crate::domain::validation::InvalidInput) -> Self {
        OpError::from(invalid).extend()
    }
}

impl ErrorExtensions for OpError {
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

impl From<OpError> for async_graphql::Error {
    fn from(error: OpError) -> Self {
        error.extend()
    }
}
