//! A row of the customer table and what it is shown and sorted by: the stage tabs, the columns
//! and their order.

use std::cmp::Ordering;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{NextAction, OnboardingStatus, Stage};
use crate::sync::cache::StatusSummary;
use crate::sync::engine::CustomerState;

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

    pub fn next(self) -> Column {
        let i = Column::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Column::ALL[(i + 1) % Column::ALL.len()]
    }
}

/// One customer's row, with what filtering and sorting need computed once.
#[derive(Debug, Clone)]
pub struct Row {
    pub state: CustomerState,
    /// Name, email, externalId and id, lower case: what `/` searches. The name comes first,
    /// so sorting by name compares its first `name_len` bytes.
    pub haystack: Box<str>,
    name_len: usize,
    /// When the row last changed stage (or was first seen).
    pub last_change: OffsetDateTime,
}

impl Row {
    pub fn new(state: CustomerState, now: OffsetDateTime) -> Row {
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

impl Column {
    /// How two rows compare by this column alone (`now` stands in for a stage with no start).
    pub fn compare(self, a: &Row, b: &Row, now: OffsetDateTime) -> Ordering {
        match self {
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
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                }
            }
            Column::LastChange => b.last_change.cmp(&a.last_change),
        }
    }
}
