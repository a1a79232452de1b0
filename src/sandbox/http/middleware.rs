//! Layers every API route passes through, outermost first: the body size check (413 before
//! the body is read), authentication with the per-tenant rate limit (401, 429), and
//! `Idempotency-Key` handling of POSTs.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use http_body_util::BodyExt;
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

use super::AppState;
use super::problem::ApiError;
use crate::sandbox::memory::TenantId;

/// Refuses a body whose declared length is over `limit`, before reading any of it; a body
/// without a declared length is cut off at the limit by the extractors.
pub async fn limit_body(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::PayloadTooLarge { limit }.into_response();
    }
    next.run(request).await
}

/// The API key of a request, if it sent one as a bearer token.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Resolves the API key to its tenant (401 otherwise), applies the tenant's rate limit, and
/// hands the tenant to the handlers.
pub async fn authenticate(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let tenant = match bearer_key(request.headers()) {
        None => {
            return ApiError::Unauthorized(
                "this route needs an API key: send `Authorization: Bearer <key>`".into(),
            )
            .into_response();
        }
        Some(key) => match app.tenant_for_key(key) {
            Some(tenant) => tenant,
            None => {
                return ApiError::Unauthorized(format!(
                    "the API key {} is not known to this sandbox",
                    crate::secret::hint(key)
                ))
                .into_response();
            }
        },
    };
    if let Some(limit) = &app.limiter
        && let Err(not_until) = limit.limiter.check_key(&tenant)
    {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::RateLimited {
            per_second: limit.per_second,
            retry_after_secs: retry_after_secs.max(1),
        }
        .into_response();
    }
    request.extensions_mut().insert(tenant);
    next.run(request).await
}

/// Keys of requests being processed right now, so a concurrent retry waits its turn.
#[derive(Debug, Default)]
pub struct InFlightKeys(Mutex<HashSet<(TenantId, String)>>);

