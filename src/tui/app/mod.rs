//! The dashboard's state and the one function that changes it: `update(action)`. Pure — no
//! terminal, no network, time passed in — so every key and every engine event is testable
//! as a value. What must happen outside (ask the engine, copy to the clipboard) comes back as
//! [`Effect`]s.
//!
//! The customer table is its own model ([`Table`]); what changes the rest is split by where
//! it comes from: keys ([`command`]), dialogs ([`dialogs`]), actions that write and their
//! answers ([`requests`]), and the engine ([`engine`]).

mod action;
mod command;
mod dialogs;
mod engine;
mod health;
mod requests;
mod ring;
mod row;
mod table;

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

pub use self::action::{Action, Effect};
pub use self::health::{RECENT, RecentErrors};
pub use self::ring::Ring;
pub use self::row::{Column, Row, Tab};
pub use self::table::Table;
use super::modal::Modal;
use super::request::Request;
use crate::api::types::Document;
use crate::domain::{ComplianceStatus, Customer};
use crate::sync::engine::ApiState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Table,
    Details,
    Log,
}

/// What the details pane shows beyond the row: read from the cache when a customer is
/// selected (the engine keeps only summaries in memory), documents from the API after.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    pub id: Uuid,
    pub customer: Option<Customer>,
    pub status: Option<ComplianceStatus>,
    /// The customer's timeline from the cache, oldest first.
    pub history: Vec<LogLine>,
    /// Documents on file, once read (or why they could not be).
    pub documents: Option<Result<Vec<Document>, String>>,
}

/// A line of the event log, or of a customer's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: OffsetDateTime,
    pub customer: Option<Uuid>,
    pub text: String,
    pub alert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub text: String,
    pub until: OffsetDateTime,
}

/// What the header shows of the connection.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub sandbox: bool,
    pub profile: Option<String>,
    pub api_url: String,
    pub webhook_url: Option<String>,
    pub inbox: Option<String>,
    pub read_only: bool,
    /// Why there is no receiver (yet), in a few words: `registering`, `HTTP 503`.
    pub receiver_why: Option<String>,
    pub last_webhook: Option<OffsetDateTime>,
    /// Webhooks rejected, recently.
    pub rejected: RecentErrors,
    /// Status pulls out, and waiting for a slot.
    pub in_flight: usize,
    pub queued: usize,
    /// Failed requests, recently.
    pub errors: RecentErrors,
    /// The API's state as the engine last found it.
    pub api: ApiState,
    pub paused: bool,
    pub demo: bool,
}

/// The event log across customers, newest last.
pub type EventLog = Ring<LogLine, 500>;
/// One customer's timeline in this session, newest last.
pub type Timeline = Ring<LogLine, 100>;

pub struct App {
    /// The customers, what the tab and filter show of them, and the selection.
    pub table: Table,
    pub editing_filter: bool,
    pub focus: Pane,
    pub help: bool,
    pub mouse: bool,
    pub header: Header,
    pub log: EventLog,
    pub timelines: HashMap<Uuid, Timeline>,
    pub toasts: Vec<Toast>,
    /// The selected customer's details, once loaded.
    pub details: Option<Details>,
    /// The dialog on top, if any: it takes the keys.
    pub modal: Option<Modal>,
    /// Requests sent and not answered yet.
    pub in_flight: Vec<Request>,
    /// A customer just created: selected when the engine reports their row.
    pub select_when_seen: Option<Uuid>,
    /// Where the file picker was last (it starts in the inbox the first time).
    pub last_folder: Option<std::path::PathBuf>,
    /// When this session started: the cache's timeline before it is history, the lines
    /// after it are in `timelines` already.
    pub started: OffsetDateTime,
    pub now: OffsetDateTime,
    /// The engine stopped for this reason (a refused key): the dashboard ends with it.
    pub fatal: Option<String>,
    /// How far the API's clock is ahead of this machine's: SDK links expire on its clock.
    pub server_offset: time::Duration,
    /// While the API is unreachable: the customers whose status is older than their stage's
    /// polling interval, with when it was read (their rows show its age).
    pub stale: HashMap<Uuid, OffsetDateTime>,
    pub quit: bool,
}

