//! Status polls: starting them (at most one per customer, within the concurrency), their
//! intervals by stage, and what a poll's answer or failure does to the schedule.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{EngineEvent, Model};
use crate::api::ApiError;
use crate::domain::{ComplianceStatus, Customer, Stage};
use crate::sync::observation::Observation;

impl Model {
    /// Polls a customer now, unless a poll is already in flight (then right after it).
    pub(super) fn poll_now(&mut self, id: Uuid, fetch_customer: bool) {
        if self.paused {
            // Due at once, polled when polling resumes.
            self.schedule.cancel(id);
            self.schedule.poll_at(id, Instant::now());
            return;
        }
        if self.schedule.is_out(id) {
            self.schedule.again(id);
            return;
        }
        self.schedule.cancel(id);
        self.spawn_poll(id, fetch_customer, false);
    }

    /// Polls a customer, at most one poll of a customer at a time. Sweep polls queue on their
    /// own permits, so a webhook's pull never waits behind a sweep of thousands.
    pub(super) fn spawn_poll(&mut self, id: Uuid, fetch_customer: bool, sweep: bool) {
        if !self.schedule.start(id) {
            if sweep {
                // Already being polled: that answer serves the sweep too.
                self.sweep_step(true);
            } else {
                self.schedule.again(id);
            }
            return;
        }
        if sweep {
            self.sweeps.out += 1;
        }
        let tag = sweep.then_some(self.sweeps.number);
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

    /// A poll's answer.
    pub(super) fn polled(
        &mut self,
        customer_id: Uuid,
        customer: Option<Customer>,
        status: ComplianceStatus,
        sweep: Option<u32>,
    ) {
        let stale = self.returned(customer_id);
        self.sweep_returned(sweep);
        self.schedule.succeeded(customer_id);
        if !stale {
            self.snapshot(customer_id, customer, status);
        }
        self.sweep_step(sweep == Some(self.sweeps.number));
    }

    /// A poll that failed: retried after a backoff, and said.
    pub(super) fn poll_failed(&mut self, customer_id: Uuid, error: ApiError, sweep: Option<u32>) {
        self.returned(customer_id);
        self.sweep_returned(sweep);
        if error.is_unauthorized() {
            return self.fatal_api(&error);
        }
        let failures = self.schedule.failed(customer_id);
        let retry = self.retry_delay(&error, failures);
        self.emit(EngineEvent::PollError {
            customer_id: Some(customer_id),
            status: error.status(),
            error: error.to_string(),
            retry_in_seconds: retry.as_secs(),
        });
        self.schedule.poll_at(customer_id, Instant::now() + retry);
        self.sweep_step(sweep == Some(self.sweeps.number));
    }

    /// A poll of this customer came back. Returns whether its answer is already stale: a
    /// webhook arrived while it was in flight, and the poll that follows supersedes it.
    fn returned(&mut self, customer_id: Uuid) -> bool {
        let stale = self.schedule.returned(customer_id);
        if stale {
            self.spawn_poll(customer_id, false, false);
        }
        stale
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
