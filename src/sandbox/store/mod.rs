//! The sandbox's storage: one SQLite connection owned by one dedicated thread, which runs every
//! command and then updates the in-memory copy that all reads use. The async runtime never
//! touches the database: it sends jobs and awaits their answers.
//!
//! Group commit: the thread takes every job waiting in its queue (up to [`MAX_BATCH`]) and runs
//! them in one transaction, each in its own savepoint, so one commit (one write of the pages
//! they share to the WAL) serves them all. No job is answered before that commit: a caller told
//! "created" can rely on it. A job that panics is rolled back to its savepoint alone; a commit
//! that fails rolls the whole batch back, answers every job in it with the error and reloads
//! the in-memory copy from the disk. Between a job and its batch's commit (microseconds to a
//! few milliseconds) other requests' reads may already see its change, while the caller that
//! made it still waits: the early release a group-commit database makes too. Only a failed
//! commit (a full disk) makes such a read wrong, and the reload then takes the change back.
//!
//! Checkpoints: SQLite's automatic checkpoint would run inside whichever commit crosses its
//! threshold, stalling that batch (80–200 ms of writes and fsyncs were measured). A second
//! thread with its own connection checkpoints instead (PASSIVE: commits go on meanwhile); see
//! `Checkpointer` for how the WAL still gets to start over. SQLite's automatic checkpoint only
//! backstops a WAL that grows past [`WAL_CAP_PAGES`].

pub(crate) mod load;
pub mod schema;

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{Notify, oneshot};

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
    #[error("the database could not commit ({0}); nothing of this request was kept")]
    Commit(String),
    #[error("the database {path} is in use by another kycdash sandbox; stop it or pass another --db")]
    InUse { path: String },
    #[error("cannot open the database at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: String, source: std::io::Error },
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

/// The most jobs one transaction commits. A job takes tens of microseconds, so a full batch
/// holds its first job's answer back by a few milliseconds at most.
pub const MAX_BATCH: usize = 128;
/// How often, at most, the WAL is checkpointed while commits come in.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// The WAL size (in 4 KiB pages) past which the store thread starts it over itself: 32 MiB,
/// about 10,000 creates at full speed. Below it, the WAL starts over for free at the first
/// commit after a checkpoint that caught up, which any lull in writes allows. Also the size the
/// WAL file is cut back to (cutting a 150 MB file back took 60 ms of a commit).
pub const RESTART_AT_PAGES: i64 = 8_192;
/// The WAL size at which SQLite checkpoints inside a commit anyway, should the checkpoint
/// thread have stopped: 256 MiB.
pub const WAL_CAP_PAGES: i64 = 65_536;

type Job = Box<dyn Task>;

/// Work for the store thread, answered only once its batch has committed (or failed to).
trait Task: Send {
    /// Runs the work; what it hands back sends the answer once the batch is settled.
    fn run(self: Box<Self>, db: &mut StoreState) -> Ran;
    /// Answers with `err` without running.
    fn refuse(self: Box<Self>, err: StoreError);
}

/// What running a task left behind.
struct Ran {
    /// Sends the task's answer, or the commit's failure in its place.
    answer: Box<dyn FnOnce(Option<StoreError>) + Send>,
    /// The task panicked (its answer is already the panic's error).
    panicked: bool,
}

