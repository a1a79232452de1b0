//! The dashboard's state and the one function that changes it: `update(action)`. Pure — no
//! terminal, no network, time passed in — so every key and every engine event is testable
//! as a value. What must happen outside (ask the engine, copy to the clipboard) comes back as
//! [`Effect`]s.

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

mod ring;

pub use self::ring::Ring;

use super::form::{Checked, Form};
use super::keymap::{Command, ModalKey};
use super::modal::{self, FileEntry, Modal, Outcome};
use super::request::{Done, Failed, Request};
use crate::api::types::Document;
use crate::domain::{ComplianceStatus, Customer, NextAction, OnboardingStatus, Stage};
use crate::sync::cache::StatusSummary;
use crate::sync::engine::{AlertKind, CustomerState, EngineEvent};

/// The stage tabs of SPEC §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    All,
    ActionNeeded,
    Waiting,
    Approved,
    DeniedOrError,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::All,
        Tab::ActionNeeded,
        Tab::Waiting,
        Tab::Approved,
        Tab::DeniedOrError,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::All => "All",
            Tab::ActionNeeded => "Action needed",
            Tab::Waiting => "Waiting",
            Tab::Approved => "Approved",
            Tab::DeniedOrError => "Denied/Error",
        }
    }

    /// Whether a customer in `stage` belongs under this tab. "Action needed" is whatever
    /// waits on the integrator; "Waiting" whatever waits on the end user or the provider.
    pub fn holds(self, stage: Option<Stage>) -> bool {
        use Stage::*;
        match self {
            Tab::All => true,
            Tab::ActionNeeded => matches!(
                stage,
                Some(NeedsProfile | ReadyToStart | CollectingRequirements | Expired)
            ),
            Tab::Waiting => matches!(stage, None | Some(AwaitingSdk | InReview | AwaitingDecision)),
            Tab::Approved => stage == Some(Approved),
            Tab::DeniedOrError => matches!(stage, Some(Denied | Errored)),
        }
    }
}

/// The table's columns, in order; `s` sorts by the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Stage,
    InStage,
    NextAction,
    Onboarding,
    Failed,
    SdkLink,
    LastChange,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Name,
        Column::Stage,
        Column::InStage,
        Column::NextAction,
        Column::Onboarding,
        Column::Failed,
        Column::SdkLink,
        Column::LastChange,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "Customer",
            Column::Stage => "Stage",
            Column::InStage => "In stage",
            Column::NextAction => "Next action",
            Column::Onboarding => "Onboarding",
            Column::Failed => "Failed",
            Column::SdkLink => "SDK link",
            Column::LastChange => "Changed",
        }
    }

    fn next(self) -> Column {
        let i = Column::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Column::ALL[(i + 1) % Column::ALL.len()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Table,
    Details,
    Log,
}

/// One customer's row, with what filtering and sorting need computed once.
#[derive(Debug, Clone)]
pub struct Row {
    pub state: CustomerState,
    /// Name, email, externalId and id, lower case: what `/` searches. The name comes first,
    /// so sorting by name compares its first `name_len` bytes.
    pub haystack: Box<str>,
    name_len: usize,
    pub last_change: OffsetDateTime,
}

impl Row {
    fn new(state: CustomerState, now: OffsetDateTime) -> Row {
        let customer = &state.customer;
        let mut id = uuid::Uuid::encode_buffer();
        let id = customer.id.hyphenated().encode_lower(&mut id);
        let parts = [
            Some(&*customer.name),
            customer.email.as_deref(),
            customer.external_id.as_deref(),
            Some(&*id),
        ];
        let mut haystack = String::with_capacity(parts.iter().flatten().map(|p| p.len() + 1).sum());
        let mut name_len = 0;
        for (n, part) in parts.into_iter().flatten().enumerate() {
            if n > 0 {
                haystack.push('\u{1f}');
            }
            if part.is_ascii() {
                let start = haystack.len();
                haystack.push_str(part);
                haystack[start..].make_ascii_lowercase();
            } else {
                haystack.push_str(&part.to_lowercase());
            }
            if n == 0 {
                name_len = haystack.len();
            }
        }
        Row {
            state,
            haystack: haystack.into(),
            name_len,
            last_change: now,
        }
    }

    /// The name in lower case: what sorting by name compares.
    pub fn sort_name(&self) -> &str {
        &self.haystack[..self.name_len]
    }

    pub fn id(&self) -> Uuid {
        self.state.customer.id
    }

    pub fn name(&self) -> &str {
        &self.state.customer.name
    }

    pub fn stage(&self) -> Option<Stage> {
        self.state.stage
    }

    pub fn status(&self) -> Option<&StatusSummary> {
        self.state.status.as_deref()
    }

    pub fn next_action(&self) -> Option<NextAction> {
        self.status().and_then(|s| s.next_action)
    }

    pub fn onboarding_status(&self) -> Option<OnboardingStatus> {
        self.status().and_then(|s| s.onboarding_status)
    }
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
    pub last_webhook: Option<OffsetDateTime>,
    pub rejected: u32,
    pub in_flight: usize,
    pub poll_errors: u32,
    pub paused: bool,
    pub demo: bool,
}

/// Everything that can happen to the dashboard.
#[derive(Debug, Clone)]
pub enum Action {
    Key(Command),
    /// A character typed while the filter is being edited.
    FilterInput(char),
    FilterBackspace,
    /// Text pasted while the filter is being edited.
    FilterPaste(String),
    /// Editing the filter ends: Enter keeps it (`keep`), Esc clears it.
    FinishFilter {
        keep: bool,
    },
    /// Click on the n-th visible row of the table.
    Click(usize),
    ScrollUp,
    ScrollDown,
    /// How many table rows fit on screen now.
    Resize {
        table_rows: usize,
    },
    Engine(Vec<EngineEvent>),
    /// The selected customer's whole profile, status and timeline, from the cache.
    Details(Box<Details>),
    /// The documents a customer has on file.
    Documents(Uuid, Result<Vec<Document>, String>),
    /// A key while a dialog is open.
    ModalKey(ModalKey),
    /// The webhook endpoints, read.
    WebhooksLoaded(Result<Vec<crate::api::types::WebhookEndpoint>, String>),
    /// An endpoint's deliveries, read (oldest first, as the API lists them).
    DeliveriesLoaded(Uuid, Result<Vec<crate::api::types::Delivery>, String>),
    /// A folder the file picker asked for, read.
    Listed(std::path::PathBuf, Result<Vec<FileEntry>, String>),
    /// A request to the engine ended.
    Done {
        request: Request,
        result: Result<Done, Failed>,
    },
    Tick(OffsetDateTime),
}

/// What `update` asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Refresh(Option<Uuid>),
    Pause(bool),
    /// Read a customer's whole profile, status and timeline, then their documents;
    /// `Some(hash)`: the status the row shows, which may still be on its way to the cache.
    LoadDetails(Uuid, Option<u64>),
    Copy(String),
    /// Ask the engine (the API) for this; the answer comes back as `Action::Done`.
    Send(Request),
    /// Read a folder for the file picker; the answer comes back as `Action::Listed`.
    ListDir(std::path::PathBuf),
    LoadWebhooks,
    LoadDeliveries(Uuid),
    Mouse(bool),
    Demo(bool),
    Quit,
}

