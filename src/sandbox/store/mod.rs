//! The sandbox's storage: one SQLite connection owned by one dedicated thread, which runs every
//! command and then updates the in-memory copy that all reads use. The async runtime never
//! touches the database: it sends jobs and awaits their answers. The thread commits jobs in
//! batches (`batch`); a second thread keeps the WAL short (`checkpoint`).

mod batch;
mod checkpoint;
pub(crate) mod load;
pub mod schema;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Notify, oneshot};

pub(crate) use self::batch::exec;
use self::batch::{Answering, Job};
use self::checkpoint::{Checkpointer, RESTART_AT_PAGES};

use super::memory::{ReadModel, TenantId};
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
    #[error("the database could not commit ({0}); nothing of this request was kept")]
    Commit(String),
    #[error("the database {path} is in use by another kycdash sandbox; stop it or pass another --db")]
    InUse { path: String },
    #[error("cannot open the database at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot lock {path} (the sandbox's claim on its database): {source}")]
    Lock { path: String, source: std::io::Error },
    #[error("cannot make {path} readable by this user alone: {source}")]
    Private { path: String, source: std::io::Error },
    #[error("cannot start {0}")]
    Thread(String),
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

/// How long a statement waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    jobs: Sender<Job>,
    pub signals: Arc<Signals>,
}

/// What a job gets: the connection and the memory it must keep in step.
pub struct StoreState {
    pub(crate) conn: Connection,
    pub(crate) memory: Arc<RwLock<ReadModel>>,
    pub(crate) signals: Arc<Signals>,
    pub(crate) timing: Timing,
    /// The in-memory copy may hold changes the disk lost (its reload failed); the next batch
    /// reloads it before it runs.
    pub(crate) memory_stale: bool,
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
        self.memory_stale = false;
        Ok(())
    }

    /// Reloads the in-memory copy after a rollback; if that fails, it is marked stale and the
    /// next batch reloads it before it runs.
    pub(crate) fn reload_or_mark_stale(&mut self) {
        self.memory_stale = true;
        if let Err(err) = self.reload_memory() {
            tracing::error!("reloading the sandbox's state failed: {err}");
        }
    }

    /// Undoes everything since `SAVEPOINT name`, on the disk and in memory.
    pub(crate) fn undo_to(&mut self, savepoint: &str) {
        if let Err(err) = self
            .conn
            .execute_batch(&format!("ROLLBACK TO {savepoint}; RELEASE {savepoint}"))
        {
            tracing::error!("rolling back to the savepoint {savepoint} failed: {err}");
        }
        self.reload_or_mark_stale();
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
        let mut conn = connect(location)?;
        // One sandbox per database: a second one would serve a stale copy in memory.
        let claim = match location {
            DbLocation::File(path) => Some(claim(path)?),
            DbLocation::Memory => None,
        };
        if let DbLocation::File(_) = location {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "journal_size_limit", RESTART_AT_PAGES * 4096)?;
        }
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "foreign_keys", "ON")?;
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
        let (jobs, queue) = mpsc::channel::<Job>();
        let checkpointer = match location {
            DbLocation::File(_) => Some(Checkpointer::start(&mut conn, connect(location)?)?),
            DbLocation::Memory => None,
        };
        let mut db = StoreState {
            conn,
            memory: memory.clone(),
            signals: signals.clone(),
            timing,
            memory_stale: false,
        };
        let thread = std::thread::Builder::new()
            .name("kycdash-store".into())
            .spawn(move || {
                batch::serve(&mut db, &queue, checkpointer.as_ref());
                if let Some(checkpointer) = checkpointer {
                    checkpointer.stop();
                }
                // The last connection to close checkpoints what is left; only then may
                // another sandbox have the database.
                drop(db);
                drop(claim);
            })
            .map_err(|err| StoreError::Thread(format!("the store thread: {err}")))?;
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
            .send(Box::new(Answering { job, reply }))
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

/// Opens a connection to the database.
fn connect(location: &DbLocation) -> Result<Connection, StoreError> {
    if let DbLocation::File(path) = location {
        // Customers' data, and the webhook endpoints' secrets: this user's alone.
        crate::private::own_file(path).map_err(|source| StoreError::Private {
            path: path.display().to_string(),
            source,
        })?;
    }
    let conn = match location {
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
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Claims the database for this process: an advisory lock on `<db>.lock` (beside the file a
/// symbolic link leads to), held until the store thread has closed the database. SQLite's own
/// exclusive locking mode would also keep out the checkpoint thread's connection.
fn claim(path: &Path) -> Result<File, StoreError> {
    let failed = |path: &Path, source| StoreError::Lock {
        path: path.display().to_string(),
        source,
    };
    // The database file exists by now: opening the connection made it.
    let mut lock_path = std::fs::canonicalize(path)
        .map_err(|err| failed(path, err))?
        .into_os_string();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    match crate::lockfile::try_hold(&lock_path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(StoreError::InUse {
            path: path.display().to_string(),
        }),
        Err(source) => Err(failed(&lock_path, source)),
    }
}

/// A store in memory with one tenant ("t", CF_KYC by default), for tests of what runs on it.
#[cfg(test)]
pub(crate) fn open_with_one_tenant() -> (TenantId, Store, StoreThread) {
    let tenant = TenantId("t".into());
    let seed = TenantSeed {
        id: tenant.clone(),
        default_strategy: Strategy::CfKyc,
    };
    let (store, thread) =
        Store::open(&DbLocation::Memory, &[seed], Timing::default()).expect("an in-memory store opens");
    (tenant, store, thread)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn the_wal_is_checkpointed_beside_the_writer_and_one_sandbox_holds_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.db");
        let location = DbLocation::File(path.clone());
        let (store, thread) = Store::open(&location, &[], Timing::default()).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();

        assert!(matches!(
            Store::open(&location, &[], Timing::default()),
            Err(StoreError::InUse { .. })
        ));
        // About 2 MB of rows: far below the WAL size at which SQLite would checkpoint inside
        // a commit, so only the checkpoint thread can bring them into the database file.
        for batch in 0..20 {
            store
                .run(move |db| {
                    db.conn
                        .execute_batch("CREATE TABLE IF NOT EXISTS ballast (x TEXT)")
                        .unwrap();
                    for row in 0..100 {
                        db.conn
                            .execute(
                                "INSERT INTO ballast (x) VALUES (?1)",
                                [format!("{batch}-{row}-{}", "x".repeat(1000))],
                            )
                            .unwrap();
                    }
                })
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < before + 2_000_000 {
            assert!(
                Instant::now() < deadline,
                "the database file was never checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        drop(store);
        thread.join();
        let (_again, _thread) = Store::open(&location, &[], Timing::default()).unwrap();
    }
}
