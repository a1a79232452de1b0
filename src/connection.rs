//! How every mode finds its API and its files: flags, environment, a profile, or the embedded
//! sandbox in the data directory; the engine's settings from them; how a mode ends badly; and
//! the signals that stop it. Shared by `watch`, `status` and the dashboard, so no front end
//! depends on another.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::api::ClientConfig;
use crate::cli::{ConnectArgs, SyncArgs};
use crate::config::{self, Profile};
use crate::sandbox::{self, DbLocation, RunningSandbox, SandboxConfig};
use crate::secret::Secret;
use crate::sync::engine::{self, DataDirLock, EngineConfig, EngineError, EngineTiming, ReceiverConfig};
use crate::sync::metrics::{self, Metrics};

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
    let (config, profile) = load_config(args)?;
    let profile_settings = profile.as_ref().map(|(_, p)| p);
    let data_dir = data_dir(args, profile_settings)?;
    crate::private::create_dir(&data_dir).map_err(|e| {
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

    let (api_url, api_key, sandbox) = resolve_api(args, profile_settings, &data_dir, lock).await?;
    Ok(Connection {
        api: ClientConfig::new(api_url, api_key),
        sandbox,
        data_dir,
        profile,
        config,
        lock: held,
    })
}

/// The config file and the profile chosen in it.
fn load_config(args: &ConnectArgs) -> Result<(config::ConfigFile, Option<(String, Profile)>), Failure> {
    let config_path = args
        .config
        .clone()
        .or_else(config::default_path)
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    let config = config::load(&config_path).map_err(|e| Failure::usage(e.to_string()))?;
    let profile = config
        .profile(args.profile.as_deref(), &config_path)
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok((config, profile))
}

/// What a mode that only reads the cache needs: where it is, and which account (the
/// `api.identity` setting) it must hold. Resolved as `connect` resolves (flags > env > profile
/// > the embedded sandbox), without connecting, starting a sandbox or creating anything.
pub struct CacheOnly {
    pub data_dir: PathBuf,
    pub identity: String,
}

pub fn cache_only(args: &ConnectArgs) -> Result<CacheOnly, Failure> {
    let (_, profile) = load_config(args)?;
    let profile = profile.as_ref().map(|(_, p)| p);
    let data_dir = data_dir(args, profile)?;
    let identity = match given_api(args, profile)? {
        Some((url, key)) => engine::api_identity(&ClientConfig::new(url, key), false),
        None => engine::api_identity(
            &ClientConfig::new("", Secret::from(sandbox::DEFAULT_API_KEY)),
            true,
        ),
    };
    Ok(CacheOnly { data_dir, identity })
}

/// The API's URL and key when flags, env or the profile give them (checked); `None` for the
/// embedded sandbox.
fn given_api(args: &ConnectArgs, profile: Option<&Profile>) -> Result<Option<(String, Secret)>, Failure> {
    let api_url = args
        .api_url
        .clone()
        .or_else(|| profile.and_then(|p| p.api_url.clone()));
    let api_key = args
        .api_key
        .clone()
        .or_else(|| profile.and_then(|p| p.api_key.clone()));
    match (api_url, api_key) {
        (Some(url), Some(key)) => {
            let url = checked_url("--api-url", url.trim_end_matches('/'))?;
            checked_key(&key)?;
            Ok(Some((url, key)))
        }
        (Some(_), None) => Err(Failure::usage(
            "an API URL without an API key: pass --api-key or set KYCDASH_API_KEY",
        )),
        (None, Some(_)) => Err(Failure::usage(
            "an API key without an API URL: pass --api-url or set KYCDASH_API_URL",
        )),
        (None, None) => Ok(None),
    }
}

/// The API's URL and key: flags or env, else the profile's, else the embedded sandbox (with
/// `lock` unset, `status` beside a running engine uses the sandbox that engine serves).
async fn resolve_api(
    args: &ConnectArgs,
    profile: Option<&Profile>,
    data_dir: &Path,
    lock: bool,
) -> Result<(String, Secret, Option<RunningSandbox>), Failure> {
    match given_api(args, profile)? {
        Some((url, key)) => Ok((url, key, None)),
        None => {
            let key = Secret::from(sandbox::DEFAULT_API_KEY);
            let beside_engine = std::fs::read_to_string(data_dir.join(SANDBOX_URL_FILE))
                .ok()
                .filter(|_| !lock && engine::lock_data_dir(data_dir).is_err());
            if let Some(url) = beside_engine {
                return Ok((url.trim().to_string(), key, None));
            }
            let running = start_sandbox(data_dir).await?;
            if lock {
                // Where this process's sandbox is: for `kycdash status` meanwhile, and for the
                // next start to take the same port.
                let _ = std::fs::write(data_dir.join(SANDBOX_URL_FILE), running.base_url());
            }
            Ok((running.base_url().to_string(), key, Some(running)))
        }
    }
}

/// An http(s) URL with a host, as the flag or profile key `what` must hold; exit 2 naming it
/// otherwise (a URL that does not parse would only fail later, as a network error).
fn checked_url(what: &str, url: &str) -> Result<String, Failure> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(url.to_string()),
        Ok(_) => Err(Failure::usage(format!(
            "{what} must be an http(s) URL, not \"{url}\""
        ))),
        Err(err) => Err(Failure::usage(format!(
            "{what} is not a URL (\"{url}\": {err}); give one like https://kyc.example.com"
        ))),
    }
}