/// The event log across customers, newest last.
pub type EventLog = Ring<LogLine, 500>;
/// One customer's timeline in this session, newest last.
pub type Timeline = Ring<LogLine, 100>;

pub struct App {
    pub rows: Vec<Row>,
    index: HashMap<Uuid, usize>,
    /// How many rows are in each stage, kept as rows change (the header and tabs show them
    /// every frame; counting 100,000 rows each time would not do).
    per_stage: HashMap<Option<Stage>, usize>,
    /// Indices into `rows` of what the tab and the filter show, in sort order.
    pub view: Vec<usize>,
    pub selected: Option<Uuid>,
    /// The first visible row of the table.
    pub offset: usize,
    pub table_rows: usize,
    pub filter: String,
    pub editing_filter: bool,
    pub sort: Column,
    pub descending: bool,
    pub tab: Tab,
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
    pub quit: bool,
}

impl App {
    pub fn new(header: Header, now: OffsetDateTime) -> App {
        App {
            rows: Vec::new(),
            index: HashMap::new(),
            per_stage: HashMap::new(),
            view: Vec::new(),
            selected: None,
            offset: 0,
            table_rows: 10,
            filter: String::new(),
            editing_filter: false,
            sort: Column::Stage,
            descending: false,
            tab: Tab::All,
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
            quit: false,
        }
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.selected
            .and_then(|id| self.index.get(&id))
            .map(|&i| &self.rows[i])
    }

    /// Where the selection is in `view`.
    pub fn cursor(&self) -> Option<usize> {
        let id = self.selected?;
        self.view.iter().position(|&i| self.rows[i].id() == id)
    }

