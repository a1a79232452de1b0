//! What the engine tells its watchers, and when: every event waits for the commit of the rows
//! queued before it, so a watcher that reads the cache after an event (the dashboard's details
//! pane) finds what the event says, and the order of events is kept.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{CustomerState, EngineEvent, Model};
use crate::sync::backlog::Backlog;
use crate::sync::cache::{Write, Writer};

type Batch = (oneshot::Receiver<bool>, Vec<EngineEvent>);

/// Events queued in the loop's current turn, released in one batch after the writer's next
/// commit by a forwarding task that keeps batches in order.
pub(super) struct Publisher {
    pending: Vec<EngineEvent>,
    writer: Writer,
    batches: Option<mpsc::UnboundedSender<Batch>>,
    forwarder: Option<JoinHandle<()>>,
    events: mpsc::Sender<EngineEvent>,
    /// Events released and not yet taken by the watcher (the events channel is bounded).
    pub backlog: Backlog,
}

impl Publisher {
    pub fn new(events: mpsc::Sender<EngineEvent>, writer: Writer, backlog: Backlog) -> Publisher {
        let (batches, mut queued) = mpsc::unbounded_channel::<Batch>();
        let out = events.clone();
        let taken = backlog.clone();
        let forwarder = tokio::spawn(async move {
            while let Some((committed, batch)) = queued.recv().await {
                // A failed commit is reported by the writer; the events still tell what the
                // engine saw.
                let _ = committed.await;
                for event in batch {
                    // Waits while the watcher is behind: the backlog grows, and the engine
                    // slows down (see `Backlog`).
                    let _ = out.send(event).await;
                    taken.taken();
                }
            }
        });
        Publisher {
            pending: Vec::new(),
            writer,
            batches: Some(batches),
            forwarder: Some(forwarder),
            events,
            backlog,
        }
    }

    pub fn emit(&mut self, event: EngineEvent) {
        self.pending.push(event);
    }

    /// Sends at once, ahead of everything emitted: for rows read from the cache itself, which
    /// need no commit to wait for.
    pub fn send_now(&self, event: EngineEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            // Behind a full channel: in order behind what waits, with no commit to wait for.
            Err(mpsc::error::TrySendError::Full(event)) => {
                let (committed, on_commit) = oneshot::channel();
                let _ = committed.send(true);
                self.backlog.add(1);
                if let Some(batches) = &self.batches {
                    let _ = batches.send((on_commit, vec![event]));
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Hands what was emitted so far to the forwarder, behind a flush of the writer.
    pub fn release(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (committed, on_commit) = oneshot::channel();
        if self.writer.write(Write::Flush(committed)).is_err() {
            tracing::error!("the cache writer is gone; events are sent without waiting for it");
        }
        let batch = std::mem::take(&mut self.pending);
        if let Some(batches) = &self.batches {
            self.backlog.add(batch.len());
            let _ = batches.send((on_commit, batch));
        }
    }

    /// Releases the rest, waits for the forwarder, then sends `last`.
    pub async fn close(&mut self, last: EngineEvent) {
        self.release();
        self.batches = None;
        if let Some(forwarder) = self.forwarder.take() {
            let _ = forwarder.await;
        }
        let _ = self.events.send(last).await;
    }
}

/// The poller state last sent to the dashboard, when, and whether a newer one waits.
pub(super) struct PollerNews {
    published: (usize, usize, bool),
    emitted: Instant,
    pub pending: bool,
}

impl PollerNews {
    pub fn new(now: Instant) -> PollerNews {
        PollerNews {
            published: (0, 0, false),
            emitted: now,
            pending: false,
        }
    }

    /// When the news that waits may go out.
    pub fn due(&self) -> Instant {
        self.emitted + Duration::from_secs(1)
    }
}

impl Model {
    pub(super) fn emit(&mut self, event: EngineEvent) {
        if let Some(metrics) = &self.metrics {
            let since = match &event {
                EngineEvent::StageChanged { customer_id, .. } => self.tracker.since(*customer_id),
                _ => None,
            };
            metrics.event(&event, since);
            if matches!(event, EngineEvent::Sweep { .. }) {
                self.count_stages();
            }
        }
        self.events.emit(event);
    }

    /// Recounts the customers per stage, and the oldest of each, from the tracker.
    pub(super) fn count_stages(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.stages(self.tracker.reported());
        }
    }

    /// Tells the dashboard about customers that changed.
    pub(super) fn publish(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        if let Some(event) = self.customers_event(ids) {
            self.emit(event);
        }
    }

    /// Tells the dashboard every customer the cache held, at once: a dashboard draws them
    /// while the engine still starts.
    pub(super) fn publish_restored(&self) {
        if let Some(event) = self.customers_event(self.customers.keys().copied()) {
            self.events.send_now(event);
        }
    }

    fn customers_event(&self, ids: impl IntoIterator<Item = Uuid>) -> Option<EngineEvent> {
        if !self.publish_customers {
            return None;
        }
        let states: Vec<CustomerState> = ids.into_iter().filter_map(|id| self.state_of(id)).collect();
        (!states.is_empty()).then_some(EngineEvent::Customers(states))
    }

    /// Tells the dashboard the poller's state: a pause at once, the counts of pulls at most
    /// once a second (they change with every pull, and each change would be a frame).
    pub(super) fn publish_poller(&mut self) {
        let now = (self.pulls.queued(), self.pulls.in_flight(), self.paused);
        let news = &mut self.poller;
        news.pending = now != news.published;
        if !news.pending {
            return;
        }
        if now.2 != news.published.2 || news.emitted.elapsed() >= Duration::from_secs(1) {
            news.published = now;
            news.emitted = Instant::now();
            news.pending = false;
            let (queued, in_flight, paused) = now;
            self.emit(EngineEvent::Poller {
                queued,
                in_flight,
                paused,
            });
        }
    }
}
