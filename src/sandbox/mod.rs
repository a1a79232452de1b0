//! The sandbox: a stateful implementation of the KYC compliance API, embedded in kycdash and
//! served on its own by `kycdash sandbox`. SQLite holds the state; the domain's workflow
//! machine drives every onboarding from commands and timers; webhooks leave through a
//! transactional outbox.

pub mod clock;
mod commands;
pub mod error;
pub mod http;
pub(crate) mod ids;
mod memory;
mod outbox;
mod qr;
pub mod store;
mod webhook_commands;
mod work;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::clock::Timing;
use self::clock::unix_ms;
use self::memory::TenantId;
pub use self::outbox::DeliveryPolicy;
pub use self::store::{DbLocation, StoreError};
use self::store::{Store, TenantSeed};
use crate::domain::Strategy;

/// The API key of the one tenant a sandbox has when none is configured.
pub const DEFAULT_API_KEY: &str = "sk_test_kycdash";

/// An API key and the strategy its tenant uses by default: `KEY[:CF_KYC|:EXTERNAL_KYC]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub strategy: Strategy,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &crate::secret::hint(&self.key))
            .field("strategy", &self.strategy)
            .finish()
    }
}

impl FromStr for ApiKey {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let (key, strategy) = match value.rsplit_once(':') {
            Some((key, suffix)) => match Strategy::parse(suffix) {
                Some(strategy) => (key, strategy),
                None => {
                    return Err(format!(
                        "\"{suffix}\" is not a strategy; write KEY, KEY:CF_KYC or KEY:EXTERNAL_KYC"
                    ));
                }
            },
            None => (value, Strategy::CfKyc),
        };
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("an API key must be non-empty, without spaces".into());
        }
        Ok(ApiKey {
            key: key.to_string(),
            strategy,
        })
    }
}

impl ApiKey {
    /// The tenant this key opens; derived from the key so the key itself is never stored.
    fn tenant(&self) -> TenantId {
        let digest = Sha256::digest(self.key.as_bytes());
        TenantId(format!("tnt_{}", &hex::encode(digest)[..16]))
    }
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    pub db: DbLocation,
    /// One tenant per key; none means one tenant with [`DEFAULT_API_KEY`].
    pub api_keys: Vec<ApiKey>,
    /// Requests per second per tenant; `None` for no limit.
    pub rate_limit: Option<u32>,
    pub timing: Timing,
    pub delivery: DeliveryPolicy,
    /// The address clients reach the sandbox at, when it is not the one it listens on (behind
    /// a tunnel or a container's port mapping): SDK links are built on it.
    pub public_url: Option<String>,
}

impl SandboxConfig {
    /// A sandbox for tests and embedding: a free loopback port, nothing kept on disk.
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            db: DbLocation::Memory,
            api_keys: Vec::new(),
            rate_limit: None,
            timing: Timing::default(),
            delivery: DeliveryPolicy::default(),
            public_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("two --api-key options give the same key")]
    DuplicateKey,
}

/// A sandbox serving in this process.
pub struct RunningSandbox {
    addr: SocketAddr,
    base_url: String,
    cancel: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
    store_thread: store::StoreThread,
}

impl RunningSandbox {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, the base of every route.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops accepting connections, lets in-flight requests finish, stops the workers.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.finish().await;
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn serve_until(self, signal: impl Future<Output = ()>) {
        tokio::select! {
            _ = signal => {}
            _ = self.cancel.cancelled() => {}
        }
        self.shutdown().await;
    }

    async fn finish(self) {
        match self.server.await {
            Ok(Err(err)) => tracing::error!("the sandbox server stopped with an error: {err}"),
            Err(err) => tracing::error!("the sandbox server task failed: {err}"),
            Ok(Ok(())) => {}
        }
        for worker in self.workers {
            let _ = worker.await;
        }
        // With the server and the workers gone, so are the store handles: wait for the
        // database to be closed, so a restart can open it at once.
        let _ = tokio::task::spawn_blocking(move || self.store_thread.join()).await;
    }
}

