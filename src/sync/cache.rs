//! The engine's SQLite cache (SPEC §7): customers, the latest status of each and when it was
//! fetched, each customer's workflow as plain data, every webhook event received (one row per
//! event id), uploads by SHA-256, customer and type, the timeline, and a few settings (the
//! registered webhook endpoint). What the engine keeps in memory (summaries of the customer
//! and the status, the workflow) is also in one narrow `overview` row per customer, so a
//! start reads that alone; whole bodies are read one at a time, on demand. One writer thread owns the connection and commits whatever
//! has queued up in one transaction, so a burst of webhooks or a sweep costs a handful of
//! commits, not one per row.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

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

fn body_hash(body: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: stable from one run to the next, which is all a change
    // detector needs (a new Rust release changing it costs one rewrite per customer).
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
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

const MIGRATIONS: [&str; 2] = [V1, V2];

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot open the cache {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("the cache {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: crate::sqlite::MigrateError,
    },
    #[error("the cache: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the cache holds a row this build cannot read ({0})")]
    Corrupt(String),
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
#[derive(Debug, Default)]
pub struct Snapshot {
    pub customers: Vec<CachedCustomer>,
    pub event_ids: HashSet<String>,
    /// (sha256, customer id, document type)
    pub uploads: HashSet<(String, Uuid, String)>,
    pub settings: HashMap<String, String>,
}

/// One row to write.
#[derive(Debug)]
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
    let mut conn = Connection::open(path).map_err(|source| CacheError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
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

/// Reads everything the engine keeps in memory: one pass over the narrow `overview` table,
/// each row parsed as it is read; a file database is read in two halves on two threads (each
/// with its own connection), since parsing, not the disk, is what takes the time.
pub fn load(conn: &Connection) -> Result<Snapshot, CacheError> {
    let mut snapshot = Snapshot::default();
    let last: i64 = conn.query_row("SELECT coalesce(max(rowid), 0) FROM overview", [], |r| r.get(0))?;
    let middle = last / 2;
    let path = conn
        .path()
        .filter(|p| !p.is_empty() && middle > 0)
        .map(PathBuf::from);
    let (first, second) = std::thread::scope(|scope| {
        let second = path.map(|path| {
            scope.spawn(move || {
                let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                overview_rows(&conn, middle + 1, i64::MAX)
            })
        });
        match second {
            Some(second) => (
                overview_rows(conn, 0, middle),
                second
                    .join()
                    .unwrap_or_else(|_| Err(CacheError::Corrupt("reading the cache panicked".into()))),
            ),
            None => (overview_rows(conn, 0, i64::MAX), Ok(Vec::new())),
        }
    });
    snapshot.customers = first?;
    snapshot.customers.extend(second?);
    let mut stmt = conn.prepare("SELECT id FROM webhook_events")?;
    for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
        snapshot.event_ids.insert(id?);
    }
    let mut stmt = conn.prepare("SELECT sha256, customer_id, document_type FROM uploads")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (sha, customer, document_type) = row?;
        let customer = customer
            .parse()
            .map_err(|_| CacheError::Corrupt(format!("upload of customer {customer}")))?;
        snapshot.uploads.insert((sha, customer, document_type));
    }
    let mut stmt = conn.prepare("SELECT key, value FROM settings")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (key, value) = row?;
        snapshot.settings.insert(key, value);
    }
    Ok(snapshot)
}

/// The `overview` rows with a rowid in `from..=to`.
fn overview_rows(conn: &Connection, from: i64, to: i64) -> Result<Vec<CachedCustomer>, CacheError> {
    let mut stmt = conn.prepare(
        "SELECT customer_id, name, email, external_id, customer_hash, status, fetched_at_ms, workflow, since_ms
         FROM overview WHERE rowid BETWEEN ?1 AND ?2",
    )?;
    let mut rows = stmt.query([from, to])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(overview_row(row)?);
    }
    Ok(out)
}

