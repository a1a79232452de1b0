//! Reading the cache: everything the engine keeps in memory at start, and whole bodies and
//! timelines on demand (on their own connection, never waiting for the writer).

use std::collections::HashMap;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CacheError, CachedCustomer, CustomerSummary, Snapshot, from_ms};
use crate::domain::{ComplianceStatus, Customer, WorkflowView};

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
                    .unwrap_or_else(|_| Err(CacheError::ReadFailed("its reader thread panicked".into()))),
            ),
            None => (overview_rows(conn, 0, i64::MAX), Ok(Vec::new())),
        }
    });
    snapshot.customers = first?;
    snapshot.customers.extend(second?);
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

/// A customer as the cache last knew them, with the status last fetched and when.
pub struct Known {
    pub customer: Customer,
    pub status: Option<(ComplianceStatus, OffsetDateTime)>,
}

/// A customer named by id or externalId: what `kycdash status` answers while the API is
/// unreachable.
pub fn find(conn: &Connection, id_or_external_id: &str) -> Result<Option<Known>, CacheError> {
    let id: Option<String> = conn
        .query_row(
            "SELECT id FROM customers WHERE id = ?1 OR external_id = ?1 LIMIT 1",
            [id_or_external_id],
            |row| row.get(0),
        )
        .optional()?;
    let Some(id) = id.and_then(|id| id.parse::<Uuid>().ok()) else {
        return Ok(None);
    };
    let Some(customer) = customer(conn, id)? else {
        return Ok(None);
    };
    let fetched_at: Option<i64> = conn
        .query_row(
            "SELECT fetched_at_ms FROM statuses WHERE customer_id = ?1",
            [id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    let status = match (status(conn, id)?, fetched_at) {
        (Some(status), Some(ms)) => Some((status, from_ms(ms)?)),
        _ => None,
    };
    Ok(Some(Known { customer, status }))
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

/// One customer as the cache knows them, whole: what `kycdash export` makes a record of.
#[derive(Debug, Clone)]
pub struct CustomerRows {
    pub customer: Customer,
    /// The status last fetched and when.
    pub status: Option<(ComplianceStatus, OffsetDateTime)>,
    /// The workflow as the tracker last kept it, and since when it is in its stage.
    pub workflow: Option<(WorkflowView, OffsetDateTime)>,
    /// Documents this engine uploaded (from the inbox), oldest first.
    pub uploads: Vec<UploadRow>,
    /// When the oldest timeline line still kept was written (`--retain-days` prunes).
    pub first_seen: Option<OffsetDateTime>,
    /// The timeline's stage lines, oldest first: (when, text).
    pub stage_lines: Vec<(OffsetDateTime, String)>,
}

/// A document the engine uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub document_type: String,
    pub sha256: String,
    pub at: OffsetDateTime,
}

/// Every customer the cache holds, with their status, workflow, uploads and the timeline lines
/// an export reads, oldest customer first (by `createdAt`, then id). Read in a handful of
/// passes, one per table, rather than a query per customer.
pub fn everyone(conn: &Connection) -> Result<Vec<CustomerRows>, CacheError> {
    let mut statuses = HashMap::new();
    let mut stmt = conn.prepare("SELECT customer_id, body, fetched_at_ms FROM statuses")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let body: String = row.get(1)?;
        let status: ComplianceStatus =
            serde_json::from_str(&body).map_err(|e| CacheError::Corrupt(format!("status of {id}: {e}")))?;
        statuses.insert(id, (status, from_ms(row.get(2)?)?));
    }
    let mut workflows = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT customer_id, workflow, since_ms FROM overview WHERE workflow IS NOT NULL AND since_ms IS NOT NULL",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let json: String = row.get(1)?;
        let view: WorkflowView =
            serde_json::from_str(&json).map_err(|e| CacheError::Corrupt(format!("workflow of {id}: {e}")))?;
        workflows.insert(id, (view, from_ms(row.get(2)?)?));
    }
    let mut uploads: HashMap<String, Vec<UploadRow>> = HashMap::new();
    let mut stmt =
        conn.prepare("SELECT customer_id, document_type, sha256, at_ms FROM uploads ORDER BY at_ms, rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        uploads.entry(row.get(0)?).or_default().push(UploadRow {
            document_type: row.get(1)?,
            sha256: row.get(2)?,
            at: from_ms(row.get(3)?)?,
        });
    }
    let mut first_seen = HashMap::new();
    let mut stmt = conn.prepare("SELECT customer_id, min(at_ms) FROM timeline GROUP BY customer_id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        first_seen.insert(row.get::<_, String>(0)?, from_ms(row.get(1)?)?);
    }
    let mut stage_lines: HashMap<String, Vec<(OffsetDateTime, String)>> = HashMap::new();
    let mut stmt =
        conn.prepare("SELECT customer_id, at_ms, text FROM timeline WHERE kind = ?1 ORDER BY id")?;
    let mut rows = stmt.query([crate::sync::timeline::STAGE])?;
    while let Some(row) = rows.next()? {
        stage_lines
            .entry(row.get(0)?)
            .or_default()
            .push((from_ms(row.get(1)?)?, row.get(2)?));
    }
    let mut out = Vec::new();
    let mut stmt = conn.prepare("SELECT id, body FROM customers")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let body: String = row.get(1)?;
        let customer: Customer =
            serde_json::from_str(&body).map_err(|e| CacheError::Corrupt(format!("customer {id}: {e}")))?;
        out.push(CustomerRows {
            customer,
            status: statuses.remove(&id),
            workflow: workflows.remove(&id),
            uploads: uploads.remove(&id).unwrap_or_default(),
            first_seen: first_seen.remove(&id),
            stage_lines: stage_lines.remove(&id).unwrap_or_default(),
        });
    }
    out.sort_by_key(|rows| (rows.customer.created_at, rows.customer.id));
    Ok(out)
}