/// An API key a request header can carry; exit 2 otherwise, showing only its start.
fn checked_key(key: &Secret) -> Result<(), Failure> {
    let key = key.expose_secret();
    let carried = !key.is_empty() && reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_ok();
    if carried {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "the API key ({}) is empty or holds a character an HTTP header cannot carry (a newline, a \
         control character, non-ASCII); check --api-key, KYCDASH_API_KEY or the profile",
        crate::secret::hint(key)
    )))
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
pub fn engine_config(connection: &Connection, sync: &SyncArgs, once: bool) -> Result<EngineConfig, Failure> {
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
    let webhook_url = sync
        .webhook_url
        .clone()
        .or_else(|| profile.and_then(|p| p.webhook_url.clone()))
        .map(|url| checked_url("--webhook-url", &url))
        .transpose()?;
    Ok(EngineConfig {
        api,
        sandbox,
        data_dir: connection.data_dir.clone(),
        inbox: Some(inbox),
        // `--once` sweeps and exits: nothing could deliver to a receiver in time.
        receiver: (!once).then(|| ReceiverConfig {
            listen,
            public_url: webhook_url,
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
        stop_on_refused_key: true,
        register_before_start: true,
        retain: std::time::Duration::from_secs(u64::from(sync.retain_days) * 86_400),
        timing: EngineTiming::default(),
        metrics: None,
    })
}

/// With `--metrics-listen`: the metrics the engine counts into, served on their own task, and
/// the address they are served on (its port chosen when 0 was given).
pub async fn serve_metrics(
    connection: &Connection,
    sync: &SyncArgs,
) -> Result<Option<(Metrics, SocketAddr)>, Failure> {
    let profile = connection.profile.as_ref().map(|(_, profile)| profile);
    let Some(listen) = sync
        .metrics_listen
        .or_else(|| profile.and_then(|p| p.metrics_listen))
    else {
        return Ok(None);
    };
    let metrics = Metrics::new();
    let (bound, _task) = metrics::serve(metrics.clone(), listen)
        .await
        .map_err(|err| Failure::usage(err.to_string()))?;
    Ok(Some((metrics, bound)))
}

/// Completes on SIGINT (Ctrl-C), SIGTERM or SIGHUP (the terminal went away): every mode stops
/// on them the way it stops on its own, so what is pending is flushed and the terminal
/// restored.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    // The handlers are installed now, not at the first poll: a signal that comes between this
    // call and the caller's first wait (a first frame being drawn) is not the default death.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ]
        .map(signal)
        .into_iter()
        .collect::<Result<Vec<_>, _>>();
        async move {
            let Ok(mut signals) = signals else {
                return std::future::pending::<()>().await;
            };
            let waits = signals.iter_mut().map(|s| Box::pin(s.recv()));
            futures_util::future::select_all(waits).await;
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
