//! The engine's SQLite cache (SPEC §7): customers, the latest status of each and when it was
//! fetched, each customer's workflow as plain data, every webhook event received (one row per
//! event id), uploads by SHA-256, customer and type, the timeline, and a few settings (the
//! registered webhook endpoint). What the engine keeps in memory (summaries of the customer
//! and the status, the workflow) is also in one narrow `overview` row per customer, so a
//! start reads that alone; whole bodies are read one at a time, on demand. One writer thread owns the connection and commits whatever
//! has queued up in one transaction, so a burst of webhooks or a sweep costs a handful of
//! commits, not one per row.

mod debug;
mod lost;
mod read;
mod stored;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, params};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use self::lost::{Lost, Row};
pub use self::read::{CustomerRows, Known, UploadRow, customer, everyone, find, load, status, timeline};
pub use self::stored::StoredEvents;
pub use self::writer::{Writer, spawn_writer};

use serde::{Deserialize, Serialize};

use crate::domain::{
    CheckType, ComplianceStatus, Customer, NextAction, OnboardingStatus, SdkLink, WorkflowView,
};

/// What the engine keeps of a status in memory: enough to tell a change (a hash of the body)
/// and to fill a table row. The whole status stays in the cache, read when someone asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    pub hash: u64,
    pub onboarding_status: Option<OnboardingStatus>,
    pub next_action: Option<NextAction>,
    pub is_compliant: bool,
    pub required_failed: Vec<CheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkLink>,
}

impl StatusSummary {
    /// The summary of a status and its body as the cache stores it.
    pub fn of(status: &ComplianceStatus) -> Result<(StatusSummary, String), CacheError> {
        let body = serde_json::to_string(status).map_err(|e| CacheError::Corrupt(e.to_string()))?;
        let summary = StatusSummary {
            hash: body_hash(&body),
            onboarding_status: status.onboarding_status,
            next_action: status.next_action,
            is_compliant: status.is_compliant,
            required_failed: status.summary.required_failed.clone(),
            sdk: status.sdk.clone(),
        };
        Ok((summary, body))
    }
}

/// What the engine and the dashboard keep of a customer in memory: what a table row shows
/// and `/` searches, and a hash of the whole body to tell a change. The whole customer stays
/// in the cache, read when someone selects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSummary {
    pub id: Uuid,
    /// The KYC name, else the email, the externalId or the id: what a row is called.
    pub name: Box<str>,
    pub email: Option<Box<str>>,
    pub external_id: Option<Box<str>>,
    pub hash: u64,
}

impl CustomerSummary {
    /// The summary of a customer and its body as the cache stores it.
    pub fn of(customer: &Customer) -> Result<(CustomerSummary, String), CacheError> {
        let body = serde_json::to_string(customer).map_err(|e| CacheError::Corrupt(e.to_string()))?;
        let summary = CustomerSummary {
            id: customer.id,
            name: customer.display_name().into(),
            email: customer.email.as_deref().map(Box::from),
            external_id: customer.external_id.as_deref().map(Box::from),
            hash: body_hash(&body),
        };
        Ok((summary, body))
    }
}

/// XXH3 of the body: a specified algorithm, so a hash stored by one build matches the next
/// one's (std's `DefaultHasher` may change between Rust releases, which would make an
/// upgrade rewrite the whole cache).
fn body_hash(body: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(body.as_bytes())
}

const V1: &str = r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    external_id TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX customers_by_external_id ON customers(external_id);
CREATE TABLE statuses (
    customer_id   TEXT PRIMARY KEY,
    body          TEXT NOT NULL,
    summary       TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL
);
CREATE TABLE workflows (
    customer_id TEXT PRIMARY KEY,
    view        TEXT NOT NULL,
    since_ms    INTEGER NOT NULL
);
CREATE TABLE webhook_events (
    id             TEXT PRIMARY KEY,
    event_type     TEXT NOT NULL,
    customer_id    TEXT,
    body           TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE TABLE uploads (
    sha256        TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    document_type TEXT NOT NULL,
    path          TEXT NOT NULL,
    document_id   TEXT,
    at_ms         INTEGER NOT NULL,
    PRIMARY KEY (sha256, customer_id, document_type)
);
CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL
);
CREATE INDEX timeline_by_customer ON timeline(customer_id, id);
"#;

/// One narrow row per customer with everything the engine and the dashboard keep in memory
/// (the customer's and the status's summaries, the workflow), so a start reads one small
/// table instead of paging through every customer and status body. Customer summaries of
/// rows written before are filled in by `open`.
const V2: &str = r#"
CREATE TABLE overview (
    customer_id   TEXT PRIMARY KEY,
    name          TEXT,
    email         TEXT,
    external_id   TEXT,
    customer_hash INTEGER,
    status        TEXT,
    fetched_at_ms INTEGER,
    workflow      TEXT,
    since_ms      INTEGER
);
INSERT INTO overview (customer_id, external_id) SELECT id, external_id FROM customers;
UPDATE overview SET (status, fetched_at_ms) =
    (SELECT summary, fetched_at_ms FROM statuses WHERE statuses.customer_id = overview.customer_id);
UPDATE overview SET (workflow, since_ms) =
    (SELECT view, since_ms FROM workflows WHERE workflows.customer_id = overview.customer_id);
DROP TABLE workflows;
ALTER TABLE statuses DROP COLUMN summary;
"#;

/// Pruning by age (`--retain-days`) finds old rows by index, not by reading every row.
const V3: &str = r#"
CREATE INDEX webhook_events_by_time ON webhook_events(received_at_ms);
CREATE INDEX timeline_by_time ON timeline(at_ms);
"#;

