//! The sweep: listing every customer page by page (discovery), and polling those whose status
//! the engine lacks or whose profile changed, a bounded number at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use uuid::Uuid;

use super::pulls::Pull;
use super::{EngineEvent, Model};
use crate::domain::Customer;
use crate::sync::cache::CustomerSummary;
use crate::sync::observation::Observation;

/// Listing pages read ahead of the engine at most.
const READ_AHEAD: usize = 2;

/// The sweeps' state: the one running, the next, and its polls.
#[derive(Debug)]
pub(super) struct Sweeps {
    pub current: Option<SweepProgress>,
    pub next_at: Instant,
    /// Which sweep is (or was last) running; polls carry it, so a late answer to a sweep that
    /// failed is not counted for the next one.
    pub number: u32,
    /// A refresh of everyone asked for while a sweep ran: another follows it.
    pub requested: bool,
    /// Listings that failed in a row.
    pub failures: u32,
    /// At a warm start, and when the API answers again after an outage: the next sweep reads
    /// every open onboarding, as `--once` does (what changed meanwhile announced itself to
    /// nobody). At 100,000 customers against a rate-capped API that sweep is long (open
    /// onboardings / `--max-rps` seconds); webhooks' pulls go ahead of it.
    pub catch_up: bool,
}

impl Sweeps {
    pub fn new(now: Instant) -> Sweeps {
        Sweeps {
            current: None,
            next_at: now,
            number: 0,
            requested: false,
            failures: 0,
            catch_up: false,
        }
    }
}

#[derive(Debug)]
pub(super) struct SweepProgress {
    pub started: Instant,
    /// Pages the listing may read ahead of the engine: one is given back as each is taken in,
    /// so a slow engine slows the listing instead of queueing the whole of it.
    pub read_ahead: Arc<Semaphore>,
    /// Whether the listing's last page arrived.
    pub listed: bool,
    /// Sweep polls queued or out.
    pub pending: usize,
    pub customers: usize,
    pub changed: usize,
}