    /// How many customers each tab holds (from the counts per stage, kept as rows change).
    pub fn tab_counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for (stage, count) in &self.per_stage {
            for (n, tab) in Tab::ALL.iter().enumerate() {
                if tab.holds(*stage) {
                    counts[n] += count;
                }
            }
        }
        counts
    }

    /// How many customers are in each stage.
    pub fn stage_counts(&self) -> Vec<(Stage, usize)> {
        Stage::ALL
            .iter()
            .filter_map(|s| {
                self.per_stage
                    .get(&Some(*s))
                    .filter(|n| **n > 0)
                    .map(|n| (*s, *n))
            })
            .collect()
    }

    fn count_stage(&mut self, stage: Option<Stage>, delta: isize) {
        let count = self.per_stage.entry(stage).or_default();
        *count = count.saturating_add_signed(delta);
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let before = self.selected;
        let cursor_before = self.cursor();
        let mut effects = Vec::new();
        match action {
            Action::Key(command) => self.command(command, &mut effects),
            Action::FilterInput(c) => self.filter_input(c),
            Action::FilterBackspace => {
                self.filter.pop();
                self.refilter();
            }
            Action::FilterPaste(text) => {
                for c in text.chars().filter(|c| !c.is_control()) {
                    self.filter_input(c);
                }
            }
            Action::FinishFilter { keep } => self.finish_filter(keep),
            Action::Click(n) => {
                if let Some(&i) = self.view.get(self.offset + n) {
                    self.selected = Some(self.rows[i].id());
                    self.focus = Pane::Table;
                }
            }
            Action::ScrollUp => self.move_by(-3),
            Action::ScrollDown => self.move_by(3),
            Action::Resize { table_rows } => self.table_rows = table_rows.max(1),
            Action::Engine(events) => self.engine(events, &mut effects),
            Action::Details(mut details) => {
                if self.selected == Some(details.id) {
                    let started = self.started;
                    details.history.retain(|line| line.at < started);
                    if let Some(known) = self.details.take().filter(|d| d.id == details.id) {
                        details.documents = known.documents;
                    }
                    self.details = Some(*details);
                }
            }
            Action::Documents(id, documents) => {
                if let Some(details) = self.details.as_mut().filter(|d| d.id == id) {
                    details.documents = Some(documents);
                }
            }
            Action::ModalKey(key) => {
                let outcome = self.modal.as_mut().map_or(Outcome::Close, |m| m.key(key));
                match outcome {
                    Outcome::Stay => {}
                    Outcome::Close => self.modal = None,
                    Outcome::Send(request) => {
                        // The webhooks view stays, to show the resent delivery.
                        if !matches!(request, Request::Resend { .. }) {
                            self.modal = None;
                        }
                        self.send(request, &mut effects);
                    }
                    Outcome::Copy(text) => {
                        self.toast(format!("copied {text}"));
                        effects.push(Effect::Copy(text));
                    }
                    Outcome::Refused(why) => self.toast(why),
                    Outcome::List(dir) => effects.push(Effect::ListDir(dir)),
                    Outcome::Picked(path) => self.choose_type(path),
                    Outcome::Submit => self.submit(&mut effects),
                    Outcome::LoadWebhooks => effects.push(Effect::LoadWebhooks),
                    Outcome::LoadDeliveries(id) => effects.push(Effect::LoadDeliveries(id)),
                    Outcome::Quit => {
                        self.modal = None;
                        self.quit = true;
                        effects.push(Effect::Quit);
                    }
                }
            }
            Action::WebhooksLoaded(endpoints) => {
                if let Some(Modal::Webhooks(view)) = &mut self.modal {
                    view.endpoint = 0;
                    view.endpoints = Some(endpoints);
                    match view.selected_endpoint() {
                        Some(endpoint) => effects.push(Effect::LoadDeliveries(endpoint.id)),
                        None => view.deliveries = Some(Ok(Vec::new())),
                    }
                }
            }
            Action::DeliveriesLoaded(endpoint, deliveries) => {
                if let Some(Modal::Webhooks(view)) = &mut self.modal
                    && view.selected_endpoint().is_some_and(|e| e.id == endpoint)
                {
                    view.cursor = 0;
                    view.deliveries = Some(deliveries.map(|mut d| {
                        d.reverse();
                        d
                    }));
                }
            }
            Action::Listed(dir, entries) => {
                if let Some(Modal::Files(files)) = &mut self.modal {
                    let error = entries.as_ref().err().cloned();
                    if files.listed(&dir, entries) {
                        self.last_folder = Some(dir);
                    } else if let Some(error) = error {
                        self.toast(error);
                    }
                }
            }
            Action::Done { request, result } => self.done(request, result, &mut effects),
            Action::Tick(now) => {
                self.now = now;
                self.toasts.retain(|t| t.until > now);
            }
        }
        if self.selected.is_none() || self.cursor().is_none() {
            // The selected customer left the view (tab, filter): its neighbour takes over.
            let at = cursor_before.unwrap_or(0).min(self.view.len().saturating_sub(1));
            self.selected = self.view.get(at).map(|&i| self.rows[i].id());
        }
        self.keep_in_view();
        if self.selected != before {
            self.details = None;
            if let Some(row) = self.selected_row() {
                effects.push(Effect::LoadDetails(row.id(), row.status().map(|s| s.hash)));
            }
        }
        effects
    }

    fn command(&mut self, command: Command, effects: &mut Vec<Effect>) {
        if self.help {
            // Any key closes help; the quit keys still quit.
            self.help = false;
            if command == Command::Quit {
                self.quit = true;
                effects.push(Effect::Quit);
            }
            return;
        }
        let page = self.table_rows.max(1) as isize;
        match command {
            Command::Up => self.move_by(-1),
            Command::Down => self.move_by(1),
            Command::Top => self.move_to(0),
            Command::Bottom => self.move_to(self.view.len().saturating_sub(1)),
            Command::PageUp => self.move_by(-page),
            Command::PageDown => self.move_by(page),
            Command::Open => self.focus = Pane::Details,
            Command::Back => {
                if !self.filter.is_empty() && self.focus == Pane::Table {
                    self.filter.clear();
                    self.refilter();
                }
                self.focus = Pane::Table;
            }
            Command::NextPane => {
                self.focus = match self.focus {
                    Pane::Table => Pane::Details,
                    Pane::Details => Pane::Log,
                    Pane::Log => Pane::Table,
                }
            }
            Command::Filter => self.editing_filter = true,
            Command::Sort => {
                self.sort = self.sort.next();
                self.resort();
            }
            Command::Reverse => {
                self.descending = !self.descending;
                self.resort();
            }
            Command::TabAll => self.set_tab(Tab::All),
            Command::TabAction => self.set_tab(Tab::ActionNeeded),
            Command::TabWaiting => self.set_tab(Tab::Waiting),
            Command::TabApproved => self.set_tab(Tab::Approved),
            Command::TabDenied => self.set_tab(Tab::DeniedOrError),
            Command::Help => self.help = true,
            Command::Refresh => effects.push(Effect::Refresh(self.selected)),
            Command::RefreshAll => effects.push(Effect::Refresh(None)),
            Command::Pause => {
                self.header.paused = !self.header.paused;
                effects.push(Effect::Pause(self.header.paused));
            }
            Command::Copy => {
                if let Some(row) = self.selected_row() {
                    let text = match row.status().and_then(|s| s.sdk.as_ref()) {
                        Some(sdk) if self.focus == Pane::Details => sdk.link.clone(),
                        _ => row.id().to_string(),
                    };
                    self.toast(format!("copied {text}"));
                    effects.push(Effect::Copy(text));
                }
            }
            Command::StartKyc
            | Command::Rerun
            | Command::Simulate
            | Command::AdvanceClock
            | Command::Upload
            | Command::New
            | Command::Edit => self.open_action(command, effects),
            Command::Webhooks => {
                self.modal = Some(Modal::Webhooks(Box::new(modal::Webhooks {
                    read_only: self.header.read_only,
                    ..modal::Webhooks::default()
                })));
                effects.push(Effect::LoadWebhooks);
            }
            Command::Mouse => {
                self.mouse = !self.mouse;
                self.toast(if self.mouse {
                    "mouse on: click selects, the wheel scrolls".into()
                } else {
                    "mouse off: select text with the mouse; m turns it back on".into()
                });
                effects.push(Effect::Mouse(self.mouse));
            }
            Command::Demo => {
                if self.header.read_only {
                    self.toast("read-only: the demo driver writes, so it stays off".into());
                } else if self.header.sandbox {
                    self.header.demo = !self.header.demo;
                    self.toast(format!(
                        "demo driver {}",
                        if self.header.demo { "on" } else { "off" }
                    ));
                    effects.push(Effect::Demo(self.header.demo));
                } else {
                    self.toast("the demo plays only against the embedded sandbox".into());
                }
            }
            Command::Quit if !self.in_flight.is_empty() && self.modal.is_none() => {
                // An upload or a start cut short would leave the operator guessing.
                let mut lines: Vec<String> = self
                    .in_flight
                    .iter()
                    .map(|r| format!("still {}{}", r.doing(), r.subject()))
                    .collect();
                lines.push("Quit anyway? What is in flight may not finish.".into());
                self.modal = Some(Modal::ConfirmQuit { lines });
            }
            Command::Quit => {
                self.quit = true;
                effects.push(Effect::Quit);
            }
        }
    }

    /// Whether a command can be used now (the hint bar shows only those).
    pub fn available(&self, command: Command) -> bool {
        !(command.writes() && self.header.read_only || command.sandbox_only() && !self.header.sandbox)
    }

    /// Opens the dialog of an action that writes, or says why it cannot be used now.
    fn open_action(&mut self, command: Command, effects: &mut Vec<Effect>) {
        if self.header.read_only {
            return self.toast(
                "read-only: actions that write are disabled (--read-only, or read_only in the profile)"
                    .into(),
            );
        }
        if command.sandbox_only() && !self.header.sandbox {
            return self.toast("simulating and moving the clock exist only in the sandbox".into());
        }
        if command == Command::AdvanceClock {
            self.modal = Some(modal::clock_menu());
            return;
        }
        if command == Command::New {
            if self.in_flight.iter().any(|r| matches!(r, Request::Create { .. })) {
                return self.toast("still creating the last customer; a moment".into());
            }
            self.modal = Some(Modal::Form(Box::default()));
            return;
        }
        let Some(row) = self.selected_row() else {
            return self.toast("select a customer first".into());
        };
        let (id, name, stage) = (row.id(), row.name().to_string(), row.stage());
        if let Some(request) = self.in_flight.iter().find(|r| r.customer() == Some(id)) {
            return self.toast(format!("still {} for {name}", request.doing()));
        }
        if command == Command::Edit {
            let loaded = self.details.as_ref().filter(|d| d.id == id);
            let Some(customer) = loaded.and_then(|d| d.customer.as_ref()) else {
                return self.toast(format!(
                    "{name}'s profile is still loading; try again in a moment"
                ));
            };
            // UPDATE_PROFILE: open on the fields it asks for.
            let focus = loaded
                .and_then(|d| d.status.as_ref())
                .map(|status| crate::domain::advise(customer, status).fields_to_patch)
                .unwrap_or_default();
            self.modal = Some(Modal::Form(Box::new(Form::edit(customer, &name, &focus))));
            return;
        }
        if command == Command::Upload {
            let dir = self
                .last_folder
                .clone()
                .or_else(|| self.header.inbox.as_ref().map(std::path::PathBuf::from))
                .unwrap_or_else(|| std::path::PathBuf::from("."));
            self.modal = Some(Modal::Files(modal::Files::new(id, &name, dir.clone())));
            effects.push(Effect::ListDir(dir));
            return;
        }
        self.modal = Some(match command {
            Command::StartKyc => modal::confirm_start(id, &name, stage),
            Command::Rerun => modal::confirm_rerun(id, &name, stage),
            _ => modal::simulate_menu(id, &name, stage),
        });
    }

    /// The document type chooser for a picked file: what the customer is missing first (from
    /// their status when it is loaded, else the FATCA form their nationality calls for).
    fn choose_type(&mut self, path: std::path::PathBuf) {
        let Some(Modal::Files(files)) = self.modal.take() else {
            return;
        };
        let details = self.details.as_ref().filter(|d| d.id == files.customer);
        let missing = match details.and_then(|d| Some((d.customer.as_ref()?, d.status.as_ref()?))) {
            Some((customer, status)) => crate::domain::advise(customer, status).documents_to_upload,
            None => details
                .and_then(|d| d.customer.as_ref())
                .map(|c| vec![crate::domain::fatca_form(c)])
                .unwrap_or_default(),
        };
        self.modal = Some(modal::type_menu(files.customer, &files.name, path, &missing));
    }

    fn send(&mut self, request: Request, effects: &mut Vec<Effect>) {
        let text = format!("{}{}…", request.doing(), request.subject());
        self.push_log(request.customer(), text, false);
        self.in_flight.push(request.clone());
        effects.push(Effect::Send(request));
    }

    /// What the row shows while a request for it is in flight.
    pub fn in_flight_for(&self, id: Uuid) -> Option<&Request> {
        self.in_flight.iter().find(|r| r.customer() == Some(id))
    }

    fn done(&mut self, request: Request, result: Result<Done, Failed>, effects: &mut Vec<Effect>) {
        if let Some(at) = self.in_flight.iter().position(|r| *r == request) {
            self.in_flight.remove(at);
        }
        let customer = request.customer();
        match result {
            Ok(Done::Started { sdk }) => {
                let name = match &request {
                    Request::StartKyc { name, .. } | Request::Rerun { name, .. } => name.clone(),
                    _ => String::new(),
                };
                self.push_log(customer, format!("KYC started for {name}"), false);
                match sdk {
                    Some(link) if self.modal.is_none() => self.modal = Some(Modal::Sdk { name, link }),
                    Some(_) => self.toast(format!("KYC started for {name}: its SDK link is in the details")),
                    None => self.toast(format!("KYC started for {name} (external path: no SDK link)")),
                }
            }
            Ok(Done::Simulated) => {
                let text = format!("{}{}: done", request.doing(), request.subject());
                self.push_log(customer, text.clone(), false);
                self.toast(text);
            }
            Ok(Done::Uploaded { duplicate }) => {
                let text = if duplicate {
                    format!(
                        "{}{}: the same file was uploaded before for this type, not sent again",
                        request.doing(),
                        request.subject()
                    )
                } else {
                    format!("{}{}: done", request.doing(), request.subject())
                };
                self.push_log(customer, text.clone(), false);
                self.toast(text);
            }
            Ok(Done::ClockAdvanced { now }) => {
                let text = format!(
                    "{}: the sandbox clock reads {}",
                    request.doing(),
                    now.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                );
                self.push_log(None, text.clone(), false);
                self.toast(text);
            }
            Ok(Done::Resent) => {
                let text = format!("{}: queued again", request.doing());
                self.push_log(None, text.clone(), false);
                self.toast(text);
                if let (Request::Resend { endpoint, .. }, Some(Modal::Webhooks(view))) =
                    (&request, &mut self.modal)
                {
                    view.deliveries = None;
                    effects.push(Effect::LoadDeliveries(*endpoint));
                }
            }
            Ok(Done::Saved { customer, name }) => {
                if matches!(&self.modal, Some(Modal::Form(form)) if form.answers(&request)) {
                    self.modal = None;
                }
                let text = match request {
                    Request::Create { .. } => {
                        // Selected now if the engine reported the row already, else when it does.
                        self.select_when_seen = Some(customer);
                        self.select_created();
                        format!("created {name}")
                    }
                    _ => format!("saved the profile of {name}"),
                };
                self.push_log(Some(customer), text.clone(), false);
                self.toast(text);
            }
            Err(error) => {
                let text = format!("{}{} failed: {error}", request.doing(), request.subject());
                self.push_log(customer, text.clone(), true);
                self.toasts.push(Toast {
                    text,
                    until: self.now + time::Duration::seconds(10),
                });
                // A form stays open with everything typed, the API's complaints on its fields.
                if let Some(Modal::Form(form)) = &mut self.modal
                    && form.answers(&request)
                {
                    form.sending = false;
                    form.show_errors(&error.fields);
                    if error.fields.is_empty() {
                        form.message = Some(error.message);
                    }
                }
            }
        }
    }

    /// The form asks to be saved: checked here first, as the API will check it.
    fn submit(&mut self, effects: &mut Vec<Effect>) {
        let today = self.now.date();
        let Some(Modal::Form(form)) = &mut self.modal else {
            return;
        };
        if form.sending {
            return;
        }
        let request = match form.check(today) {
            Checked::Invalid => return,
            Checked::Create(profile) => Request::Create { profile },
            Checked::Patch(patch) => {
                if patch.as_object().is_some_and(|o| o.is_empty()) {
                    self.modal = None;
                    return self.toast("nothing changed".into());
                }
                let (Some(customer), super::form::FormKind::Edit { name, .. }) =
                    (form.customer(), &form.kind)
                else {
                    return;
                };
                Request::Patch {
                    customer,
                    name: name.clone(),
                    patch,
                }
            }
        };
        form.sending = true;
        form.message = None;
        self.send(request, effects);
    }

    fn filter_input(&mut self, c: char) {
        self.filter.push(c);
        if !self.filter.starts_with('!') {
            // Typing more only narrows: filter what is shown, already in order.
            let (rows, needle) = (&self.rows, Needle::new(&self.filter));
            self.view.retain(|&i| needle.matches(&rows[i]));
        } else {
            self.refilter();
        }
    }

    /// Ends editing the filter (Enter keeps it, Esc clears it).
    fn finish_filter(&mut self, keep: bool) {
        self.editing_filter = false;
        if !keep {
            self.filter.clear();
            self.refilter();
        }
    }

    fn set_tab(&mut self, tab: Tab) {
        self.tab = tab;
        self.refilter();
    }

    fn toast(&mut self, text: String) {
        self.toasts.push(Toast {
            text,
            until: self.now + time::Duration::seconds(4),
        });
        if self.toasts.len() > 3 {
            self.toasts.remove(0);
        }
    }

    fn move_by(&mut self, delta: isize) {
        let at = self.cursor().unwrap_or(0) as isize + delta;
        self.move_to(at.clamp(0, self.view.len().saturating_sub(1) as isize) as usize);
    }

    fn move_to(&mut self, at: usize) {
        if let Some(&i) = self.view.get(at) {
            self.selected = Some(self.rows[i].id());
        }
    }

    fn keep_in_view(&mut self) {
        let Some(at) = self.cursor() else {
            self.offset = 0;
            return;
        };
        if at < self.offset {
            self.offset = at;
        } else if at >= self.offset + self.table_rows {
            self.offset = at + 1 - self.table_rows;
        }
        self.offset = self.offset.min(self.view.len().saturating_sub(self.table_rows));
    }

    /// Recomputes the view from scratch (tab or filter changed).
    fn refilter(&mut self) {
        let (rows, needle, tab) = (&self.rows, Needle::new(&self.filter), self.tab);
        self.view = (0..rows.len())
            .filter(|&i| tab.holds(rows[i].stage()) && needle.matches(&rows[i]))
            .collect();
        self.resort();
    }

    /// The table's order: the sort column, then the name, then the id (a total order, so a
    /// row's place can be found by binary search).
    fn order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (x, y) = (&self.rows[a], &self.rows[b]);
        let order = compare(x, y, self.sort, self.now)
            .then_with(|| x.sort_name().cmp(y.sort_name()))
            .then_with(|| x.id().cmp(&y.id()));
        if self.descending { order.reverse() } else { order }
    }

    fn resort(&mut self) {
        let mut view = std::mem::take(&mut self.view);
        // The order is total (the id breaks ties), so an unstable sort gives the same result.
        view.sort_unstable_by(|&a, &b| self.order(a, b));
        self.view = view;
    }

    /// Puts one changed row back where it belongs: out of the view, then in at its place if
    /// it still matches — one row moves, not the whole list.
    fn place(&mut self, i: usize) {
        if let Some(at) = self.view.iter().position(|&v| v == i) {
            self.view.remove(at);
        }
        let row = &self.rows[i];
        if self.tab.holds(row.stage()) && Needle::new(&self.filter).matches(row) {
            let at = self
                .view
                .partition_point(|&v| self.order(v, i) == std::cmp::Ordering::Less);
            self.view.insert(at, i);
        }
    }

    fn engine(&mut self, events: Vec<EngineEvent>, effects: &mut Vec<Effect>) {
        let mut touched: Vec<usize> = Vec::new();
        for event in events {
            match event {
                EngineEvent::Customers(states) => {
                    for state in states {
                        let id = state.customer.id;
                        if self.selected == Some(id)
                            && self.selected_row().is_some_and(|r| {
                                // A profile edit can leave the status as it was.
                                r.state.status != state.status || r.state.customer.hash != state.customer.hash
                            })
                        {
                            effects.push(Effect::LoadDetails(id, state.status.as_ref().map(|s| s.hash)));
                        }
                        self.count_stage(state.stage, 1);
                        match self.index.get(&id).copied() {
                            Some(i) => {
                                let old = self.rows[i].stage();
                                self.count_stage(old, -1);
                                let last_change = if old != state.stage {
                                    self.now
                                } else {
                                    self.rows[i].last_change
                                };
                                self.rows[i] = Row {
                                    last_change,
                                    ..Row::new(state, self.now)
                                };
                                touched.push(i);
                            }
                            None => {
                                self.index.insert(id, self.rows.len());
                                let mut row = Row::new(state, self.now);
                                row.last_change = row.state.since.unwrap_or(self.now);
                                self.rows.push(row);
                                touched.push(self.rows.len() - 1);
                            }
                        }
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
                EngineEvent::Poller { in_flight, paused } => {
                    self.header.in_flight = in_flight;
                    self.header.paused = paused;
                }
                EngineEvent::StageChanged {
                    customer_id,
                    from,
                    to,
                    ..
                } => {
                    let text = match from {
                        Some(from) => format!("{} {from} → {to}", self.name_of(customer_id)),
                        None => format!("{} first seen: {to}", self.name_of(customer_id)),
                    };
                    self.push_log(Some(customer_id), text, false);
                }
                EngineEvent::Webhook {
                    event_type,
                    customer_id,
                    duplicate,
                    ..
                } => {
                    self.header.last_webhook = Some(self.now);
                    let text = format!(
                        "webhook {event_type}{}",
                        if duplicate { " (duplicate)" } else { "" }
                    );
                    self.push_timeline(customer_id, text);
                }
                EngineEvent::WebhookRejected { reason, detail } => {
                    self.header.rejected += 1;
                    self.push_log(None, format!("webhook rejected ({reason:?}): {detail}"), true);
                }
                EngineEvent::Upload {
                    path,
                    customer_id,
                    document_type,
                    result,
                    error,
                } => {
                    let what = document_type.map_or("document", |t| t.as_str());
                    let text = match &error {
                        Some(error) => format!("upload {what} {result}: {error} ({path})"),
                        None => format!("upload {what} {result} ({path})"),
                    };
                    self.push_log(customer_id, text, error.is_some());
                }
                EngineEvent::PollError {
                    customer_id, error, ..
                } => {
                    self.header.poll_errors += 1;
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
                } => self.push_log(
                    None,
                    format!("sweep: {customers} customers, {changed} changed, {duration_ms} ms"),
                    false,
                ),
                EngineEvent::Fatal { error } => {
                    self.push_log(None, format!("stopped: {error}"), true);
                    self.toast(format!("the engine stopped: {error}"));
                    self.fatal = Some(error);
                }
                EngineEvent::Clock { offset_seconds } => {
                    self.server_offset = time::Duration::seconds(offset_seconds);
                }
                EngineEvent::Stopped => {}
            }
        }
        // The selection is an id, so it stays on its customer wherever the row moves.
        if touched.len() > 256 {
            self.refilter();
        } else {
            for i in touched {
                self.place(i);
            }
        }
        self.select_created();
    }

    /// Selects the customer just created once their row is here, showing them whatever the
    /// tab and filter hid (not while a filter is being typed: then at the next chance).
    fn select_created(&mut self) {
        let Some(id) = self.select_when_seen else {
            return;
        };
        let Some(&i) = self.index.get(&id) else {
            return;
        };
        if self.editing_filter {
            return;
        }
        self.select_when_seen = None;
        if !self.view.contains(&i) {
            self.filter.clear();
            self.tab = Tab::All;
            self.refilter();
        }
        self.selected = Some(id);
    }

    pub fn name_of(&self, id: Uuid) -> String {
        self.index
            .get(&id)
            .map(|&i| self.rows[i].name().to_string())
            .unwrap_or_else(|| id.to_string())
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

    /// Whether something on screen counts down (an SDK link, a toast): then the clock ticks.
    /// Now on the API's clock, for countdowns to times it set.
    pub fn server_now(&self) -> OffsetDateTime {
        self.now + self.server_offset
    }

    pub fn needs_tick(&self) -> bool {
        !self.toasts.is_empty()
            || matches!(self.modal, Some(Modal::Sdk { .. }))
            || self.view[self.offset..(self.offset + self.table_rows).min(self.view.len())]
                .iter()
                .any(|&i| self.rows[i].status().is_some_and(|s| s.sdk.is_some()))
    }
}

/// The filter, prepared once per pass: lower case, a leading `!` keeps what does not match.
/// The searcher is built once per pass, not once per row: a keystroke scans 100,000 rows.
struct Needle {
    negate: bool,
    finder: Option<memchr::memmem::Finder<'static>>,
}

impl Needle {
    fn new(filter: &str) -> Needle {
        let (negate, text) = match filter.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, filter),
        };
        let text = text.trim().to_lowercase();
        Needle {
            negate,
            finder: (!text.is_empty()).then(|| memchr::memmem::Finder::new(text.as_bytes()).into_owned()),
        }
    }

    fn matches(&self, row: &Row) -> bool {
        match &self.finder {
            None => true,
            Some(finder) => finder.find(row.haystack.as_bytes()).is_some() != self.negate,
        }
    }
}

