//! The tracker against a "server": the real machine driven by random but consistent histories
//! (facts change, their events follow), whose produced webhooks reach the tracker permuted,
//! duplicated or lost, followed by one status snapshot computed by the real evaluator.

use proptest::prelude::{Just, ProptestConfig, Strategy as Gen, any, prop_assert_eq, prop_oneof, proptest};
use time::macros::datetime;

use super::*;
use crate::domain::{
    Address, Customer, CustomerProfile, DocumentType, DocumentsOnFile, EventType, Kyc, OnboardingRef,
    SdkLink, evaluate,
};

const NOW: OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

fn customer_id() -> Uuid {
    Uuid::from_u128(7)
}

#[derive(Debug, Clone)]
enum Step {
    Profile(bool),
    Documents(bool),
    Event(WorkflowEvent),
}

/// The facts of the server's customer.
#[derive(Debug, Clone, Copy, Default)]
struct Facts {
    profile: bool,
    documents: bool,
}

impl Facts {
    fn readiness(self) -> Readiness {
        Readiness {
            kyc_data_present: self.profile,
            requirements_met: self.profile && self.documents,
        }
    }

    fn customer(self) -> Customer {
        let kyc = self.profile.then(|| Kyc {
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            birth_date: Some("1990-04-12".into()),
            document_number: Some("X1".into()),
            main_address: Some(Address {
                street1: Some("1 Main St".into()),
                city_county: Some("New York".into()),
                zip: Some("10001".into()),
                country_code: Some("US".into()),
                ..Address::default()
            }),
            nationality: Some("US".into()),
            occupation: Some("11".into()),
        });
        let profile = CustomerProfile {
            ip_address: Some("203.0.113.7".into()),
            kyc,
            ..CustomerProfile::default()
        };
        Customer::new(customer_id(), profile, NOW)
    }

    fn documents(self) -> DocumentsOnFile {
        if self.documents {
            DocumentType::ALL.into_iter().collect()
        } else {
            DocumentsOnFile::default()
        }
    }
}

fn link() -> SdkLink {
    SdkLink {
        link: "http://127.0.0.1:8080/sdk/t".into(),
        expires_at: datetime!(2026-11-30 10:30 UTC),
    }
}

fn step() -> impl Gen<Value = Step> {
    let strategy = prop_oneof![Just(Strategy::CfKyc), Just(Strategy::ExternalKyc)];
    prop_oneof![
        any::<bool>().prop_map(Step::Profile),
        any::<bool>().prop_map(Step::Documents),
        (strategy, 1u8..4).prop_map(|(strategy, n)| Step::Event(WorkflowEvent::KycStarted {
            onboarding: OnboardingRef {
                id: Uuid::from_u128(n.into()),
                strategy
            },
            sdk: strategy.uses_sdk().then(link),
        })),
        Just(Step::Event(WorkflowEvent::SdkCompleted)),
        Just(Step::Event(WorkflowEvent::SentToReview)),
        Just(Step::Event(WorkflowEvent::ReviewApproved)),
        Just(Step::Event(WorkflowEvent::ReviewDenied)),
        Just(Step::Event(WorkflowEvent::DecisionApproved)),
        Just(Step::Event(WorkflowEvent::DecisionDenied)),
        Just(Step::Event(WorkflowEvent::SdkExpired)),
        Just(Step::Event(WorkflowEvent::VerificationError)),
        (10u8..20).prop_map(|n| Step::Event(WorkflowEvent::Restarted {
            onboarding: OnboardingRef {
                id: Uuid::from_u128(n.into()),
                strategy: Strategy::CfKyc
            },
            sdk: Some(link()),
        })),
    ]
}

