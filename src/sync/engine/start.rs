//! Starting the engine: the data directory's lock, the cache, the receiver and its
//! registration with the API, the inbox; then the engine task.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::handle::{Engine, EngineHandle};
use super::registration::Pending;
use super::{EngineConfig, EngineError, EngineEvent, Model};
use crate::api::{ApiClient, ApiError, ClientConfig};
use crate::sync::backlog::Backlog;
use crate::sync::cache::StoredEvents;
use crate::sync::cache::{self, Write, Writer};
use crate::sync::inbox::{Inbox, Uploaded};
use crate::sync::observation::Observation;
use crate::sync::receiver;
use crate::sync::receiver::Inlet;

const LOCK_FILE: &str = "kycdash.lock";
/// Events the watcher may be behind before the forwarder waits for it.
const EVENTS_BUFFER: usize = 1024;
const ENDPOINT_ID: &str = "webhook.endpoint_id";
const ENDPOINT_URL: &str = "webhook.url";
const ENDPOINT_SECRET: &str = "webhook.secret";
/// The cache setting that names the account it holds.
pub const API_IDENTITY: &str = "api.identity";

/// Starts the engine on a data directory whose lock the caller holds: loads the cache, binds
/// the receiver and registers it, then runs.
pub async fn start(config: EngineConfig, lock: DataDirLock) -> Result<Engine, EngineError> {
    // --concurrency bounds every request the engine makes, pulls, listings, uploads and the
    // dashboard's actions together.
    let api = ClientConfig {
        concurrency: Some(config.concurrency.max(1)),
        ..config.api.clone()
    };
    let mut client = ApiClient::new(&api)?;
    if let Some(metrics) = config.metrics.clone() {
        client = client.with_latency_hook(Arc::new(move |took| metrics.api_request(took)));
    }
    let (observations_tx, observations) = mpsc::unbounded_channel();
    let Cache {
        reader,
        mut snapshot,
        writer,
        writer_thread,
    } = open_cache(&config, observations_tx.clone()).await?;
    // Bounded: a watcher that stops reading slows the engine down (see `Backlog`).
    let (events_tx, events) = mpsc::channel(EVENTS_BUFFER);
    let inlet = Inlet {
        engine: observations_tx.clone(),
        backlog: Backlog::new(config.timing.watcher_behind),
        stored: stored_events(&config),
    };
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
        inlet.clone(),
        cancel.clone(),
    );
    model.restore(snapshot);
    model.count_stages();
    model.publish_restored();

    let producers = Producers {
        client: &client,
        inlet: &inlet,
        observations: &observations_tx,
        cancel: &cancel,
    };
    let (webhook_url, receiver_task) = match producers.receiver(&config, &settings, &model.writer).await? {
        Receiving::Now(url, task) => (Some(url), Some(task)),
        Receiving::None => (None, None),
        Receiving::Later(pending, error) => {
            // Degraded, not dead: polling alone, said once, registration retried.
            model.registration_failed_at_start(*pending, error);
            (None, None)
        }
        Receiving::Soon(pending) => {
            model.register_soon(*pending);
            (None, None)
        }
    };
    let inbox_task = producers.inbox(&config, &uploaded, &model)?;
    let _ = events_tx.try_send(EngineEvent::Started {
        api_url: client.base_url().to_string(),
        sandbox: config.sandbox,
        webhook_url,
        inbox: config.inbox.as_ref().map(|p| p.display().to_string()),
        data_dir: config.data_dir.display().to_string(),
    });
    drop(events_tx);

    let handle = EngineHandle {
        commands: commands_tx,
        client,
        uploaded,
        sandbox: config.sandbox,
        reader,
        exports: config.data_dir.join("exports"),
        observations: observations_tx,
    };
    let task = tokio::spawn(async move {
        let mut observations = observations;
        model.index_customers();
        model.run(&mut observations, commands).await;
        let producers = [receiver_task, inbox_task].into_iter().flatten();
        model.stop(observations, producers, writer_thread).await;
        drop(lock);
    });
    Ok(Engine { handle, events, task })
}

/// The cache, open and loaded, and its writer running.
struct Cache {
    reader: Arc<Mutex<rusqlite::Connection>>,
    snapshot: cache::Snapshot,
    writer: Writer,
    writer_thread: std::thread::JoinHandle<()>,
}

/// Opens and loads the cache (up to 100,000 rows: on the blocking pool, never on an async
/// worker); a cache filled from another API or key would mix two accounts, so it is started
/// afresh. Rows the writer cannot store are told to the engine, which writes them again.
async fn open_cache(
    config: &EngineConfig,
    observations: mpsc::UnboundedSender<Observation>,
) -> Result<Cache, EngineError> {
    let path = config.data_dir.join("cache.db");
    let identity = api_identity(&config.api, config.sandbox);
    let opening = tokio::task::spawn_blocking(move || load_cache(&path, identity, observations));
    match opening.await {
        Ok(cache) => cache,
        Err(err) => match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(cache::CacheError::Closed.into()),
        },
    }
}

