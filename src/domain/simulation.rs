//! Sandbox simulation (SPEC §6), like a payment sandbox's test cards: which workflow event each
//! action sends to a workflow in a given stage. The sandbox sends it; the dashboard asks the
//! same machine whether it would be accepted before offering the action.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::vocabulary::{OnboardingRef, SdkLink, Strategy};
use super::workflow::{Readiness, Stage, Workflow, WorkflowEvent, WorkflowView};

/// Sandbox simulation actions.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SimulateAction {
    SdkComplete,
    SdkExpire,
    Review,
    Approve,
    Deny,
    Error,
}

impl SimulateAction {
    /// The action's name on the wire (`SDK_COMPLETE` …).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The event `action` sends to a workflow in `stage`; `None` where the action has no meaning
/// (completing an SDK nobody is in, deciding what awaits no decision). `SdkComplete` is the
/// plain completion: the sandbox turns it into a review or an error for its magic last names.
pub fn simulated_event(action: SimulateAction, stage: Stage) -> Option<WorkflowEvent> {
    Some(match (action, stage) {
        (SimulateAction::SdkComplete, Stage::AwaitingSdk) => WorkflowEvent::SdkCompleted,
        (SimulateAction::SdkComplete, _) => return None,
        (SimulateAction::SdkExpire, _) => WorkflowEvent::SdkExpired,
        (SimulateAction::Review, _) => WorkflowEvent::SentToReview,
        (SimulateAction::Approve, Stage::InReview) => WorkflowEvent::ReviewApproved,
        (SimulateAction::Approve, Stage::AwaitingDecision) => WorkflowEvent::DecisionApproved,
        (SimulateAction::Deny, Stage::InReview) => WorkflowEvent::ReviewDenied,
        (SimulateAction::Deny, Stage::AwaitingDecision) => WorkflowEvent::DecisionDenied,
        (SimulateAction::Approve | SimulateAction::Deny, _) => return None,
        (SimulateAction::Error, _) => WorkflowEvent::VerificationError,
    })
}

/// Whether the sandbox accepts `action` for a customer in `stage`: its event is tried on a
/// workflow restored in that stage, by the machine the sandbox runs.
pub fn simulation_applies(stage: Stage, action: SimulateAction) -> bool {
    let Some(event) = simulated_event(action, stage) else {
        return false;
    };
    let mut workflow = Workflow::restore(Uuid::nil(), &typical_view(stage));
    workflow.handle(&event, Readiness::NOTHING).is_ok() && workflow.stage() != stage
}

/// A plausible workflow in `stage`: started stages have an onboarding, an SDK stage its link,
/// the stages after a verified identity say so.
fn typical_view(stage: Stage) -> WorkflowView {
    WorkflowView {
        stage,
        onboarding: stage.onboarding_status().is_some().then_some(OnboardingRef {
            id: Uuid::nil(),
            strategy: Strategy::CfKyc,
        }),
        sdk: (stage == Stage::AwaitingSdk).then(|| SdkLink {
            link: String::new(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
        }),
        identity_verified: matches!(stage, Stage::CollectingRequirements | Stage::AwaitingDecision),
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn names_are_the_wire_names() {
        for action in SimulateAction::iter() {
            let wire = serde_json::to_value(action).unwrap();
            assert_eq!(wire.as_str(), Some(action.name()));
        }
        assert_eq!(SimulateAction::SdkComplete.name(), "SDK_COMPLETE");
    }

    #[test]
    fn decisions_apply_only_to_what_awaits_one() {
        for action in [SimulateAction::Approve, SimulateAction::Deny] {
            assert!(simulation_applies(Stage::InReview, action));
            assert!(simulation_applies(Stage::AwaitingDecision, action));
            for stage in [
                Stage::AwaitingSdk,
                Stage::CollectingRequirements,
                Stage::Approved,
                Stage::NeedsProfile,
            ] {
                assert!(!simulation_applies(stage, action), "{action:?} in {stage:?}");
            }
        }
    }

    #[test]
    fn completing_the_sdk_needs_an_sdk_in_progress_and_final_stages_take_nothing() {
        assert!(simulation_applies(
            Stage::AwaitingSdk,
            SimulateAction::SdkComplete
        ));
        assert!(!simulation_applies(Stage::Expired, SimulateAction::SdkComplete));
        for stage in [Stage::Approved, Stage::Denied, Stage::Errored] {
            for action in SimulateAction::iter() {
                assert!(!simulation_applies(stage, action), "{action:?} in {stage:?}");
            }
        }
    }
}
