//! The command line: what a user can ask kycdash to do.

use clap::Parser;

/// A live terminal dashboard and an embedded, stateful sandbox for a KYC compliance API.
#[derive(Debug, Parser)]
#[command(name = "kycdash", version, about, long_about = None)]
pub struct Cli {}
