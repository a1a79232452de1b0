//! Checkpoints beside the writer. SQLite's automatic checkpoint runs inside whichever commit
//! crosses its threshold, stalling that batch (80–200 ms of writes and fsyncs were measured).
//! Here a thread with its own connection copies the WAL back into the database instead
//! (PASSIVE: commits go on meanwhile), once writes pause or the WAL has grown by
//! [`CHECKPOINT_FRAMES`]; a checkpoint inside a commit only backstops a WAL that grows past
//! [`WAL_CAP_PAGES`].
//!
//! A checkpoint beside the writer never catches up with it, and SQLite only starts the WAL
//! over once everything in it has been copied. Any lull in writes lets that happen for free.
//! Without one, past [`RESTART_AT_PAGES`], the checkpoint thread catches up once more and
//! asks the store thread to finish between two batches: only the frames written since are
//! left to copy, a pause of milliseconds (mostly two fsyncs) instead of a whole checkpoint.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::{BUSY_TIMEOUT, StoreError};

/// A checkpoint waits for writes to pause this long (as the checkpoint thread sees them, so
/// up to [`LOOK_EVERY`] more): one running beside busy commits slows them, its fsyncs
/// contending with the WAL's appends (p99.9 of 10,000 creates: 20–27 ms with a checkpoint
/// every 250 ms, 3–10 ms when they wait for a pause).
pub(crate) const CHECKPOINT_QUIET: Duration = Duration::from_millis(100);
/// ... unless this many frames (32 MiB, about 5,000 creates: each writes 1.4–1.6 pages) wait
/// to be copied. Under writes that never pause, the longer the wait the bigger the
/// checkpoint: p99.9 of 100,000 creates
/// was 100 ms checkpointing every 2 s, 50 ms every 1 s, and 22–25 ms at 4,096 or 8,192
/// frames (about every 0.25–0.5 s at full speed). A shorter burst is never slowed.
pub(crate) const CHECKPOINT_FRAMES: i64 = 8_192;
/// The WAL size (in 4 KiB pages) past which the store thread starts it over itself: 32 MiB,
/// about 5,000 creates. Also the size the WAL file is cut back to (cutting a 150 MB file
/// back took 60 ms of a commit).
pub(crate) const RESTART_AT_PAGES: i64 = 8_192;
/// The WAL size at which SQLite checkpoints inside a commit anyway, should the checkpoint
/// thread have stopped: 256 MiB.
pub(crate) const WAL_CAP_PAGES: i64 = 65_536;
/// While commits come, the checkpoint thread looks at them this often (waking it after every
/// commit instead cost the store thread a futex wake and both threads a context switch per
/// batch, and a create's latency is mostly the store thread's time).
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// What the store thread tells the checkpoint thread, without waking it.
#[derive(Default)]
struct Writes {
    /// Batches the store thread has run so far (committed or not).
    commits: AtomicU64,
    /// The WAL's length in frames after the last commit.
    wal_frames: AtomicI64,
    /// The checkpoint thread waits for a wake-up: the next commit must send one.
    asleep: AtomicBool,
    /// Set by the checkpoint thread (which then stands aside), cleared by the store thread.
    restart: AtomicBool,
}

/// The checkpoint thread, as the store thread sees it.
pub(super) struct Checkpointer {
    wake: SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
    writes: Arc<Writes>,
    /// The checkpoint thread is gone and that has been logged.
    gone: Cell<bool>,
}

impl Checkpointer {
    /// Starts the checkpoint thread on `conn`, and has `writer` tell it how long the WAL is
    /// after each commit. That hook replaces SQLite's automatic checkpoint, so the hook does
    /// its job at [`WAL_CAP_PAGES`].
    pub(super) fn start(writer: &mut Connection, conn: Connection) -> Result<Self, StoreError> {
        let writes = Arc::new(Writes::default());
        let seen = writes.clone();
        writer.wal_hook(Some(move |wal: &mut Wal, frames: c_int| {
            let frames = i64::from(frames);
            seen.wal_frames.store(frames, Ordering::Relaxed);
            if frames >= WAL_CAP_PAGES {
                wal.checkpoint()?;
            }
            Ok(())
        }))?;
        let (wake, woken) = mpsc::sync_channel(1);
        let told = writes.clone();
        let thread = std::thread::Builder::new()
            .name("kycdash-checkpoint".into())
            .spawn(move || serve(&conn, &woken, &told))
            .map_err(|err| StoreError::Thread(format!("the checkpoint thread: {err}")))?;
        Ok(Self {
            wake,
            thread,
            writes,
            gone: Cell::new(false),
        })
    }

    /// Called by the store thread after each batch; never waits for the checkpoint thread,
    /// and wakes it only when it sleeps.
    pub(super) fn after_commit(&self, conn: &Connection) {
        if self.writes.restart.load(Ordering::Acquire) {
            start_wal_over(conn);
            self.writes.restart.store(false, Ordering::Release);
        }
        self.writes.commits.fetch_add(1, Ordering::SeqCst);
        if !self.writes.asleep.swap(false, Ordering::SeqCst) {
            return;
        }
        if let Err(TrySendError::Disconnected(())) = self.wake.try_send(())
            && !self.gone.replace(true)
        {
            tracing::error!(
                "the sandbox's checkpoint thread has stopped; SQLite will checkpoint inside commits"
            );
        }
    }

