//! The modes without a screen: `kycdash watch` (the sync engine, printing NDJSON) and
//! `kycdash status CUSTOMER`. Also how every mode finds its API: flags, environment, a profile,
//! or the embedded sandbox in the data directory.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::{ApiClient, ApiError, ClientConfig};
use crate::cli::{ConnectArgs, StatusArgs, SyncArgs, WatchArgs};
use crate::config::{self, Profile};
use crate::domain::{ComplianceStatus, Customer, advise};
use crate::sandbox::{self, DbLocation, RunningSandbox, SandboxConfig};
use crate::sync::engine::{
    self, DataDirLock, EngineConfig, EngineError, EngineEvent, EngineTiming, ReceiverConfig,
};

/// How a mode ends badly: the exit code (2 usage or configuration, 1 fatal) and one line.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Locked(_) | EngineError::Config(_) | EngineError::Listen { .. } => {
                Failure::usage(err.to_string())
            }
            _ => Failure::fatal(err.to_string()),
        }
    }
}

/// Where the embedded sandbox of a running engine can be reached, for `kycdash status`.
const SANDBOX_URL_FILE: &str = "sandbox.url";

/// What a mode connects to.
pub struct Connection {
    pub api: ClientConfig,
    /// The embedded sandbox, when this process runs it.
    pub sandbox: Option<RunningSandbox>,
    pub data_dir: PathBuf,
    pub profile: Option<(String, Profile)>,
    /// The whole config file (the dashboard reads its theme and keys).
    pub config: config::ConfigFile,
    pub lock: Option<DataDirLock>,
}

impl Connection {
    pub async fn shutdown(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

/// The data directory: the flag, the profile's, or the XDG one.
fn data_dir(args: &ConnectArgs, profile: Option<&Profile>) -> Result<PathBuf, Failure> {
    if let Some(dir) = args
        .data_dir
        .clone()
        .or_else(|| profile.and_then(|p| p.data_dir.clone()))
    {
        return Ok(dir);
    }
    directories::ProjectDirs::from("dev", "kycdash", "kycdash")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| Failure::usage("cannot find a data directory (is $HOME set?); pass --data-dir DIR"))
}

/// Resolves the connection (flags > env > profile > embedded sandbox). With `lock`, takes the
/// data directory's lock first, so a second engine on it stops before touching anything.
pub async fn connect(args: &ConnectArgs, lock: bool) -> Result<Connection, Failure> {
    let config_path = args
        .config
        .clone()
        .or_else(config::default_path)
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    let config = config::load(&config_path).map_err(|e| Failure::usage(e.to_string()))?;
    let profile = config
        .profile(args.profile.as_deref(), &config_path)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let profile_settings = profile.as_ref().map(|(_, p)| p);
    let data_dir = data_dir(args, profile_settings)?;
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        Failure::usage(format!(
            "cannot create the data directory {}: {e}",
            data_dir.display()
        ))
    })?;
    let held = if lock {
        Some(engine::lock_data_dir(&data_dir)?)
    } else {
        None
    };

    let api_url = args
        .api_url
        .clone()
        .or_else(|| profile_settings.and_then(|p| p.api_url.clone()));
    let api_key = args
        .api_key
        .clone()
        .or_else(|| profile_settings.and_then(|p| p.api_key.clone()));
    let (api_url, api_key, sandbox) = match (api_url, api_key) {
        (Some(url), Some(key)) => {
            let url = url.trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Failure::usage(format!(
                    "--api-url must be an http(s) URL, not \"{url}\""
                )));
            }
            (url, key, None)
        }
        (Some(_), None) => {
            return Err(Failure::usage(
                "an API URL without an API key: pass --api-key or set KYCDASH_API_KEY",
            ));
        }
        (None, Some(_)) => {
            return Err(Failure::usage(
                "an API key without an API URL: pass --api-url or set KYCDASH_API_URL",
            ));
        }
        (None, None) if !lock => {
            // `status` beside a running engine: use the sandbox that engine serves.
            match std::fs::read_to_string(data_dir.join(SANDBOX_URL_FILE)) {
                Ok(url) if engine::lock_data_dir(&data_dir).is_err() => {
                    (url.trim().to_string(), sandbox::DEFAULT_API_KEY.to_string(), None)
                }
                _ => {
                    let running = start_sandbox(&data_dir).await?;
                    (
                        running.base_url().to_string(),
                        sandbox::DEFAULT_API_KEY.to_string(),
                        Some(running),
                    )
                }
            }
        }
        (None, None) => {
            let running = start_sandbox(&data_dir).await?;
            // Where this process's sandbox is: for `kycdash status` meanwhile, and for the
            // next start to take the same port.
            let _ = std::fs::write(data_dir.join(SANDBOX_URL_FILE), running.base_url());
            (
                running.base_url().to_string(),
                sandbox::DEFAULT_API_KEY.to_string(),
                Some(running),
            )
        }
    };
    Ok(Connection {
        api: ClientConfig::new(api_url, api_key),
        sandbox,
        data_dir,
        profile,
        config,
        lock: held,
    })
}

