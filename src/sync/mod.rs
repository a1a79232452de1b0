//! The client side (SPEC §7): the engine that keeps a local picture of every customer's
//! onboarding in sync with the API — a SQLite cache, a tracker that mirrors each workflow in
//! the domain's state machine, status polling, a webhook receiver and a watched inbox folder.
//! The dashboard and the headless watcher see the API only through it.

pub mod backlog;
pub mod cache;
pub mod directory;
pub mod engine;
pub mod inbox;
pub mod metrics;
pub mod observation;
pub mod receiver;
pub mod recent_ids;
pub mod timeline;
pub mod tracker;

pub use engine::{
    AlertKind, Engine, EngineConfig, EngineError, EngineEvent, EngineHandle, EngineTiming, ReceiverConfig,
};

/// RFC 3339 with second precision, as every NDJSON line writes times.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
