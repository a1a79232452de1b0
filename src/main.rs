//! The kycdash binary: parse the command line, run the chosen mode, report errors readably.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use kycdash::cli::{Cli, Command, SandboxArgs};
use kycdash::headless::{self, Failure, shutdown_signal};
use kycdash::sandbox::{self, DbLocation, SandboxConfig};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        let mut help = Cli::command();
        let _ = help.print_help();
        println!(
            "\nThe dashboard is not built yet. `kycdash watch` runs the sync engine headless and `kycdash sandbox` serves the sandbox API; \
             see README.md for a walk through the flows with curl."
        );
        return ExitCode::SUCCESS;
    };
    // `status` prints an answer: only problems belong beside it.
    let default_level = if matches!(command, Command::Status(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Sandbox(args) => runtime.block_on(serve_sandbox(args)).map_err(Failure::fatal),
        Command::Watch(args) => runtime.block_on(headless::watch(args)),
        Command::Status(args) => runtime.block_on(headless::status(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Where the sandbox keeps its database when `--db` is not given.
fn default_db_path() -> Result<PathBuf, String> {
    let dirs = directories::ProjectDirs::from("dev", "kycdash", "kycdash")
        .ok_or("cannot find a data directory (is $HOME set?); pass --db PATH")?;
    let dir = dirs.data_dir();
    std::fs::create_dir_all(dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}; pass --db PATH",
            dir.display()
        )
    })?;
    Ok(dir.join("sandbox.db"))
}

async fn serve_sandbox(args: SandboxArgs) -> Result<(), String> {
    let db = match &args.db {
        Some(path) => DbLocation::parse(&path.to_string_lossy()),
        None => DbLocation::File(default_db_path()?),
    };
    let config = SandboxConfig {
        listen: args.listen,
        db,
        api_keys: args.api_keys,
        rate_limit: args.rate_limit,
        ..SandboxConfig::ephemeral()
    };
    let running = sandbox::start(config).await.map_err(|e| e.to_string())?;
    println!("listening on {}", running.base_url());
    running.serve_until(shutdown_signal()).await;
    tracing::info!("the sandbox stopped");
    Ok(())
}
