//! Dialogs over the dashboard: a confirmation before an action that writes, a menu (simulate,
//! advance the sandbox clock), and the SDK link with its QR code once KYC started. Pure state
//! and keys, like the rest of the dashboard: what a dialog decides comes back as an outcome
//! for `update` to act on.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::form::{Form, FormOutcome};
use super::keymap::ModalKey;
use super::request::{Request, duration_words};
use crate::domain::{DocumentType, SdkLink, SimulateAction, Stage, simulation_applies};

/// One entry of a folder, as the file picker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub dir: bool,
    pub size: u64,
}

/// Where a file picker is, and what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub customer: Uuid,
    pub name: String,
    pub dir: PathBuf,
    /// `None` while the folder is being read.
    pub entries: Option<Result<Vec<FileEntry>, String>>,
    pub cursor: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// The key that picks it directly.
    pub key: char,
    pub label: String,
    /// Why it cannot be picked now, if it cannot.
    pub disabled: Option<String>,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    Confirm {
        title: String,
        lines: Vec<String>,
        request: Request,
    },
    Menu {
        title: String,
        items: Vec<MenuItem>,
        cursor: usize,
    },
    Sdk {
        name: String,
        link: SdkLink,
    },
    Files(Files),
    Form(Box<Form>),
    Webhooks(Box<Webhooks>),
    /// Quitting while requests are in flight.
    ConfirmQuit {
        lines: Vec<String>,
    },
}

/// What a key did to a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Close,
    Send(Request),
    /// Copy this text (the SDK link), and stay.
    Copy(String),
    /// The key picks something that cannot be done now: say why, and stay.
    Refused(String),
    /// Read this folder for the file picker.
    List(PathBuf),
    /// The file picker chose this file.
    Picked(PathBuf),
    /// The form asks to be saved.
    Submit,
    /// Read the webhook endpoints (then the first one's deliveries).
    LoadWebhooks,
    LoadDeliveries(Uuid),
    Quit,
}

impl Modal {
    pub fn key(&mut self, key: ModalKey) -> Outcome {
        match self {
            Modal::Confirm { request, .. } => match key {
                ModalKey::Enter | ModalKey::Char('y' | 'Y') => Outcome::Send(request.clone()),
                ModalKey::Esc | ModalKey::Char('n' | 'N' | 'q') => Outcome::Close,
                _ => Outcome::Stay,
            },
            Modal::Menu { items, cursor, .. } => match key {
                ModalKey::Up | ModalKey::Char('k') => {
                    *cursor = cursor.checked_sub(1).unwrap_or(items.len().saturating_sub(1));
                    Outcome::Stay
                }
                ModalKey::Down | ModalKey::Char('j') => {
                    *cursor = (*cursor + 1) % items.len().max(1);
                    Outcome::Stay
                }
                ModalKey::Enter => items.get(*cursor).map_or(Outcome::Stay, pick),
                ModalKey::Esc | ModalKey::Char('q') => Outcome::Close,
                ModalKey::Char(c) => match items.iter().position(|item| item.key == c) {
                    Some(at) => {
                        *cursor = at;
                        pick(&items[at])
                    }
                    None => Outcome::Stay,
                },
                _ => Outcome::Stay,
            },
            Modal::Sdk { link, .. } => match key {
                ModalKey::Char('y') => Outcome::Copy(link.link.clone()),
                ModalKey::Esc | ModalKey::Enter | ModalKey::Char('q') => Outcome::Close,
                _ => Outcome::Stay,
            },
            Modal::Files(files) => files.key(key),
            Modal::Webhooks(webhooks) => webhooks.key(key),
            Modal::Form(form) => match form.key(key) {
                FormOutcome::Stay => Outcome::Stay,
                FormOutcome::Close => Outcome::Close,
                FormOutcome::Submit => Outcome::Submit,
            },
            Modal::ConfirmQuit { .. } => match key {
                ModalKey::Enter | ModalKey::Char('y' | 'Y' | 'q') => Outcome::Quit,
                ModalKey::Esc | ModalKey::Char('n' | 'N') => Outcome::Close,
                _ => Outcome::Stay,
            },
        }
    }
}

