//! The workflow's transition graph, derived from the machine itself: every event is tried on a
//! workflow restored in each stage (every plausible variant of it), so an observer that reasons
//! about reachability (the client's tracker) can never disagree with the machine it mirrors.

use std::sync::LazyLock;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{OnboardingRef, Readiness, SdkLink, Stage, Workflow, WorkflowEvent, WorkflowView};
use crate::domain::vocabulary::Strategy;

/// The stages a workflow in `from` can move to by one accepted event.
pub fn successors(from: Stage) -> &'static [Stage] {
    static GRAPH: LazyLock<Vec<Vec<Stage>>> = LazyLock::new(|| Stage::ALL.into_iter().map(derive).collect());
    let index = Stage::ALL
        .iter()
        .position(|s| *s == from)
        .expect("Stage::ALL lists every stage");
    &GRAPH[index]
}

/// The stages reachable from `from` by any number of accepted events (`from` itself only if a
/// path leads back to it).
pub fn reachable(from: Stage) -> Vec<Stage> {
    let mut seen: Vec<Stage> = Vec::new();
    let mut queue = vec![from];
    while let Some(stage) = queue.pop() {
        for &next in successors(stage) {
            if !seen.contains(&next) {
                seen.push(next);
                queue.push(next);
            }
        }
    }
    seen
}

fn derive(from: Stage) -> Vec<Stage> {
    let mut next = Vec::new();
    for view in views(from) {
        for event in events() {
            for readiness in readinesses() {
                let mut workflow = Workflow::restore(Uuid::nil(), &view);
                if workflow.handle(&event, readiness).is_ok()
                    && workflow.stage() != from
                    && !next.contains(&workflow.stage())
                {
                    next.push(workflow.stage());
                }
            }
        }
    }
    next.sort_by_key(|s| Stage::ALL.iter().position(|a| a == s));
    next
}

/// Every plausible workflow in `stage`: both strategies where the stage exists on their path,
/// with and without a verified identity.
fn views(stage: Stage) -> Vec<WorkflowView> {
    let started = stage.onboarding_status().is_some();
    let mut views = Vec::new();
    for strategy in [Strategy::CfKyc, Strategy::ExternalKyc] {
        let sdk_stage = matches!(stage, Stage::AwaitingSdk | Stage::InReview | Stage::Expired);
        if sdk_stage && !strategy.uses_sdk() {
            continue;
        }
        for identity_verified in [false, true] {
            views.push(WorkflowView {
                stage,
                onboarding: started.then_some(OnboardingRef {
                    id: Uuid::nil(),
                    strategy,
                }),
                sdk: (stage == Stage::AwaitingSdk).then(link),
                identity_verified,
            });
        }
    }
    views
}

fn link() -> SdkLink {
    SdkLink {
        link: String::new(),
        expires_at: OffsetDateTime::UNIX_EPOCH,
    }
}

/// Every event, with each strategy and with and without links where it carries them.
pub(super) fn events() -> Vec<WorkflowEvent> {
    let mut events = vec![
        WorkflowEvent::ProfileChanged,
        WorkflowEvent::DocumentReceived,
        WorkflowEvent::RequirementsMet,
        WorkflowEvent::SdkCompleted,
        WorkflowEvent::SentToReview,
        WorkflowEvent::ReviewApproved,
        WorkflowEvent::ReviewDenied,
        WorkflowEvent::DecisionApproved,
        WorkflowEvent::DecisionDenied,
        WorkflowEvent::SdkExpired,
        WorkflowEvent::VerificationError,
    ];
    for strategy in [Strategy::CfKyc, Strategy::ExternalKyc] {
        for sdk in [None, Some(link())] {
            let onboarding = OnboardingRef {
                id: Uuid::from_u128(1),
                strategy,
            };
            events.push(WorkflowEvent::KycStarted {
                onboarding,
                sdk: sdk.clone(),
            });
            events.push(WorkflowEvent::Restarted { onboarding, sdk });
        }
    }
    events
}

fn readinesses() -> [Readiness; 4] {
    [false, true]
        .map(|kyc| {
            [false, true].map(|met| Readiness {
                kyc_data_present: kyc,
                requirements_met: met,
            })
        })
        .concat()
        .try_into()
        .unwrap_or([Readiness::NOTHING; 4])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Strategy as _, any, prop_assert, proptest};

    use super::*;

    fn event() -> impl proptest::strategy::Strategy<Value = WorkflowEvent> {
        let events = events();
        (0..events.len()).prop_map(move |i| events[i].clone())
    }

    fn readiness() -> impl proptest::strategy::Strategy<Value = Readiness> {
        (any::<bool>(), any::<bool>()).prop_map(|(kyc_data_present, requirements_met)| Readiness {
            kyc_data_present,
            requirements_met,
        })
    }

    proptest! {
        /// Every move a real workflow makes, from creation on, is an edge of the derived graph.
        #[test]
        fn every_transition_of_the_machine_is_in_the_graph(
            first in readiness(),
            steps in proptest::collection::vec((event(), readiness()), 1..40),
        ) {
            let mut workflow = Workflow::new(Uuid::nil(), first);
            for (event, readiness) in steps {
                let before = workflow.stage();
                if workflow.handle(&event, readiness).is_ok() && workflow.stage() != before {
                    prop_assert!(
                        successors(before).contains(&workflow.stage()),
                        "{before:?} → {:?} on {}", workflow.stage(), event.name()
                    );
                }
            }
        }
    }

    #[test]
    fn the_graph_is_the_guides() {
        use Stage::*;
        // SPEC §4, read off the guide: what each stage can become. KYC starts from a profile
        // found complete at the start, whatever stage an earlier change left.
        let guide: [(Stage, &[Stage]); 10] = [
            (
                NeedsProfile,
                &[
                    ReadyToStart,
                    AwaitingSdk,
                    CollectingRequirements,
                    AwaitingDecision,
                ],
            ),
            (
                ReadyToStart,
                &[
                    NeedsProfile,
                    AwaitingSdk,
                    CollectingRequirements,
                    AwaitingDecision,
                ],
            ),
            (
                AwaitingSdk,
                &[
                    InReview,
                    CollectingRequirements,
                    AwaitingDecision,
                    Expired,
                    Errored,
                ],
            ),
            (InReview, &[CollectingRequirements, Errored, Approved, Denied]),
            (CollectingRequirements, &[AwaitingDecision, Errored]),
            (
                AwaitingDecision,
                &[CollectingRequirements, Errored, Approved, Denied],
            ),
            (Expired, &[AwaitingSdk]),
            (Errored, &[]),
            (Approved, &[]),
            (Denied, &[]),
        ];
        for (stage, expected) in guide {
            assert_eq!(successors(stage), expected, "from {stage:?}");
        }
    }

    #[test]
    fn final_stages_reach_nothing_and_an_expired_onboarding_can_still_be_approved() {
        for stage in [Stage::Approved, Stage::Denied, Stage::Errored] {
            assert!(reachable(stage).is_empty());
        }
        assert!(reachable(Stage::Expired).contains(&Stage::Approved));
        assert!(!reachable(Stage::AwaitingDecision).contains(&Stage::AwaitingSdk));
    }
}
