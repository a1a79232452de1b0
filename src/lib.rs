//! kycdash: a live terminal dashboard and an embedded, stateful sandbox for a KYC compliance
//! API. The library holds everything; the binary only parses the command line and reports.

pub mod api;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod connection;
pub mod crash;
pub mod domain;
pub mod export;
pub mod headless;
pub mod local_time;
pub mod lockfile;
pub mod private;
pub mod sandbox;
pub mod secret;
pub mod sqlite;
pub mod sync;
pub mod tui;