impl Files {
    pub fn new(customer: Uuid, name: &str, dir: PathBuf) -> Files {
        Files {
            customer,
            name: name.into(),
            dir,
            entries: None,
            cursor: 0,
        }
    }

    fn key(&mut self, key: ModalKey) -> Outcome {
        let count = match &self.entries {
            Some(Ok(entries)) => entries.len(),
            _ => 0,
        };
        match key {
            ModalKey::Up | ModalKey::Char('k') => {
                self.cursor = self.cursor.saturating_sub(1);
                Outcome::Stay
            }
            ModalKey::Down | ModalKey::Char('j') => {
                self.cursor = (self.cursor + 1).min(count.saturating_sub(1));
                Outcome::Stay
            }
            ModalKey::Backspace | ModalKey::Left | ModalKey::Char('h') => match self.dir.parent() {
                Some(parent) => Outcome::List(parent.to_path_buf()),
                None => Outcome::Stay,
            },
            ModalKey::Enter | ModalKey::Right | ModalKey::Char('l') => match &self.entries {
                Some(Ok(entries)) => match entries.get(self.cursor) {
                    Some(entry) if entry.dir => Outcome::List(self.dir.join(&entry.name)),
                    Some(entry) => Outcome::Picked(self.dir.join(&entry.name)),
                    None => Outcome::Stay,
                },
                _ => Outcome::Stay,
            },
            ModalKey::Esc | ModalKey::Char('q') => Outcome::Close,
            _ => Outcome::Stay,
        }
    }

    /// The folder's entries arrived (or could not be read).
    /// Returns whether the picker moved there. It moves only to a folder that could be read,
    /// except the first time (then the error is what it shows).
    pub fn listed(&mut self, dir: &Path, entries: Result<Vec<FileEntry>, String>) -> bool {
        match entries {
            Ok(entries) => {
                self.dir = dir.to_path_buf();
                self.entries = Some(Ok(entries));
                self.cursor = 0;
                true
            }
            Err(error) if self.entries.is_none() => {
                self.dir = dir.to_path_buf();
                self.entries = Some(Err(error));
                false
            }
            Err(_) => false,
        }
    }
}

/// Reads a folder for the file picker: folders first, then files, each by name; hidden
/// entries (a leading dot, like the inbox's `.processed`) left out.
pub fn list_folder(dir: &Path) -> Result<Vec<FileEntry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut entries: Vec<FileEntry> = read
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let meta = entry.metadata().ok()?;
            Some(FileEntry {
                name,
                dir: meta.is_dir(),
                size: meta.len(),
            })
        })
        .collect();
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

/// The document type chooser: every type under the same number each time (their order in
/// [`DocumentType::ALL`]), those the customer is missing marked `✗ missing`, and the cursor
/// on the first of them.
pub fn type_menu(customer: Uuid, name: &str, path: PathBuf, missing: &[DocumentType]) -> Modal {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let items = DocumentType::ALL
        .into_iter()
        .enumerate()
        .map(|(n, document_type)| MenuItem {
            key: char::from(b'1' + n as u8),
            label: if missing.contains(&document_type) {
                format!("✗ {:<17}missing", document_type.as_str())
            } else {
                format!("  {}", document_type.as_str())
            },
            disabled: None,
            request: Request::Upload {
                customer,
                name: name.into(),
                path: path.clone(),
                document_type,
            },
        })
        .collect();
    Modal::Menu {
        title: format!("Upload {file} for {name} as"),
        items,
        cursor: DocumentType::ALL
            .iter()
            .position(|t| missing.contains(t))
            .unwrap_or(0),
    }
}