/// One `overview` row: columns read in place, the two small JSON values parsed.
fn overview_row(row: &rusqlite::Row) -> Result<CachedCustomer, CacheError> {
    let text = |i: usize| -> Result<Option<&str>, CacheError> {
        row.get_ref(i)?
            .as_str_or_null()
            .map_err(|e| CacheError::Corrupt(e.to_string()))
    };
    let id = text(0)?.unwrap_or_default();
    let corrupt = |what: &str| CacheError::Corrupt(format!("{what} of customer {id}"));
    let parsed = |json: usize, at: usize, what: &str| -> Result<Option<_>, CacheError> {
        match (text(json)?, row.get::<_, Option<i64>>(at)?) {
            (Some(json), Some(at)) => Ok(Some((json, from_ms(at)?))),
            (None, _) => Ok(None),
            (Some(_), None) => Err(corrupt(what)),
        }
    };
    let status = match parsed(5, 6, "the status time")? {
        Some((json, at)) => Some((serde_json::from_str(json).map_err(|_| corrupt("the status"))?, at)),
        None => None,
    };
    let workflow = match parsed(7, 8, "the workflow time")? {
        Some((json, at)) => Some((
            serde_json::from_str(json).map_err(|_| corrupt("the workflow"))?,
            at,
        )),
        None => None,
    };
    // A row without a summary (its body could not be summarized when the cache was
    // upgraded) keeps its workflow and status; it is called by its externalId or id, and hash
    // 0 makes the next listing write it whole.
    let external_id = text(3)?;
    let customer = CustomerSummary {
        id: id.parse().map_err(|_| corrupt("the id"))?,
        name: text(1)?.or(external_id).unwrap_or(id).into(),
        email: text(2)?.map(Box::from),
        external_id: external_id.map(Box::from),
        hash: row.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64,
    };
    Ok(CachedCustomer {
        customer,
        status,
        workflow,
    })
}

/// The whole customer last fetched.
pub fn customer(conn: &Connection, customer_id: Uuid) -> Result<Option<Customer>, CacheError> {
    body_of(
        conn,
        "SELECT body FROM customers WHERE id = ?1",
        customer_id,
        "customer",
    )
}

/// The whole status last fetched for a customer.
pub fn status(conn: &Connection, customer_id: Uuid) -> Result<Option<ComplianceStatus>, CacheError> {
    body_of(
        conn,
        "SELECT body FROM statuses WHERE customer_id = ?1",
        customer_id,
        "status of",
    )
}

/// One customer's JSON body from `sql`, parsed.
fn body_of<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    customer_id: Uuid,
    what: &str,
) -> Result<Option<T>, CacheError> {
    let body: Option<String> = conn
        .query_row(sql, [customer_id.to_string()], |r| r.get(0))
        .optional()?;
    body.map(|b| {
        serde_json::from_str(&b).map_err(|e| CacheError::Corrupt(format!("{what} {customer_id}: {e}")))
    })
    .transpose()
}

/// A customer's timeline, oldest first, at most `limit` entries (the newest ones).
pub fn timeline(
    conn: &Connection,
    customer_id: Uuid,
    limit: u32,
) -> Result<Vec<(OffsetDateTime, String, String)>, CacheError> {
    let mut stmt = conn.prepare(
        "SELECT at_ms, kind, text FROM (SELECT id, at_ms, kind, text FROM timeline WHERE customer_id = ?1
         ORDER BY id DESC LIMIT ?2) ORDER BY id",
    )?;
    let rows = stmt.query_map(params![customer_id.to_string(), limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, kind, text) = row?;
        out.push((from_ms(at)?, kind, text));
    }
    Ok(out)
}

/// The handle the engine queues writes on.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Write>,
}

impl Writer {
    pub fn write(&self, write: Write) -> Result<(), CacheError> {
        self.queue.send(write).map_err(|_| CacheError::Closed)
    }

    /// Resolves once everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), CacheError> {
        let (tx, rx) = oneshot::channel();
        self.write(Write::Flush(tx))?;
        match rx.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(CacheError::Corrupt(
                "a write to the cache failed; see the log".into(),
            )),
            Err(_) => Err(CacheError::Closed),
        }
    }
}

/// Starts the writer thread on `conn`. It stops once every [`Writer`] is dropped, after
/// committing what was queued.
pub fn spawn_writer(mut conn: Connection) -> (Writer, JoinHandle<()>) {
    let (queue, rx) = mpsc::channel::<Write>();
    let thread = std::thread::Builder::new()
        .name("kycdash-cache".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                // Whatever else has queued up meanwhile goes into the same transaction.
                while batch.len() < 50_000 {
                    match rx.try_recv() {
                        Ok(write) => batch.push(write),
                        Err(_) => break,
                    }
                }
                let mut acks = Vec::new();
                let committed = match commit(&mut conn, batch, &mut acks) {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::error!("writing to the cache failed; the batch was rolled back: {err}");
                        false
                    }
                };
                // Every waiter hears whether its writes are kept.
                for ack in acks {
                    let _ = ack.send(committed);
                }
            }
        })
        .expect("spawning a thread only fails when the system is out of resources");
    (Writer { queue }, thread)
}

