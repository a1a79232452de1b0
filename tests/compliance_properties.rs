//! Properties of the compliance status over random customers, documents and workflows. The
//! workflows are reached by driving the real machine with random events, so every state a
//! driver can produce is covered, including ones no hand-written test thought of.

use kycdash::domain::{
    Address, CheckType, Customer, CustomerProfile, DocumentType, DocumentsOnFile, Kyc, OnboardingRef,
    Readiness, SdkLink, Strategy as KycStrategy, Workflow, WorkflowEvent, evaluate,
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

        // nextAction is the most urgent action among failed required checks
        let most_urgent = status.checks.iter()
            .filter(|c| c.required && !c.passed)
            .filter_map(|c| c.suggested_action)
            .min();
        prop_assert_eq!(status.next_action, most_urgent);

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
}
