//! Reads the whole database into memory at start-up.

use rusqlite::Connection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Customer, DocumentType, Strategy, Workflow};
use crate::sandbox::memory::{
    CustomerRecord, DocumentMeta, EndpointRecord, OnboardingRecord, ReadModel, TenantId, TenantState, Timer,
    TimerKind,
};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

pub fn uuid(text: &str) -> Result<Uuid, StoreError> {
    text.parse().map_err(|e| corrupt("an id", e))
}

pub fn timestamp(text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| corrupt("a timestamp", e))
}

pub fn strategy(text: &str) -> Result<Strategy, StoreError> {
    Strategy::parse(text).ok_or_else(|| corrupt("a strategy", text))
}

/// Every row of a query, each read as a tuple of its columns.
fn read<T>(conn: &Connection, sql: &str) -> Result<Vec<T>, StoreError>
where
    T: for<'r> TryFrom<&'r rusqlite::Row<'r>, Error = rusqlite::Error>,
{
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |row| T::try_from(row))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn memory(conn: &Connection) -> Result<ReadModel, StoreError> {
    let mut memory = ReadModel::default();
    load_tenants(conn, &mut memory)?;
    load_customers(conn, &mut memory)?;
    load_documents(conn, &mut memory)?;
    load_onboardings(conn, &mut memory)?;
    load_endpoints(conn, &mut memory)?;
    load_timers(conn, &mut memory)?;
    for (tenant, key) in read::<(String, String)>(conn, "SELECT tenant_id, key FROM idempotency_keys")? {
        memory.note_answer(&TenantId(tenant), &key);
    }
    Ok(memory)
}

/// Loads the tenants and their clocks.
fn load_tenants(conn: &Connection, memory: &mut ReadModel) -> Result<(), StoreError> {
    let rows =
        read::<(String, String, i64)>(conn, "SELECT id, default_strategy, clock_offset_ms FROM tenants")?;
    for (id, default_strategy, offset) in rows {
        memory.tenants.insert(
            TenantId(id),
            TenantState::new(strategy(&default_strategy)?, offset),
        );
    }
    Ok(())
}

/// Loads every customer with their workflow, in creation order.
fn load_customers(conn: &Connection, memory: &mut ReadModel) -> Result<(), StoreError> {
    let rows = read::<(i64, String, String, String)>(
        conn,
        "SELECT seq, tenant_id, body, workflow FROM customers ORDER BY seq",
    )?;
    for (seq, tenant, body, workflow) in rows {
        let customer: Customer = serde_json::from_str(&body).map_err(|e| corrupt("a customer", e))?;
        let workflow = restore_workflow(customer.id, &workflow)?;
        let tenant = memory
            .tenants
            .get_mut(&TenantId(tenant))
            .ok_or_else(|| corrupt("a customer", "its tenant is missing"))?;
        tenant.order.insert(seq, customer.id);
        tenant.customers.insert(
            customer.id,
            Box::new(CustomerRecord {
                seq,
                customer,
                documents: Vec::new(),
                workflow,
            }),
        );
    }
    Ok(())
}

/// Loads the documents' metadata, onto their customers.
fn load_documents(conn: &Connection, memory: &mut ReadModel) -> Result<(), StoreError> {
    let rows = read::<(
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        i64,
        String,
        String,
    )>(
        conn,
        "SELECT tenant_id, customer_id, id, type, format, file_name, size, sha256, uploaded_at
         FROM documents ORDER BY seq",
    )?;
    for (tenant, customer, id, doc_type, format, file_name, size, sha256, uploaded_at) in rows {
        let meta = DocumentMeta {
            id: uuid(&id)?,
            document_type: DocumentType::parse(&doc_type)
                .ok_or_else(|| corrupt("a document type", &doc_type))?,
            format: serde_json::from_value(serde_json::Value::String(format))
                .map_err(|e| corrupt("a document format", e))?,
            file_name,
            size: size.max(0) as u64,
            sha256,
            uploaded_at: timestamp(&uploaded_at)?,
        };
        let record = memory
            .tenants
            .get_mut(&TenantId(tenant))
            .and_then(|t| t.customers.get_mut(&uuid(&customer).ok()?))
            .ok_or_else(|| corrupt("a document", "its customer is missing"))?;
        record.documents.push(meta);
    }
    Ok(())
}

/// Loads the onboardings, and the SDK tokens of the live ones.
fn load_onboardings(conn: &Connection, memory: &mut ReadModel) -> Result<(), StoreError> {
    let rows = read::<(
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    )>(
        conn,
        "SELECT tenant_id, id, customer_id, strategy, created_at, previous_id, sdk_token FROM onboardings",
    )?;
    for (tenant, id, customer_id, strat, created_at, previous_id, token) in rows {
        let record = OnboardingRecord {
            id: uuid(&id)?,
            customer_id: uuid(&customer_id)?,
            strategy: strategy(&strat)?,
            created_at: timestamp(&created_at)?,
            previous_id: previous_id.as_deref().map(uuid).transpose()?,
        };
        let tenant_id = TenantId(tenant);
        if let Some(token) = token {
            memory
                .sdk_tokens
                .insert(token, (tenant_id.clone(), record.customer_id));
        }
        if let Some(state) = memory.tenants.get_mut(&tenant_id) {
            state.onboardings.insert(record.id, record);
        }
    }
    Ok(())
}

/// Loads the webhook endpoints not deleted.
fn load_endpoints(conn: &Connection, memory: &mut ReadModel) -> Result<(), StoreError> {
    let rows = read::<(
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
    )>(
        conn,
        "SELECT tenant_id, id, url, description, event_types, secret, created_at
         FROM webhook_endpoints WHERE deleted = 0",
    )?;
    for (tenant, id, url, description, event_types, secret, created_at) in rows {
        let event_types = event_types
            .map(|json| serde_json::from_str(&json).map_err(|e| corrupt("event types", e)))
            .transpose()?;
        let endpoint = EndpointRecord {
            id: uuid(&id)?,
            url,
            description,
            event_types,
            secret: secret.into(),
            created_at: timestamp(&created_at)?,
        };
        if let Some(state) = memory.tenants.get_mut(&TenantId(tenant)) {
            state.endpoints.insert(endpoint.id, endpoint);
        }
    }
    Ok(())
}

/// Loads the timers.
fn load_timers(conn: &Connection, memory: &mut ReadModel) -> Result<(), StoreError> {
    let rows = read::<(i64, String, String, String, i64)>(
        conn,
        "SELECT id, tenant_id, customer_id, kind, due_ms FROM timers",
    )?;
    for (id, tenant, customer_id, kind, due_ms) in rows {
        let timer = Timer {
            id,
            customer_id: uuid(&customer_id)?,
            kind: TimerKind::parse(&kind).ok_or_else(|| corrupt("a timer kind", &kind))?,
            due_ms,
        };
        if let Some(state) = memory.tenants.get_mut(&TenantId(tenant)) {
            state.timers.insert((due_ms, id), timer);
        }
    }
    Ok(())
}

/// A stored workflow: plain [`WorkflowView`] data, as every write since the engine landed
/// stores it, so renaming a state or upgrading statig cannot break a database. Rows written
/// before that hold statig's own serialization and are still read.
fn restore_workflow(customer_id: uuid::Uuid, stored: &str) -> Result<Workflow, StoreError> {
    if let Ok(view) = serde_json::from_str::<crate::domain::WorkflowView>(stored) {
        return Ok(Workflow::restore(customer_id, &view));
    }
    serde_json::from_str::<Workflow>(stored).map_err(|e| corrupt("a workflow", e))
}
