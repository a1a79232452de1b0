//! Webhook endpoints and their delivery log: creating, listing and deleting endpoints,
//! reading deliveries with every attempt, and resending by hand.

use ::uuid::Uuid;
use std::collections::HashMap;

use base64::Engine;
use rusqlite::OptionalExtension;

use super::clock::from_unix_ms;
use super::error::SandboxError;
use super::ids::new_id;
use super::memory::{EndpointRecord, TenantId};
use super::store::StoreState;
use super::store::load::{self, timestamp};
use super::work::UnitOfWork;
use crate::api::types::{
    CreateWebhookRequest, Delivery, DeliveryAttempt, DeliveryList, DeliveryStatus, WebhookEndpoint,
};
use crate::domain::{EventType, FieldError, ValidationErrors};

const MAX_URL_LENGTH: usize = 2048;

/// Checks an endpoint URL: absolute http(s), with a host, without credentials.
pub fn validate_url(url: &str) -> Result<(), FieldError> {
    let error = |message: &str| FieldError::new("url", message);
    if url.len() > MAX_URL_LENGTH {
        return Err(error("must be at most 2048 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| error(&format!("is not a valid URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(error("must be an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(error("must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(error(
            "must not carry credentials; receivers authenticate deliveries by their signature",
        ));
    }
    Ok(())
}

fn validate(request: &CreateWebhookRequest) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    if let Err(e) = validate_url(&request.url) {
        errors.push(e);
    }
    if let Some(types) = &request.event_types {
        if types.is_empty() {
            errors.push(FieldError::new(
                "eventTypes",
                "must name at least one event type, or be left out to receive all of them",
            ));
        }
        for (i, name) in types.iter().enumerate() {
            if EventType::parse(name).is_none_or(|t| t.as_str() != name) {
                errors.push(FieldError::new(
                    format!("eventTypes[{i}]"),
                    format!("\"{name}\" is not an event type"),
                ));
            }
        }
    }
    if request
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200)
    {
        errors.push(FieldError::new("description", "must be at most 200 characters"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

/// A new signing secret: `whsec_` and the base64 of 24 random bytes.
fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Creates an endpoint; the answer is the only one that shows the secret in full.
pub fn create_endpoint(
    db: &mut StoreState,
    tenant: &TenantId,
    request: CreateWebhookRequest,
) -> Result<WebhookEndpoint, SandboxError> {
    validate(&request)?;
    let mut work = UnitOfWork::begin(db, tenant)?;
    let endpoint = EndpointRecord {
        id: new_id(),
        url: request.url,
        description: request.description,
        event_types: request.event_types,
        secret: new_secret().into(),
        created_at: work.now,
    };
    let response = endpoint.to_api(true);
    work.add_endpoint(endpoint)?;
    work.commit()?;
    Ok(response)
}

pub fn delete_endpoint(db: &mut StoreState, tenant: &TenantId, id: Uuid) -> Result<(), SandboxError> {
    let mut work = UnitOfWork::begin(db, tenant)?;
    work.remove_endpoint(id)?;
    work.commit()
}

/// Whether the endpoint exists for this tenant (`deleted` ones too, when asked).
fn endpoint_exists(
    db: &StoreState,
    tenant: &TenantId,
    id: Uuid,
    include_deleted: bool,
) -> Result<bool, SandboxError> {
    let deleted: Option<bool> = db
        .conn
        .query_row(
            "SELECT deleted FROM webhook_endpoints WHERE id = ?1 AND tenant_id = ?2",
            (id.to_string(), &tenant.0),
            |row| row.get(0),
        )
        .optional()?;
    Ok(deleted.is_some_and(|deleted| include_deleted || !deleted))
}

/// Every delivery of an endpoint with its attempts, oldest first.
pub fn list_deliveries(
    db: &mut StoreState,
    tenant: &TenantId,
    endpoint_id: Uuid,
) -> Result<DeliveryList, SandboxError> {
    if !endpoint_exists(db, tenant, endpoint_id, true)? {
        return Err(SandboxError::not_found("webhook endpoint", endpoint_id));
    }
    let mut stmt = db.conn.prepare(
        "SELECT d.id, e.id, e.event_type, d.customer_id, d.status, d.next_attempt_ms, d.created_at
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
         WHERE d.endpoint_id = ?1 ORDER BY d.seq",
    )?;
    type DeliveryRow = (String, String, String, String, String, Option<i64>, String);
    let rows = stmt.query_map([endpoint_id.to_string()], |r| DeliveryRow::try_from(r))?;
    // All attempts of the endpoint in one query, grouped by delivery.
    let mut attempts_stmt = db.conn.prepare(
        "SELECT a.delivery_id, a.attempted_at, a.response_status, a.error, a.duration_ms
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
         WHERE d.endpoint_id = ?1 ORDER BY a.seq",
    )?;
    type AttemptRow = (String, String, Option<i64>, Option<String>, i64);
    let mut attempts_of: HashMap<String, Vec<DeliveryAttempt>> = HashMap::new();
    for row in attempts_stmt.query_map([endpoint_id.to_string()], |r| AttemptRow::try_from(r))? {
        let (delivery_id, at, response_status, error, duration_ms) = row?;
        attempts_of.entry(delivery_id).or_default().push(DeliveryAttempt {
            attempted_at: timestamp(&at)?,
            response_status: response_status.and_then(|s| u16::try_from(s).ok()),
            error,
            duration_ms: duration_ms.max(0) as u64,
        });
    }
    let mut data = Vec::new();
    for row in rows {
        let (id, event_id, event_type, customer_id, status, next_ms, created_at) = row?;
        let attempts = attempts_of.remove(&id).unwrap_or_default();
        data.push(Delivery {
            id: load::uuid(&id)?,
            endpoint_id,
            event_id,
            event_type,
            customer_id: load::uuid(&customer_id)?,
            status: parse_status(&status),
            next_attempt_at: next_ms.map(from_unix_ms).transpose()?,
            attempts,
            created_at: timestamp(&created_at)?,
        });
    }
    Ok(DeliveryList { data })
}

fn parse_status(status: &str) -> DeliveryStatus {
    match status {
        "DELIVERED" => DeliveryStatus::Delivered,
        "FAILED" => DeliveryStatus::Failed,
        "CANCELLED" => DeliveryStatus::Cancelled,
        _ => DeliveryStatus::Pending,
    }
}

/// Queues the event of a delivery again, to the same endpoint, as a new delivery.
pub fn resend(
    db: &mut StoreState,
    tenant: &TenantId,
    endpoint_id: Uuid,
    delivery_id: Uuid,
) -> Result<Delivery, SandboxError> {
    if !endpoint_exists(db, tenant, endpoint_id, false)? {
        return Err(SandboxError::not_found("webhook endpoint", endpoint_id));
    }
    let original: Option<(i64, String, String, String)> = db
        .conn
        .query_row(
            "SELECT d.event_seq, d.customer_id, e.id, e.event_type
             FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.id = ?1 AND d.endpoint_id = ?2",
            (delivery_id.to_string(), endpoint_id.to_string()),
            |row| row.try_into(),
        )
        .optional()?;
    let (event_seq, customer_id, event_id, event_type) =
        original.ok_or_else(|| SandboxError::not_found("delivery", delivery_id))?;
    let customer_id = load::uuid(&customer_id)?;
    let mut work = UnitOfWork::begin(db, tenant)?;
    let now = work.now;
    let id = work.queue_delivery(endpoint_id, event_seq, customer_id)?;
    work.commit()?;
    Ok(Delivery {
        id,
        endpoint_id,
        event_id,
        event_type,
        customer_id,
        status: DeliveryStatus::Pending,
        next_attempt_at: Some(now),
        attempts: Vec::new(),
        created_at: now,
    })
}