/// Starts the embedded sandbox, on the port it had last time when that port is free, so SDK
/// links it issued before (and a curl session's URL) keep working.
async fn start_sandbox(data_dir: &Path) -> Result<RunningSandbox, Failure> {
    let last_port = std::fs::read_to_string(data_dir.join(SANDBOX_URL_FILE))
        .ok()
        .and_then(|url| {
            url.trim()
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
        });
    let config = |port| SandboxConfig {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        db: DbLocation::File(data_dir.join("sandbox.db")),
        ..SandboxConfig::ephemeral()
    };
    let started = match last_port {
        Some(port) => match sandbox::start(config(port)).await {
            Err(sandbox::StartError::Bind { .. }) => sandbox::start(config(0)).await,
            other => other,
        },
        None => sandbox::start(config(0)).await,
    };
    started.map_err(|err| match err {
        sandbox::StartError::Store(sandbox::StoreError::InUse { .. }) => Failure::usage(format!(
            "another kycdash is using the embedded sandbox in {}; stop it or pass --data-dir",
            data_dir.display()
        )),
        other => Failure::fatal(format!("cannot start the embedded sandbox: {other}")),
    })
}

/// The engine's settings from the command line, the profile and the connection.
pub fn engine_config(connection: &Connection, sync: &SyncArgs, once: bool) -> EngineConfig {
    let profile = connection.profile.as_ref().map(|(_, p)| p);
    let sandbox = connection.sandbox.is_some();
    let mut api = connection.api.clone();
    let max_rps = sync
        .max_rps
        .or_else(|| profile.and_then(|p| p.max_rps))
        .unwrap_or(if sandbox { 0 } else { 20 });
    api.max_rps = (max_rps > 0).then_some(max_rps);
    let inbox = sync
        .inbox
        .clone()
        .or_else(|| profile.and_then(|p| p.inbox.clone()))
        .unwrap_or_else(|| connection.data_dir.join("inbox"));
    let listen = sync
        .webhook_listen
        .or_else(|| profile.and_then(|p| p.webhook_listen))
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    EngineConfig {
        api,
        sandbox,
        data_dir: connection.data_dir.clone(),
        inbox: Some(inbox),
        // `--once` sweeps and exits: nothing could deliver to a receiver in time.
        receiver: (!once).then(|| ReceiverConfig {
            listen,
            public_url: sync
                .webhook_url
                .clone()
                .or_else(|| profile.and_then(|p| p.webhook_url.clone())),
            secret: sync
                .webhook_secret
                .clone()
                .or_else(|| profile.and_then(|p| p.webhook_secret.clone())),
        }),
        concurrency: sync
            .concurrency
            .map(|n| n as usize)
            .or_else(|| profile.and_then(|p| p.concurrency))
            .unwrap_or(8),
        once,
        publish_customers: false,
        timing: EngineTiming::default(),
    }
}

