//! The sync engine: one task owns the model (customers, their latest status, the tracker) and
//! is the only thing that decides what changed. The poller's results, the receiver's verified
//! webhooks and the inbox's uploads arrive as [`Observation`]s; what changed leaves as
//! [`EngineEvent`]s on one stream; rows to keep go to the cache writer, which batches them.
//! Users (the headless watcher, the dashboard) act through an [`EngineHandle`].
//!
//! Rooms: `events` (the public contract), `config`, `handle` (commands), `start`, `schedule`
//! (when each customer is polled), `poll`, `sweep` (discovery), `apply` (what an observation
//! changes), `alerts` (pure rules); this file holds the model and its loop.

mod alerts;
mod api_state;
mod apply;
mod config;
mod events;
mod handle;
mod lost;
mod poll;
mod publish;
mod pulls;
mod registration;
mod schedule;
mod start;
mod sweep;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use self::config::{EngineConfig, EngineError, EngineTiming, ReceiverConfig};
pub use self::events::{AlertKind, ApiState, CustomerState, EngineEvent};
use self::handle::Command;
pub use self::handle::{Engine, EngineHandle};
use self::publish::Publisher;
use self::pulls::{Pull, Pulls};
use self::schedule::Schedule;
pub use self::start::{API_IDENTITY, DataDirLock, api_identity, lock_data_dir, start};
use self::sweep::Sweeps;
use crate::api::{ApiClient, ApiError};
use crate::sync::cache::{self, CustomerSummary, Write, Writer};
use crate::sync::directory::Directory;
use crate::sync::observation::Observation;
use crate::sync::tracker::Tracker;
use uuid::Uuid;

/// How often webhook events and timeline lines past `--retain-days` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(6 * 3600);

/// A customer as the engine knows them.
struct Entry {
    customer: Arc<CustomerSummary>,
    status: Option<Arc<cache::StatusSummary>>,
    /// When the status was last read from the API (changed or not), as far as known.
    checked_at: Option<time::OffsetDateTime>,
}

/// The engine task's state.
struct Model {
    client: ApiClient,
    writer: Writer,
    events: Publisher,
    observations: mpsc::UnboundedSender<Observation>,
    /// Status pulls queued and out.
    pulls: Pulls,
    timing: EngineTiming,
    once: bool,
    customers: HashMap<Uuid, Entry>,
    /// The customers by id and externalId, for the inbox.
    directory: Directory,
    tracker: Tracker,
    /// The newest webhook ids seen (older repeats are told by the cache).
    recent_ids: crate::sync::recent_ids::RecentIds,
    /// Customers whose workflow row the cache lost: written again with their next status.
    workflows_lost: HashSet<Uuid>,
    /// Webhooks whose row is being committed, and the repeats waiting for that commit.
    committing: HashMap<String, Vec<tokio::sync::oneshot::Sender<crate::sync::observation::Ack>>>,
    schedule: Schedule,
    sweeps: Sweeps,
    alerted: HashSet<(Uuid, AlertKind)>,
    last_webhook: Option<Instant>,
    paused: bool,
    stopping: bool,
    poller: publish::PollerNews,
    sandbox: bool,
    /// How far the API's clock is ahead of this machine's.
    server_offset: time::Duration,
    /// Whether anyone wants `Customers` events (the dashboard does, `watch` does not).
    publish_customers: bool,
    /// When link expiries and decision waits are next checked.
    countdowns_due: Instant,
    /// A webhook registration to retry (the engine polls alone meanwhile), and the receiver
    /// started once one succeeded.
    registration: Option<registration::Pending>,
    late_receiver: Option<tokio::task::JoinHandle<()>>,
    /// Stops the producers, the late receiver included.
    cancel: tokio_util::sync::CancellationToken,
    /// The API's state as last found.
    api: api_state::ApiLink,
    stop_on_refused_key: bool,
    /// How long webhook events and timeline lines are kept, and when they are next pruned.
    retain: Duration,
    prune_due: Instant,
    /// Where a receiver started later sends what it receives.
    inlet: crate::sync::receiver::Inlet,
    /// Whether polling is paused, for the listing task of a sweep.
    pause: tokio::sync::watch::Sender<bool>,
    metrics: Option<crate::sync::metrics::Metrics>,
}

