//! The sandbox's SQLite schema. Times the sandbox compares (timers, delivery retries) are
//! integers: milliseconds since the epoch on the tenant's clock. Bodies are the JSON the API
//! returns, so what is stored is what was served.

use rusqlite::Connection;

use super::StoreError;

const V1: &str = r#"
CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,
    default_strategy TEXT NOT NULL,
    clock_offset_ms  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE customers (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    body      TEXT NOT NULL,
    workflow  TEXT NOT NULL
);

CREATE TABLE onboardings (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    strategy    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    previous_id TEXT,
    sdk_token   TEXT UNIQUE
);

CREATE TABLE documents (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    type        TEXT NOT NULL,
    format      TEXT NOT NULL,
    file_name   TEXT,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    content     BLOB NOT NULL
);
CREATE INDEX documents_by_customer ON documents(customer_id, seq);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    body        TEXT NOT NULL
);

CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    description TEXT,
    event_types TEXT,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id),
    event_seq       INTEGER NOT NULL REFERENCES events(seq),
    customer_id     TEXT NOT NULL,
    status          TEXT NOT NULL,
    next_attempt_ms INTEGER,
    claimed_ms      INTEGER,
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
CREATE INDEX deliveries_in_order ON deliveries(endpoint_id, customer_id, seq);

CREATE TABLE delivery_attempts (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT NOT NULL REFERENCES deliveries(id),
    attempted_at    TEXT NOT NULL,
    response_status INTEGER,
    error           TEXT,
    duration_ms     INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts(delivery_id, seq);

CREATE TABLE timers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    due_ms      INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    headers      TEXT NOT NULL,
    body         BLOB NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
"#;

/// Brings a database to the current schema, refusing one written by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    crate::sqlite::migrate(conn, &[V1]).map_err(|err| match err {
        crate::sqlite::MigrateError::Newer { found, supported } => {
            StoreError::NewerSchema { found, supported }
        }
        crate::sqlite::MigrateError::Sqlite(err) => err.into(),
    })?;
    Ok(())
}
