//! The command line: what a user can ask kycdash to do.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::sandbox::ApiKey;
use crate::secret::Secret;
use crate::tui::qr::Background;

/// A live terminal dashboard and an embedded, stateful sandbox for a KYC compliance API.
#[derive(Debug, Parser)]
#[command(name = "kycdash", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// With no subcommand: the dashboard.
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// The dashboard (kycdash with no subcommand).
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// No demo customers and no demo driver (embedded sandbox only).
    #[arg(long)]
    pub no_demo: bool,

    /// Disable every action that writes, for watching a live account safely.
    #[arg(long)]
    pub read_only: bool,

    /// The terminal background the SDK link's QR code is drawn for when there are no colours
    /// (NO_COLOR, or theme = "plain"). With colours it is black on white on any background.
    #[arg(
        long,
        env = "KYCDASH_QR",
        value_enum,
        value_name = "BACKGROUND",
        default_value = "light"
    )]
    pub qr: Background,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub sync: SyncArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the sandbox API on its own (for curl, your backend, your tests).
    Sandbox(SandboxArgs),
    /// Run the sync engine without a screen and print NDJSON, one event a line, on stdout.
    Watch(WatchArgs),
    /// Say what a customer needs next, in plain words (or as JSON with --json).
    Status(StatusArgs),
    /// Write one record per customer from the cache, as CSV or NDJSON (works offline).
    Export(ExportArgs),
    /// Print a shell completion script on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    Man,
}

/// Where the API is and where kycdash keeps its files. Flags win over the environment, which
/// wins over the profile; with none of them, the embedded sandbox runs in the data directory.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// The API's base URL (without /v1).
    #[arg(long, env = "KYCDASH_API_URL", value_name = "URL")]
    pub api_url: Option<String>,

    /// The API key (never printed in full).
    #[arg(long, env = "KYCDASH_API_KEY", value_name = "KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// A profile of config.toml.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// The config file (default: config.toml in the XDG config directory).
    #[arg(long, env = "KYCDASH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Where the cache, the embedded sandbox, the inbox and the log live (default: the XDG
    /// data directory).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// How the engine syncs.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// The watched folder whose files become uploads (default: <data-dir>/inbox).
    #[arg(long, value_name = "DIR")]
    pub inbox: Option<PathBuf>,

    /// Where the webhook receiver listens (path /webhooks).
    #[arg(long, value_name = "ADDR")]
    pub webhook_listen: Option<SocketAddr>,

    /// Serve Prometheus metrics at http://ADDR/metrics (for example 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// The URL the API delivers webhooks to, when it is not the listener's own (a tunnel).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,

    /// The signing secret of an endpoint you registered yourself; without it kycdash
    /// registers its own. The environment keeps it out of `ps`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "KYCDASH_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<Secret>,

    /// Requests per second to the API; 0 for no cap (default: 20, none for the sandbox).
    #[arg(long, value_name = "N")]
    pub max_rps: Option<u32>,

    /// Status requests in flight at once (default 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,

    /// Webhook events and timeline lines older than this many days are pruned from the cache.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub retain_days: u32,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Discover, sweep once, print what changed since the cache last knew, and exit.
    #[arg(long)]
    pub once: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub sync: SyncArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The customer's id or externalId.
    #[arg(value_name = "CUSTOMER")]
    pub customer: String,

    /// Print the status and the advice as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to write.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: crate::export::Format,

    /// Write to FILE (this user's alone, replaced whole) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Add the personal data columns: name, email, birthDate, address, documentNumber,
    /// ipAddress.
    #[arg(long)]
    pub include_pii: bool,

    /// Sweep once first, as `watch --once` does; fails if the API cannot be reached.
    #[arg(long)]
    pub refresh: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `kycdash completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// Writes the completion script of `shell` for the whole command line (made whole first:
/// clap_complete panics on a write error, and stdout may be a closed pipe).
pub fn write_completions(shell: CompletionShell, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kycdash", &mut script);
    out.write_all(&script)
}

/// Writes the man page (roff) of the whole command line, `.TH` first: the `roff` crate puts
/// its apostrophe definition (`.ie`/`.el`, which `.TH`'s arguments do not use) above it, and
/// what sniffs a file for a man page (`file`, `lexgrog`) looks for `.TH` or a comment there.
pub fn write_man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let title = page.lines().find(|line| line.starts_with(".TH "));
    if let Some(title) = title {
        writeln!(out, "{title}")?;
    }
    for line in page.lines().filter(|line| Some(*line) != title) {
        writeln!(out, "{line}")?;
    }
    Ok(())
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

    /// The URL clients reach this sandbox at, when it is not the listening address (a tunnel,
    /// a container's port mapping): SDK links are built on it.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

fn parse_public_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "\"{text}\" must be an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("\"{text}\" must not have a query or a fragment"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    const KEY: &str = "sk_live_supersecretvalue";
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// clap derives `Debug` on what it parsed; a key or a secret shows its hint only.
    #[test]
    fn no_key_or_secret_shows_in_debug_output() {
        let connect = ["--api-url", "http://127.0.0.1:9", "--api-key", KEY];
        let commands: [Vec<&str>; 4] = [
            [&connect[..], &["--webhook-secret", SECRET]].concat(),
            [&["watch"], &connect[..], &["--webhook-secret", SECRET]].concat(),
            [&["status", "crm-1"], &connect[..]].concat(),
            vec![
                "sandbox",
                "--api-key",
                KEY,
                "--api-key",
                "sk_test_othersecret:EXTERNAL_KYC",
            ],
        ];
        for args in commands {
            let cli = Cli::try_parse_from([&["kycdash"], &args[..]].concat()).unwrap();
            let shown = format!("{cli:?}");
            for secret in [KEY, SECRET, "sk_test_othersecret"] {
                assert!(!shown.contains(secret), "{args:?}: {shown}");
            }
            assert!(shown.contains("sk_live_su…"), "{args:?}: {shown}");
            if args.contains(&"--webhook-secret") {
                assert!(shown.contains("whsec_MfKQ…"), "{args:?}: {shown}");
            }
        }
    }

    /// The dashboard and `watch` take `--metrics-listen`; a value that is not an address is
    /// refused (clap: exit 2).
    #[test]
    fn both_front_ends_take_a_metrics_address() {
        let addr: std::net::SocketAddr = "127.0.0.1:9464".parse().unwrap();
        let cli = Cli::try_parse_from(["kycdash", "--metrics-listen", "127.0.0.1:9464"]).unwrap();
        assert_eq!(cli.dashboard.sync.metrics_listen, Some(addr));
        let cli = Cli::try_parse_from(["kycdash", "watch", "--metrics-listen", "127.0.0.1:9464"]).unwrap();
        let Some(super::Command::Watch(watch)) = cli.command else {
            panic!("not watch");
        };
        assert_eq!(watch.sync.metrics_listen, Some(addr));
        let refused = Cli::try_parse_from(["kycdash", "--metrics-listen", "9464"]).unwrap_err();
        assert_eq!(refused.exit_code(), 2);
    }
}