/// A closure and where its caller awaits the answer.
struct Answering<F, R> {
    job: F,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Task for Answering<F, R>
where
    F: FnOnce(&mut StoreState) -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, db: &mut StoreState) -> Ran {
        let Answering { job, reply } = *self;
        let result = catch_unwind(AssertUnwindSafe(|| job(db))).map_err(|_| StoreError::JobPanicked);
        Ran {
            panicked: result.is_err(),
            answer: Box::new(move |failed| {
                let _ = reply.send(match failed {
                    Some(err) => Err(err),
                    None => result,
                });
            }),
        }
    }

    fn refuse(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(err));
    }
}

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
        // One sandbox per database: a second one would serve a stale copy in memory.
        let claim = match location {
            DbLocation::File(path) => Some(claim(path)?),
            DbLocation::Memory => None,
        };
        let mut conn = connect(location)?;
        if let DbLocation::File(_) = location {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "journal_size_limit", RESTART_AT_PAGES * 4096)?;
        }
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CAP_PAGES)?;
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
        let mut db = StoreState {
            conn,
            memory: memory.clone(),
            signals: signals.clone(),
            timing,
        };
        let checkpointer = match location {
            DbLocation::File(_) => Some(Checkpointer::start(connect(location)?)?),
            DbLocation::Memory => None,
        };
        let thread = std::thread::Builder::new()
            .name("kycdash-store".into())
            .spawn(move || {
                serve(&mut db, &queue, checkpointer.as_ref());
                if let Some(checkpointer) = checkpointer {
                    checkpointer.stop();
                }
                // The last connection to close checkpoints what is left; only then may
                // another sandbox have the database.
                drop(db);
                drop(claim);
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

/// The store thread: batches until every handle is gone.
fn serve(db: &mut StoreState, queue: &Receiver<Job>, checkpointer: Option<&Checkpointer>) {
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        run_batch(db, batch);
        if let Some(checkpointer) = checkpointer {
            checkpointer.after_commit(&db.conn);
        }
    }
}

/// Opens a connection to the database.
fn connect(location: &DbLocation) -> Result<Connection, StoreError> {
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
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Claims the database for this process: an advisory lock on `<db>.lock`, held until the
/// store thread has closed the database. (SQLite's own exclusive locking mode would also keep
/// out the checkpointer's connection.)
fn claim(path: &Path) -> Result<File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    match crate::lockfile::try_hold(&lock_path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(StoreError::InUse {
            path: path.display().to_string(),
        }),
        Err(source) => Err(StoreError::Lock {
            path: lock_path.display().to_string(),
            source,
        }),
    }
}

/// Copies the WAL back into the database on a thread of its own, with its own connection, so
/// that no commit waits for the bulk of a checkpoint's writes and fsyncs.
///
/// A checkpoint running beside the writer never catches up with it, and SQLite only starts
/// the WAL over once everything in it has been copied. So when the WAL has grown past
/// [`RESTART_AT_PAGES`], the checkpoint thread stands aside and asks the store thread to
/// finish the job between two batches: by then only the frames written since the last
/// checkpoint are left to copy, a pause of milliseconds instead of a whole checkpoint.
struct Checkpointer {
    wake: SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
    /// Set by the checkpoint thread (which then stands aside), cleared by the store thread.
    restart: Arc<AtomicBool>,
}

impl Checkpointer {
    fn start(conn: Connection) -> Result<Self, StoreError> {
        let (wake, woken) = mpsc::sync_channel(1);
        let restart = Arc::new(AtomicBool::new(false));
        let asked = restart.clone();
        let thread = std::thread::Builder::new()
            .name("kycdash-checkpoint".into())
            .spawn(move || Self::serve(&conn, &woken, &asked))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            wake,
            thread,
            restart,
        })
    }

    /// Called by the store thread after each commit; never blocks on the checkpoint thread.
    fn after_commit(&self, conn: &Connection) {
        if self.restart.load(Ordering::Acquire) {
            // Never wait here for a reader outside this process (a `sqlite3` shell): the
            // checkpoint then ends as a passive one and the WAL starts over another time.
            let restarted = conn
                .busy_timeout(Duration::ZERO)
                .and_then(|()| checkpoint(conn, "RESTART"));
            if let Err(err) = conn.busy_timeout(Duration::from_secs(5)) {
                tracing::warn!("restoring the database's busy timeout failed: {err}");
            }
            if let Err(err) = restarted {
                tracing::warn!("restarting the sandbox's WAL failed: {err}");
            }
            self.restart.store(false, Ordering::Release);
        }
        let _ = self.wake.try_send(());
    }

    fn stop(self) {
        drop(self.wake);
        if self.thread.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }

    /// Checkpoints after commits, at most once per [`CHECKPOINT_EVERY`], until the store
    /// closes.
    fn serve(conn: &Connection, woken: &Receiver<()>, restart: &AtomicBool) {
        while woken.recv().is_ok() {
            if restart.load(Ordering::Acquire) {
                continue;
            }
            let due = Instant::now() + CHECKPOINT_EVERY;
            while let Some(left) = due.checked_duration_since(Instant::now()) {
                match woken.recv_timeout(left) {
                    Ok(()) => continue,
                    Err(RecvTimeoutError::Timeout) => break,
                    // The store is closing; its own close checkpoints the rest.
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            match checkpoint(conn, "PASSIVE") {
                Ok(frames) if frames > RESTART_AT_PAGES => {
                    // Catch up once more (only what came in during the first pass), so that
                    // the store thread's share is a few hundred frames.
                    if let Err(err) = checkpoint(conn, "PASSIVE") {
                        tracing::warn!("checkpointing the sandbox's database failed: {err}");
                    }
                    restart.store(true, Ordering::Release);
                }
                Ok(_) => {}
                Err(err) => tracing::warn!("checkpointing the sandbox's database failed: {err}"),
            }
        }
    }
}

/// Runs a checkpoint; returns the frames the WAL held.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    let started = Instant::now();
    let (frames, copied) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    })?;
    tracing::trace!(
        mode,
        frames,
        copied,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "checkpointed the sandbox's WAL"
    );
    Ok(frames)
}

