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

    /// What kind of problem this is.
    fn kind(&self) -> Kind {
        match self {
            ApiError::Unauthorized(_) => Kind::UNAUTHORIZED,
            ApiError::RouteNotFound(_) => Kind::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => Kind::METHOD_NOT_ALLOWED,
            ApiError::MalformedJson(_) => Kind::MALFORMED_JSON,
            ApiError::UnsupportedMediaType(_) => Kind::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => Kind::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest { .. } => Kind::BAD_REQUEST,
            ApiError::Unprocessable { .. } => Kind::INVALID,
            ApiError::RateLimited { .. } => Kind::RATE_LIMITED,
            ApiError::IdempotencyConflict(_) => Kind::IDEMPOTENCY_CONFLICT,
            ApiError::Sandbox(err) => match err {
                SandboxError::NotFound { .. } => Kind::NOT_FOUND,
                SandboxError::Validation(_) => Kind::INVALID,
                SandboxError::Conflict { .. } => Kind::CONFLICT,
                SandboxError::Workflow(_) => Kind::WORKFLOW_CONFLICT,
                SandboxError::Document(DocumentError::TooLarge { .. }) => Kind::PAYLOAD_TOO_LARGE,
                SandboxError::Document(DocumentError::UnknownFormat) => Kind::UNSUPPORTED_MEDIA_TYPE,
                SandboxError::Document(DocumentError::Empty | DocumentError::FormatNotAccepted { .. }) => {
                    Kind::INVALID
                }
                SandboxError::Store(StoreError::Closed) => Kind::UNAVAILABLE,
                SandboxError::Store(_) => Kind::INTERNAL,
            },
        }
    }

    /// The fields the problem is about.
    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ApiError::BadRequest { errors, .. }
            | ApiError::Unprocessable { errors, .. }
            | ApiError::Sandbox(SandboxError::Conflict { errors, .. }) => errors.clone(),
            ApiError::Sandbox(SandboxError::Validation(errors)) => errors.0.clone(),
            ApiError::Sandbox(SandboxError::Document(doc)) => vec![FieldError::new("file", doc.to_string())],
            _ => Vec::new(),
        }
    }
}

/// A kind of problem: its status, the slug of its type URI, and its title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
}

impl Kind {
    const fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Kind {
        Kind { status, slug, title }
    }

    const UNAUTHORIZED: Kind = Kind::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Missing or unknown API key",
    );
    const NOT_FOUND: Kind = Kind::new(StatusCode::NOT_FOUND, "not-found", "Not found");
    const METHOD_NOT_ALLOWED: Kind = Kind::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    );
    const MALFORMED_JSON: Kind = Kind::new(StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON");
    const UNSUPPORTED_MEDIA_TYPE: Kind = Kind::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
    );
    const PAYLOAD_TOO_LARGE: Kind = Kind::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
    );
    const BAD_REQUEST: Kind = Kind::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request");
    const INVALID: Kind = Kind::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-error",
        "Invalid request",
    );
    const RATE_LIMITED: Kind = Kind::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests");
    const IDEMPOTENCY_CONFLICT: Kind = Kind::new(
        StatusCode::CONFLICT,
        "idempotency-conflict",
        "Idempotency key conflict",
    );
    const CONFLICT: Kind = Kind::new(StatusCode::CONFLICT, "conflict", "Conflict");
    const WORKFLOW_CONFLICT: Kind = Kind::new(
        StatusCode::CONFLICT,
        "workflow-conflict",
        "Not allowed in the onboarding's current state",
    );
    const UNAVAILABLE: Kind = Kind::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "The sandbox is shutting down",
    );
    const INTERNAL: Kind = Kind::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Kind { status, slug, title } = self.kind();
        let errors = self.field_errors();
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
