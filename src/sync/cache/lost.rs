//! Rows the cache could not store, as the writer reports them: which row (its table and the
//! customer, event or key it belongs to) and SQLite's reason. The engine needs them to forget
//! that it stored them, so the next listing or poll writes them again; a person needs them
//! named, since a row the cache refuses is never dropped in silence (SPEC §10).

use std::fmt;

use rusqlite::ErrorCode;
use uuid::Uuid;

use super::{CacheError, Write};

/// Which row a write was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Customer(Uuid),
    Status(Uuid),
    Workflow(Uuid),
    Event {
        id: String,
        customer_id: Option<Uuid>,
    },
    Upload {
        customer_id: Uuid,
        document_type: String,
        sha256: String,
    },
    Timeline(Uuid),
    Setting(String),
    /// The emptying of every table (another API or key).
    Clear,
    /// The pruning of old events and timeline lines (tried again at the next prune).
    Prune,
}

impl Row {
    /// The row a write stores; `None` for a flush, which stores nothing.
    pub fn of(write: &Write) -> Option<Row> {
        Some(match write {
            Write::Customer { summary, .. } => Row::Customer(summary.id),
            Write::Status { customer_id, .. } | Write::Checked { customer_id, .. } => {
                Row::Status(*customer_id)
            }
            Write::Workflow { customer_id, .. } => Row::Workflow(*customer_id),
            Write::Event { id, customer_id, .. } => Row::Event {
                id: id.clone(),
                customer_id: *customer_id,
            },
            Write::Upload {
                customer_id,
                document_type,
                sha256,
                ..
            } => Row::Upload {
                customer_id: *customer_id,
                document_type: document_type.clone(),
                sha256: sha256.clone(),
            },
            Write::Timeline { customer_id, .. } => Row::Timeline(*customer_id),
            Write::Setting { key, .. } => Row::Setting(key.clone()),
            Write::Clear => Row::Clear,
            Write::Prune { .. } => Row::Prune,
            Write::Flush(_) => return None,
        })
    }

    /// The customer the row belongs to, if any.
    pub fn customer_id(&self) -> Option<Uuid> {
        match self {
            Row::Customer(id) | Row::Status(id) | Row::Workflow(id) | Row::Timeline(id) => Some(*id),
            Row::Upload { customer_id, .. } => Some(*customer_id),
            Row::Event { customer_id, .. } => *customer_id,
            Row::Setting(_) | Row::Clear | Row::Prune => None,
        }
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Row::Customer(id) => write!(f, "customer {id}'s row (customers)"),
            Row::Status(id) => write!(f, "customer {id}'s status (statuses)"),
            Row::Workflow(id) => write!(f, "customer {id}'s workflow (overview)"),
            Row::Event { id, .. } => write!(f, "webhook event {id} (webhook_events)"),
            Row::Upload {
                customer_id,
                document_type,
                sha256,
            } => {
                let sha = sha256.get(..12).unwrap_or(sha256);
                write!(
                    f,
                    "customer {customer_id}'s upload of {document_type} {sha} (uploads)"
                )
            }
            Row::Timeline(id) => write!(f, "a timeline line of customer {id} (timeline)"),
            Row::Setting(key) => write!(f, "the setting {key} (settings)"),
            Row::Clear => write!(f, "the emptying of every table"),
            Row::Prune => write!(f, "the pruning of rows past --retain-days"),
        }
    }
}

/// Rows lost for one reason: a single row the database refused (a constraint, a trigger), or
/// every row of a batch the cache could not store at all (disk full, read-only, locked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub rows: Vec<Row>,
    /// SQLite's words.
    pub reason: String,
}

/// Whether a write failed because the cache as a whole cannot store anything now, rather than
/// because the database refused this one row: then trying the other rows one by one would
/// only fail the same way, once each.
pub(super) fn cache_is_failing(err: &CacheError) -> bool {
    match err {
        CacheError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => !matches!(
            e.code,
            ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch
        ),
        _ => false,
    }
}

/// SQLite's reason, without the cache's own wording around it, and what it most likely means
/// for the disk in plain words where SQLite's are obscure ("disk I/O error" is what a file
/// system gone read-only after an error answers).
pub(super) fn reason(err: &CacheError) -> String {
    match err {
        CacheError::Sqlite(e @ rusqlite::Error::SqliteFailure(failure, _)) => match failure.code {
            ErrorCode::SystemIoFailure => {
                format!("{e}: the disk failed a read or a write; is its file system read-only or failing?")
            }
            ErrorCode::ReadOnly => {
                format!("{e}: the cache cannot write its file (read-only, moved or locked?)")
            }
            _ => e.to_string(),
        },
        CacheError::Sqlite(e) => e.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::*;

    fn failure(code: i32) -> CacheError {
        CacheError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    /// SQLite says "disk I/O error" when the file system went read-only under it (issue 17's
    /// disk campaign): the reason keeps SQLite's words and says what they likely mean.
    #[test]
    fn a_failing_disk_is_named_in_plain_words() {
        let io = reason(&failure(ffi::SQLITE_IOERR));
        assert!(io.contains("disk I/O error"), "{io}");
        assert!(io.contains("read-only or failing"), "{io}");
        assert!(reason(&failure(ffi::SQLITE_READONLY)).contains("cannot write its file"));
        let full = reason(&failure(ffi::SQLITE_FULL));
        assert!(
            full.contains("database or disk is full") && !full.contains("read-only"),
            "{full}"
        );
    }
}
