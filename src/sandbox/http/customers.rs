//! `/v1/customers`: create, list (cursor pagination), read and merge-patch customers.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;

use super::AppState;
use super::extract::{JsonObject, Tenant, path_id};
use super::problem::ApiError;
use crate::api::types::{IdempotencyKey, ListCustomersQuery, Page, Problem};
use crate::domain::{Customer, CustomerProfile, FieldError};
use crate::sandbox::commands::{self, Created, NewCustomer};
use crate::sandbox::error::SandboxError;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

/// Create a customer (emits CUSTOMER_CREATED).
#[utoipa::path(
    post, path = "/v1/customers", tag = "customers",
    request_body = CustomerProfile,
    params(IdempotencyKey),
    responses(
        (status = 201, description = "Created", body = Customer),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 415, body = Problem), (status = 422, description = "An invalid field", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_customer(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    JsonObject(body): JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    // Validated and made ready here, on the request's own task: the store thread, which every
    // write waits for, only writes.
    let settings = app.tenant_settings(&tenant)?;
    let profile = CustomerProfile::from_json(body, settings.now.date()).map_err(SandboxError::from)?;
    let new = NewCustomer::new(profile, settings)?;
    app.command(
        StatusCode::CREATED,
        |created: &Created| Some(format!("/v1/customers/{}", created.id)),
        move |db| commands::create_customer(db, &tenant, new),
    )
    .await
}

/// List customers, oldest first.
#[utoipa::path(
    get, path = "/v1/customers", tag = "customers",
    params(ListCustomersQuery),
    responses((status = 200, body = Page<Customer>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_customers(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    query: Result<Query<ListCustomersQuery>, QueryRejection>,
) -> Result<Json<Page<Customer>>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest {
        detail: format!("the query string is not valid: {}", rejection.body_text()),
        errors: vec![],
    })?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(query_error(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
            query_error(
                "cursor",
                "is not a cursor this API returned; pass `nextCursor` back as it came",
            )
        })?),
    };
    let page = app.store.read(|memory| {
        let Some(state) = memory.tenants.get(&tenant) else {
            return Page {
                data: Vec::new(),
                next_cursor: None,
            };
        };
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut matching = state
            .order
            .range((start, std::ops::Bound::Unbounded))
            .filter_map(|(seq, id)| state.customers.get(id).map(|r| (*seq, r)))
            .filter(|(_, r)| {
                query
                    .external_id
                    .as_ref()
                    .is_none_or(|wanted| r.customer.external_id.as_ref() == Some(wanted))
            });
        let mut data = Vec::with_capacity(limit);
        let mut last = None;
        for (seq, record) in matching.by_ref().take(limit) {
            data.push(record.customer.clone());
            last = Some(seq);
        }
        let next_cursor = match (matching.next(), last) {
            (Some(_), Some(seq)) => Some(encode_cursor(seq)),
            _ => None,
        };
        Page { data, next_cursor }
    });
    Ok(Json(page))
}

fn query_error(field: &str, message: impl Into<String>) -> ApiError {
    let error = FieldError::new(field, message);
    ApiError::BadRequest {
        detail: format!("query parameter `{}` {}", error.field, error.message),
        errors: vec![error],
    }
}

fn encode_cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("c1:{seq}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("c1:")?.parse().ok()
}

/// Get a customer.
#[utoipa::path(
    get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The customer's id")),
    responses((status = 200, body = Customer), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get_customer(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    app.read_customer(&tenant, &id, |record, _, _| record.customer.clone())
        .map(Json)
}

/// Update a customer with a JSON merge patch (RFC 7396; `kyc` merges deeply, `null` removes).
/// Emits CUSTOMER_UPDATED when something changed.
#[utoipa::path(
    patch, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The customer's id")),
    request_body(content = CustomerProfile, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, body = Customer), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn patch_customer(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    JsonObject(patch): JsonObject,
) -> Result<Json<Customer>, ApiError> {
    let id = path_id("customer", &id)?;
    let customer = app
        .store
        .run(move |db| commands::patch_customer(db, &tenant, id, patch))
        .await??;
    Ok(Json(customer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