/// Starts a sandbox: opens its database, binds its address and serves.
pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, StartError> {
    let api_keys = if config.api_keys.is_empty() {
        vec![ApiKey {
            key: DEFAULT_API_KEY.into(),
            strategy: Strategy::CfKyc,
        }]
    } else {
        config.api_keys.clone()
    };
    let mut keys = HashMap::new();
    let mut seeds = Vec::new();
    for api_key in &api_keys {
        let tenant = api_key.tenant();
        tracing::info!(
            "API key {} ({})",
            crate::secret::hint(&api_key.key),
            api_key.strategy
        );
        if keys.insert(api_key.key.clone(), tenant.clone()).is_some() {
            return Err(StartError::DuplicateKey);
        }
        seeds.push(TenantSeed {
            id: tenant,
            default_strategy: api_key.strategy,
        });
    }
    let (db, timing) = (config.db.clone(), config.timing);
    let (store, store_thread) = tokio::task::spawn_blocking(move || Store::open(&db, &seeds, timing))
        .await
        .map_err(|e| StoreError::Corrupt(format!("opening the database panicked: {e}")))??;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let host = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let base_url = format!("http://{}", SocketAddr::new(host, addr.port()));
    // Links are built on the address served now (or the public one), not the one stored
    // when they were issued.
    let links_base = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => base_url.clone(),
    };

    let cancel = CancellationToken::new();
    let state = http::AppState::new(store.clone(), keys, links_base, config.rate_limit);
    let router = http::router(state);
    // No Nagle delay: an answer goes out when it is written, as HTTP servers do.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY could not be set: {err}");
        }
    });
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(cancel.clone().cancelled_owned())
            .into_future(),
    );
    let workers = vec![
        tokio::spawn(outbox::run(store.clone(), config.delivery, cancel.clone())),
        tokio::spawn(run_timers(store, cancel.clone())),
    ];
    Ok(RunningSandbox {
        addr,
        base_url,
        cancel,
        server,
        workers,
        store_thread,
    })
}

/// Fires timers (link expiry, decisions) as real time makes them due.
async fn run_timers(store: Store, cancel: CancellationToken) {
    loop {
        let failed = match store.run(commands::fire_timers_due_now).await {
            Err(StoreError::Closed) => return,
            Err(err) => {
                tracing::error!("firing timers failed: {err}");
                true
            }
            Ok(_) => false,
        };
        let next = store.read(|m| m.tenants.values().filter_map(|t| t.next_timer_real_ms()).min());
        let wait = match next {
            // Try again in a moment rather than spin on a timer that cannot fire.
            _ if failed => Duration::from_secs(1),
            Some(due) => Duration::from_millis(
                (due - unix_ms(time::OffsetDateTime::now_utc())).clamp(0, 3_600_000) as u64,
            ),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = store.signals.timers.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_with_an_optional_strategy() {
        let key: ApiKey = "sk_a".parse().unwrap();
        assert_eq!(key.strategy, Strategy::CfKyc);
        let key: ApiKey = "sk_b:EXTERNAL_KYC".parse().unwrap();
        assert_eq!((key.key.as_str(), key.strategy), ("sk_b", Strategy::ExternalKyc));
        assert!("sk_c:SOMETHING".parse::<ApiKey>().is_err());
        assert!(":CF_KYC".parse::<ApiKey>().is_err());
        assert!("sk d".parse::<ApiKey>().is_err());
    }

    #[test]
    fn keys_show_their_hint_only_in_debug_output() {
        let key: ApiKey = "sk_test_supersecretvalue:EXTERNAL_KYC".parse().unwrap();
        let config = SandboxConfig {
            api_keys: vec![key.clone()],
            ..SandboxConfig::ephemeral()
        };
        for shown in [format!("{key:?}"), format!("{config:?}")] {
            assert!(!shown.contains("supersecretvalue"), "{shown}");
            assert!(shown.contains("sk_test_su…"), "{shown}");
        }
    }

    #[test]
    fn tenants_are_derived_from_keys_and_never_name_them() {
        let a: ApiKey = "sk_a".parse().unwrap();
        let b: ApiKey = "sk_b".parse().unwrap();
        assert_ne!(a.tenant(), b.tenant());
        assert!(!a.tenant().0.contains("sk_a"));
    }
}
