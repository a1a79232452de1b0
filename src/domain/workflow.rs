//! The onboarding workflow of one customer (SPEC §4): one hierarchical `statig` machine.
//!
//! ```text
//! pre_kyc ─┬─ needs_profile            in_progress ─┬─ verification ─┬─ awaiting_sdk
//!          └─ ready_to_start                        │                └─ in_review
//!                                                   ├─ collecting_requirements
//! expired   errored   finished ─┬─ approved         └─ awaiting_decision
//!                               └─ denied
//! ```
//!
//! The machine does no I/O and reads no clock. A driver (the sandbox from commands and timers,
//! the dashboard's tracker from what it observes) feeds it [`WorkflowEvent`]s together with the
//! current [`Readiness`] — derived by the driver from the customer and their documents, so the
//! machine never keeps a copy of those facts that could drift. Each accepted event returns the
//! webhook events its transition produces; an event the guide does not allow is refused with a
//! [`WorkflowError`] and changes nothing. No state has entry or exit actions, so restoring a
//! saved machine runs nothing and produces no event twice.

use serde::{Deserialize, Serialize};
use statig::blocking::{InitializedStateMachine, IntoStateMachineExt, UninitializedStateMachine};
use statig::prelude::*;
use uuid::Uuid;

use super::event::{EventData, EventType};
pub use super::vocabulary::{OnboardingRef, SdkLink};
use super::vocabulary::{OnboardingStatus, Strategy};

/// What the driver knows of the customer's data when it submits an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// KYC_DATA_PRESENT passes: KYC can start.
    pub kyc_data_present: bool,
    /// Every profile and document requirement passes: once identity is verified, the
    /// onboarding only awaits its decision.
    pub requirements_met: bool,
}

impl Readiness {
    pub const NOTHING: Readiness = Readiness {
        kyc_data_present: false,
        requirements_met: false,
    };
    pub const ALL: Readiness = Readiness {
        kyc_data_present: true,
        requirements_met: true,
    };
}

/// What happened to a customer's onboarding, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowEvent {
    /// The profile changed (the readiness passed along says how).
    ProfileChanged,
    /// A document was received.
    DocumentReceived,
    /// Every requirement is met, as an observer learns from a status snapshot.
    RequirementsMet,
    /// KYC started; `sdk` carries the links on the standard path (an observer that has not
    /// seen them yet passes `None`).
    KycStarted {
        onboarding: OnboardingRef,
        sdk: Option<SdkLink>,
    },
    /// The end user finished the SDK and identity is verified.
    SdkCompleted,
    /// The end user finished the SDK and the submission went to manual review.
    SentToReview,
    ReviewApproved,
    ReviewDenied,
    DecisionApproved,
    DecisionDenied,
    /// The SDK links expired before the end user finished.
    SdkExpired,
    VerificationError,
    /// A rerun replaced an expired onboarding with `onboarding`.
    Restarted {
        onboarding: OnboardingRef,
        sdk: Option<SdkLink>,
    },
}

impl WorkflowEvent {
    /// Events that report facts rather than ask for a transition: accepted in every state.
    fn is_fact(&self) -> bool {
        matches!(
            self,
            WorkflowEvent::ProfileChanged | WorkflowEvent::DocumentReceived | WorkflowEvent::RequirementsMet
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            WorkflowEvent::ProfileChanged => "profile changed",
            WorkflowEvent::DocumentReceived => "document received",
            WorkflowEvent::RequirementsMet => "requirements met",
            WorkflowEvent::KycStarted { .. } => "KYC started",
            WorkflowEvent::SdkCompleted => "SDK completed",
            WorkflowEvent::SentToReview => "sent to review",
            WorkflowEvent::ReviewApproved => "review approved",
            WorkflowEvent::ReviewDenied => "review denied",
            WorkflowEvent::DecisionApproved => "decision approved",
            WorkflowEvent::DecisionDenied => "decision denied",
            WorkflowEvent::SdkExpired => "SDK expired",
            WorkflowEvent::VerificationError => "verification error",
            WorkflowEvent::Restarted { .. } => "restarted",
        }
    }
}

/// A webhook event a transition produced; the driver gives it an id and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedEvent {
    pub event_type: EventType,
    pub data: EventData,
}

/// The leaf state a workflow is in, as plain data.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Stage {
    NeedsProfile,
    ReadyToStart,
    AwaitingSdk,
    InReview,
    CollectingRequirements,
    AwaitingDecision,
    Expired,
    Errored,
    Approved,
    Denied,
}

