//! The API's state as the engine last found it (SPEC §10, "connection state is visible"):
//! every answer or failure of the engine's own requests moves it, and it is published when it
//! changes. While the API is unreachable, the customers whose status has aged past their
//! stage's polling interval are named, so a dashboard shows their age; once it answers again,
//! the next sweep reads every open onboarding, since changes during the outage announced
//! themselves to nobody.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;

use super::{ApiState, EngineEvent, Model};
use crate::api::ApiError;

#[derive(Debug)]
pub(super) struct ApiLink {
    pub state: ApiState,
    /// When the stale rows are next named (only while unreachable).
    stale_due: Option<Instant>,
}

impl ApiLink {
    pub fn new() -> ApiLink {
        ApiLink {
            state: ApiState::Connecting,
            stale_due: None,
        }
    }

    pub fn stale_due(&self) -> Option<Instant> {
        self.stale_due
    }
}

impl Model {
    /// The API answered one of the engine's requests (whatever it said, short of refusing
    /// the key).
    pub(super) fn api_answered(&mut self) {
        if self.api.state == ApiState::Connected {
            return;
        }
        // After an outage (not a refused key: the requests were answered, only refused).
        let outage = matches!(self.api.state, ApiState::Unreachable { .. });
        self.api.state = ApiState::Connected;
        self.api.stale_due = None;
        self.emit(EngineEvent::Api(ApiState::Connected));
        if outage {
            tracing::debug!("the API answers again");
            // Whatever changed meanwhile and was announced to nobody is read by the next
            // sweep, and those whose polls failed are polled soon (within the budget).
            self.sweeps.catch_up = true;
            self.sweeps.next_at = self.sweeps.next_at.min(Instant::now());
            self.schedule.retry_failed(Instant::now());
            if let Some(pending) = self.registration.as_mut().filter(|p| !p.trying) {
                pending.next_at = Instant::now();
            }
            if self.publish_customers {
                self.emit(EngineEvent::Stale(Vec::new()));
            }
        }
    }

    /// One of the engine's requests failed, and is tried again in `retry`. Returns whether
    /// the engine stops (a refused key, where that is fatal); the caller carries on otherwise.
    pub(super) fn api_failed(&mut self, error: &ApiError, retry: Duration) -> bool {
        if error.is_unauthorized() {
            return self.key_refused(error);
        }
        if !error.is_unreachable() {
            self.api_answered();
            return false;
        }
        let now = OffsetDateTime::now_utc();
        let retry_at = now + retry;
        let (since, retry_at) = match &self.api.state {
            ApiState::Unreachable {
                since,
                retry_at: known,
                ..
            } => (
                *since,
                if *known > now {
                    (*known).min(retry_at)
                } else {
                    retry_at
                },
            ),
            _ => (now, retry_at),
        };
        let first = !matches!(self.api.state, ApiState::Unreachable { .. });
        let moved = match &self.api.state {
            ApiState::Unreachable { retry_at: known, .. } => {
                (*known - retry_at).abs() >= time::Duration::SECOND
            }
            _ => true,
        };
        if !moved {
            return false;
        }
        if first {
            // Said by the front ends (stderr, the header); `watch --once` ends with one line.
            tracing::debug!("the API is unreachable: {error}");
        }
        self.api.state = ApiState::Unreachable {
            since,
            retry_at,
            reason: error.to_string(),
        };
        self.emit(EngineEvent::Api(self.api.state.clone()));
        if first {
            self.name_stale_rows(Instant::now());
        }
        false
    }

    /// The API refused the key: the end for `watch`; for a dashboard, said in its header
    /// while the cache stays on screen and the engine keeps trying, backing off.
    fn key_refused(&mut self, error: &ApiError) -> bool {
        if self.stop_on_refused_key {
            self.fatal_api(error);
            return true;
        }
        if !matches!(self.api.state, ApiState::KeyRefused { .. }) {
            tracing::error!("the API refused the key: {error}");
            self.api.state = ApiState::KeyRefused {
                reason: error.to_string(),
            };
            self.api.stale_due = None;
            self.emit(EngineEvent::Api(self.api.state.clone()));
        }
        false
    }

    /// Names the rows whose status is older than their stage's polling interval, and when
    /// they are named next, while the API stays unreachable.
    pub(super) fn name_stale_rows(&mut self, now: Instant) {
        if !matches!(self.api.state, ApiState::Unreachable { .. }) {
            self.api.stale_due = None;
            return;
        }
        self.api.stale_due = Some(now + self.timing.stale_every);
        if self.publish_customers {
            let rows = self.stale_rows(OffsetDateTime::now_utc());
            self.emit(EngineEvent::Stale(rows));
        }
    }

    /// Customers whose last status read is older than their stage's polling interval (final
    /// stages are never stale: nothing more happens to them).
    fn stale_rows(&self, now: OffsetDateTime) -> Vec<(Uuid, OffsetDateTime)> {
        self.customers
            .iter()
            .filter_map(|(id, entry)| {
                let checked = entry.checked_at?;
                let interval = self.poll_interval(self.tracker.stage(*id)?)?;
                (now - checked > interval).then_some((*id, checked))
            })
            .collect()
    }
}