/// Runs `jobs` in one transaction, each in its own savepoint, commits, then answers them.
fn run_batch(db: &mut StoreState, jobs: Vec<Job>) {
    if let Err(err) = exec(&db.conn, "BEGIN IMMEDIATE") {
        tracing::error!(
            "cannot begin a transaction for {} sandbox jobs: {err}",
            jobs.len()
        );
        for job in jobs {
            job.refuse(StoreError::Commit(format!("cannot begin a transaction: {err}")));
        }
        return;
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        answers.push(run_in_savepoint(db, job));
    }
    let failure = match exec(&db.conn, "COMMIT") {
        Ok(()) => None,
        Err(err) => {
            tracing::error!("committing {} sandbox jobs failed: {err}", answers.len());
            if let Err(rollback) = db.conn.execute_batch("ROLLBACK") {
                tracing::error!("rolling back the failed batch failed: {rollback}");
            }
            reload_or_log(db);
            Some(err.to_string())
        }
    };
    for answer in answers {
        answer(failure.clone().map(StoreError::Commit));
    }
}

/// Runs one job of a batch. A job that panics, or leaves a savepoint of its own open, is
/// rolled back to where it began (on the disk and in memory); the rest of the batch stands.
fn run_in_savepoint(db: &mut StoreState, job: Job) -> Box<dyn FnOnce(Option<StoreError>) + Send> {
    if let Err(err) = exec(&db.conn, "SAVEPOINT job") {
        tracing::error!("cannot open a savepoint for a sandbox job: {err}");
        job.refuse(StoreError::Sqlite(err));
        return Box::new(|_| {});
    }
    let ran = job.run(db);
    let settled = if ran.panicked {
        db.conn
            .execute_batch("ROLLBACK TO job; RELEASE job")
            .map(|()| reload_or_log(db))
    } else {
        exec(&db.conn, "RELEASE job")
    };
    if let Err(err) = settled {
        tracing::error!("closing a sandbox job's savepoint failed: {err}");
    }
    ran.answer
}

fn reload_or_log(db: &mut StoreState) {
    if let Err(err) = db.reload_memory() {
        tracing::error!("reloading the sandbox's state failed: {err}");
    }
}

