//! The cache's one writer: a thread that owns the connection and commits whatever has queued
//! up in one transaction, so a burst of webhooks or a sweep costs a handful of commits.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

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
            Ok(false) => Err(CacheError::WriteFailed("the batch was rolled back".into())),
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
            // A batch that failed since the last waiter was told: a flush promises that
            // everything queued before it is kept, so the next one must say no, even if its
            // own batch commits (the failed batch may have held the very rows it waits for).
            let mut lost = false;
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
                        lost = true;
                        false
                    }
                };
                // Every waiter hears whether the writes it waited for are kept.
                if !acks.is_empty() {
                    let kept = committed && !lost;
                    for ack in acks {
                        let _ = ack.send(kept);
                    }
                    lost = false;
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
        apply(&tx, write, acks)?;
    }
    tx.commit()?;
    Ok(())
}

/// One write, inside the batch's transaction; a flush's waiter is kept for after the commit.
fn apply(tx: &Connection, write: Write, acks: &mut Vec<oneshot::Sender<bool>>) -> Result<(), CacheError> {
    match write {
        Write::Customer { summary, body } => write_customer(tx, &summary, &body)?,
        Write::Status {
            customer_id,
            body,
            summary,
            fetched_at,
        } => write_status(tx, customer_id, &body, &summary, to_ms(fetched_at))?,
        Write::Workflow {
            customer_id,
            view,
            since,
        } => write_workflow(tx, customer_id, &view, to_ms(since))?,
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
            .execute(params![id, event_type, customer_id, body, to_ms(received_at)])?;
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
        Write::Setting { key, value } => write_setting(tx, &key, value.as_deref())?,
        Write::Clear => {
            tx.execute_batch(
                "DELETE FROM customers; DELETE FROM statuses; DELETE FROM overview;
                 DELETE FROM webhook_events; DELETE FROM uploads; DELETE FROM timeline; DELETE FROM settings;",
            )?;
        }
        Write::Prune { before } => {
            let before = to_ms(before);
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
        Write::Flush(ack) => acks.push(ack),
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
