//! The sync engine: one task owns the model (customers, their latest status, the tracker) and
//! is the only thing that decides what changed. The poller's results, the receiver's verified
//! webhooks and the inbox's uploads arrive as [`Observation`]s; what changed leaves as
//! [`EngineEvent`]s on one stream; rows to keep go to the cache writer, which batches them.
//! Users (the headless watcher, the dashboard) act through an [`EngineHandle`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::cache::{self, CustomerSummary, Write, Writer};
use super::inbox::{Inbox, InboxTiming, UploadResult, Uploaded};
use super::receiver::{self, Ack, RejectReason};
use super::tracker::Tracker;
use crate::api::{ApiClient, ApiError, ClientConfig};
use crate::domain::{
    ComplianceStatus, Customer, DocumentType, NextAction, OnboardingStatus, Stage, WebhookEvent,
};

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
    pub timing: EngineTiming,
}

#[derive(Clone)]
pub struct ReceiverConfig {
    pub listen: SocketAddr,
    /// The URL the API should deliver to; the listener's own when `None`.
    pub public_url: Option<String>,
    /// A secret of an endpoint registered elsewhere; the engine registers its own when `None`.
    pub secret: Option<String>,
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("secret", &self.secret.as_deref().map(crate::secret::hint))
            .finish()
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
    #[error("the API refused the API key (HTTP 401); check --api-key, KYCDASH_API_KEY or the profile")]
    Unauthorized,
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Something that happened, for whoever watches: NDJSON lines in `watch`, the dashboard's
/// model. Field names are those of SPEC §7.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum EngineEvent {
    Started {
        api_url: String,
        sandbox: bool,
        webhook_url: Option<String>,
        inbox: Option<String>,
        data_dir: String,
    },
    StageChanged {
        customer_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
        from: Option<Stage>,
        to: Stage,
        onboarding_status: Option<OnboardingStatus>,
        next_action: Option<NextAction>,
        is_compliant: bool,
    },
    Webhook {
        event_id: String,
        event_type: String,
        customer_id: Option<Uuid>,
        duplicate: bool,
    },
    WebhookRejected {
        reason: RejectReason,
        detail: String,
    },
    Upload {
        path: String,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        result: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    PollError {
        #[serde(skip_serializing_if = "Option::is_none")]
        customer_id: Option<Uuid>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        error: String,
        retry_in_seconds: u64,
    },
    Alert {
        customer_id: Uuid,
        alert: AlertKind,
        detail: String,
    },
    Sweep {
        customers: usize,
        changed: usize,
        duration_ms: u64,
    },
    /// The engine cannot go on (the API refused the key); `stopped` follows. Not an NDJSON
    /// line: `watch` says it on stderr and exits 1.
    Fatal {
        error: String,
    },
    Stopped,
    /// Customers as the dashboard shows them: every one at start (from the cache), then each
    /// one that changed. Not an NDJSON line.
    #[serde(skip)]
    Customers(Vec<CustomerState>),
    /// The poller's state, when it changes. Not an NDJSON line.
    #[serde(skip)]
    Poller {
        in_flight: usize,
        paused: bool,
    },
    /// How far the API's clock is ahead of this machine's (the sandbox's clock moves when
    /// told to; SDK link expiries are on it). Not an NDJSON line.
    #[serde(skip)]
    Clock {
        offset_seconds: i64,
    },
}

impl EngineEvent {
    /// Whether `watch` prints it (SPEC §7's kinds).
    pub fn is_ndjson(&self) -> bool {
        !matches!(
            self,
            EngineEvent::Customers(_)
                | EngineEvent::Poller { .. }
                | EngineEvent::Clock { .. }
                | EngineEvent::Fatal { .. }
        )
    }
}

/// One customer as the engine knows them now.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerState {
    /// Shared with the engine: a row costs the dashboard no copy.
    pub customer: Arc<CustomerSummary>,
    pub status: Option<Arc<cache::StatusSummary>>,
    /// The stage the last status proved.
    pub stage: Option<Stage>,
    /// Since when the customer is in `stage`.
    pub since: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    SdkLinkExpiring,
    StuckWaiting,
    VerificationError,
    Drift,
}

/// What producers (poller, receiver, inbox) tell the engine. Each crosses one channel once,
/// so a large variant costs less than boxing every status would.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    /// A page of the customer listing; `last`: the listing is complete.
    Discovered {
        customers: Vec<Customer>,
        last: bool,
    },
    DiscoveryFailed(ApiError),
    Snapshot {
        customer_id: Uuid,
        customer: Option<Customer>,
        status: ComplianceStatus,
        /// The sweep (its number) this poll was for, if any.
        sweep: Option<u32>,
    },
    PollFailed {
        customer_id: Uuid,
        error: ApiError,
        sweep: Option<u32>,
    },
    Webhook {
        event: WebhookEvent,
        raw: String,
        ack: oneshot::Sender<Ack>,
    },
    Rejected {
        reason: RejectReason,
        detail: String,
    },
    Upload {
        path: String,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        sha256: Option<String>,
        result: UploadResult,
    },
    Fatal(ApiError),
    /// The sandbox's clock is this many seconds ahead.
    Clock(i64),
    /// A webhook's row could not be committed: its id is not known after all.
    Unrecorded(String),
}

/// What users ask of the engine.
enum Command {
    /// Poll one customer now (or, with `None`, sweep everyone).
    Refresh(Option<Uuid>),
    Pause(bool),
    Stop,
}

/// How users act on the engine. API actions go through the engine's own client and end in a
/// refresh of the customer they touched, so their effect shows up as events like any other.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
    client: ApiClient,
    uploaded: Uploaded,
    sandbox: bool,
    reader: Arc<Mutex<rusqlite::Connection>>,
    /// What the handle's own actions observed (an upload), told to the engine like the inbox.
    observations: mpsc::UnboundedSender<Observation>,
}

impl EngineHandle {
    pub fn refresh(&self, customer_id: Option<Uuid>) {
        let _ = self.commands.send(Command::Refresh(customer_id));
    }