pub fn alert_title(alert: AlertKind) -> &'static str {
    match alert {
        AlertKind::SdkLinkExpiring => "SDK link expiring",
        AlertKind::StuckWaiting => "waiting too long",
        AlertKind::VerificationError => "verification error",
        AlertKind::Drift => "drift",
    }
}

/// The order of stages in the table: what needs the integrator first.
fn stage_rank(stage: Option<Stage>) -> u8 {
    use Stage::*;
    match stage {
        Some(Errored) => 0,
        Some(Expired) => 1,
        Some(NeedsProfile) => 2,
        Some(ReadyToStart) => 3,
        Some(CollectingRequirements) => 4,
        Some(AwaitingSdk) => 5,
        Some(InReview) => 6,
        Some(AwaitingDecision) => 7,
        Some(Denied) => 8,
        Some(Approved) => 9,
        None => 10,
    }
}

fn compare(a: &Row, b: &Row, column: Column, now: OffsetDateTime) -> std::cmp::Ordering {
    match column {
        Column::Name => a.sort_name().cmp(b.sort_name()),
        Column::Stage => stage_rank(a.stage()).cmp(&stage_rank(b.stage())),
        // Longest in its stage first.
        Column::InStage => a.state.since.unwrap_or(now).cmp(&b.state.since.unwrap_or(now)),
        Column::NextAction => a.next_action().cmp(&b.next_action()),
        Column::Onboarding => a
            .onboarding_status()
            .map(|s| s.as_str())
            .cmp(&b.onboarding_status().map(|s| s.as_str())),
        Column::Failed => {
            let failed = |r: &Row| r.status().map_or(0, |s| s.required_failed.len());
            failed(b).cmp(&failed(a))
        }
        Column::SdkLink => {
            let expiry = |r: &Row| r.status().and_then(|s| s.sdk.as_ref()).map(|s| s.expires_at);
            match (expiry(a), expiry(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }
        Column::LastChange => b.last_change.cmp(&a.last_change),
    }
}

#[cfg(test)]
mod tests;
