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

/// Creation order without AUTOINCREMENT, whose `sqlite_sequence` row every insert rewrote, and
/// events without a unique index on their id (they are found by `seq`; ids are random UUIDv7):
/// a create writes a third fewer WAL pages (1.4-1.6 before) and three fewer B-tree entries.
/// Neither table ever deletes a row, so a new row's `seq` (the largest plus one) still only
/// grows. Tables are rebuilt as SQLite's ALTER TABLE documentation prescribes, with foreign
/// keys off (see [`migrate`]) and checked before the commit.
const V2: &str = r#"
CREATE TABLE customers_v2 (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    body      TEXT NOT NULL,
    workflow  TEXT NOT NULL
);
INSERT INTO customers_v2 (seq, id, tenant_id, body, workflow)
    SELECT seq, id, tenant_id, body, workflow FROM customers;
DROP TABLE customers;
ALTER TABLE customers_v2 RENAME TO customers;

CREATE TABLE events_v2 (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    body        TEXT NOT NULL
);
INSERT INTO events_v2 (seq, id, tenant_id, customer_id, event_type, body)
    SELECT seq, id, tenant_id, customer_id, event_type, body FROM events;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;

-- Fails the migration (its transaction) should a reference now point nowhere.
CREATE TEMP TABLE upgrade_check (rows_referring_to_missing_rows INTEGER
    CHECK (rows_referring_to_missing_rows = 0));
INSERT INTO upgrade_check SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE upgrade_check;
"#;

/// Brings a database to the current schema, refusing one written by a newer build.
///
/// Foreign keys are off meanwhile (a rebuilt table is dropped while others still refer to
/// it), then back to what they were.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let migrated = crate::sqlite::migrate(conn, &[V1, V2]).map_err(|err| match err {
        crate::sqlite::MigrateError::Newer { found, supported } => {
            StoreError::NewerSchema { found, supported }
        }
        crate::sqlite::MigrateError::Sqlite(err) => err.into(),
    });
    conn.pragma_update(None, "foreign_keys", enforced)?;
    migrated.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as schema 1 left it: customers, an onboarding, events and a delivery that
    /// refer to them, and creation numbers with a gap.
    fn schema_1_database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::sqlite::migrate(&mut conn, &[V1]).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants (id, default_strategy) VALUES ('t', 'CF_KYC');
             INSERT INTO customers (seq, id, tenant_id, body, workflow) VALUES
                 (1, 'c1', 't', '{\"n\":1}', '{}'), (5, 'c5', 't', '{\"n\":5}', '{}');
             INSERT INTO customers (id, tenant_id, body, workflow) VALUES ('c6', 't', '{}', '{}');
             INSERT INTO onboardings (id, tenant_id, customer_id, strategy, created_at)
                 VALUES ('o1', 't', 'c5', 'CF_KYC', '2026-01-01T00:00:00Z');
             INSERT INTO events (id, tenant_id, customer_id, event_type, body) VALUES
                 ('evt_1', 't', 'c1', 'CUSTOMER_CREATED', '{}'),
                 ('evt_2', 't', 'c5', 'CUSTOMER_CREATED', '{}');
             INSERT INTO webhook_endpoints (id, tenant_id, url, secret, created_at)
                 VALUES ('e1', 't', 'http://127.0.0.1:9/hooks', 'whsec_x', '2026-01-01T00:00:00Z');
             INSERT INTO deliveries (id, tenant_id, endpoint_id, event_seq, customer_id, status, created_at)
                 VALUES ('d1', 't', 'e1', 2, 'c5', 'PENDING', '2026-01-01T00:00:00Z');",
        )
        .unwrap();
        conn
    }

    fn rows(conn: &Connection, sql: &str) -> Vec<(i64, String)> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn schema_2_keeps_every_row_and_its_number_and_drops_autoincrement() {
        let mut conn = schema_1_database();
        let customers = rows(&conn, "SELECT seq, id FROM customers ORDER BY seq");
        let events = rows(&conn, "SELECT seq, id FROM events ORDER BY seq");
        conn.pragma_update(None, "foreign_keys", true).unwrap();

        migrate(&mut conn).unwrap();

        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        assert_eq!(
            rows(&conn, "SELECT seq, id FROM customers ORDER BY seq"),
            customers
        );
        assert_eq!(rows(&conn, "SELECT seq, id FROM events ORDER BY seq"), events);
        let sequences: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_sequence WHERE name IN ('customers', 'events')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(sequences, 0, "no AUTOINCREMENT counter is kept for them any more");
        // Numbers go on from the largest; references hold and are enforced again.
        conn.execute(
            "INSERT INTO customers (id, tenant_id, body, workflow) VALUES ('c7', 't', '{}', '{}')",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 7);
        let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert!(enforced, "foreign keys are back on");
        assert!(
            conn.execute(
                "INSERT INTO onboardings (id, tenant_id, customer_id, strategy, created_at)
                 VALUES ('o2', 't', 'nobody', 'CF_KYC', '2026-01-01T00:00:00Z')",
                [],
            )
            .is_err(),
            "an onboarding of a missing customer is still refused"
        );
        assert!(
            conn.execute(
                "INSERT INTO customers (id, tenant_id, body, workflow) VALUES ('c1', 't', '{}', '{}')",
                [],
            )
            .is_err(),
            "customer ids are still unique"
        );
        let delivered: String = conn
            .query_row(
                "SELECT e.id FROM deliveries d JOIN events e ON e.seq = d.event_seq",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(delivered, "evt_2");
    }

    #[test]
    fn an_upgrade_that_would_leave_a_reference_pointing_nowhere_changes_nothing() {
        let mut conn = schema_1_database();
        // A row written around the foreign keys (by hand, or by an old bug).
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        conn.execute(
            "INSERT INTO onboardings (id, tenant_id, customer_id, strategy, created_at)
             VALUES ('o9', 't', 'gone', 'CF_KYC', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();

        let err = migrate(&mut conn).unwrap_err();

        assert!(
            err.to_string().contains("rows_referring_to_missing_rows"),
            "{err}"
        );
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 1, "the upgrade was rolled back");
        let table: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'customers'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(table.contains("AUTOINCREMENT"), "{table}");
    }
}
