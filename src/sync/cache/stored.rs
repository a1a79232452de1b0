//! Whether an event is in the cache already, for the receiver: the engine keeps only the
//! newest webhook ids in memory, and a repeat of an older one is told by this lookup.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::CacheError;

/// A read-only connection of its own to the cache (so the lookup waits for no other reader).
#[derive(Clone)]
pub struct StoredEvents {
    conn: Arc<Mutex<Connection>>,
}

impl StoredEvents {
    pub fn open(path: &Path) -> Result<StoredEvents, CacheError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| CacheError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(StoredEvents {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Whether event `id` is stored; `false` when the cache cannot say (the event is then
    /// applied again, which a status pull makes harmless, and stored once).
    pub async fn contains(&self, id: &str) -> bool {
        let (conn, id) = (self.conn.clone(), id.to_string());
        let looked = tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| "the lookup's connection was poisoned".to_string())?;
            conn.prepare_cached("SELECT 1 FROM webhook_events WHERE id = ?1")
                .and_then(|mut stmt| stmt.query_row([&id], |_| Ok(())).optional())
                .map(|found| found.is_some())
                .map_err(|err| err.to_string())
        })
        .await;
        match looked {
            Ok(Ok(found)) => found,
            Ok(Err(err)) => {
                tracing::warn!("cannot tell whether a webhook was stored before: {err}");
                false
            }
            Err(_) => false,
        }
    }
}