    pub fn pause(&self, paused: bool) {
        let _ = self.commands.send(Command::Pause(paused));
    }

    /// Asks the engine to stop; the event stream ends with `stopped`.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    pub fn is_sandbox(&self) -> bool {
        self.sandbox
    }

    pub async fn create_customer(
        &self,
        profile: &crate::domain::CustomerProfile,
    ) -> Result<Customer, ApiError> {
        let customer = self.client.create_customer(profile).await?;
        self.refresh(Some(customer.id));
        Ok(customer)
    }

    pub async fn patch_customer(&self, id: Uuid, patch: &serde_json::Value) -> Result<Customer, ApiError> {
        let customer = self.client.patch_customer(id, patch).await?;
        self.refresh(Some(id));
        Ok(customer)
    }

    pub async fn start_kyc(&self, id: Uuid) -> Result<crate::api::types::KycStarted, ApiError> {
        let started = self.client.start_kyc(id, None).await?;
        self.refresh(Some(id));
        Ok(started)
    }

    pub async fn rerun_kyc(
        &self,
        customer_id: Uuid,
        onboarding_id: Uuid,
    ) -> Result<crate::api::types::KycStarted, ApiError> {
        let started = self.client.rerun_kyc(onboarding_id).await?;
        self.refresh(Some(customer_id));
        Ok(started)
    }

    /// Uploads a document under the same rule as the inbox: the same content for the same
    /// customer and type is not uploaded twice. Recorded and reported like an inbox upload;
    /// returns whether it was a duplicate.
    pub async fn upload(
        &self,
        customer_id: Uuid,
        document_type: DocumentType,
        file_name: &str,
        content: &[u8],
    ) -> Result<bool, ApiError> {
        let (sha, result) = super::inbox::upload_once(
            &self.client,
            &self.uploaded,
            customer_id,
            document_type,
            file_name,
            content,
        )
        .await?;
        let duplicate = result == UploadResult::Duplicate;
        let _ = self.observations.send(Observation::Upload {
            path: file_name.to_string(),
            customer_id: Some(customer_id),
            document_type: Some(document_type),
            sha256: Some(sha),
            result,
        });
        Ok(duplicate)
    }

    pub async fn simulate(
        &self,
        customer_id: Uuid,
        action: crate::api::types::SimulateAction,
    ) -> Result<(), ApiError> {
        self.client.simulate(customer_id, action).await?;
        self.refresh(Some(customer_id));
        Ok(())
    }

    pub async fn advance_clock(&self, seconds: u64) -> Result<crate::api::types::ClockState, ApiError> {
        let clock = self.client.advance_clock(seconds).await?;
        self.refresh(None);
        Ok(clock)
    }

    /// The client, for reads the engine does not model (documents, delivery logs).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// The whole customer and status last fetched, from the cache (point reads on their own
    /// connection; the writer thread is never waited for).
    pub async fn cached(
        &self,
        customer_id: Uuid,
    ) -> Result<(Option<Customer>, Option<ComplianceStatus>), cache::CacheError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().map_err(|_| cache::CacheError::Closed)?;
            Ok((
                cache::customer(&conn, customer_id)?,
                cache::status(&conn, customer_id)?,
            ))
        })
        .await
        .map_err(|_| cache::CacheError::Closed)?
    }

    /// A customer's timeline from the cache, oldest first (at most `limit` entries).
    pub async fn timeline(
        &self,
        customer_id: Uuid,
        limit: u32,
    ) -> Result<Vec<(OffsetDateTime, String, String)>, cache::CacheError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().map_err(|_| cache::CacheError::Closed)?;
            cache::timeline(&conn, customer_id, limit)
        })
        .await
        .map_err(|_| cache::CacheError::Closed)?
    }
}

/// A running engine.
pub struct Engine {
    pub handle: EngineHandle,
    pub events: mpsc::UnboundedReceiver<EngineEvent>,
    task: JoinHandle<()>,
}

impl Engine {
    /// Waits for the engine to stop (after [`EngineHandle::stop`], a fatal error, or `--once`).
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Splits into the handle, the events and the task.
    pub fn into_parts(self) -> (EngineHandle, mpsc::UnboundedReceiver<EngineEvent>, JoinHandle<()>) {
        (self.handle, self.events, self.task)
    }
}

const LOCK_FILE: &str = "kycdash.lock";
const ENDPOINT_ID: &str = "webhook.endpoint_id";
const ENDPOINT_URL: &str = "webhook.url";
const ENDPOINT_SECRET: &str = "webhook.secret";
const API_IDENTITY: &str = "api.identity";