const MIGRATIONS: [&str; 3] = [V1, V2, V3];

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot open the cache {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("cannot make the cache {path} readable by this user alone: {source}")]
    Private { path: PathBuf, source: std::io::Error },
    #[error("the cache {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: crate::sqlite::MigrateError,
    },
    #[error("the cache: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the cache holds a row this build cannot read ({0})")]
    Corrupt(String),
    #[error("a write to the cache failed ({0}); see kycdash.log")]
    WriteFailed(String),
    #[error("reading the cache failed: {0}")]
    ReadFailed(String),
    #[error("the cache writer has stopped")]
    Closed,
}

/// A customer as the cache last knew them.
#[derive(Debug, Clone)]
pub struct CachedCustomer {
    pub customer: CustomerSummary,
    pub status: Option<(StatusSummary, OffsetDateTime)>,
    pub workflow: Option<(WorkflowView, OffsetDateTime)>,
}

/// Everything the engine loads at start.
#[derive(Default)]
pub struct Snapshot {
    pub customers: Vec<CachedCustomer>,
    /// (sha256, customer id, document type)
    pub uploads: HashSet<(String, Uuid, String)>,
    pub settings: HashMap<String, String>,
}

/// One row to write.
pub enum Write {
    Customer {
        summary: Arc<CustomerSummary>,
        body: String,
    },
    Status {
        customer_id: Uuid,
        body: String,
        summary: Arc<StatusSummary>,
        fetched_at: OffsetDateTime,
    },
    Workflow {
        customer_id: Uuid,
        view: WorkflowView,
        since: OffsetDateTime,
    },
    Event {
        id: String,
        event_type: String,
        customer_id: Option<Uuid>,
        body: String,
        received_at: OffsetDateTime,
    },
    Upload {
        sha256: String,
        customer_id: Uuid,
        document_type: String,
        path: String,
        document_id: Option<Uuid>,
        at: OffsetDateTime,
    },
    Timeline {
        customer_id: Uuid,
        at: OffsetDateTime,
        kind: &'static str,
        text: String,
    },
    Setting {
        key: String,
        value: Option<String>,
    },
    /// Answered once everything queued before it is committed (`true`) or could not be
    /// (`false`).
    Flush(oneshot::Sender<bool>),
    /// Forget every row of the API the cache was filled from (another API or key now).
    Clear,
    /// Forget webhook events and timeline lines older than `before` (`--retain-days`).
    Prune {
        before: OffsetDateTime,
    },
    /// A status read again and found unchanged at `at`: only its time is written.
    Checked {
        customer_id: Uuid,
        at: OffsetDateTime,
    },
}

impl Write {
    /// A customer's row.
    pub fn customer(customer: &Customer) -> Result<Write, CacheError> {
        let (summary, body) = CustomerSummary::of(customer)?;
        Ok(Write::Customer {
            summary: Arc::new(summary),
            body,
        })
    }
}

/// Opens the cache and its connection's settings; applies migrations.
pub fn open(path: &Path) -> Result<Connection, CacheError> {
    // It holds the webhook secret and customers' data: this user's alone.
    crate::private::own_file(path).map_err(|source| CacheError::Private {
        path: path.to_path_buf(),
        source,
    })?;
    let mut conn = Connection::open(path).map_err(|source| CacheError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is synced before it is acknowledged. A webhook answered 2xx is never sent
    // again, so a commit left in the page cache (NORMAL) is lost for good when the machine
    // stops or the file system goes read-only. The writer commits in batches: one sync each.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let found = crate::sqlite::migrate(&mut conn, &MIGRATIONS).map_err(|source| CacheError::Migrate {
        path: path.to_path_buf(),
        source,
    })?;
    if found == 1 {
        // Should this be interrupted, the rows left without a summary are not loaded, and the
        // next listing writes them again.
        summarize_old_rows(&mut conn)?;
    }
    Ok(conn)
}

/// Fills the customer summaries of rows written before they existed (once, after V2).
fn summarize_old_rows(conn: &mut Connection) -> Result<(), CacheError> {
    let tx = conn.transaction()?;
    {
        let mut read = tx.prepare(
            "SELECT c.id, c.body FROM overview o JOIN customers c ON c.id = o.customer_id
             WHERE o.customer_hash IS NULL",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let body: String = row.get(1)?;
            let customer: Customer = match serde_json::from_str(&body) {
                Ok(customer) => customer,
                Err(err) => {
                    // One unreadable row does not stop the upgrade; the next listing
                    // rewrites it (see `overview_row`).
                    tracing::warn!(
                        "cache: customer {id} cannot be summarized ({err}); it is read again from the API"
                    );
                    continue;
                }
            };
            write_summary(&tx, &CustomerSummary::of(&customer)?.0)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Writes a customer's summary into their `overview` row.
fn write_summary(conn: &Connection, summary: &CustomerSummary) -> Result<(), CacheError> {
    conn.prepare_cached(
        "INSERT INTO overview (customer_id, name, email, external_id, customer_hash)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(customer_id) DO UPDATE SET name = excluded.name, email = excluded.email,
             external_id = excluded.external_id, customer_hash = excluded.customer_hash",
    )?
    .execute(params![
        summary.id.to_string(),
        &*summary.name,
        summary.email.as_deref(),
        summary.external_id.as_deref(),
        summary.hash as i64
    ])?;
    Ok(())
}

pub fn to_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_ms(ms: i64) -> Result<OffsetDateTime, CacheError> {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map_err(|_| CacheError::Corrupt(format!("time {ms} is out of range")))
}

#[cfg(test)]
mod tests;