/// Runs a history on the server; returns its workflow, facts and the webhooks it sent.
fn serve(history: &[Step]) -> (Workflow, Facts, Vec<WebhookEvent>) {
    let mut facts = Facts::default();
    let mut workflow = Workflow::new(customer_id(), facts.readiness());
    let mut webhooks = Vec::new();
    for step in history {
        let event = match step {
            Step::Profile(on) => {
                facts.profile = *on;
                WorkflowEvent::ProfileChanged
            }
            Step::Documents(on) => {
                facts.documents = *on;
                WorkflowEvent::DocumentReceived
            }
            Step::Event(event) => event.clone(),
        };
        if let Ok(produced) = workflow.handle(&event, facts.readiness()) {
            for p in produced {
                let id = format!("evt_{}", webhooks.len());
                webhooks.push(WebhookEvent::new(id, NOW, p.event_type, p.data));
            }
        }
    }
    (workflow, facts, webhooks)
}

fn status_of(workflow: &Workflow, facts: Facts) -> ComplianceStatus {
    evaluate(
        &facts.customer(),
        &facts.documents(),
        &workflow.view(),
        Strategy::CfKyc,
        NOW,
    )
}

/// What reaches the tracker: each webhook dropped, sent once, or twice, in a shuffled order.
fn delivery(count: usize) -> impl Gen<Value = Vec<usize>> {
    proptest::collection::vec(0u8..3, count)
        .prop_map(|copies| {
            copies
                .iter()
                .enumerate()
                .flat_map(|(i, n)| std::iter::repeat_n(i, *n as usize))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn history_and_delivery() -> impl Gen<Value = (Vec<Step>, Vec<usize>)> {
    proptest::collection::vec(step(), 0..16).prop_flat_map(|history| {
        let count = serve(&history).2.len();
        (Just(history), delivery(count))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// `from_status` is the inverse of `evaluate` on every state a consistent history reaches.
    #[test]
    fn a_status_proves_the_stage_it_was_evaluated_from(history in proptest::collection::vec(step(), 0..16)) {
        let (workflow, facts, _) = serve(&history);
        let status = status_of(&workflow, facts);
        prop_assert_eq!(Stage::from_status(&status), workflow.stage(), "{:?}", status);
    }

    /// Whatever happened to the webhooks, one snapshot puts the tracker where the server is.
    #[test]
    fn any_delivery_then_a_snapshot_ends_in_the_snapshots_stage((history, order) in history_and_delivery()) {
        let (server, facts, webhooks) = serve(&history);
        let mut tracker = Tracker::default();
        let first = Facts::default();
        let start = Workflow::new(customer_id(), first.readiness());
        tracker.on_snapshot(customer_id(), &status_of(&start, first), NOW, false);
        for i in order {
            tracker.on_webhook(&webhooks[i]);
        }
        let reconciled = tracker.on_snapshot(customer_id(), &status_of(&server, facts), NOW, false);
        prop_assert_eq!(reconciled.to, server.stage());
        prop_assert_eq!(tracker.stage(customer_id()), Some(server.stage()));
        prop_assert_eq!(tracker.claimed(customer_id()), Some(server.stage()));
    }

    /// Every webhook once and in order: the snapshot never reports drift.
    #[test]
    fn webhooks_delivered_in_order_never_drift(history in proptest::collection::vec(step(), 0..16)) {
        let (server, facts, webhooks) = serve(&history);
        let mut tracker = Tracker::default();
        let first = Facts::default();
        let start = Workflow::new(customer_id(), first.readiness());
        tracker.on_snapshot(customer_id(), &status_of(&start, first), NOW, false);
        for webhook in &webhooks {
            tracker.on_webhook(webhook);
        }
        let reconciled = tracker.on_snapshot(customer_id(), &status_of(&server, facts), NOW, false);
        prop_assert_eq!(reconciled.drift, None);
    }
}

fn event(event_type: EventType, status: Option<crate::domain::OnboardingStatus>) -> WebhookEvent {
    let data = crate::domain::EventData {
        customer_id: customer_id(),
        onboarding_id: Some(Uuid::from_u128(1)),
        status,
        previous_onboarding_id: None,
    };
    WebhookEvent::new(format!("evt_{event_type}"), NOW, event_type, data)
}

/// The status of a customer whose KYC started on the standard path.
fn awaiting_sdk() -> ComplianceStatus {
    let (server, facts, _) = serve(&[
        Step::Profile(true),
        Step::Event(WorkflowEvent::KycStarted {
            onboarding: OnboardingRef {
                id: Uuid::from_u128(1),
                strategy: Strategy::CfKyc,
            },
            sdk: Some(link()),
        }),
    ]);
    status_of(&server, facts)
}

#[test]
fn a_snapshot_contradicting_the_webhooks_is_drift_naming_both_stages() {
    use crate::domain::OnboardingStatus::*;
    // The server's customer awaits the end user in the SDK…
    let status = awaiting_sdk();
    let mut tracker = Tracker::default();
    tracker.on_snapshot(customer_id(), &status, NOW, false);
    assert_eq!(tracker.stage(customer_id()), Some(Stage::AwaitingSdk));
    // …but a webhook claims it went to review and another that it was denied.
    assert_eq!(
        tracker.on_webhook(&event(
            EventType::CustomerKycSdkFlowCompleted,
            Some(PendingReview)
        )),
        Some(Stage::InReview)
    );
    assert_eq!(
        tracker.on_webhook(&event(EventType::CustomerKycFinished, Some(DeniedCompliance))),
        Some(Stage::Denied)
    );
    let reconciled = tracker.on_snapshot(customer_id(), &status, NOW, false);
    assert_eq!(
        reconciled.drift,
        Some(Drift {
            claimed: Stage::Denied,
            seen: Stage::AwaitingSdk
        })
    );
    assert!(!reconciled.changed());
    // The snapshot won, and it is reported once.
    assert_eq!(tracker.claimed(customer_id()), Some(Stage::AwaitingSdk));
    let again = tracker.on_snapshot(customer_id(), &status, NOW, false);
    assert_eq!(again.drift, None);
}

#[test]
fn a_snapshot_read_while_a_webhook_arrived_is_applied_and_the_next_one_is_compared() {
    use crate::domain::OnboardingStatus::*;
    let status = awaiting_sdk();
    let mut tracker = Tracker::default();
    tracker.on_snapshot(customer_id(), &status, NOW, false);
    tracker.on_webhook(&event(
        EventType::CustomerKycSdkFlowCompleted,
        Some(PendingReview),
    ));
    tracker.on_webhook(&event(EventType::CustomerKycFinished, Some(DeniedCompliance)));
    assert_eq!(tracker.claimed(customer_id()), Some(Stage::Denied));
    // The same (older) status, read while those webhooks came: the stage it proves is
    // reported, not called drift, and the webhooks' claim is kept…
    let reconciled = tracker.on_snapshot(customer_id(), &status, NOW, true);
    assert_eq!(reconciled.drift, None);
    assert_eq!(reconciled.to, Stage::AwaitingSdk);
    assert_eq!(tracker.stage(customer_id()), Some(Stage::AwaitingSdk));
    assert_eq!(tracker.claimed(customer_id()), Some(Stage::Denied));
    // …so the pull that follows, still awaiting the SDK, contradicts it: drift.
    let next = tracker.on_snapshot(customer_id(), &status, NOW, false);
    assert_eq!(
        next.drift,
        Some(Drift {
            claimed: Stage::Denied,
            seen: Stage::AwaitingSdk
        })
    );
}

#[test]
fn a_snapshot_ahead_of_the_webhooks_is_lag_not_drift() {
    assert!(!contradicts(Stage::AwaitingSdk, Stage::Approved));
    assert!(!contradicts(Stage::Expired, Stage::CollectingRequirements));
    assert!(contradicts(Stage::Approved, Stage::AwaitingDecision));
    assert!(contradicts(Stage::Errored, Stage::AwaitingSdk));
}
