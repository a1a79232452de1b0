//! What a sandbox command can fail with, in the API's terms. The HTTP layer renders each as
//! an RFC 9457 problem.

use crate::domain::{DocumentError, FieldError, ValidationErrors, WorkflowError};

use super::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("no {what} with id \"{id}\" exists for this API key")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// The request is valid but the state of the resource does not allow it.
    #[error("{detail}")]
    Conflict { detail: String, errors: Vec<FieldError> },
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<super::clock::TimeError> for SandboxError {
    fn from(err: super::clock::TimeError) -> Self {
        SandboxError::Store(err.into())
    }
}

impl SandboxError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        SandboxError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        SandboxError::Conflict {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
}

impl From<rusqlite::Error> for SandboxError {
    fn from(err: rusqlite::Error) -> Self {
        SandboxError::Store(StoreError::Sqlite(err))
    }
}