    /// Lets the checkpoint thread finish and close its connection.
    pub(super) fn stop(self) {
        drop(self.wake);
        if self.thread.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

/// The checkpoint thread: after commits, once they pause for [`CHECKPOINT_QUIET`] or leave
/// [`CHECKPOINT_FRAMES`] to copy, until the store closes.
fn serve(conn: &Connection, woken: &Receiver<()>, writes: &Writes) {
    // Frames of the WAL the last checkpoint had copied.
    let mut copied = 0;
    // Batches run before this thread first looked (before it started) count as unseen.
    let mut looked_at = 0;
    loop {
        // Sleep until a commit comes, unless one came since the last look. Either the store
        // thread sees `asleep` and sends a wake-up, or this thread sees its commit.
        writes.asleep.store(true, Ordering::SeqCst);
        if writes.commits.load(Ordering::SeqCst) == looked_at && woken.recv().is_err() {
            return;
        }
        writes.asleep.store(false, Ordering::SeqCst);
        // A wake-up both sent and made needless (this thread saw the commit first) would end
        // the next sleep early.
        while woken.try_recv().is_ok() {}
        looked_at = writes.commits.load(Ordering::SeqCst);
        if writes.restart.load(Ordering::Acquire) {
            // The store thread starts the WAL over after its next batch. Should none come,
            // copy what came in since, so that it does not wait for the next write.
            if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(CHECKPOINT_QUIET) {
                return;
            }
            if writes.restart.load(Ordering::Acquire)
                && writes.commits.load(Ordering::SeqCst) == looked_at
                && let Err(err) = checkpoint(conn, "PASSIVE")
            {
                tracing::warn!("checkpointing the sandbox's database failed: {err}");
            }
            continue;
        }
        let mut last_commit = Instant::now();
        loop {
            let frames = writes.wal_frames.load(Ordering::Relaxed);
            // Fewer frames than were copied: the WAL has started over since.
            let waiting = if frames < copied { frames } else { frames - copied };
            if waiting >= CHECKPOINT_FRAMES || last_commit.elapsed() >= CHECKPOINT_QUIET {
                break;
            }
            match woken.recv_timeout(LOOK_EVERY) {
                // A wake-up sent before this thread was awake again: look once more.
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                // The store is closing; its own close checkpoints the rest.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let commits = writes.commits.load(Ordering::SeqCst);
            if commits != looked_at {
                // Another commit: wait for the pause again.
                (looked_at, last_commit) = (commits, Instant::now());
            }
        }
        match checkpoint(conn, "PASSIVE") {
            Ok((frames, _)) if frames > RESTART_AT_PAGES => {
                // Catch up once more (only what came in during the first pass), so that the
                // store thread's share is a few hundred frames.
                if let Err(err) = checkpoint(conn, "PASSIVE") {
                    tracing::warn!("checkpointing the sandbox's database failed: {err}");
                }
                copied = 0;
                writes.restart.store(true, Ordering::Release);
            }
            Ok((_, done)) => copied = done,
            Err(err) => tracing::warn!("checkpointing the sandbox's database failed: {err}"),
        }
    }
}

/// Copies the rest of the WAL and starts it over, on the writer's connection between two
/// batches. Never waits for a reader outside this process (a `sqlite3` shell): the
/// checkpoint then ends as a passive one, and the WAL starts over another time.
fn start_wal_over(conn: &Connection) {
    let restarted = conn
        .busy_timeout(Duration::ZERO)
        .and_then(|()| checkpoint(conn, "RESTART"));
    if let Err(err) = conn.busy_timeout(BUSY_TIMEOUT) {
        tracing::warn!("restoring the database's busy timeout failed: {err}");
    }
    if let Err(err) = restarted {
        tracing::warn!("starting the sandbox's WAL over failed: {err}");
    }
}

/// Runs a checkpoint; returns the frames the WAL held and how many of them are copied.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64)> {
    let started = Instant::now();
    let (busy, frames, copied) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    if busy != 0 && mode != "PASSIVE" {
        tracing::warn!("a reader outside this sandbox kept its WAL from starting over");
    }
    tracing::trace!(
        mode,
        frames,
        copied,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "checkpointed the sandbox's WAL"
    );
    Ok((frames, copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(conn: &Connection, rows: usize) {
        for row in 0..rows {
            conn.execute(
                "INSERT INTO ballast (x) VALUES (?1)",
                [format!("{row}-{}", "x".repeat(1000))],
            )
            .unwrap();
        }
    }

    #[test]
    fn starting_the_wal_over_copies_what_came_after_the_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.execute_batch("CREATE TABLE ballast (x TEXT)").unwrap();
        let beside = Connection::open(&path).unwrap();

        write(&writer, 200);
        let (_, copied_beside) = checkpoint(&beside, "PASSIVE").unwrap();
        // Written after the checkpoint beside: the WAL can no longer start over by itself.
        write(&writer, 50);
        start_wal_over(&writer);
        write(&writer, 1);

        let (frames_now, _) = checkpoint(&beside, "PASSIVE").unwrap();
        assert!(copied_beside > 50, "{copied_beside} frames before");
        assert!(
            frames_now < 10,
            "the WAL did not start over: {frames_now} frames after one more row"
        );
    }
}