impl App {
    pub fn new(header: Header, now: OffsetDateTime) -> App {
        App {
            table: Table::default(),
            editing_filter: false,
            focus: Pane::Table,
            help: false,
            mouse: true,
            header,
            log: EventLog::default(),
            timelines: HashMap::new(),
            toasts: Vec::new(),
            details: None,
            modal: None,
            in_flight: Vec::new(),
            last_folder: None,
            select_when_seen: None,
            started: now,
            now,
            fatal: None,
            server_offset: time::Duration::ZERO,
            stale: HashMap::new(),
            quit: false,
        }
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.table.selected_row()
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let before = self.table.selected;
        let cursor_before = self.table.cursor();
        let now = self.now;
        let mut effects = Vec::new();
        match action {
            Action::Key(command) => self.command(command, &mut effects),
            Action::FilterInput(c) => self.table.push_filter(c, now),
            Action::FilterBackspace => self.table.pop_filter(now),
            Action::FilterPaste(text) => {
                for c in text.chars().filter(|c| !c.is_control()) {
                    self.table.push_filter(c, now);
                }
            }
            Action::FinishFilter { keep } => self.finish_filter(keep),
            Action::Click(n) => {
                if self.table.click(n) {
                    self.focus = Pane::Table;
                }
            }
            Action::ScrollUp => self.table.move_by(-3),
            Action::ScrollDown => self.table.move_by(3),
            Action::Resize { table_rows } => self.table.page = table_rows.max(1),
            Action::Engine(events) => self.engine(events, &mut effects),
            Action::Details(details) => self.details_loaded(*details),
            Action::Documents(id, documents) => {
                if let Some(details) = self.details.as_mut().filter(|d| d.id == id) {
                    details.documents = Some(documents);
                }
            }
            Action::ModalKey(key) => self.modal_key(key, &mut effects),
            Action::WebhooksLoaded(endpoints) => self.webhooks_loaded(endpoints, &mut effects),
            Action::DeliveriesLoaded(endpoint, deliveries) => self.deliveries_loaded(endpoint, deliveries),
            Action::Listed(dir, entries) => self.listed(dir, entries),
            Action::Exported(Ok((path, count))) => {
                let text = format!("exported {count} customers to {}", path.display());
                self.push_log(None, text.clone(), false);
                self.toast(text);
            }
            Action::Exported(Err(why)) => {
                let text = format!("the export failed: {why}");
                self.push_log(None, text.clone(), true);
                self.toast(text);
            }
            Action::Done { request, result } => self.done(request, result, &mut effects),
            Action::Tick(now) => {
                self.now = now;
                self.toasts.retain(|t| t.until > now);
            }
        }
        self.table.follow(cursor_before);
        if self.table.selected != before {
            self.details = None;
            if let Some(row) = self.selected_row() {
                effects.push(Effect::LoadDetails(row.id()));
            }
        }
        effects
    }

    /// The selected customer's details arrived from the cache: what this session logged
    /// itself is left out of their history (it is in `timelines`), and documents already
    /// read are kept.
    fn details_loaded(&mut self, mut details: Details) {
        if self.table.selected != Some(details.id) {
            return;
        }
        let started = self.started;
        details.history.retain(|line| line.at < started);
        if let Some(known) = self.details.take().filter(|d| d.id == details.id) {
            details.documents = known.documents;
        }
        self.details = Some(details);
    }

    /// Ends editing the filter (Enter keeps it, Esc clears it).
    fn finish_filter(&mut self, keep: bool) {
        self.editing_filter = false;
        if !keep {
            self.table.clear_filter(self.now);
        }
    }

    fn toast(&mut self, text: String) {
        self.toast_for(text, time::Duration::seconds(4));
    }

    fn toast_for(&mut self, text: String, how_long: time::Duration) {
        self.toasts.push(Toast {
            text,
            until: self.now + how_long,
        });
        if self.toasts.len() > 3 {
            self.toasts.remove(0);
        }
    }

    /// A line in the event log and, if it is about a customer, in their timeline.
    fn push_log(&mut self, customer: Option<Uuid>, text: String, alert: bool) {
        let line = self.log_line(customer, text, alert);
        if let Some(id) = customer {
            self.timelines.entry(id).or_default().push(line.clone());
        }
        self.log.push(line);
    }

    /// A line only in the customer's timeline (webhooks: too many for the event log).
    fn push_timeline(&mut self, customer: Option<Uuid>, text: String) {
        match customer {
            Some(id) => {
                let line = self.log_line(customer, text, false);
                self.timelines.entry(id).or_default().push(line);
            }
            None => self.push_log(None, text, false),
        }
    }

    fn log_line(&self, customer: Option<Uuid>, text: String, alert: bool) -> LogLine {
        LogLine {
            at: self.now,
            customer,
            text,
            alert,
        }
    }

    /// A customer's name as the table shows it, else their id.
    pub fn name_of(&self, id: Uuid) -> String {
        self.table
            .row(id)
            .map_or_else(|| id.to_string(), |row| row.name().to_string())
    }

    /// Now on the API's clock, for countdowns to times it set.
    pub fn server_now(&self) -> OffsetDateTime {
        self.now + self.server_offset
    }

    /// Whether something on screen counts down (an SDK link, a toast): then the clock ticks.
    pub fn needs_tick(&self) -> bool {
        !self.toasts.is_empty()
            || matches!(self.header.api, ApiState::Unreachable { .. })
            || self.header.errors.ageing(self.now)
            || self.header.rejected.ageing(self.now)
            || matches!(self.modal, Some(Modal::Sdk { .. }))
            || self
                .table
                .visible()
                .any(|row| row.status().is_some_and(|s| s.sdk.is_some()))
    }
}

#[cfg(test)]
mod tests;
