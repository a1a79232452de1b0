//! Reads the whole database into memory at start-up.

use rusqlite::Connection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Customer, DocumentType, Strategy, Workflow};
use crate::sandbox::memory::{
    CustomerRecord, DocumentMeta, EndpointRecord, Memory, OnboardingRecord, TenantId, TenantState, Timer,
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

pub fn memory(conn: &Connection) -> Result<Memory, StoreError> {
    let mut memory = Memory::default();

    let mut stmt = conn.prepare("SELECT id, default_strategy, clock_offset_ms FROM tenants")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (id, default_strategy, offset) = row?;
        memory.tenants.insert(
            TenantId(id),
            TenantState::new(strategy(&default_strategy)?, offset),
        );
    }

    let mut stmt = conn.prepare("SELECT seq, tenant_id, body, workflow FROM customers ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (seq, tenant, body, workflow) = row?;
        let customer: Customer = serde_json::from_str(&body).map_err(|e| corrupt("a customer", e))?;
        let workflow: Workflow = serde_json::from_str(&workflow).map_err(|e| corrupt("a workflow", e))?;
        let tenant = memory
            .tenants
            .get_mut(&TenantId(tenant))
            .ok_or_else(|| corrupt("a customer", "its tenant is missing"))?;
        tenant.order.insert(seq, customer.id);
        tenant.customers.insert(
            customer.id,
            CustomerRecord {
                seq,
                customer,
                documents: Vec::new(),
                workflow,
            },
        );
    }

    let mut stmt = conn.prepare(
        "SELECT tenant_id, customer_id, id, type, format, file_name, size, sha256, uploaded_at
         FROM documents ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    for row in rows {
        let (tenant, customer, id, doc_type, format, file_name, size, sha256, uploaded_at) = row?;
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

    let mut stmt = conn.prepare(
        "SELECT tenant_id, id, customer_id, strategy, created_at, previous_id, sdk_token FROM onboardings",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    for row in rows {
        let (tenant, id, customer_id, strat, created_at, previous_id, token) = row?;
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

    let mut stmt = conn.prepare(
        "SELECT tenant_id, id, url, description, event_types, secret, created_at
         FROM webhook_endpoints WHERE deleted = 0",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    for row in rows {
        let (tenant, id, url, description, event_types, secret, created_at) = row?;
        let event_types = event_types
            .map(|json| serde_json::from_str(&json).map_err(|e| corrupt("event types", e)))
            .transpose()?;
        let endpoint = EndpointRecord {
            id: uuid(&id)?,
            url,
            description,
            event_types,
            secret,
            created_at: timestamp(&created_at)?,
        };
        if let Some(state) = memory.tenants.get_mut(&TenantId(tenant)) {
            state.endpoints.insert(endpoint.id, endpoint);
        }
    }

    let mut stmt = conn.prepare("SELECT id, tenant_id, customer_id, kind, due_ms FROM timers")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (id, tenant, customer_id, kind, due_ms) = row?;
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
    Ok(memory)
}
