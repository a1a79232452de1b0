//! A panic anywhere ends the process (SPEC §10): the terminal restored if the dashboard had
//! it, one line on stderr, the whole report in the log, exit 1. Without this, tokio ends only
//! the task that panicked and a thread's panic ends only that thread (the cache writer, the
//! sandbox's store), leaving a process that looks alive and does nothing.
//!
//! Exiting at once loses nothing promised: a webhook is answered only after its commit, and
//! SQLite's WAL leaves both databases whole.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

/// The log is a file (the dashboard's `kycdash.log`), not stderr: the whole report goes there.
static LOG_IS_A_FILE: AtomicBool = AtomicBool::new(false);
/// A panic is ending the process; a second one waits for it.
static ENDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread runs code whose panic is caught and answered ([`contained`]).
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook; once, at the start of `main`.
pub fn install() {
    #[cfg(debug_assertions)]
    trigger::read();
    std::panic::set_hook(Box::new(on_panic));
}

/// Says that the log now goes to a file, so the panic's whole report belongs there.
pub fn log_is_a_file() {
    LOG_IS_A_FILE.store(true, Ordering::SeqCst);
}

/// Runs `f`, turning its panic into `Err` instead of ending the process: for work whose panic
/// is answered where it happened (a sandbox job is rolled back and refused). The panic is
/// still logged.
pub fn contained<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    let outer = CONTAINED.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINED.set(outer);
    result
}

fn on_panic(info: &PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
        // One line, whatever the message holds.
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let place = info.location().map_or_else(
        || "an unknown place".to_string(),
        |l| format!("{}:{}", l.file(), l.line()),
    );
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
        _ => String::new(),
    };
    if CONTAINED.get() {
        tracing::error!("panic in thread '{thread}' at {place}, caught and answered: {message}{backtrace}");
        return;
    }
    if ENDING.swap(true, Ordering::SeqCst) {
        // Another thread is ending the process already; this one must not end it first (the
        // main thread's panic would exit 101) nor print a second line.
        loop {
            std::thread::park();
        }
    }
    // First, so that the line lands on a usable terminal.
    crate::tui::terminal::restore();
    if LOG_IS_A_FILE.load(Ordering::SeqCst) {
        tracing::error!("panic in thread '{thread}' at {place}: {message}{backtrace}");
    } else if !backtrace.is_empty() {
        // The log is stderr, where the line below says the rest.
        tracing::error!("backtrace of the panic in thread '{thread}':{backtrace}");
    }
    eprintln!("kycdash: internal error: {message} at {place}");
    std::process::exit(1);
}

/// Debug builds only, for the tests that prove the hook: `KYCDASH_TEST_PANIC=task` or
/// `thread` (read once, at `install`) makes [`test_trigger`] panic in a tokio task or a thread
/// a moment later.
#[cfg(debug_assertions)]
mod trigger {
    use std::sync::OnceLock;
    use std::time::Duration;

    static WHERE: OnceLock<Option<String>> = OnceLock::new();
    const DELAY: Duration = Duration::from_millis(100);

    pub(super) fn read() {
        WHERE.get_or_init(|| std::env::var("KYCDASH_TEST_PANIC").ok());
    }

    pub(super) fn fire() {
        match WHERE.get().and_then(|w| w.as_deref()) {
            Some("task") => {
                tokio::spawn(async {
                    tokio::time::sleep(DELAY).await;
                    panic!("KYCDASH_TEST_PANIC: a task panicked");
                });
            }
            Some("thread") => {
                let _ = std::thread::Builder::new()
                    .name("kycdash-test-panic".into())
                    .spawn(|| {
                        std::thread::sleep(DELAY);
                        panic!("KYCDASH_TEST_PANIC: a thread panicked");
                    });
            }
            _ => {}
        }
    }
}

/// Called by a mode once it runs, inside the runtime: panics as `KYCDASH_TEST_PANIC` asks, in
/// debug builds; nothing in release builds.
pub fn test_trigger() {
    #[cfg(debug_assertions)]
    trigger::fire();
}