fn pick(item: &MenuItem) -> Outcome {
    match &item.disabled {
        Some(why) => Outcome::Refused(why.clone()),
        None => Outcome::Send(item.request.clone()),
    }
}

/// The confirmation before starting KYC.
pub fn confirm_start(customer: Uuid, name: &str, stage: Option<Stage>) -> Modal {
    let mut lines =
        vec!["Creates an onboarding and its SDK links (the end user has 30 minutes to finish).".into()];
    match stage {
        Some(Stage::ReadyToStart) | None => {}
        Some(Stage::NeedsProfile) => lines
            .push("The profile is not complete yet: the API will refuse and name the missing fields.".into()),
        Some(stage) => lines.push(format!(
            "The onboarding is {stage} already: the API will refuse a second start."
        )),
    }
    Modal::Confirm {
        title: format!("Start KYC for {name}?"),
        lines,
        request: Request::StartKyc {
            customer,
            name: name.into(),
        },
    }
}

/// The confirmation before a rerun.
pub fn confirm_rerun(customer: Uuid, name: &str, stage: Option<Stage>) -> Modal {
    let mut lines = vec!["Replaces the expired onboarding with a new one and new SDK links.".into()];
    if stage != Some(Stage::Expired) {
        lines.push(format!(
            "The onboarding is {} now: only an expired one can be rerun, so the API will refuse.",
            stage.map_or("unknown yet", |s| s.as_str())
        ));
    }
    Modal::Confirm {
        title: format!("Rerun KYC for {name}?"),
        lines,
        request: Request::Rerun {
            customer,
            name: name.into(),
        },
    }
}

pub const SIMULATIONS: [SimulateAction; 6] = [
    SimulateAction::SdkComplete,
    SimulateAction::SdkExpire,
    SimulateAction::Review,
    SimulateAction::Approve,
    SimulateAction::Deny,
    SimulateAction::Error,
];

fn simulate_words(action: SimulateAction) -> &'static str {
    match action {
        SimulateAction::SdkComplete => "the end user finishes the SDK",
        SimulateAction::SdkExpire => "the SDK links expire now",
        SimulateAction::Review => "the SDK submission goes to manual review",
        SimulateAction::Approve => "approve the review or the pending decision",
        SimulateAction::Deny => "deny the review or the pending decision",
        SimulateAction::Error => "a verification error now",
    }
}

/// The simulate menu for a customer, every action listed, those that do not apply now
/// disabled with the reason.
pub fn simulate_menu(customer: Uuid, name: &str, stage: Option<Stage>) -> Modal {
    let items = SIMULATIONS
        .iter()
        .enumerate()
        .map(|(n, &action)| MenuItem {
            key: char::from(b'1' + n as u8),
            label: format!("{:<13} {}", action.name(), simulate_words(action)),
            disabled: match stage {
                Some(stage) if simulation_applies(stage, action) => None,
                Some(stage) => Some(format!(
                    "{} does not apply to an onboarding {stage}",
                    action.name()
                )),
                None => Some("this customer's stage is not known yet".into()),
            },
            request: Request::Simulate {
                customer,
                name: name.into(),
                action,
            },
        })
        .collect::<Vec<_>>();
    let cursor = items.iter().position(|i| i.disabled.is_none()).unwrap_or(0);
    Modal::Menu {
        title: format!("Simulate for {name}"),
        items,
        cursor,
    }
}

/// The advance-the-clock menu.
pub fn clock_menu() -> Modal {
    let items = [2, 30 * 60, 24 * 3600]
        .into_iter()
        .enumerate()
        .map(|(n, seconds)| MenuItem {
            key: char::from(b'1' + n as u8),
            label: format!("+{:<8} {}", duration_words(seconds), clock_effect(seconds)),
            disabled: None,
            request: Request::AdvanceClock { seconds },
        })
        .collect();
    Modal::Menu {
        title: "Advance the sandbox clock".into(),
        items,
        cursor: 0,
    }
}

