//! What the engine's events do to the dashboard: customers' rows change, the header follows
//! the poller and the receiver, and what happened goes to the event log, the customers'
//! timelines and, for alerts, toasts.

use uuid::Uuid;

use super::{App, Effect};
use crate::domain::{DocumentType, Stage};
use crate::sync::engine::{AlertKind, ApiState, CustomerState, EngineEvent};

impl App {
    pub(super) fn engine(&mut self, events: Vec<EngineEvent>, effects: &mut Vec<Effect>) {
        let mut touched: Vec<usize> = Vec::new();
        for event in events {
            match event {
                EngineEvent::Customers(states) => {
                    for state in states {
                        touched.push(self.customer_changed(state, effects));
                    }
                }
                EngineEvent::Started {
                    api_url,
                    webhook_url,
                    inbox,
                    sandbox,
                    ..
                } => {
                    self.header.api_url = api_url;
                    self.header.webhook_url = webhook_url;
                    self.header.inbox = inbox;
                    self.header.sandbox = sandbox;
                }
                EngineEvent::Poller {
                    queued,
                    in_flight,
                    paused,
                } => {
                    self.header.in_flight = in_flight;
                    self.header.queued = queued;
                    self.header.paused = paused;
                }
                // Why it polls alone is in the log already, as a poll error.
                EngineEvent::Receiver { webhook_url, why, .. } => {
                    self.header.webhook_url = webhook_url;
                    self.header.receiver_why = why;
                }
                EngineEvent::Api(state) => self.api_state(state),
                EngineEvent::Stale(rows) => self.stale = rows.into_iter().collect(),
                EngineEvent::Clock { offset_seconds } => {
                    self.server_offset = time::Duration::seconds(offset_seconds);
                }
                EngineEvent::Stopped => {}
                event => self.logged(event),
            }
        }
        self.table.settle(touched, self.now);
        self.select_created();
    }

    /// A customer's new state goes to their row (returned, to be placed once the batch is
    /// in); if they are selected and it changed, their details are read again.
    fn customer_changed(&mut self, state: CustomerState, effects: &mut Vec<Effect>) -> usize {
        let id = state.customer.id;
        if self.table.selected == Some(id)
            && self.selected_row().is_some_and(|r| {
                // A profile edit can leave the status as it was.
                r.state.status != state.status || r.state.customer.hash != state.customer.hash
            })
        {
            effects.push(Effect::LoadDetails(id));
        }
        self.table.upsert(state, self.now)
    }

    /// The events that are told in the event log or a timeline.
    fn logged(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::StageChanged {
                customer_id,
                from,
                to,
                ..
            } => {
                let text = self.stage_change(customer_id, from, to);
                self.push_log(Some(customer_id), text, false);
            }
            EngineEvent::Webhook {
                event_type,
                customer_id,
                duplicate,
                ..
            } => {
                self.header.last_webhook = Some(self.now);
                let duplicate = if duplicate { " (duplicate)" } else { "" };
                self.push_timeline(customer_id, format!("webhook {event_type}{duplicate}"));
            }
            EngineEvent::WebhookRejected { reason, detail } => {
                self.header.rejected.note(self.now);
                self.push_log(None, format!("webhook rejected ({reason:?}): {detail}"), true);
            }
            EngineEvent::Upload {
                path,
                customer_id,
                document_type,
                result,
                error,
            } => {
                let alert = error.is_some();
                self.push_log(customer_id, upload(&path, document_type, result, error), alert);
            }
            EngineEvent::PollError {
                customer_id, error, ..
            } => {
                self.header.errors.note(self.now);
                self.push_log(customer_id, format!("poll failed: {error}"), true);
            }
            EngineEvent::Alert {
                customer_id,
                alert,
                detail,
            } => {
                let text = format!("{} {}: {detail}", self.name_of(customer_id), alert_title(alert));
                self.toast(text.clone());
                self.push_log(Some(customer_id), text, true);
            }
            EngineEvent::Sweep {
                customers,
                changed,
                duration_ms,
                ..
            } => {
                let text = format!("sweep: {customers} customers, {changed} changed, {duration_ms} ms");
                self.push_log(None, text, false);
            }
            EngineEvent::Fatal { error } => {
                self.push_log(None, format!("stopped: {error}"), true);
                self.toast(format!("the engine stopped: {error}"));
                self.fatal = Some(error);
            }
            EngineEvent::Customers(_)
            | EngineEvent::Started { .. }
            | EngineEvent::Poller { .. }
            | EngineEvent::Receiver { .. }
            | EngineEvent::Clock { .. }
            | EngineEvent::Api(_)
            | EngineEvent::Stale(_)
            | EngineEvent::Stopped => {}
        }
    }

    /// The API's state changed: the header shows it, and the log says when it went and came.
    fn api_state(&mut self, state: ApiState) {
        let line = match (&self.header.api, &state) {
            (ApiState::Unreachable { .. }, ApiState::Unreachable { .. }) => None,
            (_, ApiState::Unreachable { reason, .. }) => {
                Some((format!("the API is unreachable: {reason}"), true))
            }
            (_, ApiState::KeyRefused { reason }) => {
                Some((format!("the API refused the key: {reason}"), true))
            }
            (ApiState::Unreachable { .. } | ApiState::KeyRefused { .. }, ApiState::Connected) => {
                Some(("the API answers again".to_string(), false))
            }
            _ => None,
        };
        if let Some((text, alert)) = line {
            self.push_log(None, text, alert);
        }
        if state == ApiState::Connected {
            self.stale.clear();
        }
        self.header.api = state;
    }

    fn stage_change(&self, customer: Uuid, from: Option<Stage>, to: Stage) -> String {
        match from {
            Some(from) => format!("{} {from} → {to}", self.name_of(customer)),
            None => format!("{} first seen: {to}", self.name_of(customer)),
        }
    }

    /// Selects the customer just created once their row is here, showing them whatever the
    /// tab and filter hid (not while a filter is being typed: then at the next chance).
    pub(super) fn select_created(&mut self) {
        let Some(id) = self.select_when_seen else {
            return;
        };
        if self.table.row(id).is_none() || self.editing_filter {
            return;
        }
        self.select_when_seen = None;
        self.table.show(id, self.now);
    }
}

fn upload(path: &str, document_type: Option<DocumentType>, result: &str, error: Option<String>) -> String {
    let what = document_type.map_or("document", |t| t.as_str());
    match error {
        Some(error) => format!("upload {what} {result}: {error} ({path})"),
        None => format!("upload {what} {result} ({path})"),
    }
}

fn alert_title(alert: AlertKind) -> &'static str {
    match alert {
        AlertKind::SdkLinkExpiring => "SDK link expiring",
        AlertKind::StuckWaiting => "waiting too long",
        AlertKind::VerificationError => "verification error",
        AlertKind::Drift => "drift",
    }
}
