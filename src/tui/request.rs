//! What the dashboard asks the engine to do when an action writes ([`Request`]), and the
//! answer it gets back ([`Done`] or [`Failed`]). Dialogs build requests; `update` sends them
//! and reads their answers.

use std::path::PathBuf;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::types::SimulateAction;
use crate::domain::{DocumentType, SdkLink};

/// An action that writes, as the dashboard asks the engine for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    StartKyc {
        customer: Uuid,
        name: String,
    },
    Rerun {
        customer: Uuid,
        name: String,
    },
    Simulate {
        customer: Uuid,
        name: String,
        action: SimulateAction,
    },
    AdvanceClock {
        seconds: u64,
    },
    Upload {
        customer: Uuid,
        name: String,
        path: PathBuf,
        document_type: DocumentType,
    },
    Create {
        profile: Box<crate::domain::CustomerProfile>,
    },
    Patch {
        customer: Uuid,
        name: String,
        patch: serde_json::Value,
    },
    Resend {
        endpoint: Uuid,
        delivery: Uuid,
        event_type: String,
    },
    /// Reruns the expired onboardings of these marked customers (id, name), each with its own
    /// request and Idempotency-Key, at most `--concurrency` at once.
    RerunMany {
        customers: Vec<(Uuid, String)>,
    },
}

impl Request {
    /// The customer it acts on (the clock belongs to the whole sandbox).
    pub fn customer(&self) -> Option<Uuid> {
        match self {
            Request::StartKyc { customer, .. }
            | Request::Rerun { customer, .. }
            | Request::Simulate { customer, .. }
            | Request::Upload { customer, .. }
            | Request::Patch { customer, .. } => Some(*customer),
            Request::AdvanceClock { .. }
            | Request::Create { .. }
            | Request::Resend { .. }
            | Request::RerunMany { .. } => None,
        }
    }

    /// What is happening, for the row while it is in flight and for the toasts after.
    pub fn doing(&self) -> String {
        match self {
            Request::StartKyc { .. } => "starting KYC".into(),
            Request::Rerun { .. } | Request::RerunMany { .. } => "rerunning KYC".into(),
            Request::Simulate { action, .. } => format!("simulating {}", action.name()),
            Request::AdvanceClock { seconds } => format!("advancing the clock {}", duration_words(*seconds)),
            Request::Create { .. } => "creating a customer".into(),
            Request::Patch { .. } => "saving the profile".into(),
            Request::Resend { event_type, .. } => format!("resending {event_type}"),
            Request::Upload {
                path, document_type, ..
            } => format!(
                "uploading {} as {}",
                path.file_name()
                    .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into()),
                document_type.as_str()
            ),
        }
    }

    /// Whom it is about, in a sentence.
    pub fn subject(&self) -> String {
        match self {
            Request::StartKyc { name, .. }
            | Request::Rerun { name, .. }
            | Request::Simulate { name, .. }
            | Request::Upload { name, .. } => format!(" for {name}"),
            Request::Patch { name, .. } => format!(" of {name}"),
            Request::RerunMany { customers } => format!(" for {} marked customers", customers.len()),
            Request::AdvanceClock { .. } | Request::Create { .. } | Request::Resend { .. } => String::new(),
        }
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// KYC started or rerun: the links to hand to the end user, if the path has them.
    Started {
        sdk: Option<SdkLink>,
    },
    Simulated,
    /// The sandbox clock now reads this.
    ClockAdvanced {
        now: OffsetDateTime,
    },
    /// `true`: the same content was uploaded for this customer and type before, and was
    /// not sent again.
    Uploaded {
        duplicate: bool,
    },
    /// A delivery was queued again.
    Resent,
    /// The customer created or saved, and what they are called now.
    Saved {
        customer: Uuid,
        name: String,
    },
    /// A request made for many customers: how many went through, and who failed and why (in
    /// the API's words).
    Many {
        succeeded: usize,
        failed: Vec<(String, String)>,
    },
}

/// Why a request failed: the API's words, and the fields it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub message: String,
    pub fields: Vec<crate::domain::FieldError>,
}

impl Failed {
    pub fn new(message: impl Into<String>) -> Failed {
        Failed {
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

impl From<crate::api::ApiError> for Failed {
    fn from(error: crate::api::ApiError) -> Failed {
        let fields = match &error {
            crate::api::ApiError::Status { problem, .. } => problem.errors.clone(),
            _ => Vec::new(),
        };
        Failed {
            message: error.to_string(),
            fields,
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `2 s`, `30 min`, `1 day`.
pub fn duration_words(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86400 => format!("{} h", seconds / 3600),
        86400..172800 => "1 day".into(),
        _ => format!("{} days", seconds / 86400),
    }
}