fn commit(
    conn: &mut Connection,
    batch: Vec<Write>,
    acks: &mut Vec<oneshot::Sender<bool>>,
) -> Result<(), CacheError> {
    let tx = conn.transaction()?;
    for write in batch {
        match write {
            Write::Customer { summary, body } => {
                let id = summary.id.to_string();
                tx.prepare_cached(
                    "INSERT INTO customers (id, external_id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET external_id = excluded.external_id, body = excluded.body",
                )?
                .execute(params![id, summary.external_id.as_deref(), body])?;
                write_summary(&tx, &summary)?;
            }
            Write::Status {
                customer_id,
                body,
                summary,
                fetched_at,
            } => {
                let (id, at) = (customer_id.to_string(), to_ms(fetched_at));
                let summary =
                    serde_json::to_string(&*summary).map_err(|e| CacheError::Corrupt(e.to_string()))?;
                tx.prepare_cached(
                    "INSERT INTO statuses (customer_id, body, fetched_at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(customer_id) DO UPDATE SET body = excluded.body,
                         fetched_at_ms = excluded.fetched_at_ms",
                )?
                .execute(params![id, body, at])?;
                tx.prepare_cached(
                    "INSERT INTO overview (customer_id, status, fetched_at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(customer_id) DO UPDATE SET status = excluded.status,
                         fetched_at_ms = excluded.fetched_at_ms",
                )?
                .execute(params![id, summary, at])?;
            }
            Write::Workflow {
                customer_id,
                view,
                since,
            } => {
                let view = serde_json::to_string(&view).map_err(|e| CacheError::Corrupt(e.to_string()))?;
                tx.prepare_cached(
                    "INSERT INTO overview (customer_id, workflow, since_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(customer_id) DO UPDATE SET workflow = excluded.workflow,
                         since_ms = excluded.since_ms",
                )?
                .execute(params![customer_id.to_string(), view, to_ms(since)])?;
            }
            Write::Event {
                id,
                event_type,
                customer_id,
                body,
                received_at,
            } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO webhook_events (id, event_type, customer_id, body, received_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    id,
                    event_type,
                    customer_id.map(|c| c.to_string()),
                    body,
                    to_ms(received_at)
                ])?;
            }
            Write::Upload {
                sha256,
                customer_id,
                document_type,
                path,
                document_id,
                at,
            } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO uploads (sha256, customer_id, document_type, path, document_id, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    sha256,
                    customer_id.to_string(),
                    document_type,
                    path,
                    document_id.map(|d| d.to_string()),
                    to_ms(at)
                ])?;
            }
            Write::Timeline {
                customer_id,
                at,
                kind,
                text,
            } => {
                tx.prepare_cached(
                    "INSERT INTO timeline (customer_id, at_ms, kind, text) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![customer_id.to_string(), to_ms(at), kind, text])?;
            }
            Write::Setting {
                key,
                value: Some(value),
            } => {
                tx.prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![key, value])?;
            }
            Write::Setting { key, value: None } => {
                tx.execute("DELETE FROM settings WHERE key = ?1", [key])?;
            }
            Write::Clear => {
                tx.execute_batch(
                    "DELETE FROM customers; DELETE FROM statuses; DELETE FROM overview;
                     DELETE FROM webhook_events; DELETE FROM uploads; DELETE FROM timeline; DELETE FROM settings;",
                )?;
            }
            Write::Flush(ack) => acks.push(ack),
        }
    }
    tx.commit()?;
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
mod tests {
    use super::*;
    use crate::domain::{CustomerProfile, Stage};

