//! Every error the sandbox answers with, rendered as an RFC 9457 problem
//! (`application/problem+json`): what happened, and what to do about it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::types::Problem;
use crate::domain::{DocumentError, FieldError, MAX_DOCUMENT_BYTES};
use crate::sandbox::error::SandboxError;
use crate::sandbox::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    RouteNotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    #[error("{detail}")]
    Unprocessable { detail: String, errors: Vec<FieldError> },
    #[error("too many requests: this API key is limited to {per_second} requests per second")]
    RateLimited { per_second: u32, retry_after_secs: u64 },
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Sandbox(SandboxError::Store(err))
    }
}

impl ApiError {
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        ApiError::Unprocessable {
            detail: format!("{}: {}", error.field, error.message),
            errors: vec![error],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, Vec<FieldError>) {
        use StatusCode as S;
        match self {
            ApiError::Unauthorized(_) => (
                S::UNAUTHORIZED,
                "unauthorized",
                "Missing or unknown API key",
                vec![],
            ),
            ApiError::RouteNotFound(_) => (S::NOT_FOUND, "not-found", "Not found", vec![]),
            ApiError::MethodNotAllowed(_) => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                vec![],
            ),
            ApiError::MalformedJson(_) => (S::BAD_REQUEST, "malformed-json", "Malformed JSON", vec![]),
            ApiError::UnsupportedMediaType(_) => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                vec![],
            ),
            ApiError::PayloadTooLarge { .. } => (
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                vec![],
            ),
            ApiError::BadRequest { errors, .. } => {
                (S::BAD_REQUEST, "bad-request", "Bad request", errors.clone())
            }
            ApiError::Unprocessable { errors, .. } => (
                S::UNPROCESSABLE_ENTITY,
                "validation-error",
                "Invalid request",
                errors.clone(),
            ),
            ApiError::RateLimited { .. } => {
                (S::TOO_MANY_REQUESTS, "rate-limited", "Too many requests", vec![])
            }
            ApiError::IdempotencyConflict(_) => (
                S::CONFLICT,
                "idempotency-conflict",
                "Idempotency key conflict",
                vec![],
            ),
            ApiError::Sandbox(err) => match err {
                SandboxError::NotFound { .. } => (S::NOT_FOUND, "not-found", "Not found", vec![]),
                SandboxError::Validation(errors) => (
                    S::UNPROCESSABLE_ENTITY,
                    "validation-error",
                    "Invalid request",
                    errors.0.clone(),
                ),
                SandboxError::Conflict { errors, .. } => {
                    (S::CONFLICT, "conflict", "Conflict", errors.clone())
                }
                SandboxError::Workflow(_) => (
                    S::CONFLICT,
                    "workflow-conflict",
                    "Not allowed in the onboarding's current state",
                    vec![],
                ),
                SandboxError::Document(doc) => {
                    let field = vec![FieldError::new("file", doc.to_string())];
                    match doc {
                        DocumentError::TooLarge { .. } => (
                            S::PAYLOAD_TOO_LARGE,
                            "payload-too-large",
                            "Payload too large",
                            field,
                        ),
                        DocumentError::UnknownFormat => (
                            S::UNSUPPORTED_MEDIA_TYPE,
                            "unsupported-media-type",
                            "Unsupported media type",
                            field,
                        ),
                        DocumentError::Empty | DocumentError::FormatNotAccepted { .. } => (
                            S::UNPROCESSABLE_ENTITY,
                            "validation-error",
                            "Invalid request",
                            field,
                        ),
                    }
                }
                SandboxError::Store(StoreError::Closed) => (
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The sandbox is shutting down",
                    vec![],
                ),
                SandboxError::Store(_) => (S::INTERNAL_SERVER_ERROR, "internal", "Internal error", vec![]),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title, errors) = self.parts();
        let detail = match &self {
            ApiError::Sandbox(SandboxError::Store(err)) if status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!("internal error: {err}");
                "the sandbox hit an internal error; its log has the details".to_string()
            }
            ApiError::Sandbox(SandboxError::Document(DocumentError::TooLarge { .. })) => {
                format!("the file is larger than {MAX_DOCUMENT_BYTES} bytes (10 MiB); upload a smaller file")
            }
            other => other.to_string(),
        };
        let problem = Problem {
            problem_type: format!("urn:kycdash:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            ApiError::RateLimited { retry_after_secs, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
