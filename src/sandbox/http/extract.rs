//! Extractors that turn bad input into clear problems: the tenant of the API key, JSON bodies
//! (415 for another content type, 400 for malformed JSON, 413 over the limit, 422 naming the
//! field for the wrong shape), and ids in paths.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::problem::ApiError;
use crate::sandbox::error::SandboxError;
use crate::sandbox::memory::TenantId;

/// The largest JSON body any route accepts.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The tenant the request's API key belongs to, put there by the authentication layer.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TenantId>()
            .cloned()
            .map(Tenant)
            .ok_or_else(|| {
                ApiError::Unauthorized("send your API key as `Authorization: Bearer <key>`".into())
            })
    }
}

/// Whether a content type is JSON (`application/json` or any `+json` type).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

/// A JSON object body, as sent, for handlers that read its fields themselves.
pub struct JsonObject(pub serde_json::Value);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonObject(value) = JsonObject::from_request(req, state).await?;
        let value = serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            let field = if path == "." { String::new() } else { path };
            ApiError::invalid_field(field, err.into_inner().to_string())
        })?;
        Ok(JsonBody(value))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !is_json(&content_type) {
            let sent = if content_type.is_empty() {
                "no Content-Type".to_string()
            } else {
                format!("Content-Type \"{content_type}\"")
            };
            return Err(ApiError::UnsupportedMediaType(format!(
                "this route takes a JSON body; the request has {sent}. Send `Content-Type: application/json`."
            )));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
                    limit: JSON_BODY_LIMIT,
                },
                other => {
                    ApiError::MalformedJson(format!("the body could not be read: {}", other.body_text()))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedJson(
                "the body is empty; send a JSON object".into(),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
        // Every body of this API is an object (serde would also read a struct from an array).
        if !value.is_object() {
            return Err(ApiError::invalid_field("", "expected a JSON object"));
        }
        Ok(JsonObject(value))
    }
}

/// An id from a path: something that is not a UUID cannot name anything, so it is a 404.
pub fn path_id(what: &'static str, raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::Sandbox(SandboxError::not_found(what, raw)))
}
