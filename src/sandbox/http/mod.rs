//! The sandbox's HTTP surface: the router, its shared state and the OpenAPI document, which
//! utoipa builds from the handlers' own annotations.

mod compliance;
mod customers;
pub mod extract;
mod middleware;
pub mod problem;
mod sdk_page;
mod simulation;
mod webhooks;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::extract::JSON_BODY_LIMIT;
use self::middleware::InFlightKeys;
use self::problem::ApiError;
use super::error::SandboxError;
use super::memory::{CustomerRecord, TenantId, TenantSettings, TenantState};
use super::store::Store;
use crate::domain::{MAX_DOCUMENT_BYTES, Strategy};

/// The largest upload body: a 10 MiB file and room for the form around it.
pub const UPLOAD_BODY_LIMIT: usize = MAX_DOCUMENT_BYTES + 64 * 1024;

pub struct RateLimit {
    pub per_second: u32,
    pub limiter: DefaultKeyedRateLimiter<TenantId>,
}

/// What every handler shares.
pub struct Shared {
    pub store: Store,
    /// API keys to tenants. The keys live only here, in memory.
    keys: HashMap<String, TenantId>,
    /// Where the sandbox is reachable, for the SDK links it issues.
    pub base_url: String,
    limiter: Option<RateLimit>,
    idempotency_in_flight: InFlightKeys,
}

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Store,
        keys: HashMap<String, TenantId>,
        base_url: String,
        rate_limit: Option<u32>,
    ) -> Self {
        let limiter = rate_limit.and_then(NonZeroU32::new).map(|n| RateLimit {
            per_second: n.get(),
            limiter: RateLimiter::keyed(Quota::per_second(n)),
        });
        AppState(Arc::new(Shared {
            store,
            keys,
            base_url,
            limiter,
            idempotency_in_flight: InFlightKeys::default(),
        }))
    }

    pub fn tenant_for_key(&self, key: &str) -> Option<TenantId> {
        self.keys.get(key).cloned()
    }

    /// Reads one of the tenant's customers (by the id in a path) from memory, with the
    /// tenant's default strategy; 404 when there is no such customer.
    /// A status as served now: its SDK link on the address the sandbox is reached at today
    /// (a link stored before a restart on another port, or behind another public URL, still
    /// opens the hosted page).
    pub fn served(&self, mut status: crate::domain::ComplianceStatus) -> crate::domain::ComplianceStatus {
        if let Some(sdk) = &mut status.sdk
            && let Some(at) = sdk.link.find("/sdk/")
        {
            sdk.link = format!("{}{}", self.base_url, &sdk.link[at..]);
        }
        status
    }

    /// Runs a command on the store and answers it as JSON. Under an Idempotency-Key the
    /// command and its answer commit in one transaction (one savepoint of the store's batch),
    /// so a crash can never leave the command done and its answer unrecorded (its retry would
    /// run it again).
    pub async fn command<T, F>(
        &self,
        status: axum::http::StatusCode,
        location: impl FnOnce(&T) -> Option<String> + Send + 'static,
        job: F,
    ) -> Result<middleware::Answer, ApiError>
    where
        F: FnOnce(&mut crate::sandbox::store::StoreState) -> Result<T, SandboxError> + Send + 'static,
        T: serde::Serialize + Send + 'static,
    {
        use crate::sandbox::store::{StoreError, exec};
        let Some(scope) = middleware::current_scope() else {
            // No answer to store: it is written here, off the store thread.
            let value = self.store.run(job).await??;
            return Ok(middleware::Answer::json(status, location(&value), &value)?);
        };
        self.store
            .run(move |db| -> Result<middleware::Answer, ApiError> {
                exec(&db.conn, "SAVEPOINT command").map_err(StoreError::from)?;
                let value = match job(db) {
                    Ok(value) => value,
                    Err(err) => {
                        // The command changed nothing (its own savepoint rolled back).
                        let _ = db.conn.execute_batch("ROLLBACK TO command; RELEASE command");
                        return Err(err.into());
                    }
                };
                let answered = middleware::Answer::json(status, location(&value), &value)
                    .and_then(|mut answer| answer.store_for(db, &scope).map(|()| answer))
                    .and_then(|answer| {
                        exec(&db.conn, "RELEASE command")?;
                        Ok(answer)
                    });
                answered.map_err(|err| {
                    // The command had updated the in-memory copy: undo it from the disk.
                    tracing::error!("a command and its answer could not be kept together: {err}");
                    db.undo_to("command");
                    err.into()
                })
            })
            .await?
    }

    /// The tenant's clock (now, on its own movable clock) and default strategy.
    pub fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, ApiError> {
        self.store
            .read(|m| m.tenants.get(tenant).map(TenantState::settings))
            .ok_or_else(|| SandboxError::not_found("tenant", &tenant.0).into())
    }

    pub fn read_customer<T>(
        &self,
        tenant: &TenantId,
        raw_id: &str,
        read: impl FnOnce(&CustomerRecord, Strategy, time::OffsetDateTime) -> T,
    ) -> Result<T, ApiError> {
        let id = extract::path_id("customer", raw_id)?;
        self.store
            .read(|m| {
                let state = m.tenants.get(tenant)?;
                state
                    .customer(id)
                    .map(|record| read(record, state.default_strategy, state.now()))
            })
            .ok_or_else(|| SandboxError::not_found("customer", id).into())
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "KYC compliance API (kycdash sandbox)",
        description = "Customers, KYC onboarding, compliance documents and status, and signed webhooks, as the \
                       provider's integration guide describes them, plus the sandbox's simulation controls. \
                       Errors are RFC 9457 problem details.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "customers"), (name = "compliance"), (name = "webhooks"),
        (name = "sandbox", description = "Simulation controls; only in the sandbox"),
    ),
    components(schemas(crate::domain::event::RawEvent, crate::domain::EventData))
)]
struct ApiDoc;

