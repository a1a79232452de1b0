//! How the engine is set up: where it keeps its files, how it reaches the API and the
//! webhooks, its timings; and why it could not start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::{ApiError, ClientConfig};
use crate::secret::Secret;
use crate::sync::cache;
use crate::sync::inbox::InboxTiming;
use crate::sync::metrics::Metrics;

/// Where the engine keeps its files and how it reaches the API.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub api: ClientConfig,
    /// The API is the embedded sandbox.
    pub sandbox: bool,
    pub data_dir: PathBuf,
    /// `None`: no inbox.
    pub inbox: Option<PathBuf>,
    /// `None`: no receiver; polling alone.
    pub receiver: Option<ReceiverConfig>,
    /// Status requests in flight at once.
    pub concurrency: usize,
    /// Discovery and one sweep, then stop.
    pub once: bool,
    /// Send `Customers` events (a dashboard's rows); `watch` has no use for them.
    pub publish_customers: bool,
    /// Whether a refused key (401/403) ends the engine (`watch`: exit 1), or is shown while
    /// the cache stays on screen and the engine keeps trying (the dashboard).
    pub stop_on_refused_key: bool,
    /// Whether `start` makes one quick registration attempt before it returns (`watch`: its
    /// `started` line names the receiver), or leaves it all to the running engine (the
    /// dashboard draws first, whatever the API's state).
    pub register_before_start: bool,
    /// Webhook events and timeline lines older than this are pruned from the cache (at start
    /// and every few hours): `--retain-days`.
    pub retain: Duration,
    pub timing: EngineTiming,
    /// Counted into when given (`--metrics-listen`; SPEC §11).
    pub metrics: Option<Metrics>,
}

impl EngineConfig {
    /// An engine on `api` keeping its files in `data_dir`, with the defaults of `watch`
    /// against a real API: no inbox, a receiver on a free loopback port that registers itself,
    /// 8 pulls at once, running until stopped.
    pub fn new(api: ClientConfig, data_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            api,
            sandbox: false,
            data_dir,
            inbox: None,
            receiver: Some(ReceiverConfig::loopback()),
            concurrency: 8,
            once: false,
            publish_customers: false,
            stop_on_refused_key: true,
            register_before_start: true,
            retain: Duration::from_secs(90 * 86_400),
            timing: EngineTiming::default(),
            metrics: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub listen: SocketAddr,
    /// The URL the API should deliver to; the listener's own when `None`.
    pub public_url: Option<String>,
    /// A secret of an endpoint registered elsewhere; the engine registers its own when `None`.
    pub secret: Option<Secret>,
}

impl ReceiverConfig {
    /// A free loopback port, delivered to at its own URL, registered by the engine.
    pub fn loopback() -> ReceiverConfig {
        ReceiverConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            secret: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EngineTiming {
    /// How often customers are listed and every open onboarding is polled.
    pub sweep_every: Duration,
    /// Poll interval of customers the provider or the end user is about to move (a link
    /// running out, a decision due).
    pub poll_active: Duration,
    /// Poll interval of customers whose requirements or review may change without a webhook
    /// (a document arriving completes the requirements and announces nothing).
    pub poll_idle: Duration,
    /// Poll interval of customers waiting on the integrator (profile, start, rerun): what they
    /// do next comes with a webhook.
    pub poll_integrator: Duration,
    /// Scheduled polls per second at most, whatever the number of customers: background
    /// freshness must not become the load (webhooks and refreshes are not counted).
    pub background_polls_per_second: u32,
    /// Intervals are multiplied by this while webhooks arrive.
    pub stretch_while_webhooks: u32,
    /// How long after a failed webhook registration it is tried again (then backing off to
    /// five times that), while the engine polls alone.
    pub register_retry: Duration,
    /// How often the rows whose status aged past their polling interval are named again
    /// while the API is unreachable.
    pub stale_every: Duration,
    /// Events the watcher may be behind before the engine starts nothing of its own (four
    /// times as many, and new webhooks are turned away): see `Backlog`.
    pub watcher_behind: usize,
    /// Alert when a link expires within this.
    pub expiring_within: Duration,
    /// Alert when a decision takes longer than this.
    pub stuck_after: Duration,
    pub inbox: InboxTiming,
}

impl Default for EngineTiming {
    fn default() -> Self {
        Self {
            sweep_every: Duration::from_secs(300),
            poll_active: Duration::from_secs(60),
            poll_idle: Duration::from_secs(300),
            poll_integrator: Duration::from_secs(1800),
            background_polls_per_second: 10,
            stretch_while_webhooks: 4,
            register_retry: Duration::from_secs(60),
            stale_every: Duration::from_secs(60),
            watcher_behind: crate::sync::backlog::SLOW_DOWN,
            expiring_within: Duration::from_secs(300),
            stuck_after: Duration::from_secs(24 * 3600),
            inbox: InboxTiming::default(),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "another kycdash is using the data directory {0} (it holds {0}/kycdash.lock); stop it or pass --data-dir"
    )]
    Locked(PathBuf),
    #[error("cannot use the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("cannot listen for webhooks on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the API refused the API key (HTTP 401/403); check --api-key, KYCDASH_API_KEY or the profile")]
    Unauthorized,
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_or_secret_shows_in_debug_output() {
        let mut config = EngineConfig::new(
            ClientConfig::new("http://127.0.0.1:1", "sk_live_supersecretvalue"),
            PathBuf::from("/tmp/kycdash"),
        );
        config.receiver = Some(ReceiverConfig {
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            ..ReceiverConfig::loopback()
        });
        let shown = format!("{config:?}");
        assert!(!shown.contains("supersecretvalue"), "{shown}");
        assert!(!shown.contains("9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{shown}");
        assert!(
            shown.contains("sk_live_su…") && shown.contains("whsec_MfKQ…"),
            "{shown}"
        );
    }
}