impl Model {
    fn new(
        config: &EngineConfig,
        client: ApiClient,
        writer: Writer,
        events: mpsc::Sender<EngineEvent>,
        inlet: crate::sync::receiver::Inlet,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        let now = Instant::now();
        Self {
            client,
            events: Publisher::new(events, writer.clone(), inlet.backlog.clone()),
            observations: inlet.engine.clone(),
            inlet,
            writer,
            pulls: Pulls::new(config.concurrency),
            timing: config.timing,
            once: config.once,
            customers: HashMap::new(),
            directory: Directory::default(),
            tracker: Tracker::default(),
            recent_ids: Default::default(),
            workflows_lost: HashSet::new(),
            committing: HashMap::new(),
            schedule: Schedule::new(config.timing.background_polls_per_second, now),
            sweeps: Sweeps::new(now),
            alerted: HashSet::new(),
            last_webhook: None,
            paused: false,
            stopping: false,
            poller: publish::PollerNews::new(now),
            sandbox: config.sandbox,
            server_offset: time::Duration::ZERO,
            publish_customers: config.publish_customers,
            countdowns_due: now + Duration::from_secs(60),
            registration: None,
            late_receiver: None,
            cancel,
            api: api_state::ApiLink::new(),
            stop_on_refused_key: config.stop_on_refused_key,
            pause: tokio::sync::watch::Sender::new(false),
            retain: config.retain,
            prune_due: now,
            metrics: config.metrics.clone(),
        }
    }

    fn restore(&mut self, snapshot: cache::Snapshot) {
        for cached in snapshot.customers {
            let id = cached.customer.id;
            if let Some((view, since)) = &cached.workflow {
                self.tracker.restore(id, view, *since);
            }
            self.customers.insert(
                id,
                Entry {
                    customer: Arc::new(cached.customer),
                    checked_at: cached.status.as_ref().map(|(_, fetched_at)| *fetched_at),
                    status: cached.status.map(|(status, _)| Arc::new(status)),
                },
            );
        }
        // Whatever changed while nothing ran (a crash, a stop, a restart on another port
        // whose old endpoint is dropped with its pending deliveries) was announced to
        // nobody: the first sweep reads every open onboarding again, as after an outage.
        self.sweeps.catch_up = !self.customers.is_empty();
    }

    /// Fills the directory with every customer restored from the cache: after the rows went
    /// out, so a dashboard's first frame does not wait for it (the inbox asks the API for
    /// whoever is not in it yet).
    fn index_customers(&self) {
        self.directory.note_all(
            self.customers
                .iter()
                .map(|(id, entry)| (*id, entry.customer.external_id.as_deref())),
        );
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

    fn writer_write(&self, write: Write) {
        if let Err(err) = self.writer.write(write) {
            tracing::error!("cannot queue a write to the cache: {err}");
        }
    }

    async fn run(
        &mut self,
        observations: &mut mpsc::UnboundedReceiver<Observation>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut batch = Vec::with_capacity(256);
        // Every handle dropped: no more commands, but the engine goes on until it is stopped.
        let mut commands_open = true;
        let backlog = self.events.backlog.clone();
        while !self.stopping {
            self.events.release();
            let wake = self.next_wake();
            let slowed = self.hold_listing();
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
                // The watcher caught up: the pulls held back start again.
                _ = backlog.drained(), if slowed => {}
            }
            self.start_pulls();
            self.publish_poller();
        }
    }

    /// Stops the producers, then takes in what they said while stopping (an upload that
    /// finished, a webhook being recorded), and only then closes the cache.
    async fn stop(
        mut self,
        mut observations: mpsc::UnboundedReceiver<Observation>,
        producers: impl Iterator<Item = tokio::task::JoinHandle<()>>,
        writer_thread: std::thread::JoinHandle<()>,
    ) {
        self.cancel.cancel();
        let producers = futures_util::future::join_all(producers.chain(self.late_receiver.take()));
        tokio::pin!(producers);
        let keep = |o: &Observation| {
            matches!(
                o,
                Observation::Upload { .. }
                    | Observation::UploadMade(_)
                    | Observation::Webhook { .. }
                    | Observation::Rejected { .. }
                    | Observation::Committed { .. }
            )
        };
        loop {
            tokio::select! {
                _ = &mut producers => break,
                Some(observation) = observations.recv() => {
                    if keep(&observation) {
                        self.observe(observation);
                    }
                }
            }
        }
        while let Ok(observation) = observations.try_recv() {
            if keep(&observation) {
                self.observe(observation);
            }
        }
        self.finish(writer_thread).await;
    }