/// Starts the engine on a data directory whose lock the caller holds: loads the cache, binds
/// the receiver and registers it, then runs.
pub async fn start(config: EngineConfig, lock: DataDirLock) -> Result<Engine, EngineError> {
    let data_dir = config.data_dir.clone();
    let client = ApiClient::new(&config.api)?;

    let conn = cache::open(&data_dir.join("cache.db"))?;
    let reader = Arc::new(Mutex::new(cache::open(&data_dir.join("cache.db"))?));
    let mut snapshot = cache::load(&conn)?;
    let (writer, writer_thread) = cache::spawn_writer(conn);
    // A cache filled from another API or key would mix two accounts: start it afresh.
    let identity = api_identity(&config.api, config.sandbox);
    if snapshot
        .settings
        .get(API_IDENTITY)
        .is_some_and(|known| *known != identity)
    {
        tracing::info!("the cache was filled from another API or key; starting it afresh");
        writer.write(Write::Clear)?;
        snapshot = cache::Snapshot::default();
    }
    writer.write(Write::Setting {
        key: API_IDENTITY.into(),
        value: Some(identity),
    })?;

    let (observations_tx, observations) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let uploaded: Uploaded = Arc::new(Mutex::new(std::mem::take(&mut snapshot.uploads)));
    let settings = std::mem::take(&mut snapshot.settings);

    // What the cache knew goes out first, so a dashboard draws it while the receiver is
    // still being registered.
    let mut model = Model::new(
        &config,
        client.clone(),
        writer,
        events_tx.clone(),
        observations_tx.clone(),
    );
    model.restore(snapshot);
    let everyone: Vec<Uuid> = model.customers.keys().copied().collect();
    model.publish(everyone);

    let mut webhook_url = None;
    let mut receiver_task = None;
    if let Some(receiver_config) = &config.receiver {
        let bound = receiver::bind(receiver_config.listen)
            .await
            .map_err(|source| EngineError::Listen {
                addr: receiver_config.listen,
                source,
            })?;
        let url = receiver_config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}/webhooks", bound.addr));
        let secret = match &receiver_config.secret {
            Some(secret) => secret.clone(),
            None => register(&client, &url, &settings, &model.writer).await?,
        };
        let verifier = receiver::verifier(&secret).map_err(EngineError::Config)?;
        receiver_task = Some(receiver::serve(
            bound,
            verifier,
            observations_tx.clone(),
            cancel.clone(),
        ));
        webhook_url = Some(url);
    }

    let mut inbox_task = None;
    if let Some(dir) = &config.inbox {
        std::fs::create_dir_all(dir).map_err(|source| EngineError::DataDir {
            path: dir.clone(),
            source,
        })?;
        if !config.once {
            let inbox = Inbox {
                dir: dir.clone(),
                client: client.clone(),
                uploaded: uploaded.clone(),
                engine: observations_tx.clone(),
                timing: config.timing.inbox,
            };
            inbox_task = Some(tokio::spawn(inbox.run(cancel.clone())));
        }
    }

    let _ = events_tx.send(EngineEvent::Started {
        api_url: client.base_url().to_string(),
        sandbox: config.sandbox,
        webhook_url,
        inbox: config.inbox.as_ref().map(|p| p.display().to_string()),
        data_dir: data_dir.display().to_string(),
    });

    drop(events_tx);
    let handle = EngineHandle {
        commands: commands_tx,
        client,
        uploaded,
        sandbox: config.sandbox,
        reader,
        observations: observations_tx,
    };
    let task = tokio::spawn(async move {
        let mut observations = observations;
        model.run(&mut observations, commands).await;
        // Stop the producers first, then take in what they said while stopping (an upload
        // that finished, a webhook being recorded), and only then close the cache.
        cancel.cancel();
        let producers = futures_util::future::join_all([receiver_task, inbox_task].into_iter().flatten());
        tokio::pin!(producers);
        let keep = |o: &Observation| {
            matches!(
                o,
                Observation::Upload { .. } | Observation::Webhook { .. } | Observation::Rejected { .. }
            )
        };
        loop {
            tokio::select! {
                _ = &mut producers => break,
                Some(observation) = observations.recv() => {
                    if keep(&observation) {
                        model.observe(observation);
                    }
                }
            }
        }
        while let Ok(observation) = observations.try_recv() {
            if keep(&observation) {
                model.observe(observation);
            }
        }
        model.finish(writer_thread).await;
        drop(lock);
    });
    Ok(Engine { handle, events, task })
}

