//! The kycdash binary: parse the command line, run the chosen mode, report errors readably.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kycdash::cli::{Cli, Command, SandboxArgs};
use kycdash::connection::{Failure, shutdown_signal};
use kycdash::headless;
use kycdash::sandbox::{self, DbLocation, SandboxConfig};
use kycdash::tui;
use tracing_subscriber::EnvFilter;

/// mimalloc: a start of 100,000 customers is mostly small allocations, and glibc's malloc
/// spent a quarter of it in malloc and free (measured with perf) and kept freed memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before anything can panic: a panic in any task or thread ends the process with exit 1
    // and one line, the terminal restored.
    kycdash::crash::install();
    // Before any thread starts: the local offset cannot be read safely afterwards.
    kycdash::local_time::init();
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // The dashboard logs to kycdash.log in the data directory, never to the screen.
        return finish(run(tui::run(cli.dashboard)));
    };
    match &command {
        Command::Completions(args) => {
            let written = kycdash::cli::write_completions(args.shell, &mut std::io::stdout());
            return finish(printed(written, "the completion script"));
        }
        Command::Man => {
            let written = kycdash::cli::write_man_page(&mut std::io::stdout());
            return finish(printed(written, "the man page"));
        }
        _ => {}
    }
    // `status` and `export` print an answer: only problems belong beside it.
    let default_level = if matches!(command, Command::Status(_) | Command::Export(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    finish(match command {
        Command::Sandbox(args) => run(serve_sandbox(args)),
        Command::Watch(args) => run(headless::watch(args)),
        Command::Status(args) => run(headless::status(args)),
        Command::Export(args) => run(headless::export(args)),
        Command::Completions(_) | Command::Man => Ok(()),
    })
}

fn run(mode: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|err| Failure::fatal(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(mode)
}

/// What writing `what` to stdout came to; a reader that stopped reading (`| head`) took what
/// it wanted.
fn printed(written: std::io::Result<()>, what: &str) -> Result<(), Failure> {
    match written {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::fatal(format!("cannot write {what}: {err}")))
        }
        _ => Ok(()),
    }
}

/// One clear line on stderr and the exit code: 2 for usage and configuration, 1 for the rest.
fn finish(result: Result<(), Failure>) -> ExitCode {
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

/// Exit 2 when the configuration is what is wrong (a database another sandbox holds, an
/// address taken, a key given twice), as for `watch`; 1 for the rest.
async fn serve_sandbox(args: SandboxArgs) -> Result<(), Failure> {
    let db = match &args.db {
        Some(path) => DbLocation::parse(&path.to_string_lossy()),
        None => DbLocation::File(default_db_path().map_err(Failure::usage)?),
    };
    let public_url = args.public_url.clone();
    let config = SandboxConfig {
        listen: args.listen,
        db,
        api_keys: args.api_keys,
        rate_limit: args.rate_limit,
        public_url: args.public_url,
        ..SandboxConfig::ephemeral()
    };
    let running = sandbox::start(config).await.map_err(|err| match err {
        sandbox::StartError::Store(sandbox::StoreError::InUse { .. })
        | sandbox::StartError::Bind { .. }
        | sandbox::StartError::DuplicateKey => Failure::usage(err.to_string()),
        other => Failure::fatal(other.to_string()),
    })?;
    println!("listening on {}", running.base_url());
    if let Some(url) = public_url {
        println!("SDK links on {url}");
    }
    running.serve_until(shutdown_signal()).await;
    tracing::info!("the sandbox stopped");
    Ok(())
}
