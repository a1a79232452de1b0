//! Properties of the compliance status over random customers, documents and workflows. The
//! workflows are reached by driving the real machine with random events, so every state a
//! driver can produce is covered, including ones no hand-written test thought of.

use kycdash::domain::{
    Address, CheckType, Customer, CustomerProfile, DocumentType, DocumentsOnFile, Kyc, NextAction,
    OnboardingRef, Readiness, SdkLink, Stage, Strategy as KycStrategy, Workflow, WorkflowEvent, evaluate,
};
use proptest::prelude::*;
use time::macros::datetime;
use uuid::Uuid;

fn text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some(String::new())), Just(Some("x".to_string()))]
}

fn country() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("US".to_string())),
        Just(Some("DE".to_string()))
    ]
}

fn address() -> impl Strategy<Value = Option<Address>> {
    proptest::option::of((text(), text(), text(), text(), text(), country()).prop_map(
        |(street1, street2, city_county, state_region, zip, country_code)| Address {
            street1,
            street2,
            city_county,
            state_region,
            zip,
            country_code,
        },
    ))
}

fn kyc() -> impl Strategy<Value = Option<Kyc>> {
    proptest::option::of(
        (text(), text(), text(), text(), address(), country(), text()).prop_map(
            |(first_name, last_name, birth_date, document_number, main_address, nationality, occupation)| {
                Kyc {
                    first_name,
                    last_name,
                    birth_date,
                    document_number,
                    main_address,
                    nationality,
                    occupation,
                }
            },
        ),
    )
}

fn customer() -> impl Strategy<Value = Customer> {
    (kyc(), any::<bool>()).prop_map(|(kyc, ip)| {
        let profile = CustomerProfile {
            ip_address: ip.then(|| "203.0.113.7".to_string()),
            kyc,
            ..CustomerProfile::default()
        };
        Customer::new(Uuid::from_u128(1), profile, datetime!(2026-11-27 10:00 UTC))
    })
}

fn documents() -> impl Strategy<Value = DocumentsOnFile> {
    proptest::sample::subsequence(DocumentType::ALL.to_vec(), 0..=DocumentType::ALL.len())
        .prop_map(|types| types.into_iter().collect())
}

fn strategy() -> impl Strategy<Value = KycStrategy> {
    prop_oneof![Just(KycStrategy::CfKyc), Just(KycStrategy::ExternalKyc)]
}

fn event() -> impl Strategy<Value = WorkflowEvent> {
    let link = || SdkLink {
        link: "http://127.0.0.1:8080/sdk/t".into(),
        expires_at: datetime!(2026-11-27 10:30 UTC),
    };
    prop_oneof![
        Just(WorkflowEvent::ProfileChanged),
        Just(WorkflowEvent::DocumentReceived),
        Just(WorkflowEvent::RequirementsMet),
        (strategy(), any::<u8>()).prop_map(move |(strategy, n)| WorkflowEvent::KycStarted {
            onboarding: OnboardingRef {
                id: Uuid::from_u128(n.into()),
                strategy
            },
            sdk: strategy.uses_sdk().then(link),
        }),
        Just(WorkflowEvent::SdkCompleted),
        Just(WorkflowEvent::SentToReview),
        Just(WorkflowEvent::ReviewApproved),
        Just(WorkflowEvent::ReviewDenied),
        Just(WorkflowEvent::DecisionApproved),
        Just(WorkflowEvent::DecisionDenied),
        Just(WorkflowEvent::SdkExpired),
        Just(WorkflowEvent::VerificationError),
        any::<u8>().prop_map(move |n| WorkflowEvent::Restarted {
            onboarding: OnboardingRef {
                id: Uuid::from_u128(1000 + u128::from(n)),
                strategy: KycStrategy::CfKyc
            },
            sdk: Some(link()),
        }),
    ]
}

fn readiness() -> impl Strategy<Value = Readiness> {
    (any::<bool>(), any::<bool>()).prop_map(|(kyc_data_present, requirements_met)| Readiness {
        kyc_data_present,
        requirements_met: kyc_data_present && requirements_met,
    })
}