/// One NDJSON line: `at`, then the event's own fields (`kind` first).
pub fn ndjson_line(event: &EngineEvent, at: OffsetDateTime) -> String {
    let body = serde_json::to_string(event)
        .unwrap_or_else(|err| format!(r#"{{"kind":"error","error":"cannot encode an event: {err}"}}"#));
    let at = crate::sync::rfc3339(at);
    match body.strip_prefix('{') {
        Some(rest) => format!(r#"{{"at":"{at}",{rest}"#),
        None => body,
    }
}

/// `kycdash watch`.
pub async fn watch(args: WatchArgs) -> Result<(), Failure> {
    let mut connection = connect(&args.connect, true).await?;
    if let Some(sandbox) = &connection.sandbox {
        eprintln!(
            "kycdash: embedded sandbox at {} (API key {}); drive it with curl meanwhile",
            sandbox.base_url(),
            sandbox::DEFAULT_API_KEY
        );
    }
    let config = engine_config(&connection, &args.sync, args.once);
    let Some(lock) = connection.lock.take() else {
        return Err(Failure::fatal("the data directory is not locked"));
    };
    let started = engine::start(config, lock).await;
    let engine = match started {
        Ok(engine) => engine,
        Err(err) => {
            connection.shutdown().await;
            return Err(err.into());
        }
    };
    let (handle, mut events, task) = engine.into_parts();
    let mut fatal = None;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut stopping = false;
    let stdout = std::io::stdout();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if let EngineEvent::Fatal { error } = &event {
                    fatal = Some(error.clone());
                }
                if !event.is_ndjson() {
                    continue;
                }
                let line = ndjson_line(&event, OffsetDateTime::now_utc());
                let mut out = stdout.lock();
                // A closed stdout (a pipe whose reader left) ends the watch like a signal.
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() && !stopping {
                    handle.stop();
                    stopping = true;
                }
                if matches!(event, EngineEvent::Stopped) {
                    break;
                }
            }
            _ = &mut signal, if !stopping => {
                handle.stop();
                stopping = true;
            }
        }
    }
    let _ = task.await;
    connection.shutdown().await;
    match fatal {
        Some(error) => Err(Failure::fatal(error)),
        None => Ok(()),
    }
}

/// `kycdash status CUSTOMER`.
pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    let connection = connect(&args.connect, false).await?;
    let result = status_of(&connection.api, &args.customer).await;
    connection.shutdown().await;
    let (customer, status) = result?;
    let advice = advise(&customer, &status);
    if args.json {
        let body = serde_json::json!({ "customer": customer, "status": status, "advice": advice });
        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
        return Ok(());
    }
    let name = customer.display_name();
    println!("{name} ({})", customer.id);
    println!(
        "stage: {}   onboarding: {}   compliant: {}",
        crate::domain::Stage::from_status(&status),
        status.onboarding_status.map(|s| s.as_str()).unwrap_or("none"),
        if status.is_compliant { "yes" } else { "no" }
    );
    println!();
    println!("Next: {}", advice.headline);
    let failed: Vec<_> = status.checks.iter().filter(|c| !c.passed && c.required).collect();
    if !failed.is_empty() {
        println!();
        println!("Failed checks:");
        for check in failed {
            println!(
                "  ✗ {:<28} {}",
                check.check_type.as_str(),
                check.suggested_action.map(|a| a.as_str()).unwrap_or("")
            );
        }
    }
    if !advice.fields_to_patch.is_empty() {
        println!();
        println!(
            "PATCH /v1/customers/{} with: {}",
            customer.id,
            advice.fields_to_patch.join(", ")
        );
    }
    if !advice.documents_to_upload.is_empty() {
        println!();
        let docs: Vec<&str> = advice.documents_to_upload.iter().map(|d| d.as_str()).collect();
        println!("Upload: {}", docs.join(", "));
    }
    if let Some(sdk) = &advice.sdk {
        println!();
        println!(
            "SDK link: {} (expires {})",
            sdk.link,
            crate::sync::rfc3339(sdk.expires_at)
        );
    }
    Ok(())
}

async fn status_of(api: &ClientConfig, customer: &str) -> Result<(Customer, ComplianceStatus), Failure> {
    let client = ApiClient::new(api).map_err(|e| Failure::usage(e.to_string()))?;
    let api_failure = |err: ApiError| {
        if err.is_unauthorized() {
            Failure::fatal(
                "the API refused the API key (HTTP 401); check --api-key, KYCDASH_API_KEY or the profile",
            )
        } else {
            Failure::fatal(err.to_string())
        }
    };
    let found = match customer.parse::<Uuid>() {
        Ok(id) => match client.customer(id).await {
            Ok(customer) => Some(customer),
            Err(err) if err.is_not_found() => None,
            Err(err) => return Err(api_failure(err)),
        },
        Err(_) => client
            .customer_by_external_id(customer)
            .await
            .map_err(api_failure)?,
    };
    let Some(found) = found else {
        return Err(Failure::fatal(format!(
            "no customer has the id or externalId \"{customer}\""
        )));
    };
    let status = client.status(found.id).await.map_err(api_failure)?;
    Ok((found, status))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