    fn a_status(customer: &Customer) -> ComplianceStatus {
        crate::domain::evaluate(
            customer,
            &Default::default(),
            &view(),
            crate::domain::Strategy::CfKyc,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn view() -> WorkflowView {
        WorkflowView {
            stage: Stage::ReadyToStart,
            onboarding: None,
            sdk: None,
            identity_verified: false,
        }
    }

    #[test]
    fn a_cache_written_before_the_overview_loads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let profile: CustomerProfile = serde_json::from_value(serde_json::json!({
            "email": "ada@example.com",
            "externalId": "crm-1",
            "kyc": {"firstName": "Ada", "lastName": "Lovelace"}
        }))
        .unwrap();
        let customer = Customer::new(Uuid::new_v4(), profile, now);
        {
            let mut conn = Connection::open(&path).unwrap();
            crate::sqlite::migrate(&mut conn, &[V1]).unwrap();
            conn.execute(
                "INSERT INTO customers (id, external_id, body) VALUES (?1, ?2, ?3)",
                params![
                    customer.id.to_string(),
                    "crm-1",
                    serde_json::to_string(&customer).unwrap()
                ],
            )
            .unwrap();
            let (status, body) = StatusSummary::of(&a_status(&customer)).unwrap();
            conn.execute(
                "INSERT INTO statuses (customer_id, body, summary, fetched_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![
                    customer.id.to_string(),
                    body,
                    serde_json::to_string(&status).unwrap(),
                    to_ms(now)
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO workflows (customer_id, view, since_ms) VALUES (?1, ?2, ?3)",
                params![
                    customer.id.to_string(),
                    serde_json::to_string(&view()).unwrap(),
                    to_ms(now)
                ],
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let snapshot = load(&conn).unwrap();
        let cached = &snapshot.customers[0];
        assert_eq!(
            cached.status.as_ref().map(|(s, at)| (s.hash, *at)),
            Some((StatusSummary::of(&a_status(&customer)).unwrap().0.hash, now))
        );
        assert_eq!(cached.workflow, Some((view(), now)));
        assert!(self::status(&conn, customer.id).unwrap().is_some());
        let summary = &cached.customer;
        assert_eq!(*summary, CustomerSummary::of(&customer).unwrap().0);
        assert_eq!(&*summary.name, "Ada Lovelace");
        assert_eq!(summary.external_id.as_deref(), Some("crm-1"));
    }

    #[test]
    fn an_unreadable_row_in_an_upgraded_cache_keeps_its_workflow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let id = Uuid::new_v4();
        {
            let mut conn = Connection::open(&path).unwrap();
            crate::sqlite::migrate(&mut conn, &[V1]).unwrap();
            conn.execute(
                "INSERT INTO customers (id, external_id, body) VALUES (?1, 'crm-9', '{not json')",
                [id.to_string()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO workflows (customer_id, view, since_ms) VALUES (?1, ?2, ?3)",
                params![
                    id.to_string(),
                    serde_json::to_string(&view()).unwrap(),
                    to_ms(now)
                ],
            )
            .unwrap();
        }
        let snapshot = load(&open(&path).unwrap()).unwrap();
        let cached = &snapshot.customers[0];
        assert_eq!(cached.customer.id, id);
        assert_eq!(&*cached.customer.name, "crm-9");
        assert_eq!(cached.customer.hash, 0, "rewritten by the next listing");
        assert_eq!(cached.workflow, Some((view(), now)));
    }

    #[tokio::test]
    async fn rows_written_in_batches_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db");
        let (writer, thread) = spawn_writer(open(&path).unwrap());
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let customer = Customer::new(Uuid::new_v4(), CustomerProfile::default(), now);
        let (summary, body) = CustomerSummary::of(&customer).unwrap();
        writer
            .write(Write::Customer {
                summary: Arc::new(summary.clone()),
                body,
            })
            .unwrap();
        let view = WorkflowView {
            stage: Stage::ReadyToStart,
            onboarding: None,
            sdk: None,
            identity_verified: false,
        };
        writer
            .write(Write::Workflow {
                customer_id: customer.id,
                view: view.clone(),
                since: now,
            })
            .unwrap();
        for _ in 0..2 {
            writer
                .write(Write::Event {
                    id: "evt_1".into(),
                    event_type: "CUSTOMER_CREATED".into(),
                    customer_id: Some(customer.id),
                    body: "{}".into(),
                    received_at: now,
                })
                .unwrap();
        }
        writer.flush().await.unwrap();
        drop(writer);
        thread.join().unwrap();

        let snapshot = load(&open(&path).unwrap()).unwrap();
        assert_eq!(snapshot.customers.len(), 1);
        assert_eq!(snapshot.customers[0].customer, summary);
        let conn = open(&path).unwrap();
        assert_eq!(self::customer(&conn, customer.id).unwrap(), Some(customer));
        assert_eq!(self::customer(&conn, Uuid::nil()).unwrap(), None);
        assert_eq!(snapshot.customers[0].workflow, Some((view, now)));
        assert_eq!(snapshot.event_ids, HashSet::from(["evt_1".to_string()]));
    }
}