    async fn finish(mut self, writer_thread: std::thread::JoinHandle<()>) {
        self.events.release();
        if let Err(err) = self.writer.flush().await {
            tracing::error!("the last writes to the cache were lost: {err}");
        }
        self.events.close(EngineEvent::Stopped).await;
        // The writer thread ends once every handle on it is gone (the publisher holds one).
        drop(self.events);
        drop(self.writer);
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    }

    /// When the loop must wake by itself: the next sweep, the next background poll (not while
    /// paused: waking for one would spin), the poller's delayed news, the countdowns.
    fn next_wake(&mut self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut wake = if self.sweeps.current.is_none() && !self.paused {
            self.sweeps.next_at
        } else {
            far
        };
        if !self.paused
            && let Some(poll) = self.schedule.next_wake()
        {
            wake = wake.min(poll);
        }
        if self.poller.pending {
            wake = wake.min(self.poller.due());
        }
        if let Some(due) = self.registration_due() {
            wake = wake.min(due);
        }
        if let Some(due) = self.api.stale_due() {
            wake = wake.min(due);
        }
        wake = wake.min(self.prune_due);
        // Countdowns (link expiry, time waiting for a decision) are checked once a minute.
        wake.min(self.countdowns_due)
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Refresh(Some(id)) => self.poll_now(id, Pull::USER),
            Command::Refresh(None) => {
                self.sweeps.next_at = Instant::now();
                self.sweeps.requested = true;
            }
            Command::Pause(paused) => self.paused = paused,
            Command::Stop => self.stopping = true,
        }
    }

    /// Whether the engine holds back work of its own: paused by a person, or its watcher
    /// behind (see `Backlog`). The listing task of a sweep hears it too.
    fn hold_listing(&mut self) -> bool {
        let slowed = self.events.backlog.slow_down();
        let hold = self.paused || slowed;
        self.pause
            .send_if_modified(|held| std::mem::replace(held, hold) != hold);
        slowed
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self.sweeps.current.is_none() && self.sweeps.next_at <= now && !self.paused {
            self.start_sweep();
        }
        if !self.paused {
            while let Some(id) = self.schedule.pop_due(now) {
                self.ask(id, Pull::SCHEDULED);
            }
        }
        self.retry_registration(now);
        if self.api.stale_due().is_some_and(|due| due <= now) {
            self.name_stale_rows(now);
        }
        if self.prune_due <= now {
            self.prune_due = now + PRUNE_EVERY;
            let before = time::OffsetDateTime::now_utc() - self.retain;
            self.writer_write(Write::Prune { before });
        }
        if self.countdowns_due <= now {
            self.check_countdowns();
            self.countdowns_due = now + Duration::from_secs(60);
        }
    }

    fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Discovered { customers, last } => self.discovered(customers, last),
            Observation::DiscoveryFailed(error) => self.discovery_failed(error),
            Observation::Snapshot {
                customer_id,
                customer,
                status,
                sweep,
            } => self.polled(customer_id, customer, status, sweep),
            Observation::PollFailed {
                customer_id,
                error,
                sweep,
            } => self.poll_failed(customer_id, error, sweep),
            Observation::Webhook {
                event,
                raw,
                ack,
                stored,
            } => self.webhook(event, raw, ack, stored),
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
            Observation::UploadMade(made) => self.record_upload(made),
            Observation::KeyRefused(error) => {
                self.api_failed(&error, Duration::from_secs(60));
            }
            Observation::Registered(result) => self.registered(result),
            Observation::Committed {
                event_id,
                recorded,
                ack,
            } => self.committed(event_id, recorded, ack),
            Observation::Lost(lost) => self.lost(lost),
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
        self.directory.note(id, summary.external_id.as_deref());
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
                checked_at: None,
            });
        true
    }
}