fn clock_effect(seconds: u64) -> &'static str {
    match seconds {
        0..=60 => "pending decisions are made",
        61..=3600 => "SDK links expire",
        _ => "everything due fires",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulations_apply_where_the_sandbox_accepts_them() {
        use SimulateAction::*;
        use Stage::*;
        let allowed = |stage| {
            SIMULATIONS
                .into_iter()
                .filter(|&a| simulation_applies(stage, a))
                .collect::<Vec<_>>()
        };
        assert_eq!(allowed(AwaitingSdk), [SdkComplete, SdkExpire, Review, Error]);
        assert_eq!(allowed(InReview), [Approve, Deny, Error]);
        assert_eq!(allowed(AwaitingDecision), [Approve, Deny, Error]);
        for stage in [NeedsProfile, ReadyToStart, Approved, Denied, Expired] {
            assert_eq!(allowed(stage), [], "{stage}");
        }
    }

    #[test]
    fn a_menu_skips_to_what_applies_and_refuses_what_does_not() {
        let id = Uuid::from_u128(7);
        let mut menu = simulate_menu(id, "Ada", Some(Stage::InReview));
        // The cursor starts on the first action that applies (APPROVE).
        assert_eq!(
            menu.key(ModalKey::Enter),
            Outcome::Send(Request::Simulate {
                customer: id,
                name: "Ada".into(),
                action: SimulateAction::Approve
            })
        );
        assert!(
            matches!(menu.key(ModalKey::Char('1')), Outcome::Refused(why) if why.contains("SDK_COMPLETE"))
        );
        assert_eq!(menu.key(ModalKey::Char('x')), Outcome::Stay);
        assert_eq!(menu.key(ModalKey::Esc), Outcome::Close);
    }

    #[test]
    fn a_confirmation_needs_a_yes() {
        let mut confirm = confirm_start(Uuid::from_u128(1), "Ada", Some(Stage::ReadyToStart));
        assert_eq!(confirm.key(ModalKey::Char('x')), Outcome::Stay);
        assert_eq!(confirm.key(ModalKey::Char('n')), Outcome::Close);
        assert!(matches!(
            confirm.key(ModalKey::Char('y')),
            Outcome::Send(Request::StartKyc { .. })
        ));
    }
}

#[cfg(test)]
mod folder_tests {
    use super::*;

