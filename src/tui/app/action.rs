//! What can happen to the dashboard ([`Action`]) and what `update` asks the outside world to
//! do in return ([`Effect`]).

use std::path::PathBuf;

use time::OffsetDateTime;
use uuid::Uuid;

use super::Details;
use crate::api::types::{Delivery, Document, WebhookEndpoint};
use crate::sync::engine::EngineEvent;
use crate::tui::keymap::{Command, ModalKey};
use crate::tui::modal::FileEntry;
use crate::tui::request::{Done, Failed, Request};

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
    WebhooksLoaded(Result<Vec<WebhookEndpoint>, String>),
    /// An endpoint's deliveries, read (oldest first, as the API lists them).
    DeliveriesLoaded(Uuid, Result<Vec<Delivery>, String>),
    /// A folder the file picker asked for, read.
    Listed(PathBuf, Result<Vec<FileEntry>, String>),
    /// An export was written (where, how many customers), or why not.
    Exported(Result<(PathBuf, usize), String>),
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
    /// Read a customer's whole profile, status and timeline, then their documents.
    LoadDetails(Uuid),
    Copy(String),
    /// Export these customers (the rows shown, in their order) as CSV; the answer comes back
    /// as `Action::Exported`.
    Export(Vec<Uuid>),
    /// Ask the engine (the API) for this; the answer comes back as `Action::Done`.
    Send(Request),
    /// Read a folder for the file picker; the answer comes back as `Action::Listed`.
    ListDir(PathBuf),
    LoadWebhooks,
    LoadDeliveries(Uuid),
    Mouse(bool),
    Demo(bool),
    Quit,
}
