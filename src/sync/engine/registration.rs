//! Webhook registration that the API refused or could not answer (SPEC §10, degraded, not
//! dead): the engine polls alone, says why, and tries again every few minutes; once an
//! endpoint is registered, the receiver starts on the address it already holds.

use std::collections::HashMap;
use std::time::Instant;

use tokio::task::JoinHandle;

use super::{EngineError, EngineEvent, Model};
use crate::api::ApiError;
use crate::sync::observation::Observation;
use crate::sync::receiver::{self, Bound};

/// A registration still to be made.
pub(super) struct Pending {
    pub bound: Bound,
    pub url: String,
    pub settings: HashMap<String, String>,
    pub failures: u32,
    pub next_at: Instant,
    pub trying: bool,
}

impl Model {
    /// The registration failed at start: the engine polls alone until a retry succeeds.
    pub(super) fn registration_failed_at_start(&mut self, pending: Pending, error: EngineError) {
        self.registration = Some(pending);
        self.registration_failed(&as_api_error(error));
    }

    /// No registration was tried before `start` returned: the first is tried now, inside the
    /// running engine (the dashboard draws first, whatever the API's state).
    pub(super) fn register_soon(&mut self, pending: Pending) {
        self.registration = Some(pending);
        self.emit(EngineEvent::Receiver {
            webhook_url: None,
            reason: Some("registering the webhook endpoint".into()),
            why: Some("registering".into()),
        });
    }

    fn registration_failed(&mut self, error: &ApiError) {
        let Some(pending) = &mut self.registration else {
            return;
        };
        pending.failures += 1;
        pending.trying = false;
        let base = self.timing.register_retry;
        let wait = crate::backoff::jittered(base, base * 5, pending.failures.saturating_sub(1));
        pending.next_at = Instant::now() + wait;
        if self.api_failed(error, wait) {
            return;
        }
        let why = short_reason(error);
        let reason = format!("webhook registration failed ({why}): {error}; polling alone meanwhile");
        self.emit(EngineEvent::PollError {
            customer_id: None,
            status: None,
            error: reason.clone(),
            retry_in_seconds: wait.as_secs(),
            queued: self.pulls.queued(),
            in_flight: self.pulls.in_flight(),
        });
        self.emit(EngineEvent::Receiver {
            webhook_url: None,
            reason: Some(reason),
            why: Some(why),
        });
    }

    /// When the next registration is due, if one is.
    pub(super) fn registration_due(&self) -> Option<Instant> {
        self.registration
            .as_ref()
            .filter(|p| !p.trying)
            .map(|p| p.next_at)
    }

    /// Tries the registration again when it is due.
    pub(super) fn retry_registration(&mut self, now: Instant) {
        let Some(pending) = self
            .registration
            .as_mut()
            .filter(|p| !p.trying && p.next_at <= now)
        else {
            return;
        };
        pending.trying = true;
        let (client, writer, observations) = (
            self.client.clone(),
            self.writer.clone(),
            self.observations.clone(),
        );
        let (url, settings) = (pending.url.clone(), pending.settings.clone());
        tokio::spawn(async move {
            let result = super::start::register(&client, &url, &settings, &writer).await;
            let result = result.map(crate::secret::Secret::from).map_err(as_api_error);
            let _ = observations.send(Observation::Registered(result));
        });
    }

    /// A retried registration came back.
    pub(super) fn registered(&mut self, result: Result<crate::secret::Secret, ApiError>) {
        let secret = match result {
            Ok(secret) => secret,
            Err(error) => return self.registration_failed(&error),
        };
        self.api_answered();
        let verifier = match receiver::verifier(secret.expose_secret()) {
            Ok(verifier) => verifier,
            Err(why) => return self.registration_failed(&ApiError::Decode(why)),
        };
        let Some(pending) = self.registration.take() else {
            return;
        };
        tracing::info!("webhook endpoint registered at {}", pending.url);
        let task: JoinHandle<()> =
            receiver::serve(pending.bound, verifier, self.inlet.clone(), self.cancel.clone());
        self.late_receiver = Some(task);
        self.emit(EngineEvent::Receiver {
            webhook_url: Some(pending.url),
            reason: None,
            why: None,
        });
    }
}

/// A registration's failure as the API's: a refused key stays one (401), and a failure that
/// is not the network's (no secret returned, the cache) is an answer the engine cannot use,
/// not an outage.
fn as_api_error(error: EngineError) -> ApiError {
    match error {
        EngineError::Api(error) => error,
        EngineError::Unauthorized => ApiError::Status {
            status: 401,
            problem: Box::new(crate::api::types::Problem {
                problem_type: "about:blank".into(),
                title: "Unauthorized".into(),
                status: 401,
                detail: String::new(),
                errors: Vec::new(),
            }),
            retry_after: None,
        },
        other => ApiError::Decode(other.to_string()),
    }
}

/// Why a registration failed, in a few words for the dashboard's header.
fn short_reason(error: &ApiError) -> String {
    match error {
        ApiError::Transport(_) => "API unreachable".into(),
        ApiError::Status { status, .. } => format!("HTTP {status}"),
        ApiError::Decode(why) if why.contains("no secret") => "no secret returned".into(),
        ApiError::Decode(_) => "unusable answer".into(),
    }
}