crate::domain::vocabulary::strum_names!(Stage);

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::NeedsProfile,
        Stage::ReadyToStart,
        Stage::AwaitingSdk,
        Stage::InReview,
        Stage::CollectingRequirements,
        Stage::AwaitingDecision,
        Stage::Expired,
        Stage::Errored,
        Stage::Approved,
        Stage::Denied,
    ];

    /// The superstates above this stage, outermost first, then the stage itself.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            Stage::NeedsProfile => &["pre_kyc", "needs_profile"],
            Stage::ReadyToStart => &["pre_kyc", "ready_to_start"],
            Stage::AwaitingSdk => &["in_progress", "verification", "awaiting_sdk"],
            Stage::InReview => &["in_progress", "verification", "in_review"],
            Stage::CollectingRequirements => &["in_progress", "collecting_requirements"],
            Stage::AwaitingDecision => &["in_progress", "awaiting_decision"],
            Stage::Expired => &["expired"],
            Stage::Errored => &["errored"],
            Stage::Approved => &["finished", "approved"],
            Stage::Denied => &["finished", "denied"],
        }
    }

    /// The `onboardingStatus` the API reports in this stage.
    pub fn onboarding_status(self) -> Option<OnboardingStatus> {
        match self {
            Stage::NeedsProfile | Stage::ReadyToStart => None,
            Stage::AwaitingSdk | Stage::CollectingRequirements | Stage::AwaitingDecision => {
                Some(OnboardingStatus::Processing)
            }
            Stage::InReview => Some(OnboardingStatus::PendingReview),
            Stage::Expired => Some(OnboardingStatus::Expired),
            Stage::Errored => Some(OnboardingStatus::Error),
            Stage::Approved => Some(OnboardingStatus::Approved),
            Stage::Denied => Some(OnboardingStatus::DeniedCompliance),
        }
    }

    /// No event can move a workflow out of this stage.
    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Errored | Stage::Approved | Stage::Denied)
    }
}

/// Everything the compliance evaluator and the UI need to know of a workflow, as plain data.
/// This, never statig's own serialization, is what gets stored: renaming a state or upgrading
/// statig cannot break saved data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub stage: Stage,
    pub onboarding: Option<OnboardingRef>,
    /// The SDK links, while they are live.
    pub sdk: Option<SdkLink>,
    /// Identity verification (the SDK) completed and was accepted.
    pub identity_verified: bool,
}

impl WorkflowView {
    pub fn strategy(&self) -> Option<Strategy> {
        self.onboarding.map(|o| o.strategy)
    }
}

/// Why an event was refused. The stage is where the workflow was (and still is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error(
        "KYC cannot start before the customer's KYC data is present (first name, last name, birth date, document number)"
    )]
    ProfileIncomplete,
    #[error("KYC was already started for this customer (the onboarding is {stage}); {}", after_start_hint(*.stage))]
    AlreadyStarted { stage: Stage },
    #[error("only an expired onboarding can be rerun; this customer's is {stage}")]
    RerunNotAllowed { stage: Stage },
    #[error("the onboarding is final ({stage}); \"{event}\" cannot change it")]
    Finished { event: &'static str, stage: Stage },
    #[error("\"{event}\" does not apply while the onboarding is {stage}")]
    NotApplicable { event: &'static str, stage: Stage },
    /// KYC started on a path without SDK links, yet links were given.
    #[error("the {strategy} strategy has no SDK links, but some were given")]
    StrategyMismatch { strategy: Strategy },
    /// A rerun replaces an expired SDK onboarding; one on a path without SDK links cannot.
    #[error(
        "a rerun replaces an expired SDK onboarding with another; the {strategy} strategy has no SDK flow to rerun"
    )]
    RerunWithoutSdk { strategy: Strategy },
}

fn after_start_hint(stage: Stage) -> &'static str {
    match stage {
        Stage::Expired => "rerun the expired onboarding instead",
        s if s.is_terminal() => "its outcome is final",
        _ => "it is still in progress",
    }
}

/// One customer's onboarding workflow: the machine plus the rules for driving it.
#[derive(Debug, Clone)]
pub struct Workflow {
    machine: InitializedStateMachine<OnboardingMachine>,
}

impl PartialEq for Workflow {
    fn eq(&self, other: &Self) -> bool {
        self.machine.inner() == other.machine.inner() && self.machine.state() == other.machine.state()
    }
}

impl Eq for Workflow {}

impl Workflow {
    /// A new workflow, before KYC, in the pre-KYC stage the readiness calls for.
    pub fn new(customer_id: Uuid, readiness: Readiness) -> Self {
        let machine = OnboardingMachine { customer_id }
            .uninitialized_state_machine()
            .init_with_context(&mut WorkflowContext::default());
        let mut workflow = Self { machine };
        // A profile event in pre-KYC produces nothing and is never refused.
        let _ = workflow.handle(&WorkflowEvent::ProfileChanged, readiness);
        workflow
    }

    pub fn customer_id(&self) -> Uuid {
        self.machine.inner().customer_id
    }