/// The exclusive hold of a data directory: one engine per directory.
#[derive(Debug)]
pub struct DataDirLock(#[allow(dead_code)] File);

/// Takes a data directory's lock (a file in it, released when the process ends, however it
/// ends). The directory must exist.
pub fn lock_data_dir(data_dir: &std::path::Path) -> Result<DataDirLock, EngineError> {
    let path = data_dir.join(LOCK_FILE);
    match crate::lockfile::try_hold(&path) {
        Ok(Some(file)) => Ok(DataDirLock(file)),
        Ok(None) => Err(EngineError::Locked(data_dir.to_path_buf())),
        Err(source) => Err(EngineError::DataDir { path, source }),
    }
}

/// Which account the cache holds: a hash, so the key itself is never stored. The embedded
/// sandbox is the same account whatever port it got this time.
fn api_identity(api: &ClientConfig, embedded: bool) -> String {
    let url = if embedded {
        "embedded-sandbox"
    } else {
        api.base_url.as_str()
    };
    let digest = Sha256::digest(format!("{url}\n{}", api.api_key).as_bytes());
    hex::encode(&digest[..16])
}

/// Reuses the endpoint registered last time while it still exists at the same URL; otherwise
/// registers a new one (and removes the old one, which nobody listens on any more).
async fn register(
    client: &ApiClient,
    url: &str,
    settings: &HashMap<String, String>,
    writer: &Writer,
) -> Result<String, EngineError> {
    let known_id = settings.get(ENDPOINT_ID).and_then(|id| id.parse::<Uuid>().ok());
    let known_secret = settings.get(ENDPOINT_SECRET);
    let endpoints = client.webhooks().await.map_err(unauthorized)?;
    if let (Some(id), Some(secret)) = (known_id, known_secret) {
        if endpoints.data.iter().any(|e| e.id == id && e.url == url) {
            return Ok(secret.clone());
        }
        if endpoints.data.iter().any(|e| e.id == id)
            && let Err(err) = client.delete_webhook(id).await
        {
            tracing::warn!("cannot remove the old webhook endpoint {id}: {err}");
        }
    }
    let endpoint = client
        .create_webhook(url, Some("kycdash"))
        .await
        .map_err(unauthorized)?;
    let secret = endpoint.secret.ok_or_else(|| {
        EngineError::Config("the API created a webhook endpoint but returned no secret".into())
    })?;
    for (key, value) in [
        (ENDPOINT_ID, endpoint.id.to_string()),
        (ENDPOINT_URL, url.to_string()),
        (ENDPOINT_SECRET, secret.clone()),
    ] {
        writer.write(Write::Setting {
            key: key.into(),
            value: Some(value),
        })?;
    }
    writer.flush().await?;
    Ok(secret)
}

fn unauthorized(err: ApiError) -> EngineError {
    if err.is_unauthorized() {
        EngineError::Unauthorized
    } else {
        EngineError::Api(err)
    }
}

/// A customer as the engine knows them.
struct Entry {
    customer: Arc<CustomerSummary>,
    status: Option<Arc<cache::StatusSummary>>,
}

struct SweepProgress {
    started: Instant,
    /// Whether the listing's last page arrived.
    listed: bool,
    /// Sweep polls queued or out.
    pending: usize,
    customers: usize,
    changed: usize,
}

/// The engine task's state.
struct Model {
    client: ApiClient,
    writer: Writer,
    events: mpsc::UnboundedSender<EngineEvent>,
    observations: mpsc::UnboundedSender<Observation>,
    permits: Arc<Semaphore>,
    /// For polls someone is waiting for (a webhook's pull, a refresh).
    urgent_permits: Arc<Semaphore>,
    timing: EngineTiming,
    once: bool,
    customers: HashMap<Uuid, Entry>,
    tracker: Tracker,
    seen_events: HashSet<String>,
    /// Next poll of each customer, with lazy deletion: an entry counts only if it matches
    /// `due`.
    schedule: BinaryHeap<Reverse<(Instant, Uuid)>>,
    due: HashMap<Uuid, Instant>,
    in_flight: HashSet<Uuid>,
    /// Polled again as soon as the poll in flight returns (a webhook arrived meanwhile).
    poll_again: HashSet<Uuid>,
    failures: HashMap<Uuid, u32>,
    /// Listings that failed in a row.
    discovery_failures: u32,
    alerted: HashSet<(Uuid, AlertKind)>,
    sweep: Option<SweepProgress>,
    next_sweep: Instant,
    last_webhook: Option<Instant>,
    paused: bool,
    stopping: bool,
    /// The poller state last sent to the dashboard, when, and whether a newer one waits.
    poller_published: (usize, bool),
    poller_emitted: Instant,
    poller_pending: bool,
    sandbox: bool,
    /// How far the API's clock is ahead of this machine's.
    server_offset: time::Duration,
    /// Which sweep is (or was last) running; polls carry it, so a late answer to a sweep that
    /// failed is not counted for the next one.
    sweep_number: u32,
    /// A refresh of everyone asked for while a sweep ran: another follows it.
    sweep_requested: bool,
    /// Sweep polls waiting to start, and how many are out.
    sweep_queue: std::collections::VecDeque<Uuid>,
    sweep_out: usize,
    concurrency: usize,
    /// Whether anyone wants `Customers` events (the dashboard does, `watch` does not).
    publish_customers: bool,
    /// Scheduled polls started in the current second: (its start, how many).
    background: (Instant, u32),
    /// When link expiries and decision waits are next checked.
    countdowns_due: Instant,
}

impl Model {
    fn new(
        config: &EngineConfig,
        client: ApiClient,
        writer: Writer,
        events: mpsc::UnboundedSender<EngineEvent>,
        observations: mpsc::UnboundedSender<Observation>,
    ) -> Self {
        Self {
            client,
            writer,
            events,
            observations,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            urgent_permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            timing: config.timing,
            once: config.once,
            customers: HashMap::new(),
            tracker: Tracker::default(),
            seen_events: HashSet::new(),
            schedule: BinaryHeap::new(),
            due: HashMap::new(),
            in_flight: HashSet::new(),
            poll_again: HashSet::new(),
            failures: HashMap::new(),
            discovery_failures: 0,
            alerted: HashSet::new(),
            sweep: None,
            next_sweep: Instant::now(),
            last_webhook: None,
            paused: false,
            stopping: false,
            poller_published: (0, false),
            poller_emitted: Instant::now(),
            poller_pending: false,
            sandbox: config.sandbox,
            server_offset: time::Duration::ZERO,
            sweep_requested: false,
            sweep_number: 0,
            background: (Instant::now(), 0),
            sweep_queue: std::collections::VecDeque::new(),
            sweep_out: 0,
            concurrency: config.concurrency.max(1),
            publish_customers: config.publish_customers,
            countdowns_due: Instant::now() + Duration::from_secs(60),
        }
    }

    fn restore(&mut self, snapshot: cache::Snapshot) {
        self.seen_events = snapshot.event_ids;
        for cached in snapshot.customers {
            let id = cached.customer.id;
            if let Some((view, since)) = &cached.workflow {
                self.tracker.restore(id, view, *since);
            }
            self.customers.insert(
                id,
                Entry {
                    customer: Arc::new(cached.customer),
                    status: cached.status.map(|(status, _)| Arc::new(status)),
                },
            );
        }
    }

    fn state_of(&self, id: Uuid) -> Option<CustomerState> {
        let entry = self.customers.get(&id)?;
        Some(CustomerState {
            customer: entry.customer.clone(),
            status: entry.status.clone(),
            stage: self.tracker.stage(id),
            since: self.tracker.since(id),
        })
    }

    /// Tells the dashboard about customers that changed.
    fn publish(&self, ids: impl IntoIterator<Item = Uuid>) {
        if !self.publish_customers {
            return;
        }
        let states: Vec<CustomerState> = ids.into_iter().filter_map(|id| self.state_of(id)).collect();
        if !states.is_empty() {
            self.emit(EngineEvent::Customers(states));
        }
    }

    /// Tells the dashboard the poller's state: a pause at once, the in-flight count at most
    /// once a second (it changes with every poll, and each change would be a frame).
    fn publish_poller(&mut self) {
        let now = (self.in_flight.len(), self.paused);
        self.poller_pending = now != self.poller_published;
        if !self.poller_pending {
            return;
        }
        if now.1 != self.poller_published.1 || self.poller_emitted.elapsed() >= Duration::from_secs(1) {
            self.poller_published = now;
            self.poller_emitted = Instant::now();
            self.poller_pending = false;
            self.emit(EngineEvent::Poller {
                in_flight: now.0,
                paused: now.1,
            });
        }
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
    }

    async fn run(
        &mut self,
        observations: &mut mpsc::UnboundedReceiver<Observation>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut batch = Vec::with_capacity(256);
        // Every handle dropped: no more commands, but the engine goes on until it is stopped.
        let mut commands_open = true;
        while !self.stopping {
            let wake = self.next_wake();
            tokio::select! {
                biased;
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.command(command),
                    None => commands_open = false,
                },
                count = observations.recv_many(&mut batch, 1024) => {
                    if count == 0 {
                        self.stopping = true;
                    }
                    for observation in batch.drain(..) {
                        self.observe(observation);
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => self.tick(),
            }
            self.publish_poller();
        }
    }

    async fn finish(self, writer_thread: std::thread::JoinHandle<()>) {
        if let Err(err) = self.writer.flush().await {
            tracing::error!("the last writes to the cache were lost: {err}");
        }
        self.emit(EngineEvent::Stopped);
        drop(self.writer);
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    }

    fn next_wake(&mut self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        // Paused, no sweep starts: waking for one would spin.
        let mut wake = if self.sweep.is_none() && !self.paused {
            self.next_sweep
        } else {
            far
        };
        // Drop stale heap entries so the earliest one is real.
        while let Some(Reverse((at, id))) = self.schedule.peek().copied() {
            if self.due.get(&id) == Some(&at) {
                if !self.paused {
                    // With this second's budget spent, the next poll waits for the next one.
                    let (second, spent) = self.background;
                    let budget_back = if spent >= self.timing.background_polls_per_second.max(1) {
                        second + Duration::from_secs(1)
                    } else {
                        at
                    };
                    wake = wake.min(at.max(budget_back));
                }
                break;
            }
            self.schedule.pop();
        }
        if self.poller_pending {
            wake = wake.min(self.poller_emitted + Duration::from_secs(1));
        }
        // Countdowns (link expiry, time waiting for a decision) are checked once a minute.
        wake.min(self.countdowns_due)
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Refresh(Some(id)) => self.poll_now(id, false),
            Command::Refresh(None) => {
                self.next_sweep = Instant::now();
                self.sweep_requested = true;
            }
            Command::Pause(paused) => self.paused = paused,
            Command::Stop => self.stopping = true,
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self.sweep.is_none() && self.next_sweep <= now && !self.paused {
            self.start_sweep();
        }
        if !self.paused {
            while let Some(Reverse((at, id))) = self.schedule.peek().copied() {
                if at > now || !self.background_budget(now) {
                    break;
                }
                self.schedule.pop();
                if self.due.get(&id) == Some(&at) {
                    self.due.remove(&id);
                    self.poll_now(id, false);
                }
            }
        }
        if self.countdowns_due <= now {
            self.check_countdowns();
            self.countdowns_due = now + Duration::from_secs(60);
        }
    }

    /// Takes one scheduled poll from this second's budget; `false` when it is spent.
    fn background_budget(&mut self, now: Instant) -> bool {
        let (second, spent) = &mut self.background;
        if now.duration_since(*second) >= Duration::from_secs(1) {
            *second = now;
            *spent = 0;
        }
        if *spent >= self.timing.background_polls_per_second.max(1) {
            return false;
        }
        *spent += 1;
        true
    }

    fn start_sweep(&mut self) {
        self.sweep_requested = false;
        self.sweep_number = self.sweep_number.wrapping_add(1);
        self.sweep = Some(SweepProgress {
            started: Instant::now(),
            listed: false,
            pending: 0,
            customers: 0,
            changed: 0,
        });
        let client = self.client.clone();
        let observations = self.observations.clone();
        let sandbox = self.sandbox;
        tokio::spawn(async move {
            if sandbox && let Ok(clock) = client.clock().await {
                let _ = observations.send(Observation::Clock(clock.offset_seconds as i64));
            }
            // Page by page: 100,000 whole customers held at once would be most of the
            // engine's memory, for a moment.
            let mut cursor: Option<String> = None;
            loop {
                let page = match client
                    .list_customers(crate::api::client::PAGE_LIMIT, cursor.as_deref())
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        let _ = observations.send(Observation::DiscoveryFailed(err));
                        return;
                    }
                };
                let next = page.next_cursor.filter(|next| Some(next) != cursor.as_ref());
                let last = next.is_none();
                if observations
                    .send(Observation::Discovered {
                        customers: page.data,
                        last,
                    })
                    .is_err()
                    || last
                {
                    return;
                }
                cursor = next;
            }
        });
    }

    fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Discovered { customers, last } => self.discovered(customers, last),
            Observation::DiscoveryFailed(error) => {
                if error.is_unauthorized() {
                    return self.fatal_api(&error);
                }
                self.discovery_failures += 1;
                let retry = self.retry_delay(&error, self.discovery_failures);
                self.emit(EngineEvent::PollError {
                    customer_id: None,
                    status: error.status(),
                    error: format!("listing customers failed: {error}"),
                    retry_in_seconds: retry.as_secs(),
                });
                self.sweep = None;
                // Polls the failed sweep queued are dropped (everyone keeps their own schedule,
                // and the retry lists them again); those out are not counted for the next one.
                self.sweep_queue.clear();
                self.next_sweep = Instant::now() + retry;
                if self.once {
                    // `--once` reports and ends rather than retrying for ever.
                    self.fatal(format!("listing customers failed: {error}"));
                }
            }
            Observation::Snapshot {
                customer_id,
                customer,
                status,
                sweep,
            } => {
                let stale = self.polled(customer_id);
                self.sweep_returned(sweep);
                self.failures.remove(&customer_id);
                if !stale {
                    self.snapshot(customer_id, customer, status);
                }
                self.sweep_step(sweep == Some(self.sweep_number));
            }
            Observation::PollFailed {
                customer_id,
                error,
                sweep,
            } => {
                self.polled(customer_id);
                self.sweep_returned(sweep);
                if error.is_unauthorized() {
                    return self.fatal_api(&error);
                }
                let failures = self.failures.entry(customer_id).or_insert(0);
                *failures += 1;
                let failures = *failures;
                let retry = self.retry_delay(&error, failures);
                self.emit(EngineEvent::PollError {
                    customer_id: Some(customer_id),
                    status: error.status(),
                    error: error.to_string(),
                    retry_in_seconds: retry.as_secs(),
                });
                self.schedule_poll(customer_id, retry);
                self.sweep_step(sweep == Some(self.sweep_number));
            }
            Observation::Webhook { event, raw, ack } => self.webhook(event, raw, ack),
            Observation::Rejected { reason, detail } => {
                self.emit(EngineEvent::WebhookRejected { reason, detail });
            }
            Observation::Upload {
                path,
                customer_id,
                document_type,
                sha256,
                result,
            } => self.upload(path, customer_id, document_type, sha256, result),
            Observation::Fatal(error) => self.fatal_api(&error),
            Observation::Unrecorded(event_id) => {
                self.seen_events.remove(&event_id);
            }
            Observation::Clock(offset_seconds) => {
                let offset = time::Duration::seconds(offset_seconds);
                if offset != self.server_offset {
                    self.server_offset = offset;
                    self.emit(EngineEvent::Clock { offset_seconds });
                }
            }
        }
    }

    /// The API refused to go on: a refused key says how to fix it.
    fn fatal_api(&mut self, error: &ApiError) {
        let error = if error.is_unauthorized() {
            EngineError::Unauthorized.to_string()
        } else {
            error.to_string()
        };
        self.fatal(error);
    }

    fn fatal(&mut self, error: String) {
        if !self.stopping {
            self.emit(EngineEvent::Fatal { error });
            self.stopping = true;
        }
    }

    /// Backoff for a failed request: the server's `Retry-After`, or exponential with jitter.
    fn retry_delay(&self, error: &ApiError, failures: u32) -> Duration {
        error.retry_after().unwrap_or_else(|| {
            crate::api::client::backoff(
                Duration::from_secs(2),
                Duration::from_secs(300),
                failures.saturating_sub(1),
            )
        })
    }

    /// Keeps a customer as the API returned them; returns whether anything changed (then the
    /// row is written to the cache too).
    fn keep_customer(&mut self, (summary, body): (CustomerSummary, String)) -> bool {
        let id = summary.id;
        let unchanged = self
            .customers
            .get(&id)
            .is_some_and(|entry| entry.customer.hash == summary.hash);
        if unchanged {
            return false;
        }
        let summary = Arc::new(summary);
        self.writer_write(Write::Customer {
            summary: summary.clone(),
            body,
        });
        self.customers
            .entry(id)
            .and_modify(|entry| entry.customer = summary.clone())
            .or_insert(Entry {
                customer: summary,
                status: None,
            });
        true
    }

    fn discovered(&mut self, customers: Vec<Customer>, last: bool) {
        self.discovery_failures = 0;
        let total = customers.len();
        let mut to_poll = Vec::new();
        let mut changed = Vec::new();
        for customer in customers {
            let id = customer.id;
            let kept = match CustomerSummary::of(&customer) {
                Ok(kept) => kept,
                Err(err) => {
                    tracing::error!("cannot keep customer {id}: {err}");
                    continue;
                }
            };
            let known = self.customers.get(&id);
            // A sweep pulls the status of whom it does not know yet, or whose profile changed;
            // `--once` (a full sweep) also of every open onboarding. The others keep their
            // own schedule, so a sweep of 100,000 customers is one listing, not 100,000 polls.
            let stage = self.tracker.stage(id);
            let needs_status = match (known, stage) {
                (Some(entry), Some(stage)) => {
                    entry.status.is_none()
                        || entry.customer.hash != kept.0.hash
                        || (self.once && !stage.is_terminal())
                }
                _ => true,
            };
            if !needs_status
                && let Some(interval) = stage.and_then(|s| self.poll_interval(s))
                && !self.due.contains_key(&id)
                && !self.in_flight.contains(&id)
            {
                // Spread over the interval, so a warm start does not poll everyone at once.
                let spread = rand::Rng::random_range(&mut rand::rng(), 0..=interval.as_millis() as u64);
                self.schedule_poll(id, Duration::from_millis(spread));
            }
            if self.keep_customer(kept) {
                changed.push(id);
            }
            if needs_status {
                to_poll.push(id);
            }
        }
        self.publish(changed);
        if let Some(sweep) = &mut self.sweep {
            sweep.customers += total;
            sweep.pending += to_poll.len();
            sweep.listed = last;
        }
        // Queued, not spawned: 100,000 waiting tasks would cost more than the polls.
        self.sweep_queue.extend(to_poll);
        self.feed_sweep();
        self.sweep_step(false);
    }

    /// Starts queued sweep polls while fewer than twice the concurrency are out.
    fn feed_sweep(&mut self) {
        while self.sweep_out < self.concurrency * 2 {
            let Some(id) = self.sweep_queue.pop_front() else {
                break;
            };
            self.spawn_poll(id, false, true);
        }
    }

    fn sweep_step(&mut self, polled_for_sweep: bool) {
        let Some(sweep) = &mut self.sweep else { return };
        if polled_for_sweep {
            sweep.pending = sweep.pending.saturating_sub(1);
        }
        if !sweep.listed || sweep.pending != 0 {
            return;
        }
        let (customers, changed, duration) = (sweep.customers, sweep.changed, sweep.started.elapsed());
        self.sweep = None;
        self.next_sweep = if std::mem::take(&mut self.sweep_requested) {
            Instant::now()
        } else {
            Instant::now() + self.timing.sweep_every
        };
        self.emit(EngineEvent::Sweep {
            customers,
            changed,
            duration_ms: duration.as_millis() as u64,
        });
        if self.once {
            self.stopping = true;
        }
    }

    /// A poll came back; `sweep`: the sweep it was for. Only the current sweep counts it.
    fn sweep_returned(&mut self, sweep: Option<u32>) {
        if sweep.is_some() {
            self.sweep_out = self.sweep_out.saturating_sub(1);
            self.feed_sweep();
        }
    }

    /// A poll of this customer came back. Returns whether its answer is already stale: a
    /// webhook arrived while it was in flight, and the poll that follows supersedes it.
    fn polled(&mut self, customer_id: Uuid) -> bool {
        self.in_flight.remove(&customer_id);
        let stale = self.poll_again.remove(&customer_id);
        if stale {
            self.spawn_poll(customer_id, false, false);
        }
        stale
    }

    /// Polls a customer now, unless a poll is already in flight (then right after it).
    fn poll_now(&mut self, id: Uuid, fetch_customer: bool) {
        if self.paused {
            // Due at once, polled when polling resumes.
            self.due.remove(&id);
            self.schedule_poll(id, Duration::ZERO);
            return;
        }
        if self.in_flight.contains(&id) {
            self.poll_again.insert(id);
            return;
        }
        self.due.remove(&id);
        self.spawn_poll(id, fetch_customer, false);
    }

    /// Polls a customer, at most one poll of a customer at a time. Sweep polls queue on their
    /// own permits, so a webhook's pull never waits behind a sweep of thousands.
    fn spawn_poll(&mut self, id: Uuid, fetch_customer: bool, sweep: bool) {
        if !self.in_flight.insert(id) {
            if sweep {
                // Already being polled: that answer serves the sweep too.
                self.sweep_step(true);
            } else {
                self.poll_again.insert(id);
            }
            return;
        }
        if sweep {
            self.sweep_out += 1;
        }
        let tag = sweep.then_some(self.sweep_number);
        let fetch_customer = fetch_customer || !self.customers.contains_key(&id);
        let client = self.client.clone();
        let observations = self.observations.clone();
        let permits = if sweep {
            self.permits.clone()
        } else {
            self.urgent_permits.clone()
        };
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let customer = if fetch_customer {
                match client.customer(id).await {
                    Ok(customer) => Some(customer),
                    Err(error) => {
                        let _ = observations.send(Observation::PollFailed {
                            customer_id: id,
                            error,
                            sweep: tag,
                        });
                        return;
                    }
                }
            } else {
                None
            };
            let observation = match client.status(id).await {
                Ok(status) => Observation::Snapshot {
                    customer_id: id,
                    customer,
                    status,
                    sweep: tag,
                },
                Err(error) => Observation::PollFailed {
                    customer_id: id,
                    error,
                    sweep: tag,
                },
            };
            let _ = observations.send(observation);
        });
    }

    fn schedule_poll(&mut self, id: Uuid, after: Duration) {
        let at = Instant::now() + after;
        if self.due.get(&id).is_some_and(|known| *known <= at) {
            return;
        }
        self.due.insert(id, at);
        self.schedule.push(Reverse((at, id)));
    }

    /// How long until a customer in `stage` is polled again; `None` for final stages.
    fn poll_interval(&self, stage: Stage) -> Option<Duration> {
        let base = match stage {
            Stage::Approved | Stage::Denied | Stage::Errored => return None,
            Stage::AwaitingSdk | Stage::AwaitingDecision => self.timing.poll_active,
            Stage::CollectingRequirements | Stage::InReview => self.timing.poll_idle,
            Stage::NeedsProfile | Stage::ReadyToStart | Stage::Expired => self.timing.poll_integrator,
        };
        let webhooks_healthy = self
            .last_webhook
            .is_some_and(|at| at.elapsed() < self.timing.sweep_every);
        Some(if webhooks_healthy {
            base * self.timing.stretch_while_webhooks.max(1)
        } else {
            base
        })
    }

    fn writer_write(&self, write: Write) {
        if let Err(err) = self.writer.write(write) {
            tracing::error!("cannot queue a write to the cache: {err}");
        }
    }

    fn snapshot(&mut self, id: Uuid, customer: Option<Customer>, status: ComplianceStatus) {
        let now = OffsetDateTime::now_utc();
        let mut publish = false;
        if let Some(customer) = customer {
            match CustomerSummary::of(&customer) {
                Ok(kept) => publish = self.keep_customer(kept),
                Err(err) => tracing::error!("cannot keep customer {id}: {err}"),
            }
        }
        let Some(entry) = self.customers.get_mut(&id) else {
            return;
        };
        let reconciled = self.tracker.on_snapshot(id, &status, now);
        match cache::StatusSummary::of(&status) {
            Ok((summary, body)) => {
                if entry
                    .status
                    .as_ref()
                    .is_none_or(|known| known.hash != summary.hash)
                {
                    publish = true;
                    let summary = Arc::new(summary);
                    entry.status = Some(summary.clone());
                    self.writer
                        .write(Write::Status {
                            customer_id: id,
                            body,
                            summary,
                            fetched_at: now,
                        })
                        .unwrap_or_else(|err| tracing::error!("cannot queue a status for the cache: {err}"));
                }
            }
            Err(err) => tracing::error!("cannot keep the status of {id}: {err}"),
        }
        let external_id = entry.customer.external_id.as_deref().map(String::from);
        let (onboarding_status, next_action, is_compliant) =
            (status.onboarding_status, status.next_action, status.is_compliant);
        let sdk_expires = status.sdk.as_ref().map(|s| s.expires_at);
        // The row first, so whoever reads the events below already knows the customer.
        if publish || reconciled.changed() {
            self.publish([id]);
        }

        if let Some(drift) = reconciled.drift {
            self.emit(EngineEvent::Alert {
                customer_id: id,
                alert: AlertKind::Drift,
                detail: format!(
                    "the webhooks said {} but the status says {}: an event was missed, late or out of order",
                    drift.claimed, drift.seen
                ),
            });
        }
        if reconciled.changed() {
            self.writer_write(Write::Workflow {
                customer_id: id,
                view: reconciled.view.clone(),
                since: reconciled.since,
            });
            self.writer_write(Write::Timeline {
                customer_id: id,
                at: now,
                kind: "stage",
                text: match reconciled.from {
                    Some(from) => format!("{from} → {}", reconciled.to),
                    None => format!("first seen: {}", reconciled.to),
                },
            });
            self.alerted.retain(|(customer, _)| *customer != id);
            if let Some(sweep) = &mut self.sweep {
                sweep.changed += 1;
            }
            self.emit(EngineEvent::StageChanged {
                customer_id: id,
                external_id,
                from: reconciled.from,
                to: reconciled.to,
                onboarding_status,
                next_action,
                is_compliant,
            });
            if reconciled.to == Stage::Errored && reconciled.from.is_some() {
                self.alert(
                    id,
                    AlertKind::VerificationError,
                    "identity verification failed; the onboarding is final: contact the provider's support"
                        .into(),
                );
            }
        }
        self.countdowns_of(id, reconciled.to, reconciled.since, sdk_expires);
        if let Some(after) = self.poll_interval(reconciled.to) {
            self.schedule_poll(id, after);
        } else {
            self.due.remove(&id);
        }
    }

    fn alert(&mut self, id: Uuid, alert: AlertKind, detail: String) {
        if self.alerted.insert((id, alert)) {
            self.writer_write(Write::Timeline {
                customer_id: id,
                at: OffsetDateTime::now_utc(),
                kind: "alert",
                text: detail.clone(),
            });
            self.emit(EngineEvent::Alert {
                customer_id: id,
                alert,
                detail,
            });
        }
    }

    fn check_countdowns(&mut self) {
        let candidates: Vec<(Uuid, Stage, OffsetDateTime, Option<OffsetDateTime>)> = self
            .customers
            .iter()
            .filter_map(|(id, entry)| {
                let stage = self.tracker.stage(*id)?;
                matches!(stage, Stage::AwaitingSdk | Stage::AwaitingDecision).then(|| {
                    let expires = entry
                        .status
                        .as_ref()
                        .and_then(|s| s.sdk.as_ref())
                        .map(|s| s.expires_at);
                    (
                        *id,
                        stage,
                        self.tracker.since(*id).unwrap_or(OffsetDateTime::now_utc()),
                        expires,
                    )
                })
            })
            .collect();
        for (id, stage, since, expires) in candidates {
            self.countdowns_of(id, stage, since, expires);
        }
    }

    /// Link expiring soon; a decision taking too long.
    fn countdowns_of(
        &mut self,
        id: Uuid,
        stage: Stage,
        since: OffsetDateTime,
        sdk_expires: Option<OffsetDateTime>,
    ) {
        let now = OffsetDateTime::now_utc();
        // Link expiries are on the API's clock.
        let server_now = now + self.server_offset;
        match (stage, sdk_expires) {
            (Stage::AwaitingSdk, Some(expires)) => {
                let left = expires - server_now;
                if left.is_positive() && left <= self.timing.expiring_within {
                    self.alert(
                        id,
                        AlertKind::SdkLinkExpiring,
                        format!(
                            "the SDK link expires in {} s ({}); remind the customer to finish",
                            left.whole_seconds(),
                            crate::sync::rfc3339(expires)
                        ),
                    );
                }
            }
            (Stage::AwaitingDecision, _) => {
                let waiting = now - since;
                if waiting >= self.timing.stuck_after {
                    self.alert(
                        id,
                        AlertKind::StuckWaiting,
                        format!(
                            "waiting for the provider's decision for {} h (since {})",
                            waiting.whole_hours(),
                            crate::sync::rfc3339(since)
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    fn webhook(&mut self, event: WebhookEvent, raw: String, ack: oneshot::Sender<Ack>) {
        let customer_id = event.customer_id();
        let duplicate = !self.seen_events.insert(event.id.clone());
        self.emit(EngineEvent::Webhook {
            event_id: event.id.clone(),
            event_type: event.event_type_name().to_string(),
            customer_id,
            duplicate,
        });
        if duplicate {
            let _ = ack.send(Ack::Duplicate);
            return;
        }
        self.last_webhook = Some(Instant::now());
        let now = OffsetDateTime::now_utc();
        self.writer_write(Write::Event {
            id: event.id.clone(),
            event_type: event.event_type_name().to_string(),
            customer_id,
            body: raw,
            received_at: now,
        });
        // The sender hears 200 only once the event is committed.
        let (committed, on_commit) = oneshot::channel();
        self.writer_write(Write::Flush(committed));
        // If it is not committed, the id is forgotten: the sender's retry is then applied
        // rather than called a duplicate.
        let (observations, event_id) = (self.observations.clone(), event.id.clone());
        tokio::spawn(async move {
            if on_commit.await == Ok(true) {
                let _ = ack.send(Ack::Recorded);
            } else {
                let _ = observations.send(Observation::Unrecorded(event_id));
            }
        });
        let Some(customer_id) = customer_id else { return };
        self.writer_write(Write::Timeline {
            customer_id,
            at: now,
            kind: "webhook",
            text: event.event_type_name().to_string(),
        });
        self.tracker.on_webhook(&event);
        // Push says something changed; pull says what to do.
        let profile_changed = matches!(
            event.event_type(),
            Some(crate::domain::EventType::CustomerCreated | crate::domain::EventType::CustomerUpdated)
        );
        self.poll_now(customer_id, profile_changed);
    }

    fn upload(
        &mut self,
        path: String,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        sha256: Option<String>,
        result: UploadResult,
    ) {
        let now = OffsetDateTime::now_utc();
        let uploaded = result == UploadResult::Uploaded;
        let (result, error) = match result {
            UploadResult::Uploaded => ("uploaded", None),
            UploadResult::Duplicate => ("duplicate", None),
            UploadResult::Failed(why) => ("failed", Some(why)),
        };
        if let (true, Some(id), Some(document_type), Some(sha256)) =
            (uploaded, customer_id, document_type, &sha256)
        {
            self.writer_write(Write::Upload {
                sha256: sha256.clone(),
                customer_id: id,
                document_type: document_type.as_str().to_string(),
                path: path.clone(),
                document_id: None,
                at: now,
            });
        }
        if let Some(id) = customer_id {
            self.writer_write(Write::Timeline {
                customer_id: id,
                at: now,
                kind: "upload",
                text: format!(
                    "{} {path}: {result}{}",
                    document_type.map(|t| t.as_str()).unwrap_or("document"),
                    error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            });
            if uploaded {
                self.poll_now(id, false);
            }
        }
        self.emit(EngineEvent::Upload {
            path,
            customer_id,
            document_type,
            result,
            error,
        });
    }
}