impl InFlightKeys {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<(TenantId, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A claimed key, released when dropped (even if the handler panics).
struct Claim {
    app: AppState,
    entry: (TenantId, String),
}

impl Claim {
    fn new(app: &AppState, tenant: &TenantId, key: &str) -> Option<Self> {
        let entry = (tenant.clone(), key.to_string());
        app.idempotency_in_flight
            .set()
            .insert(entry.clone())
            .then(|| Claim {
                app: app.clone(),
                entry,
            })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.app.idempotency_in_flight.set().remove(&self.entry);
    }
}

/// A stored answer to replay.
struct Stored {
    fingerprint: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Headers of an answer worth replaying.
const REPLAYED_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// The Idempotency-Key a request runs under: a command run by `AppState::command` commits
/// its answer under it in the same transaction.
#[derive(Debug, Clone)]
pub struct Scope {
    pub tenant: TenantId,
    pub key: String,
    pub fingerprint: String,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// The key the current request runs under, if any.
pub fn current_scope() -> Option<Scope> {
    SCOPE.try_with(Clone::clone).ok()
}

/// An answer as it is sent and stored: status, the replayed headers, the body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Vec<u8>,
    /// Already stored for its Idempotency-Key, with the command.
    pub stored: bool,
}

/// Marks a response whose answer is stored already: the middleware does not store it again.
#[derive(Debug, Clone, Copy)]
struct AnswerStored;

impl Answer {
    pub fn json<T: serde::Serialize>(
        status: StatusCode,
        location: Option<String>,
        value: &T,
    ) -> Result<Answer, crate::sandbox::store::StoreError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| crate::sandbox::store::StoreError::Corrupt(format!("an answer: {e}")))?;
        Ok(Answer {
            status,
            location,
            body,
            stored: false,
        })
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![(header::CONTENT_TYPE.to_string(), "application/json".to_string())];
        if let Some(location) = &self.location {
            headers.push((header::LOCATION.to_string(), location.clone()));
        }
        headers
    }

    /// Stores this answer for the key in the transaction open on the store's connection, and
    /// notes the key in memory (before the commit; see `note_key`).
    pub fn store_for(
        &mut self,
        db: &crate::sandbox::store::StoreState,
        scope: &Scope,
    ) -> Result<(), crate::sandbox::store::StoreError> {
        let headers = serde_json::to_string(&self.headers())
            .map_err(|e| crate::sandbox::store::StoreError::Corrupt(e.to_string()))?;
        db.conn.execute(
            "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, status, headers, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                &scope.tenant.0,
                &scope.key,
                &scope.fingerprint,
                self.status.as_u16(),
                headers,
                &self.body,
            ),
        )?;
        note_key(db, &scope.tenant, &scope.key);
        self.stored = true;
        Ok(())
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        if self.stored {
            response.extensions_mut().insert(AnswerStored);
        }
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(location) = self.location
            && let Ok(location) = HeaderValue::try_from(location)
        {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// `Idempotency-Key` on POSTs: the first answer to a key is stored (unless it is a server
/// error or a rate limit, which a retry should get past); a repeat with the same request gets
/// that answer again, a repeat with a different request gets 409.
pub async fn idempotency(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => key.to_string(),
        _ => {
            return ApiError::BadRequest {
                detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
                errors: vec![],
            }
            .into_response();
        }
    };
    let Some(tenant) = request.extensions().get::<TenantId>().cloned() else {
        return next.run(request).await;
    };

    // Claim the key before looking it up, so two requests with one key never both run.
    let Some(claim) = Claim::new(&app, &tenant, &key) else {
        return ApiError::IdempotencyConflict(format!(
            "a request with the Idempotency-Key \"{key}\" is still being processed; retry once it has answered"
        ))
        .into_response();
    };

    let (parts, body) = request.into_parts();
    let bytes: Bytes = match http_body_util::Limited::new(body, super::UPLOAD_BODY_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return ApiError::PayloadTooLarge {
                limit: super::UPLOAD_BODY_LIMIT,
            }
            .into_response();
        }
    };
    let fingerprint = fingerprint(&parts, &bytes).await;

    if let Some(answer) = earlier_answer(&app, &tenant, &key, &fingerprint).await {
        return answer;
    }

    // The request runs and its answer is stored in a task of its own: a client that hangs up
    // midway must not leave a command done but its answer unrecorded, or its retry would run
    // the command a second time.
    let store = app.store.clone();
    let request = Request::from_parts(parts, Body::from(bytes));
    let scope = Scope {
        tenant: tenant.clone(),
        key: key.clone(),
        fingerprint: fingerprint.clone(),
    };
    let task = tokio::spawn(async move {
        let _claim = claim;
        SCOPE
            .scope(
                scope,
                run_and_remember(store, next, request, tenant, key, fingerprint),
            )
            .await
    });
    match task.await {
        Ok(response) => response,
        Err(_) => ApiError::from(crate::sandbox::store::StoreError::JobPanicked).into_response(),
    }
}

/// The answer to a key already used: the stored answer replayed for the same request, a
/// conflict for a different one; `None` for a key never answered.
async fn earlier_answer(app: &AppState, tenant: &TenantId, key: &str, fingerprint: &str) -> Option<Response> {
    let lookup = if app.store.read(|m| m.may_have_answer(tenant, key)) {
        stored_answer(app, tenant, key).await
    } else {
        Ok(None)
    };
    match lookup {
        Ok(Some(stored)) if stored.fingerprint == fingerprint => Some(replay(stored).unwrap_or_else(|err| {
            tracing::error!("the stored answer to Idempotency-Key {key:?} cannot be replayed: {err}");
            ApiError::from(err).into_response()
        })),
        Ok(Some(_)) => Some(
            ApiError::IdempotencyConflict(format!(
                "the Idempotency-Key \"{key}\" was already used with a different request; use a new key for a new request"
            ))
            .into_response(),
        ),
        Ok(None) => None,
        Err(err) => Some(ApiError::from(err).into_response()),
    }
}

/// What makes two requests "the same" for an idempotency key: method, path and body. A
/// multipart body is compared by its fields (name, file name, content hash), because every
/// client draws a new boundary each time it builds the same form.
async fn fingerprint(parts: &axum::http::request::Parts, body: &Bytes) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""));
    hasher.update([0]);
    match multipart_fields(parts, body).await {
        Some(fields) => {
            for field in fields {
                hasher.update(field.as_bytes());
                hasher.update([0]);
            }
        }
        None => hasher.update(body),
    }
    hex::encode(hasher.finalize())
}