/// Runs a statement without parameters, prepared once per connection.
pub(crate) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store's state on a fresh in-memory database, for running batches by hand.
    fn state() -> StoreState {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        schema::migrate(&mut conn).unwrap();
        let memory = load::memory(&conn).unwrap();
        StoreState {
            conn,
            memory: Arc::new(RwLock::new(memory)),
            signals: Arc::default(),
            timing: Timing::default(),
        }
    }

    type Answer<R> = oneshot::Receiver<Result<R, StoreError>>;

    fn job<R, F>(job: F) -> (Job, Answer<R>)
    where
        F: FnOnce(&mut StoreState) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        (Box::new(Answering { job, reply }), answer)
    }

    /// A job that adds a tenant on the disk and in memory, as a command would.
    fn add_tenant(name: &'static str) -> impl FnOnce(&mut StoreState) -> rusqlite::Result<usize> {
        move |db| {
            let added = db.conn.execute(
                "INSERT INTO tenants (id, default_strategy) VALUES (?1, 'CF_KYC')",
                [name],
            )?;
            db.memory_mut()
                .tenants
                .insert(TenantId(name.into()), TenantState::new(Strategy::CfKyc, 0));
            Ok(added)
        }
    }

    fn tenants_on_disk(db: &StoreState) -> Vec<String> {
        let mut stmt = db.conn.prepare("SELECT id FROM tenants ORDER BY id").unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn tenants_in_memory(db: &StoreState) -> Vec<String> {
        let mut names: Vec<String> = db.memory().tenants.keys().map(|t| t.0.clone()).collect();
        names.sort();
        names
    }

    fn answered<R>(mut answer: Answer<R>) -> Result<R, StoreError> {
        answer.try_recv().expect("the job was answered")
    }

    #[test]
    fn a_job_that_panics_is_undone_alone_and_the_rest_of_its_batch_commits() {
        let mut db = state();
        let (first, first_answer) = job(add_tenant("first"));
        let (panics, panic_answer) = job(|db: &mut StoreState| -> usize {
            let _ = add_tenant("half-done")(db);
            panic!("a bug in a command")
        });
        let (last, last_answer) = job(add_tenant("last"));

        run_batch(&mut db, vec![first, panics, last]);

        assert!(matches!(answered(first_answer), Ok(Ok(1))));
        assert!(matches!(answered(panic_answer), Err(StoreError::JobPanicked)));
        assert!(matches!(answered(last_answer), Ok(Ok(1))));
        assert!(db.conn.is_autocommit(), "the batch committed");
        assert_eq!(tenants_on_disk(&db), ["first", "last"]);
        assert_eq!(tenants_in_memory(&db), ["first", "last"]);
    }

    #[test]
    fn a_batch_that_cannot_commit_answers_every_job_with_the_failure_and_keeps_nothing() {
        let mut db = state();
        let (fine, fine_answer) = job(add_tenant("fine"));
        // A foreign key checked only at COMMIT stands in for a disk that fails just then.
        let (dooms, dooms_answer) = job(|db: &mut StoreState| {
            db.conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            db.conn.execute(
                "INSERT INTO customers (id, tenant_id, body, workflow) VALUES ('c', 'nobody', '{}', '{}')",
                [],
            )
        });

        run_batch(&mut db, vec![fine, dooms]);

        for answer in [answered(fine_answer), answered(dooms_answer)] {
            match answer {
                Err(StoreError::Commit(reason)) => assert!(reason.contains("FOREIGN KEY"), "{reason}"),
                other => panic!("expected the commit's failure, got {other:?}"),
            }
        }
        assert!(db.conn.is_autocommit(), "the batch was rolled back");
        assert!(tenants_on_disk(&db).is_empty());
        assert!(
            tenants_in_memory(&db).is_empty(),
            "memory was reloaded from the disk"
        );
    }

    #[test]
    fn no_job_is_answered_before_its_batch_commits() {
        let mut db = state();
        let (first, first_answer) = job(add_tenant("first"));
        let (looks, looks_answer) = job(move |db: &mut StoreState| {
            let mut first_answer = first_answer;
            let answered_yet = first_answer.try_recv().is_ok();
            (answered_yet, db.conn.is_autocommit(), first_answer)
        });

        run_batch(&mut db, vec![first, looks]);

        let (answered_yet, autocommit, first_answer) = answered(looks_answer).unwrap();
        assert!(!answered_yet, "the first job was answered before the commit");
        assert!(!autocommit, "the second job ran inside the batch's transaction");
        assert!(matches!(answered(first_answer), Ok(Ok(1))));
    }

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