    /// Submits an event. On success, returns the webhook events the transition produced, in
    /// order; on refusal the workflow is unchanged.
    pub fn handle(
        &mut self,
        event: &WorkflowEvent,
        readiness: Readiness,
    ) -> Result<Vec<ProducedEvent>, WorkflowError> {
        let stage = self.stage();
        let mut context = WorkflowContext {
            readiness,
            ..WorkflowContext::default()
        };
        self.machine.handle_with_context(event, &mut context);
        match context.refusal {
            None => Ok(context.produced),
            Some(refusal) => Err(match refusal {
                Refusal::ProfileIncomplete => WorkflowError::ProfileIncomplete,
                Refusal::AlreadyStarted => WorkflowError::AlreadyStarted { stage },
                Refusal::RerunNotAllowed => WorkflowError::RerunNotAllowed { stage },
                Refusal::Finished => WorkflowError::Finished {
                    event: event.name(),
                    stage,
                },
                Refusal::NotApplicable => WorkflowError::NotApplicable {
                    event: event.name(),
                    stage,
                },
                Refusal::StrategyMismatch(strategy) => WorkflowError::StrategyMismatch { strategy },
                Refusal::RerunWithoutSdk(strategy) => WorkflowError::RerunWithoutSdk { strategy },
            }),
        }
    }

    pub fn stage(&self) -> Stage {
        self.view().stage
    }

    pub fn view(&self) -> WorkflowView {
        self.machine.state().view()
    }

    /// The current onboarding, once KYC has started.
    pub fn onboarding(&self) -> Option<OnboardingRef> {
        self.view().onboarding
    }

    /// Rebuilds a workflow from stored plain data. Stages after KYC starts need an onboarding;
    /// a view without one gets the nil id (an onboarding the data did not name).
    pub fn restore(customer_id: Uuid, view: &WorkflowView) -> Self {
        let state = MachineState::of_view(view);
        let mut uninitialized = OnboardingMachine { customer_id }.uninitialized_state_machine();
        *uninitialized.state_mut() = state;
        // No state has entry actions, so initializing a restored machine produces nothing.
        let machine = uninitialized.init_with_context(&mut WorkflowContext::default());
        Self { machine }
    }

    /// Moves the workflow to whatever a status snapshot proves, from any state: what an
    /// observer sees always wins over what it had inferred from webhooks.
    pub fn observe(&mut self, snapshot: &WorkflowView) {
        if self.view() != *snapshot {
            *self = Self::restore(self.customer_id(), snapshot);
        }
    }
}

/// What a webhook means for an observer's copy of the workflow in `stage`: the event to
/// submit, if any. Nothing is refused here; an event that is not legal from `stage` is simply
/// not applied, and the status pull every webhook triggers reconciles. `strategy` is what the
/// observer last knew (webhooks do not carry it).
pub fn observed_event(
    stage: Stage,
    event: &super::event::WebhookEvent,
    strategy: Strategy,
) -> Option<WorkflowEvent> {
    let data = event.data()?;
    let status = data.status;
    let onboarding = data.onboarding_id.map(|id| OnboardingRef { id, strategy });
    Some(match event.event_type()? {
        EventType::CustomerCreated | EventType::CustomerUpdated => WorkflowEvent::ProfileChanged,
        EventType::CustomerKycStarted => WorkflowEvent::KycStarted {
            onboarding: onboarding?,
            sdk: None,
        },
        // The links are issued with the start (or the rerun) that the machine already took.
        EventType::CustomerKycSdkFlowRequired => return None,
        EventType::CustomerKycSdkFlowCompleted if status == Some(OnboardingStatus::PendingReview) => {
            WorkflowEvent::SentToReview
        }
        EventType::CustomerKycSdkFlowCompleted => WorkflowEvent::SdkCompleted,
        EventType::CustomerKycFinished => {
            let approved = match status? {
                OnboardingStatus::Approved => true,
                OnboardingStatus::DeniedCompliance => false,
                _ => return None,
            };
            match (stage, approved) {
                (Stage::InReview, true) => WorkflowEvent::ReviewApproved,
                (Stage::InReview, false) => WorkflowEvent::ReviewDenied,
                (_, true) => WorkflowEvent::DecisionApproved,
                (_, false) => WorkflowEvent::DecisionDenied,
            }
        }
        EventType::CustomerKycRestarted => WorkflowEvent::Restarted {
            onboarding: OnboardingRef {
                id: data.onboarding_id?,
                strategy: Strategy::CfKyc,
            },
            sdk: None,
        },
        EventType::CustomerKycSdkExpired => WorkflowEvent::SdkExpired,
        EventType::CustomerKycError => WorkflowEvent::VerificationError,
    })
}

impl Serialize for Workflow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.machine.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Workflow {
    /// Restores a saved workflow in the state it was saved in. Initializing the restored
    /// machine runs no action (there are none), so nothing is produced again.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = UninitializedStateMachine::<OnboardingMachine>::deserialize(deserializer)?;
        let mut context = WorkflowContext::default();
        let machine = saved.init_with_context(&mut context);
        debug_assert!(context.produced.is_empty(), "restoring produced events");
        Ok(Self { machine })
    }
}

mod graph;
mod machine;
pub use graph::{reachable, successors};
use machine::{MachineState, Refusal};
pub use machine::{OnboardingMachine, WorkflowContext};

#[cfg(test)]
mod tests;
