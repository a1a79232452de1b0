//! Advisory file locks that say "this process owns that": held while the file stays open, and
//! released by the operating system however the process ends.

use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;

/// Takes the lock on `path` (creating the file), or `None` when another process holds it.
pub fn try_hold(path: &Path) -> io::Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(err)) => Err(err),
    }
}
