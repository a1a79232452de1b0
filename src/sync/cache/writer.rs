//! The cache's one writer: a thread that owns the connection and commits whatever has queued
//! up in one transaction, so a burst of webhooks or a sweep costs a handful of commits. A
//! batch the database refuses is stored row by row, so one bad row loses itself alone.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::lost::{self, Lost, Row, cache_is_failing};
use super::{CacheError, Write, to_ms, write_summary};

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
            Ok(false) => Err(CacheError::WriteFailed(
                "a row queued before this flush could not be stored".into(),
            )),
            Err(_) => Err(CacheError::Closed),
        }
    }
}

/// Starts the writer thread on `conn`. It stops once every [`Writer`] is dropped, after
/// committing what was queued. Rows it cannot store are logged, named, and handed to
/// `report`, so whoever thought them stored can write them again.
pub fn spawn_writer(
    conn: Connection,
    report: impl FnMut(Vec<Lost>) + Send + 'static,
) -> (Writer, JoinHandle<()>) {
    let (queue, rx) = mpsc::channel::<Write>();
    let thread = std::thread::Builder::new()
        .name("kycdash-cache".into())
        .spawn(move || run(conn, rx, report))
        .expect("spawning a thread only fails when the system is out of resources");
    (Writer { queue }, thread)
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Write>, mut report: impl FnMut(Vec<Lost>)) {
    // A row lost since the last waiter was told: a flush promises that everything queued
    // before it is kept, so the next one must say no, even if its own batch commits.
    let mut unheard = false;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Whatever else has queued up meanwhile goes into the same transaction.
        while batch.len() < 50_000 {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let outcome = store(&mut conn, &batch);
        unheard = answer_waiters(batch, &outcome.lost_at, unheard);
        if !outcome.lost.is_empty() {
            for lost in &outcome.lost {
                log(lost);
            }
            report(outcome.lost);
        }
    }
}

/// What became of a batch: where in it rows were lost, and which, grouped by reason.
#[derive(Default)]
struct Outcome {
    lost_at: Vec<usize>,
    lost: Vec<Lost>,
}

/// Stores a batch in one transaction; should that fail, row by row, each in its own, so a row
/// the database refuses costs itself alone. When the cache cannot store anything (disk full,
/// read-only, locked), the rest of the batch is lost at once, reported once, never retried
/// here: the engine writes the rows again at its next listing or poll.
fn store(conn: &mut Connection, batch: &[Write]) -> Outcome {
    let err = match commit(conn, batch) {
        Ok(()) => return Outcome::default(),
        Err(err) => err,
    };
    if cache_is_failing(&err) {
        return all_lost(batch, 0, &err);
    }
    let mut outcome = Outcome::default();
    for (at, write) in batch.iter().enumerate() {
        let Some(row) = Row::of(write) else { continue };
        match commit(conn, std::slice::from_ref(write)) {
            Ok(()) => {}
            Err(err) if cache_is_failing(&err) => {
                let rest = all_lost(&batch[at..], at, &err);
                outcome.lost_at.extend(rest.lost_at);
                outcome.lost.extend(rest.lost);
                break;
            }
            Err(err) => {
                outcome.lost_at.push(at);
                outcome.lost.push(Lost {
                    rows: vec![row],
                    reason: lost::reason(&err),
                });
            }
        }
    }
    outcome
}

/// Every row of `writes` (which start at `offset` in their batch), lost for one reason.
fn all_lost(writes: &[Write], offset: usize, err: &CacheError) -> Outcome {
    let (lost_at, rows) = writes
        .iter()
        .enumerate()
        .filter_map(|(at, write)| Some((offset + at, Row::of(write)?)))
        .unzip();
    Outcome {
        lost_at,
        lost: vec![Lost {
            rows,
            reason: lost::reason(err),
        }],
    }
}

fn log(lost: &Lost) {
    match lost.rows.as_slice() {
        [row] => tracing::error!("the cache refused {row}: {}", lost.reason),
        rows => tracing::error!(
            "the cache cannot store anything ({}); {} rows of this batch are not stored \
             (customers' rows are written again by the next sweep or poll, webhooks are answered \
             503 and sent again, inbox files stay to be retried; timeline lines and settings are \
             not kept), the first {}",
            lost.reason,
            rows.len(),
            rows.first().map(ToString::to_string).unwrap_or_default()
        ),
    }
}

/// Answers the batch's flushes: a waiter hears `false` if a row queued before it was lost
/// (in this batch, or since the last waiter heard). Returns whether a loss is left unheard.
fn answer_waiters(batch: Vec<Write>, lost_at: &[usize], unheard: bool) -> bool {
    let first_lost = lost_at.first().copied();
    let mut last_waiter = None;
    for (at, write) in batch.into_iter().enumerate() {
        if let Write::Flush(ack) = write {
            let lost_before = unheard || first_lost.is_some_and(|lost| lost < at);
            let _ = ack.send(!lost_before);
            last_waiter = Some(at);
        }
    }
    match last_waiter {
        Some(waiter) => lost_at.iter().any(|lost| *lost > waiter),
        None => unheard || first_lost.is_some(),
    }
}