/// [`open_cache`]'s blocking work.
fn load_cache(
    path: &std::path::Path,
    identity: String,
    observations: mpsc::UnboundedSender<Observation>,
) -> Result<Cache, EngineError> {
    let conn = cache::open(path)?;
    let reader = Arc::new(Mutex::new(cache::open(path)?));
    let mut snapshot = cache::load(&conn)?;
    let (writer, writer_thread) = cache::spawn_writer(conn, move |lost| {
        let _ = observations.send(Observation::Lost(lost));
    });
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
    Ok(Cache {
        reader,
        snapshot,
        writer,
        writer_thread,
    })
}

/// How long the registration tried at start may take: one attempt each, soon given up, so
/// that a dead or slow API costs the first frame no more than a moment (the engine then polls
/// alone, and the patient client retries in the background).
const FIRST_TRY: std::time::Duration = std::time::Duration::from_secs(3);

/// How the receiver starts.
enum Receiving {
    /// Registered (or given its secret): serving at this URL.
    Now(String, JoinHandle<()>),
    /// No receiver: polling alone by configuration.
    None,
    /// The registration failed for a reason of the API's: retried later.
    Later(Box<Pending>, EngineError),
    /// Not tried yet: the running engine tries it at once.
    Soon(Box<Pending>),
}

/// What the producers (receiver, inbox) need to start.
struct Producers<'a> {
    client: &'a ApiClient,
    inlet: &'a Inlet,
    observations: &'a mpsc::UnboundedSender<Observation>,
    cancel: &'a CancellationToken,
}

impl Producers<'_> {
    /// Binds the receiver and registers it with the API (unless its secret was given). A
    /// registration the API refuses or cannot answer is left for later (only a refused key
    /// ends the engine).
    async fn receiver(
        &self,
        config: &EngineConfig,
        settings: &HashMap<String, String>,
        writer: &Writer,
    ) -> Result<Receiving, EngineError> {
        let Some(receiver_config) = &config.receiver else {
            return Ok(Receiving::None);
        };
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
        let pending = |bound, url| {
            Box::new(Pending {
                bound,
                url,
                settings: settings.clone(),
                failures: 0,
                next_at: std::time::Instant::now(),
                trying: false,
            })
        };
        let secret = match &receiver_config.secret {
            Some(secret) => secret.expose_secret().to_string(),
            None if !config.register_before_start => return Ok(Receiving::Soon(pending(bound, url))),
            None => match register(&self.client.impatient(FIRST_TRY), &url, settings, writer).await {
                Ok(secret) => secret,
                Err(EngineError::Unauthorized) => return Err(EngineError::Unauthorized),
                Err(error) => return Ok(Receiving::Later(pending(bound, url), error)),
            },
        };
        let verifier = receiver::verifier(&secret).map_err(EngineError::Config)?;
        let task = receiver::serve(bound, verifier, self.inlet.clone(), self.cancel.clone());
        Ok(Receiving::Now(url, task))
    }

    /// Creates the inbox folder and, unless the engine only sweeps once, watches it.
    fn inbox(
        &self,
        config: &EngineConfig,
        uploaded: &Uploaded,
        model: &Model,
    ) -> Result<Option<JoinHandle<()>>, EngineError> {
        let Some(dir) = &config.inbox else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir).map_err(|source| EngineError::DataDir {
            path: dir.clone(),
            source,
        })?;
        if config.once {
            return Ok(None);
        }
        let inbox = Inbox {
            dir: dir.clone(),
            client: self.client.clone(),
            uploaded: uploaded.clone(),
            engine: self.observations.clone(),
            directory: model.directory.clone(),
            timing: config.timing.inbox,
        };
        Ok(Some(tokio::spawn(inbox.run(self.cancel.clone()))))
    }
}

/// The receiver's own read-only look into the cache, for repeats of events older than the
/// engine's memory; without it (said in the log), only that memory tells repeats.
fn stored_events(config: &EngineConfig) -> Option<StoredEvents> {
    config.receiver.as_ref()?;
    match StoredEvents::open(&config.data_dir.join("cache.db")) {
        Ok(stored) => Some(stored),
        Err(err) => {
            tracing::warn!("the receiver cannot read the cache ({err}); only recent repeats are told");
            None
        }
    }
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

/// Which account the cache holds (the `api.identity` setting): a hash, so the key itself is
/// never stored. The embedded
/// sandbox is the same account whatever port it got this time.
pub fn api_identity(api: &ClientConfig, embedded: bool) -> String {
    let url = if embedded {
        "embedded-sandbox"
    } else {
        api.base_url.as_str()
    };
    let digest = Sha256::digest(format!("{url}\n{}", api.api_key.expose_secret()).as_bytes());
    hex::encode(&digest[..16])
}

/// Reuses the endpoint registered last time while it still exists at the same URL; otherwise
/// registers a new one (and removes the old one, which nobody listens on any more).
pub(super) async fn register(
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
