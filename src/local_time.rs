//! This machine's UTC offset, for times shown to people (SPEC §10, "one clock for people").
//! It is read once, before the async runtime starts threads: the `time` crate refuses to read
//! it from a process with several threads (another could be changing the environment).

use std::sync::OnceLock;

use time::{OffsetDateTime, UtcOffset};

static OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the offset now; call it first thing in `main`.
pub fn init() {
    offset();
}

/// This machine's offset (UTC if it cannot be read).
pub fn offset() -> UtcOffset {
    *OFFSET.get_or_init(|| UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC))
}

/// `at` on this machine's clock.
pub fn local(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(offset())
}
