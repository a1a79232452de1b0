//! The command line: what a user can ask kycdash to do.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::sandbox::ApiKey;

/// A live terminal dashboard and an embedded, stateful sandbox for a KYC compliance API.
#[derive(Debug, Parser)]
#[command(name = "kycdash", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the sandbox API on its own (for curl, your backend, your tests).
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// SQLite database file; `:memory:` keeps nothing. Defaults to sandbox.db in the data
    /// directory.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// An API key, each one a tenant, with its default strategy (CF_KYC when not given).
    /// Without any: one tenant with the key sk_test_kycdash.
    #[arg(long = "api-key", value_name = "KEY[:CF_KYC|:EXTERNAL_KYC]")]
    pub api_keys: Vec<ApiKey>,

    /// Cap each tenant at N requests per second (429 with Retry-After beyond).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: Option<u32>,
}
