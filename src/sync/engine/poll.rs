//! Status pulls: asking for them (one queue, see `pulls`), starting them within the
//! concurrency, their intervals by stage, and what a pull's answer or failure does. An answer
//! is never thrown away: it is the truth when it was read, and if a webhook arrived while it
//! was out, another pull follows and corrects it.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::pulls::{Asked, Pull};
use super::{EngineEvent, Model};
use crate::api::ApiError;
use crate::domain::{ComplianceStatus, Customer, Stage};
use crate::sync::observation::Observation;

impl Model {
    /// Pulls a customer's status as soon as a slot is free, ahead of the background: for a
    /// webhook, or (`Pull::USER`) because a person asked.
    pub(super) fn poll_now(&mut self, id: Uuid, pull: Pull) {
        self.schedule.cancel(id);
        self.ask(id, pull);
    }

    /// Asks for a pull; one already out (or queued for the same sweep) serves a sweep's ask.
    pub(super) fn ask(&mut self, id: Uuid, pull: Pull) {
        let asked = self.pulls.ask(id, pull);
        if asked == Asked::Served && pull.sweep.is_some_and(|n| n == self.sweeps.number) {
            self.sweep_step(true);
        }
    }

    /// Starts queued pulls while fewer than the concurrency are out; while polling is paused,
    /// only what a person asked for.
    pub(super) fn start_pulls(&mut self) {
        // A watcher behind holds back the background as a pause does.
        let held = self.paused || self.events.backlog.slow_down();
        while let Some((id, pull)) = self.pulls.start_next(held) {
            self.spawn_pull(id, pull);
        }
    }

    /// One pull: the customer's body when it is unknown or changed, then the status.
    fn spawn_pull(&self, id: Uuid, pull: Pull) {
        let fetch_customer = pull.fetch_customer || !self.customers.contains_key(&id);
        let client = self.client.clone();
        let observations = self.observations.clone();
        let sweep = pull.sweep;
        tokio::spawn(async move {
            let customer = if fetch_customer {
                match client.customer(id).await {
                    Ok(customer) => Some(customer),
                    Err(error) => {
                        let _ = observations.send(Observation::PollFailed {
                            customer_id: id,
                            error,
                            sweep,
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
                    sweep,
                },
                Err(error) => Observation::PollFailed {
                    customer_id: id,
                    error,
                    sweep,
                },
            };
            let _ = observations.send(observation);
        });
    }

    /// A pull's answer: applied, whatever arrived meanwhile.
    pub(super) fn polled(
        &mut self,
        customer_id: Uuid,
        customer: Option<Customer>,
        status: ComplianceStatus,
        sweep: Option<u32>,
    ) {
        let superseded = self.returned(customer_id);
        if let Some(metrics) = &self.metrics {
            metrics.poll();
        }
        self.api_answered();
        self.schedule.succeeded(customer_id);
        self.snapshot(customer_id, customer, status, superseded);
        self.sweep_step(sweep.is_some_and(|n| n == self.sweeps.number));
    }

    /// A pull that failed: retried after a backoff, and said.
    pub(super) fn poll_failed(&mut self, customer_id: Uuid, error: ApiError, sweep: Option<u32>) {
        self.returned(customer_id);
        if let Some(metrics) = &self.metrics {
            metrics.poll();
        }
        let failures = self.schedule.failed(customer_id);
        let retry = self.retry_delay(&error, failures);
        if self.api_failed(&error, retry) {
            return;
        }
        self.emit(EngineEvent::PollError {
            customer_id: Some(customer_id),
            status: error.status(),
            error: error.to_string(),
            retry_in_seconds: retry.as_secs(),
            queued: self.pulls.queued(),
            in_flight: self.pulls.in_flight(),
        });
        self.schedule.poll_at(customer_id, Instant::now() + retry);
        self.sweep_step(sweep.is_some_and(|n| n == self.sweeps.number));
    }

    /// A pull of this customer came back. Returns whether another was asked for while it was
    /// out (a webhook arrived): that one is queued now, and its answer supersedes this one.
    fn returned(&mut self, customer_id: Uuid) -> bool {
        match self.pulls.returned(customer_id) {
            Some(after) => {
                self.ask(customer_id, after);
                true
            }
            None => false,
        }
    }

    /// Schedules the next poll of a customer now in `stage` (none for final stages).
    pub(super) fn schedule_next(&mut self, id: Uuid, stage: Stage) {
        match self.poll_interval(stage) {
            Some(after) => self.schedule.poll_at(id, Instant::now() + after),
            None => self.schedule.cancel(id),
        }
    }

    /// How long until a customer in `stage` is polled again; `None` for final stages.
    pub(super) fn poll_interval(&self, stage: Stage) -> Option<Duration> {
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

    /// Backoff for a failed request: the server's `Retry-After`, or exponential with jitter.
    pub(super) fn retry_delay(&self, error: &ApiError, failures: u32) -> Duration {
        error.retry_after().unwrap_or_else(|| {
            crate::backoff::jittered(
                Duration::from_secs(2),
                Duration::from_secs(300),
                failures.saturating_sub(1),
            )
        })
    }
}