/// The API routes with their OpenAPI description.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(customers::create_customer, customers::list_customers))
        .routes(routes!(customers::get_customer, customers::patch_customer))
        .routes(routes!(compliance::start_kyc))
        .routes(routes!(compliance::rerun_kyc))
        .routes(routes!(compliance::list_documents))
        .routes(routes!(compliance::compliance_status))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::resend_delivery))
        .routes(routes!(simulation::simulate))
        .routes(routes!(simulation::advance_clock))
        .routes(routes!(simulation::clock))
}

fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(compliance::upload_document))
}

/// The OpenAPI document of every route, as served at `/openapi.json`.
pub fn openapi() -> serde_json::Value {
    let (_, api) = api_routes().split_for_parts();
    let (_, upload) = upload_routes().split_for_parts();
    let mut doc = api;
    doc.merge(upload);
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    document_errors(&mut doc);
    doc
}

/// What every operation can answer besides what its handler documents: the errors of the
/// layers in front of it. Problems are `application/problem+json`.
fn document_errors(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let has_body = operation.get("requestBody").is_some();
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                    continue;
                };
                let is_problem = content
                    .get("application/json")
                    .and_then(|c| c.pointer("/schema/$ref"))
                    .is_some_and(|r| r == "#/components/schemas/Problem");
                if is_problem && let Some(schema) = content.remove("application/json") {
                    content.insert("application/problem+json".into(), schema);
                }
            }
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem(description));
            };
            add(
                "400",
                "Malformed request: JSON, query string, header or multipart body",
            );
            add("401", "Missing or unknown API key");
            add("429", "Over the tenant's rate limit; see Retry-After");
            add("500", "Internal error");
            if path.contains('{') {
                add("404", "No such resource for this API key");
            }
            if has_body || method == "post" {
                add("413", "The body is over the size limit");
                add("415", "The body is not of the expected content type");
                add("422", "A field is invalid; `errors` names it");
            }
            if method == "post" {
                add(
                    "409",
                    "Conflicts with the resource's state, or an Idempotency-Key reused for another request",
                );
            }
        }
    }
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(format!(
        "there is no route {}; GET /openapi.json lists every route",
        uri.path()
    ))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{method} is not allowed on {}; GET /openapi.json lists the methods of every route",
        uri.path()
    ))
}

/// API routes behind their layers, outermost first: the body size check, authentication
/// with the rate limit, idempotency; the extractors read at most `limit` bytes of body.
fn protect(routes: OpenApiRouter<AppState>, limit: usize, state: &AppState) -> axum::Router<AppState> {
    let (router, _) = routes.layer(DefaultBodyLimit::max(limit)).split_for_parts();
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::idempotency,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            limit,
            middleware::limit_body,
        ))
}

/// The whole router.
pub fn router(state: AppState) -> axum::Router {
    let api = protect(api_routes(), JSON_BODY_LIMIT, &state);
    let upload = protect(upload_routes(), UPLOAD_BODY_LIMIT, &state);
    let document = Arc::new(openapi());
    axum::Router::new()
        .merge(api)
        .merge(upload)
        .route("/sdk/{token}", get(sdk_page::show))
        .route("/sdk/{token}/complete", post(sdk_page::complete))
        .route("/sdk/{token}/fail", post(sdk_page::fail))
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json((*document).clone()) }
            }),
        )
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}
