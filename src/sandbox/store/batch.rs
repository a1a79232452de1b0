//! Group commit. The store thread takes every job waiting in its queue (up to [`MAX_BATCH`])
//! and runs them in one transaction, each in its own savepoint, so that one commit (one write
//! of the pages they share to the WAL) serves them all.
//!
//! - No job is answered before that commit. With `synchronous=NORMAL` a committed job survives
//!   the process crashing; an OS crash or a power cut can still lose the last commits.
//! - A job that panics is rolled back to its savepoint alone; the rest of its batch stands.
//! - A commit that fails, or a transaction SQLite rolls back by itself mid-batch (an I/O error,
//!   a full disk), answers the jobs it held with the failure and reloads the in-memory copy
//!   from the disk. Jobs still to run start a batch of their own.
//! - Between a job and its batch's commit (microseconds to a few milliseconds) other requests'
//!   reads may already see its change while the caller that made it still waits: the early
//!   release a group-commit database makes too. Only a failed commit makes such a read wrong,
//!   and the reload then takes the change back.
//!
//! Jobs must not end the transaction themselves (no BEGIN, COMMIT or ROLLBACK; savepoints are
//! fine, as rusqlite's `Connection::savepoint` and `UnitOfWork` use).

use std::sync::mpsc::Receiver;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::{StoreError, StoreState};

/// The most jobs one transaction commits. A job takes tens of microseconds, so a full batch
/// holds its first job's answer back by a few milliseconds at most.
pub(crate) const MAX_BATCH: usize = 128;

pub(super) type Job = Box<dyn Task>;

/// Sends a job's answer, or the batch's failure in its place.
type Answer = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// Work for the store thread, answered only once its batch has committed (or failed to).
pub(super) trait Task: Send {
    /// Runs the work; what it hands back sends the answer once the batch is settled.
    fn run(self: Box<Self>, db: &mut StoreState) -> Ran;
    /// Answers with `err` without running.
    fn refuse(self: Box<Self>, err: StoreError);
}

/// What running a task left behind.
pub(super) struct Ran {
    answer: Answer,
    /// The task panicked (its answer is already the panic's error).
    panicked: bool,
}

/// A closure and where its caller awaits the answer.
pub(super) struct Answering<F, R> {
    pub(super) job: F,
    pub(super) reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Task for Answering<F, R>
where
    F: FnOnce(&mut StoreState) -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(self: Box<Self>, db: &mut StoreState) -> Ran {
        let Answering { job, reply } = *self;
        // The job's panic is answered here, not the end of the process (crate::crash).
        let result = crate::crash::contained(|| job(db)).map_err(|_| StoreError::JobPanicked);
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

/// The store thread: batches until every handle is gone.
pub(super) fn serve(db: &mut StoreState, queue: &Receiver<Job>, checkpointer: Option<&Checkpointer>) {
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

/// Runs `jobs` in one transaction, each in its own savepoint, commits, then answers them.
fn run_batch(db: &mut StoreState, jobs: Vec<Job>) {
    if let Err(reason) = start_clean(db) {
        for job in jobs {
            job.refuse(StoreError::Commit(reason.clone()));
        }
        return;
    }
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
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        answers.push(run_in_savepoint(db, job));
        if db.conn.is_autocommit() {
            // SQLite rolled the whole transaction back by itself: what ran so far is undone.
            tracing::error!(
                "the database rolled back a batch of {} sandbox jobs",
                answers.len()
            );
            db.reload_or_mark_stale();
            settle(answers, Some("the database rolled the transaction back"));
            let rest: Vec<Job> = jobs.collect();
            if !rest.is_empty() {
                run_batch(db, rest);
            }
            return;
        }
    }
    match exec(&db.conn, "COMMIT") {
        Ok(()) => settle(answers, None),
        Err(err) => {
            tracing::error!("committing {} sandbox jobs failed: {err}", answers.len());
            if let Err(rollback) = db.conn.execute_batch("ROLLBACK") {
                tracing::error!("rolling back the failed batch failed: {rollback}");
            }
            db.reload_or_mark_stale();
            settle(answers, Some(&err.to_string()));
        }
    }
}

/// Makes sure a batch starts outside any transaction and with memory in step with the disk;
/// the reason it cannot otherwise.
fn start_clean(db: &mut StoreState) -> Result<(), String> {
    if !db.conn.is_autocommit() {
        // Left open by a rollback that failed: whatever it held was never answered as done.
        tracing::error!("a sandbox transaction was left open; rolling it back");
        if let Err(err) = db.conn.execute_batch("ROLLBACK") {
            return Err(format!("a transaction is stuck open: {err}"));
        }
        db.memory_stale = true;
    }
    if db.memory_stale {
        db.reload_memory()
            .map_err(|err| format!("the in-memory copy cannot be reloaded: {err}"))?;
    }
    Ok(())
}

fn settle(answers: Vec<Answer>, failure: Option<&str>) {
    for answer in answers {
        answer(failure.map(|reason| StoreError::Commit(reason.to_string())));
    }
}

/// Runs one job of a batch. A job that panics is rolled back to where it began, on the disk
/// and in memory.
fn run_in_savepoint(db: &mut StoreState, job: Job) -> Answer {
    if let Err(err) = exec(&db.conn, "SAVEPOINT job") {
        tracing::error!("cannot open a savepoint for a sandbox job: {err}");
        job.refuse(StoreError::Sqlite(err));
        return Box::new(|_| {});
    }
    let ran = job.run(db);
    if db.conn.is_autocommit() {
        // The transaction is gone (and the savepoint with it); `run_batch` answers for it.
        return ran.answer;
    }
    if ran.panicked {
        db.undo_to("job");
    } else if let Err(err) = exec(&db.conn, "RELEASE job") {
        tracing::error!("closing a sandbox job's savepoint failed: {err}");
    }
    ran.answer
}

/// Runs a statement without parameters, prepared once per connection.
pub(crate) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::domain::Strategy;
    use crate::sandbox::clock::Timing;
    use crate::sandbox::memory::{TenantId, TenantState};
    use crate::sandbox::store::{load, schema};

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
            memory_stale: false,
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

    #[test]
    fn when_the_database_drops_a_batch_its_jobs_hear_so_and_the_next_ones_still_run() {
        let mut db = state();
        let (first, first_answer) = job(add_tenant("first"));
        // What SQLite does by itself on an I/O error or a full disk: the whole transaction goes.
        let (drops, drops_answer) = job(|db: &mut StoreState| {
            add_tenant("second")(db)?;
            db.conn.execute_batch("ROLLBACK")?;
            Ok(1)
        });
        let (after, after_answer) = job(add_tenant("after"));

        run_batch(&mut db, vec![first, drops, after]);

        for answer in [answered(first_answer), answered(drops_answer)] {
            assert!(
                matches!(answer, Err(StoreError::Commit(_))),
                "expected the batch's failure, got {answer:?}"
            );
        }
        assert!(matches!(answered(after_answer), Ok(Ok(1))));
        assert_eq!(tenants_on_disk(&db), ["after"]);
        assert_eq!(tenants_in_memory(&db), ["after"]);
    }
}