/// The writes in one transaction (flushes are answered by the caller).
fn commit(conn: &mut Connection, writes: &[Write]) -> Result<(), CacheError> {
    let tx = conn.transaction()?;
    for write in writes {
        apply(&tx, write)?;
    }
    tx.commit()?;
    Ok(())
}

/// One write, inside its transaction.
fn apply(tx: &Connection, write: &Write) -> Result<(), CacheError> {
    match write {
        Write::Customer { summary, body } => write_customer(tx, summary, body)?,
        Write::Status {
            customer_id,
            body,
            summary,
            fetched_at,
        } => write_status(tx, *customer_id, body, summary, to_ms(*fetched_at))?,
        Write::Workflow {
            customer_id,
            view,
            since,
        } => write_workflow(tx, *customer_id, view, to_ms(*since))?,
        Write::Event {
            id,
            event_type,
            customer_id,
            body,
            received_at,
        } => {
            let customer_id = customer_id.map(|c| c.to_string());
            tx.prepare_cached(
                "INSERT OR IGNORE INTO webhook_events (id, event_type, customer_id, body, received_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, event_type, customer_id, body, to_ms(*received_at)])?;
        }
        Write::Upload {
            sha256,
            customer_id,
            document_type,
            path,
            document_id,
            at,
        } => {
            let (customer_id, document_id) = (customer_id.to_string(), document_id.map(|d| d.to_string()));
            tx.prepare_cached(
                "INSERT OR IGNORE INTO uploads (sha256, customer_id, document_type, path, document_id, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                sha256,
                customer_id,
                document_type,
                path,
                document_id,
                to_ms(*at)
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
            .execute(params![customer_id.to_string(), to_ms(*at), kind, text])?;
        }
        Write::Setting { key, value } => write_setting(tx, key, value.as_deref())?,
        Write::Clear => {
            tx.execute_batch(
                "DELETE FROM customers; DELETE FROM statuses; DELETE FROM overview;
                 DELETE FROM webhook_events; DELETE FROM uploads; DELETE FROM timeline; DELETE FROM settings;",
            )?;
        }
        Write::Prune { before } => {
            let before = to_ms(*before);
            let events = tx
                .prepare_cached("DELETE FROM webhook_events WHERE received_at_ms < ?1")?
                .execute([before])?;
            let lines = tx
                .prepare_cached("DELETE FROM timeline WHERE at_ms < ?1")?
                .execute([before])?;
            if events + lines > 0 {
                tracing::info!(
                    "pruned {events} webhook events and {lines} timeline lines past --retain-days"
                );
            }
        }
        Write::Checked { customer_id, at } => {
            let (id, at) = (customer_id.to_string(), to_ms(*at));
            tx.prepare_cached("UPDATE statuses SET fetched_at_ms = ?2 WHERE customer_id = ?1")?
                .execute(params![id, at])?;
            tx.prepare_cached("UPDATE overview SET fetched_at_ms = ?2 WHERE customer_id = ?1")?
                .execute(params![id, at])?;
        }
        Write::Flush(_) => {}
    }
    Ok(())
}

fn write_customer(tx: &Connection, summary: &super::CustomerSummary, body: &str) -> Result<(), CacheError> {
    tx.prepare_cached(
        "INSERT INTO customers (id, external_id, body) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET external_id = excluded.external_id, body = excluded.body",
    )?
    .execute(params![
        summary.id.to_string(),
        summary.external_id.as_deref(),
        body
    ])?;
    write_summary(tx, summary)
}

fn write_workflow(
    tx: &Connection,
    customer_id: uuid::Uuid,
    view: &crate::domain::WorkflowView,
    since_ms: i64,
) -> Result<(), CacheError> {
    let view = serde_json::to_string(view).map_err(|e| CacheError::WriteFailed(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO overview (customer_id, workflow, since_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(customer_id) DO UPDATE SET workflow = excluded.workflow,
             since_ms = excluded.since_ms",
    )?
    .execute(params![customer_id.to_string(), view, since_ms])?;
    Ok(())
}

/// The whole status, and its summary in the customer's overview row.
fn write_status(
    tx: &Connection,
    customer_id: uuid::Uuid,
    body: &str,
    summary: &super::StatusSummary,
    fetched_at_ms: i64,
) -> Result<(), CacheError> {
    let id = customer_id.to_string();
    let summary = serde_json::to_string(summary).map_err(|e| CacheError::WriteFailed(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO statuses (customer_id, body, fetched_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(customer_id) DO UPDATE SET body = excluded.body,
             fetched_at_ms = excluded.fetched_at_ms",
    )?
    .execute(params![id, body, fetched_at_ms])?;
    tx.prepare_cached(
        "INSERT INTO overview (customer_id, status, fetched_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(customer_id) DO UPDATE SET status = excluded.status,
             fetched_at_ms = excluded.fetched_at_ms",
    )?
    .execute(params![id, summary, fetched_at_ms])?;
    Ok(())
}

fn write_setting(tx: &Connection, key: &str, value: Option<&str>) -> Result<(), CacheError> {
    match value {
        Some(value) => {
            tx.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
        }
        None => {
            tx.execute("DELETE FROM settings WHERE key = ?1", [key])?;
        }
    }
    Ok(())
}