/// A workflow in whatever state a random history leaves it.
fn workflow() -> impl Strategy<Value = Workflow> {
    proptest::collection::vec((event(), readiness()), 0..12).prop_map(|history| {
        let mut workflow = Workflow::new(Uuid::from_u128(1), Readiness::NOTHING);
        for (event, readiness) in history {
            let _ = workflow.handle(&event, readiness);
        }
        workflow
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compliance_status_is_consistent(
        customer in customer(),
        documents in documents(),
        workflow in workflow(),
        tenant_strategy in strategy(),
    ) {
        let view = workflow.view();
        let status = evaluate(&customer, &documents, &view, tenant_strategy, time::OffsetDateTime::UNIX_EPOCH);

        // isCompliant ⇔ requiredFailed empty ⇔ nextAction null
        prop_assert_eq!(status.is_compliant, status.summary.required_failed.is_empty());
        prop_assert_eq!(status.is_compliant, status.next_action.is_none());

        // passed + failed = number of checks; 10 checks, 11 without an IP address
        prop_assert_eq!((status.summary.passed + status.summary.failed) as usize, status.checks.len());
        prop_assert_eq!(status.checks.len(), if customer.ip_address.is_some() { 10 } else { 11 });
        prop_assert_eq!(status.summary.passed as usize, status.checks.iter().filter(|c| c.passed).count());

        // checks in table order; requiredFailed in check order
        let order: Vec<CheckType> = status.checks.iter().map(|c| c.check_type).collect();
        prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
        let required_failed: Vec<CheckType> = status.checks.iter()
            .filter(|c| c.required && !c.passed).map(|c| c.check_type).collect();
        prop_assert_eq!(&status.summary.required_failed, &required_failed);

        // suggestedAction exactly on failed checks; an unrequired check never fails
        for check in &status.checks {
            prop_assert_eq!(check.suggested_action.is_some(), !check.passed, "{:?}", check);
            prop_assert!(check.required || check.passed, "{:?}", check);
        }

        // nextAction is the action of a failed required check (which one: the stage
        // properties below)
        if let Some(next) = status.next_action {
            prop_assert!(status.checks.iter().any(|c| c.required && !c.passed && c.suggested_action == Some(next)));
        }

        // the status mirrors the workflow
        prop_assert_eq!(status.onboarding_status, view.stage.onboarding_status());
        prop_assert_eq!(status.onboarding_id, view.onboarding.map(|o| o.id));
        prop_assert_eq!(status.strategy, Some(view.strategy().unwrap_or(tenant_strategy)));
        prop_assert_eq!(status.sdk.is_some(), view.sdk.is_some());
    }

    #[test]
    fn a_workflow_survives_serialization_in_any_state(workflow in workflow()) {
        let saved = serde_json::to_string(&workflow).unwrap();
        let restored: Workflow = serde_json::from_str(&saved).unwrap();
        prop_assert_eq!(restored.view(), workflow.view());
        prop_assert_eq!(restored, workflow);
    }

    /// Stages tied to checks, over consistent histories: the customer and their documents
    /// change along the way and the workflow hears of every change with the readiness the
    /// domain computes from them (as the sandbox drives it).
    #[test]
    fn each_stage_means_what_the_guide_says_of_its_checks(
        tenant in strategy(),
        history in proptest::collection::vec(step(), 0..16),
    ) {
        let (customer, documents, workflow) = play(tenant, &history);
        let view = workflow.view();
        let strategy = view.strategy().unwrap_or(tenant);
        let met = kycdash::domain::readiness(&customer, &documents, strategy).requirements_met;
        let status = evaluate(&customer, &documents, &view, tenant, time::OffsetDateTime::UNIX_EPOCH);
        let failed = &status.summary.required_failed;
        let has_kyc_data = status.check(CheckType::KycDataPresent).is_some_and(|c| c.passed);
        // Fixing the profile comes before anything else the customer can do.
        let profile_fails = status
            .checks
            .iter()
            .any(|c| c.required && !c.passed && c.suggested_action == Some(NextAction::UpdateProfile));
        let or_profile = |action| Some(if profile_fails { NextAction::UpdateProfile } else { action });
        match view.stage {
            Stage::AwaitingDecision => {
                prop_assert_eq!(failed, &vec![CheckType::KycStatus]);
                prop_assert_eq!(status.next_action, Some(NextAction::Wait));
            }
            Stage::CollectingRequirements => {
                prop_assert!(!met, "requirements met yet still collecting");
                prop_assert!(failed.len() > 1 && failed.contains(&CheckType::KycStatus), "{:?}", failed);
            }
            // Compliant, unless a profile field or a document went away after the approval.
            Stage::Approved => prop_assert_eq!(status.is_compliant, met),
            Stage::Denied | Stage::Errored => {
                prop_assert_eq!(status.next_action, Some(NextAction::ContactSupport))
            }
            Stage::Expired => prop_assert_eq!(status.next_action, Some(NextAction::RerunKyc)),
            Stage::AwaitingSdk => prop_assert_eq!(status.next_action, or_profile(NextAction::CompleteSdkFlow)),
            Stage::InReview => prop_assert!(failed.contains(&CheckType::SdkVerificationCompleted)),
            Stage::ReadyToStart => {
                prop_assert!(has_kyc_data);
                prop_assert_eq!(status.next_action, or_profile(NextAction::StartKyc));
            }
            Stage::NeedsProfile => {
                prop_assert!(!has_kyc_data);
                prop_assert_eq!(status.next_action, Some(NextAction::UpdateProfile));
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Customer(Box<Customer>),
    Documents(DocumentsOnFile),
    Event(WorkflowEvent),
}

fn step() -> impl Strategy<Value = Step> {
    // Complete profiles and every document are likely, so every stage is reached often (a
    // random profile is almost never complete).
    let complete = any::<bool>().prop_map(|ip| {
        let set = || Some("x".to_string());
        let kyc = Kyc {
            first_name: set(),
            last_name: set(),
            birth_date: set(),
            document_number: set(),
            main_address: Some(Address {
                street1: set(),
                street2: None,
                city_county: set(),
                state_region: None,
                zip: set(),
                country_code: Some("US".into()),
            }),
            nationality: Some("US".into()),
            occupation: set(),
        };
        let profile = CustomerProfile {
            ip_address: ip.then(|| "203.0.113.7".to_string()),
            kyc: Some(kyc),
            ..CustomerProfile::default()
        };
        Step::Customer(Box::new(Customer::new(
            Uuid::from_u128(1),
            profile,
            datetime!(2026-11-27 10:00 UTC),
        )))
    });
    prop_oneof![
        1 => customer().prop_map(|c| Step::Customer(Box::new(c))),
        2 => complete,
        1 => documents().prop_map(Step::Documents),
        2 => Just(Step::Documents(DocumentType::ALL.into_iter().collect())),
        6 => event().prop_map(Step::Event),
    ]
}

/// Plays a history as the sandbox does: facts first, then the workflow told of them.
fn play(tenant: KycStrategy, history: &[Step]) -> (Customer, DocumentsOnFile, Workflow) {
    let mut customer = Customer::new(
        Uuid::from_u128(1),
        CustomerProfile::default(),
        datetime!(2026-11-27 10:00 UTC),
    );
    let mut documents = DocumentsOnFile::default();
    let ready = |c: &Customer, d: &DocumentsOnFile, w: &Workflow| {
        kycdash::domain::readiness(c, d, w.view().strategy().unwrap_or(tenant))
    };
    let mut workflow = Workflow::new(
        customer.id,
        ready(
            &customer,
            &documents,
            &Workflow::new(customer.id, Readiness::NOTHING),
        ),
    );
    for step in history {
        let event = match step {
            Step::Customer(next) => {
                customer = (**next).clone();
                WorkflowEvent::ProfileChanged
            }
            Step::Documents(next) => {
                documents = next.clone();
                WorkflowEvent::DocumentReceived
            }
            // Facts are told by the steps above; a fact event out of the blue is not a change.
            Step::Event(
                WorkflowEvent::ProfileChanged
                | WorkflowEvent::DocumentReceived
                | WorkflowEvent::RequirementsMet,
            ) => continue,
            Step::Event(event) => event.clone(),
        };
        // An onboarding being started is judged by its own strategy's requirements.
        let readiness = match &event {
            WorkflowEvent::KycStarted { onboarding, .. } | WorkflowEvent::Restarted { onboarding, .. } => {
                kycdash::domain::readiness(&customer, &documents, onboarding.strategy)
            }
            _ => ready(&customer, &documents, &workflow),
        };
        let _ = workflow.handle(&event, readiness);
    }
    (customer, documents, workflow)
}

/// The histories above reach every stage (otherwise a property of a stage would hold by
/// never being tried).
#[test]
fn consistent_histories_reach_every_stage() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let histories = (strategy(), proptest::collection::vec(step(), 0..16));
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..3000 {
        let (tenant, history) = histories.new_tree(&mut runner).unwrap().current();
        reached.insert(play(tenant, &history).2.view().stage.as_str());
    }
    let all: std::collections::BTreeSet<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(reached, all);
}
