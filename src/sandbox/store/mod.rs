//! The sandbox's storage: one SQLite connection owned by one dedicated thread, which runs every
//! command as a transaction and then updates the in-memory copy that all reads use. The async
//! runtime never touches the database: it sends jobs and awaits their answers.

pub(crate) mod load;
pub mod schema;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rusqlite::Connection;
use tokio::sync::{Notify, mpsc, oneshot};

use super::memory::{ReadModel, TenantId, TenantState};
use crate::domain::Strategy;
use crate::sandbox::clock::{TimeError, Timing};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database was written by a newer kycdash (schema {found}; this build knows up to {supported})"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("the database holds data this build cannot read ({0})")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("a store job failed unexpectedly; its changes were rolled back")]
    JobPanicked,
    #[error("the database {path} is in use by another kycdash sandbox; stop it or pass another --db")]
    InUse { path: String },
    #[error("cannot open the database at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
}

impl From<TimeError> for StoreError {
    fn from(err: TimeError) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    File(PathBuf),
    /// Nothing survives the process.
    Memory,
}

impl DbLocation {
    pub fn parse(value: &str) -> Self {
        if value == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(value))
        }
    }
}

/// A tenant as configured: its key's derived id and its default strategy.
#[derive(Debug, Clone)]
pub struct TenantSeed {
    pub id: TenantId,
    pub default_strategy: Strategy,
}

/// Wake-ups for the background workers, rung by jobs that give them work.
#[derive(Debug, Default)]
pub struct Signals {
    pub deliveries: Notify,
    pub timers: Notify,
}

type Job = Box<dyn FnOnce(&mut StoreState) + Send>;

/// The thread that owns the connection.
pub struct StoreThread(std::thread::JoinHandle<()>);

impl StoreThread {
    /// Waits until the thread has closed the database (every `Store` handle must be gone).
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the store thread panicked");
        }
    }
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    memory: Arc<RwLock<ReadModel>>,
    jobs: mpsc::UnboundedSender<Job>,
    pub signals: Arc<Signals>,
}

/// What a job gets: the connection and the memory it must keep in step.
pub struct StoreState {
    pub(crate) conn: Connection,
    pub(crate) memory: Arc<RwLock<ReadModel>>,
    pub(crate) signals: Arc<Signals>,
    pub(crate) timing: Timing,
}

impl StoreState {
    /// Reads the in-memory copy from the database again: after a transaction that had
    /// already updated it was rolled back.
    pub fn reload_memory(&mut self) -> Result<(), StoreError> {
        let fresh = load::memory(&self.conn)?;
        *self
            .memory
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    pub fn memory(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.memory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn memory_mut(&self) -> RwLockWriteGuard<'_, ReadModel> {
        self.memory
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of one tenant's state, to work on while the memory stays readable.
    pub fn tenant(&self, tenant: &TenantId) -> Option<TenantState> {
        self.memory().tenants.get(tenant).cloned()
    }
}

impl Store {
    /// Opens (or creates) the database, brings its schema up to date, registers the tenants,
    /// loads everything into memory and starts the store thread.
    /// The returned thread handle ends once every `Store` handle is dropped.
    pub fn open(
        location: &DbLocation,
        tenants: &[TenantSeed],
        timing: Timing,
    ) -> Result<(Store, StoreThread), StoreError> {
        let mut conn = match location {
            DbLocation::Memory => Connection::open_in_memory(),
            DbLocation::File(path) => Connection::open(path),
        }
        .map_err(|source| StoreError::Open {
            path: match location {
                DbLocation::Memory => ":memory:".into(),
                DbLocation::File(path) => path.display().to_string(),
            },
            source,
        })?;
        if let DbLocation::File(path) = location {
            // One sandbox per database: a second one would serve a stale copy in memory.
            conn.busy_timeout(std::time::Duration::ZERO)?;
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|err| match err.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                        StoreError::InUse {
                            path: path.display().to_string(),
                        }
                    }
                    _ => err.into(),
                })?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        for tenant in tenants {
            conn.execute(
                "INSERT INTO tenants (id, default_strategy) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET default_strategy = excluded.default_strategy",
                (&tenant.id.0, tenant.default_strategy.as_str()),
            )?;
        }
        // A delivery in flight when the last process stopped may or may not have arrived:
        // at-least-once means sending it again.
        conn.execute(
            "UPDATE deliveries SET status = 'PENDING' WHERE status = 'IN_FLIGHT'",
            [],
        )?;
        let memory = load::memory(&conn)?;

        let memory = Arc::new(RwLock::new(memory));
        let signals = Arc::new(Signals::default());
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let mut db = StoreState {
            conn,
            memory: memory.clone(),
            signals: signals.clone(),
            timing,
        };
        let thread = std::thread::Builder::new()
            .name("kycdash-store".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    job(&mut db);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the store thread: {e}")))?;
        Ok((
            Store {
                memory,
                jobs,
                signals,
            },
            StoreThread(thread),
        ))
    }

    /// Runs `job` on the store thread and returns its answer.
    pub async fn run<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut StoreState) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(move |db| {
                // A panicking job rolls its transaction back (the transaction is dropped) and
                // fails alone; the store goes on serving.
                let result = catch_unwind(AssertUnwindSafe(|| job(db))).map_err(|_| StoreError::JobPanicked);
                if !db.conn.is_autocommit() {
                    // A job that ended inside a transaction (it panicked mid-command): undo it
                    // on the disk and in memory, so the next job starts clean.
                    let _ = db.conn.execute_batch("ROLLBACK");
                    if let Err(err) = db.reload_memory() {
                        tracing::error!("reloading the sandbox's state failed: {err}");
                    }
                }
                let _ = reply.send(result);
            }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Reads the in-memory state.
    pub fn read<R>(&self, read: impl FnOnce(&ReadModel) -> R) -> R {
        let memory = self
            .memory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&memory)
    }
}
