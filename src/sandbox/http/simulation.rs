//! `/v1/sandbox`: simulation controls that exist only in the sandbox (SPEC §6).

use axum::Json;
use axum::extract::{Path, State};

use super::AppState;
use super::extract::{JsonBody, Tenant, path_id};
use super::middleware::Answer;
use super::problem::ApiError;
use crate::api::types::{AdvanceClockRequest, ClockState, IdempotencyKey, Problem, SimulateRequest};
use crate::domain::ComplianceStatus;
use crate::sandbox::commands;

/// The longest single move of a tenant's clock: a year.
const MAX_ADVANCE_SECONDS: u64 = 365 * 24 * 3600;

/// Make something happen to a customer's onboarding now: the end user finishes the SDK, the
/// links expire, a review starts or ends, the provider decides, a verification error.
#[utoipa::path(
    post, path = "/v1/sandbox/customers/{id}/simulate", tag = "sandbox",
    params(("id" = String, Path, description = "The customer's id"), IdempotencyKey),
    request_body = SimulateRequest,
    responses(
        (status = 200, description = "The compliance status after the action", body = ComplianceStatus),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "The action does not apply in the onboarding's state", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn simulate(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<SimulateRequest>,
) -> Result<Answer, ApiError> {
    let id = path_id("customer", &id)?;
    let served = app.clone();
    app.command(
        axum::http::StatusCode::OK,
        |_: &ComplianceStatus| None,
        move |db| commands::simulate(db, &tenant, id, request.action).map(|status| served.served(status)),
    )
    .await
}

/// Move the tenant's clock forward; timers that become due (link expiry, decisions, webhook
/// retries) fire before the answer.
#[utoipa::path(
    post, path = "/v1/sandbox/clock/advance", tag = "sandbox",
    request_body = AdvanceClockRequest,
    params(IdempotencyKey),
    responses((status = 200, body = ClockState), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn advance_clock(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(request): JsonBody<AdvanceClockRequest>,
) -> Result<Answer, ApiError> {
    if !(1..=MAX_ADVANCE_SECONDS).contains(&request.seconds) {
        return Err(ApiError::invalid_field(
            "seconds",
            format!("must be from 1 to {MAX_ADVANCE_SECONDS} (a year)"),
        ));
    }
    app.command(
        axum::http::StatusCode::OK,
        |_: &ClockState| None,
        move |db| commands::advance_clock(db, &tenant, request.seconds),
    )
    .await
}

/// Read the tenant's clock: where it is and how far ahead of real time. SDK link expiries
/// and decision times are on this clock, so a client counting down to one needs it.
#[utoipa::path(
    get, path = "/v1/sandbox/clock", tag = "sandbox",
    responses((status = 200, body = ClockState), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
pub async fn clock(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<ClockState>, ApiError> {
    let state = app
        .store
        .read(|m| {
            m.tenants.get(&tenant).map(|t| ClockState {
                now: t.now(),
                offset_seconds: (t.clock_offset_ms / 1000).max(0) as u64,
                timers_fired: 0,
            })
        })
        .ok_or_else(|| {
            ApiError::from(crate::sandbox::error::SandboxError::not_found(
                "tenant",
                uuid::Uuid::nil(),
            ))
        })?;
    Ok(Json(state))
}