impl Model {
    pub(super) fn start_sweep(&mut self) {
        self.sweeps.requested = false;
        self.sweeps.number = self.sweeps.number.wrapping_add(1);
        let read_ahead = Arc::new(Semaphore::new(READ_AHEAD));
        self.sweeps.current = Some(SweepProgress {
            started: Instant::now(),
            read_ahead: read_ahead.clone(),
            listed: false,
            pending: 0,
            customers: 0,
            changed: 0,
        });
        let client = self.client.clone();
        let observations = self.observations.clone();
        let sandbox = self.sandbox;
        let mut paused = self.pause.subscribe();
        let cancel = self.cancel.clone();
        let listing = async move {
            if sandbox && let Ok(clock) = client.clock().await {
                let _ = observations.send(Observation::Clock(clock.offset_seconds as i64));
            }
            // Page by page: 100,000 whole customers held at once would be most of the
            // engine's memory, for a moment.
            let mut pages = client.customer_pages(None);
            loop {
                match read_ahead.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                }
                // `p` pauses the listing too: no page is asked for until it is resumed.
                if paused.wait_for(|paused| !*paused).await.is_err() {
                    return;
                }
                let Some(page) = pages.next().await else {
                    break;
                };
                let observation = match page {
                    Ok(customers) => Observation::Discovered {
                        customers,
                        last: pages.is_done(),
                    },
                    Err(err) => Observation::DiscoveryFailed(err),
                };
                if observations.send(observation).is_err() {
                    return;
                }
            }
        };
        // Ends with the engine, wherever it waits (a page out, the read-ahead, a pause).
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = listing => {}
            }
        });
    }

    /// A listing failed: the sweep ends, and the next is retried after a backoff.
    pub(super) fn discovery_failed(&mut self, error: crate::api::ApiError) {
        self.sweeps.failures += 1;
        let retry = self.retry_delay(&error, self.sweeps.failures);
        if self.api_failed(&error, retry) {
            return;
        }
        self.emit(EngineEvent::PollError {
            customer_id: None,
            status: error.status(),
            error: format!("listing customers failed: {error}"),
            retry_in_seconds: retry.as_secs(),
            queued: self.pulls.queued(),
            in_flight: self.pulls.in_flight(),
        });
        self.sweeps.current = None;
        // Polls the failed sweep queued are dropped (everyone keeps their own schedule, and the
        // retry lists them again); those out are not counted for the next one.
        self.pulls.drop_sweep(self.sweeps.number);
        self.sweeps.next_at = Instant::now() + retry;
        if self.once {
            // `--once` reports and ends rather than retrying for ever.
            self.fatal(format!("listing customers failed: {error}"));
        }
    }

    pub(super) fn discovered(&mut self, customers: Vec<Customer>, last: bool) {
        self.api_answered();
        if let Some(sweep) = &self.sweeps.current {
            sweep.read_ahead.add_permits(1);
        }
        self.sweeps.failures = 0;
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
            let needs_status = self.needs_status(&kept.0);
            if !needs_status {
                self.spread_poll(id);
            }
            if self.keep_customer(kept) {
                changed.push(id);
            }
            if needs_status {
                to_poll.push(id);
            }
        }
        self.publish(changed);
        if let Some(sweep) = &mut self.sweeps.current {
            sweep.customers += total;
            sweep.pending += to_poll.len();
            sweep.listed = last;
        }
        // Queued behind whatever someone waits for; a pull already out serves the sweep.
        let pull = Pull {
            sweep: Some(self.sweeps.number),
            ..Pull::BACKGROUND
        };
        for id in to_poll {
            self.ask(id, pull);
        }
        self.sweep_step(false);
    }

    /// A sweep pulls the status of whom it does not know yet, or whose profile changed;
    /// `--once`, the first sweep of a warm start and the one after an outage (`catch_up`) also
    /// of every open onboarding. Otherwise the others keep their own schedule, so a sweep of
    /// 100,000 customers is one listing, not 100,000 polls.
    fn needs_status(&self, listed: &CustomerSummary) -> bool {
        let known = self.customers.get(&listed.id);
        match (known, self.tracker.stage(listed.id)) {
            (Some(entry), Some(stage)) => {
                // A status the cache lost (its hash forgotten) is read again by this sweep.
                entry
                    .status
                    .as_ref()
                    .is_none_or(|s| s.hash == super::lost::FORGOTTEN)
                    || entry.customer.hash != listed.hash
                    || ((self.once || self.sweeps.catch_up) && !stage.is_terminal())
            }
            _ => true,
        }
    }

    /// Schedules a known customer's next poll somewhere within its interval, so a warm start
    /// does not poll everyone at once.
    fn spread_poll(&mut self, id: Uuid) {
        let interval = self.tracker.stage(id).and_then(|s| self.poll_interval(s));
        if let Some(interval) = interval
            && !self.schedule.is_due(id)
            && !self.pulls.is_busy(id)
        {
            let spread = rand::Rng::random_range(&mut rand::rng(), 0..=interval.as_millis() as u64);
            self.schedule
                .poll_at(id, Instant::now() + Duration::from_millis(spread));
        }
    }

    /// One of the sweep's polls is done (`polled_for_sweep`), or the listing moved on: ends the
    /// sweep once it is listed and nothing it polls is pending.
    pub(super) fn sweep_step(&mut self, polled_for_sweep: bool) {
        let Some(sweep) = &mut self.sweeps.current else {
            return;
        };
        if polled_for_sweep {
            sweep.pending = sweep.pending.saturating_sub(1);
        }
        if !sweep.listed || sweep.pending != 0 {
            return;
        }
        let (customers, changed, duration) = (sweep.customers, sweep.changed, sweep.started.elapsed());
        self.sweeps.current = None;
        self.sweeps.catch_up = false;
        self.sweeps.next_at = if std::mem::take(&mut self.sweeps.requested) {
            Instant::now()
        } else {
            Instant::now() + self.timing.sweep_every
        };
        self.emit(EngineEvent::Sweep {
            customers,
            changed,
            duration_ms: duration.as_millis() as u64,
            queued: self.pulls.queued(),
            in_flight: self.pulls.in_flight(),
        });
        if self.once {
            self.stopping = true;
        }
    }
}
