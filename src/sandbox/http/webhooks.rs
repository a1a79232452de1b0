//! `/v1/webhooks`: endpoints, their delivery log, and manual resend.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::extract::{JsonBody, Tenant, path_id};
use super::middleware::Answer;
use super::problem::ApiError;
use crate::api::types::{
    CreateWebhookRequest, Delivery, DeliveryList, IdempotencyKey, Problem, WebhookEndpoint,
    WebhookEndpointList,
};
use crate::sandbox::webhook_commands as webhooks;

/// Register an endpoint. The answer carries the signing secret; it is never shown again.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    params(IdempotencyKey),
    responses((status = 201, body = WebhookEndpoint), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(request): JsonBody<CreateWebhookRequest>,
) -> Result<Answer, ApiError> {
    app.command(
        StatusCode::CREATED,
        |_: &WebhookEndpoint| None,
        move |db| webhooks::create_endpoint(db, &tenant, request),
    )
    .await
}

/// The tenant's endpoints (secrets masked).
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookEndpointList), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_webhooks(State(app): State<AppState>, Tenant(tenant): Tenant) -> Json<WebhookEndpointList> {
    let data = app.store.read(|m| {
        let mut endpoints: Vec<WebhookEndpoint> = m
            .tenants
            .get(&tenant)
            .map(|t| t.endpoints.values().map(|e| e.to_api(false)).collect())
            .unwrap_or_default();
        endpoints.sort_by_key(|e| e.created_at);
        endpoints
    });
    Json(WebhookEndpointList { data })
}

/// Delete an endpoint; deliveries still pending for it are cancelled.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id("webhook endpoint", &id)?;
    app.store
        .run(move |db| webhooks::delete_endpoint(db, &tenant, id))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// Every delivery to an endpoint, oldest first, with every attempt.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    description = "The log of a deleted endpoint stays readable.",
    responses((status = 200, body = DeliveryList), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    let id = path_id("webhook endpoint", &id)?;
    let list = app
        .store
        .run(move |db| webhooks::list_deliveries(db, &tenant, id))
        .await??;
    Ok(Json(list))
}

/// Send a delivery's event again, as a new delivery.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{deliveryId}/resend", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("deliveryId" = String, Path, description = "The delivery to send again"),
        IdempotencyKey,
    ),
    responses((status = 202, body = Delivery), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn resend_delivery(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Answer, ApiError> {
    let id = path_id("webhook endpoint", &id)?;
    let delivery_id = path_id("delivery", &delivery_id)?;
    app.command(
        StatusCode::ACCEPTED,
        |_: &Delivery| None,
        move |db| webhooks::resend(db, &tenant, id, delivery_id),
    )
    .await
}