    #[test]
    fn a_folder_lists_folders_first_by_name_without_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.pdf"), b"%PDF").unwrap();
        std::fs::write(dir.path().join("a.png"), b"png").unwrap();
        std::fs::create_dir(dir.path().join("zeta")).unwrap();
        std::fs::create_dir(dir.path().join(".processed")).unwrap();
        let names: Vec<(String, bool)> = list_folder(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.dir))
            .collect();
        assert_eq!(
            names,
            [
                ("zeta".into(), true),
                ("a.png".into(), false),
                ("b.pdf".into(), false)
            ]
        );
        assert!(
            list_folder(&dir.path().join("missing"))
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn the_type_chooser_keeps_each_number_and_points_at_what_is_missing() {
        let chooser = |missing: &[DocumentType]| {
            let Modal::Menu { items, cursor, .. } =
                type_menu(Uuid::nil(), "Ada", PathBuf::from("/x/w9.pdf"), missing)
            else {
                panic!("a menu")
            };
            (items, cursor)
        };
        let keys = |items: &[MenuItem]| -> Vec<(char, DocumentType)> {
            items
                .iter()
                .map(|item| match &item.request {
                    Request::Upload { document_type, .. } => (item.key, *document_type),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let (before, cursor) = chooser(&[DocumentType::W9, DocumentType::SourceOfFunds]);
        let (after, _) = chooser(&[DocumentType::SourceOfFunds]);
        // The same key picks the same type whatever is missing: the order of DocumentType.
        assert_eq!(keys(&before), keys(&after));
        assert_eq!(keys(&before)[0], ('1', DocumentType::ALL[0]));
        let at = |t: DocumentType| DocumentType::ALL.iter().position(|x| *x == t).unwrap();
        assert_eq!(
            cursor,
            at(DocumentType::W9).min(at(DocumentType::SourceOfFunds)),
            "on the first missing"
        );
        // What is missing is marked with a symbol, readable without colour.
        let marked: Vec<bool> = after.iter().map(|i| i.label.starts_with("✗ ")).collect();
        let missing: Vec<bool> = DocumentType::ALL
            .iter()
            .map(|t| *t == DocumentType::SourceOfFunds)
            .collect();
        assert_eq!(marked, missing);
    }
}

/// The `w` view: webhook endpoints (secret hint only) and the delivery log of one of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Webhooks {
    /// `None` while loading.
    pub endpoints: Option<Result<Vec<crate::api::types::WebhookEndpoint>, String>>,
    pub endpoint: usize,
    /// The selected endpoint's deliveries, newest first; `None` while loading.
    pub deliveries: Option<Result<Vec<crate::api::types::Delivery>, String>>,
    pub cursor: usize,
    /// Enter was pressed on this delivery: asking before resending it.
    pub confirm_resend: Option<Uuid>,
    pub read_only: bool,
}

impl Webhooks {
    pub fn selected_endpoint(&self) -> Option<&crate::api::types::WebhookEndpoint> {
        self.endpoints.as_ref()?.as_ref().ok()?.get(self.endpoint)
    }

    pub fn selected_delivery(&self) -> Option<&crate::api::types::Delivery> {
        self.deliveries.as_ref()?.as_ref().ok()?.get(self.cursor)
    }

    fn key(&mut self, key: ModalKey) -> Outcome {
        if let Some(asked) = self.confirm_resend.take() {
            // The delivery asked about, wherever a reload moved it.
            let delivery = self
                .deliveries
                .as_ref()
                .and_then(|d| d.as_ref().ok())
                .and_then(|d| d.iter().find(|d| d.id == asked));
            return match (key, delivery) {
                (ModalKey::Char('y' | 'Y') | ModalKey::Enter, Some(delivery)) => {
                    Outcome::Send(Request::Resend {
                        endpoint: delivery.endpoint_id,
                        delivery: delivery.id,
                        event_type: delivery.event_type.clone(),
                    })
                }
                _ => Outcome::Stay,
            };
        }
        let endpoints = self
            .endpoints
            .as_ref()
            .and_then(|e| e.as_ref().ok())
            .map_or(0, Vec::len);
        let deliveries = self
            .deliveries
            .as_ref()
            .and_then(|d| d.as_ref().ok())
            .map_or(0, Vec::len);
        match key {
            ModalKey::Up | ModalKey::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            ModalKey::Down | ModalKey::Char('j') => {
                self.cursor = (self.cursor + 1).min(deliveries.saturating_sub(1))
            }
            ModalKey::Left | ModalKey::Right | ModalKey::Tab | ModalKey::BackTab if endpoints > 1 => {
                self.endpoint = match key {
                    ModalKey::Left | ModalKey::BackTab => (self.endpoint + endpoints - 1) % endpoints,
                    _ => (self.endpoint + 1) % endpoints,
                };
                self.deliveries = None;
                self.cursor = 0;
                if let Some(endpoint) = self.selected_endpoint() {
                    return Outcome::LoadDeliveries(endpoint.id);
                }
            }
            ModalKey::Enter if self.read_only => {
                return Outcome::Refused("read-only: resending is disabled".into());
            }
            ModalKey::Enter => self.confirm_resend = self.selected_delivery().map(|d| d.id),
            ModalKey::Char('R') => {
                self.endpoints = None;
                self.deliveries = None;
                return Outcome::LoadWebhooks;
            }
            ModalKey::Esc | ModalKey::Char('q') => return Outcome::Close,
            _ => {}
        }
        Outcome::Stay
    }
}
