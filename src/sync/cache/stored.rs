//! Whether an event is in the cache already, for the receiver: the engine keeps only the
//! newest webhook ids in memory, and a repeat of an older one is told by this lookup.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

use super::CacheError;

type Ask = (String, oneshot::Sender<bool>);

/// A thread of its own with a read-only connection to the cache: lookups queue for it, so a
/// burst of webhooks takes no threads from the blocking pool and waits for no other reader.
#[derive(Clone)]
pub struct StoredEvents {
    asks: mpsc::Sender<Ask>,
}

impl StoredEvents {
    pub fn open(path: &Path) -> Result<StoredEvents, CacheError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| CacheError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (asks, queue) = mpsc::channel::<Ask>();
        std::thread::Builder::new()
            .name("kycdash-lookup".into())
            .spawn(move || {
                // Ends once every handle is gone.
                while let Ok((id, answer)) = queue.recv() {
                    let _ = answer.send(is_stored(&conn, &id));
                }
            })
            .map_err(|err| CacheError::ReadFailed(format!("cannot start the lookup thread: {err}")))?;
        Ok(StoredEvents { asks })
    }

    /// Whether event `id` is stored; `false` when the cache cannot say (the event is then
    /// applied again, which a status pull makes harmless, and stored once).
    pub async fn contains(&self, id: &str) -> bool {
        let (answer, answered) = oneshot::channel();
        if self.asks.send((id.to_string(), answer)).is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }
}

fn is_stored(conn: &Connection, id: &str) -> bool {
    let found = conn
        .prepare_cached("SELECT 1 FROM webhook_events WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |_| Ok(())).optional());
    match found {
        Ok(found) => found.is_some(),
        Err(err) => {
            tracing::warn!("cannot tell whether webhook {id} was stored before: {err}");
            false
        }
    }
}