/// The fields of a multipart body as sorted `name\0file name\0content hash` lines, or `None`
/// when the body is not multipart (or not readable as such).
async fn multipart_fields(parts: &axum::http::request::Parts, body: &Bytes) -> Option<Vec<String>> {
    use axum::extract::FromRequest;
    let content_type = parts.headers.get(header::CONTENT_TYPE)?;
    if !content_type.to_str().ok()?.starts_with("multipart/") {
        return None;
    }
    let request = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.clone()))
        .ok()?;
    let mut multipart = axum::extract::Multipart::from_request(request, &()).await.ok()?;
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().unwrap_or("").to_string();
        let content = field.bytes().await.ok()?;
        fields.push(format!(
            "{name}\0{file_name}\0{}",
            hex::encode(Sha256::digest(&content))
        ));
    }
    fields.sort();
    Some(fields)
}

/// Runs the request and stores its answer for the key (not a 5xx or a 429: those are worth
/// retrying).
async fn run_and_remember(
    store: crate::sandbox::store::Store,
    next: Next,
    request: Request,
    tenant: TenantId,
    key: String,
    fingerprint: String,
) -> Response {
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            // Nothing is stored: an answer that was not read is not an answer to replay.
            tracing::error!("the answer to Idempotency-Key {key:?} could not be read: {err}");
            return ApiError::from(crate::sandbox::store::StoreError::Corrupt(
                "the answer could not be read".into(),
            ))
            .into_response();
        }
    };
    let status = parts.status;
    let stored_already = parts.extensions.get::<AnswerStored>().is_some();
    if !stored_already && !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS {
        let answer = Stored {
            fingerprint,
            status: status.as_u16(),
            headers: REPLAYED_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(name)?.to_str().ok()?;
                    Some((name.to_string(), value.to_string()))
                })
                .collect(),
            body: body.to_vec(),
        };
        if let Err(err) = remember(&store, tenant, key, answer).await {
            tracing::error!("storing the answer to an Idempotency-Key failed: {err}");
        }
    }
    Response::from_parts(parts, Body::from(body))
}

/// The answer stored for a key, if any.
async fn stored_answer(
    app: &AppState,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<Stored>, crate::sandbox::store::StoreError> {
    let (tenant, key) = (tenant.clone(), key.to_string());
    app.store
        .run(move |db| {
            db.conn
                .query_row(
                    "SELECT fingerprint, status, headers, body FROM idempotency_keys
                     WHERE tenant_id = ?1 AND key = ?2",
                    (&tenant.0, &key),
                    |r| {
                        Ok(Stored {
                            fingerprint: r.get(0)?,
                            status: r.get(1)?,
                            headers: serde_json::from_str(&r.get::<_, String>(2)?).map_err(|e| {
                                rusqlite::Error::FromSqlConversionFailure(
                                    2,
                                    rusqlite::types::Type::Text,
                                    Box::new(e),
                                )
                            })?,
                            body: r.get(3)?,
                        })
                    },
                )
                .optional()
        })
        .await?
        .map_err(crate::sandbox::store::StoreError::from)
}

/// Notes that `key` has an answer, before its commit: the keys in memory may then name one a
/// failed commit lost (the reload that follows corrects them), never miss one that was stored.
fn note_key(db: &crate::sandbox::store::StoreState, tenant: &TenantId, key: &str) {
    db.memory_mut().note_answer(tenant, key);
}

/// Stores the answer to a key (the first one stays, should two race).
async fn remember(
    store: &crate::sandbox::store::Store,
    tenant: TenantId,
    key: String,
    answer: Stored,
) -> Result<(), String> {
    let headers = serde_json::to_string(&answer.headers).map_err(|e| e.to_string())?;
    store
        .run(move |db| {
            let stored = db.conn.execute(
                "INSERT OR IGNORE INTO idempotency_keys (tenant_id, key, fingerprint, status, headers, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                (
                    &tenant.0,
                    &key,
                    &answer.fingerprint,
                    answer.status,
                    headers,
                    &answer.body,
                ),
            )?;
            note_key(db, &tenant, &key);
            Ok::<_, rusqlite::Error>(stored)
        })
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The stored answer, as it was sent. A row this build cannot turn back into that answer is
/// an error, never a made-up success.
fn replay(stored: Stored) -> Result<Response, crate::sandbox::store::StoreError> {
    use crate::sandbox::store::StoreError;
    let status = StatusCode::from_u16(stored.status)
        .map_err(|_| StoreError::Corrupt(format!("stored status {}", stored.status)))?;
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    for (name, value) in stored.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| StoreError::Corrupt(format!("stored header name {name:?}")))?;
        let value = HeaderValue::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("stored value of {name}")))?;
        headers.insert(name, value);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
