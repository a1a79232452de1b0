//! One test per row of SPEC §3's check table: when the check is listed, when it is required,
//! when it passes, and which action it suggests when it fails.

use super::*;
use crate::domain::customer::{Address, CustomerProfile};
use crate::domain::workflow::OnboardingRef;
use time::macros::datetime;

/// Before the test links expire (09:30).
const NOW: time::OffsetDateTime = datetime!(2026-11-27 09:00 UTC);

fn full_kyc() -> Kyc {
    Kyc {
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        birth_date: Some("1990-04-12".into()),
        document_number: Some("X1234567".into()),
        main_address: Some(Address {
            street1: Some("123 Main St".into()),
            street2: None,
            city_county: Some("New York".into()),
            state_region: Some("NY".into()),
            zip: Some("10001".into()),
            country_code: Some("US".into()),
        }),
        nationality: Some("US".into()),
        occupation: Some("11".into()),
    }
}

fn customer_with(kyc: Option<Kyc>, ip: bool) -> Customer {
    let profile = CustomerProfile {
        ip_address: ip.then(|| "203.0.113.7".to_string()),
        kyc,
        ..CustomerProfile::default()
    };
    Customer::new(Uuid::from_u128(7), profile, datetime!(2026-11-27 09:00 UTC))
}

fn complete_customer() -> Customer {
    customer_with(Some(full_kyc()), true)
}

fn all_documents() -> DocumentsOnFile {
    DocumentType::ALL.into_iter().collect()
}

/// A view as the machine presents `stage` (identity as the stage implies it).
fn view(stage: Stage, strategy: Strategy) -> WorkflowView {
    let started = !matches!(stage, Stage::NeedsProfile | Stage::ReadyToStart);
    WorkflowView {
        stage,
        onboarding: started.then_some(OnboardingRef {
            id: Uuid::from_u128(1),
            strategy,
        }),
        sdk: (stage == Stage::AwaitingSdk).then(|| SdkLink {
            link: "http://127.0.0.1:8080/sdk/t".into(),
            expires_at: datetime!(2026-11-27 09:30 UTC),
        }),
        identity_verified: !strategy.uses_sdk()
            || matches!(
                stage,
                Stage::CollectingRequirements | Stage::AwaitingDecision | Stage::Approved
            ),
    }
}

fn status(customer: &Customer, docs: &DocumentsOnFile, stage: Stage, strategy: Strategy) -> ComplianceStatus {
    evaluate(customer, docs, &view(stage, strategy), strategy, NOW)
}

fn check(status: &ComplianceStatus, check_type: CheckType) -> Check {
    status
        .check(check_type)
        .cloned()
        .unwrap_or_else(|| panic!("{check_type} is not listed"))
}

fn failed(check_type: CheckType, action: NextAction) -> Check {
    Check {
        check_type,
        passed: false,
        required: true,
        suggested_action: Some(action),
    }
}

fn passed(check_type: CheckType, required: bool) -> Check {
    Check {
        check_type,
        passed: true,
        required,
        suggested_action: None,
    }
}

const BOTH: [Strategy; 2] = [Strategy::CfKyc, Strategy::ExternalKyc];

#[test]
fn kyc_data_present_needs_names_birth_date_and_document_number() {
    let docs = all_documents();
    let ok = status(&complete_customer(), &docs, Stage::ReadyToStart, Strategy::CfKyc);
    assert_eq!(
        check(&ok, CheckType::KycDataPresent),
        passed(CheckType::KycDataPresent, true)
    );
    let removals: [fn(&mut Kyc); 4] = [
        |k| k.first_name = None,
        |k| k.last_name = Some("  ".into()),
        |k| k.birth_date = None,
        |k| k.document_number = None,
    ];
    for remove in removals {
        let mut kyc = full_kyc();
        remove(&mut kyc);
        let s = status(
            &customer_with(Some(kyc), true),
            &docs,
            Stage::NeedsProfile,
            Strategy::CfKyc,
        );
        assert_eq!(
            check(&s, CheckType::KycDataPresent),
            failed(CheckType::KycDataPresent, NextAction::UpdateProfile)
        );
    }
    let none = status(
        &customer_with(None, true),
        &docs,
        Stage::NeedsProfile,
        Strategy::CfKyc,
    );
    assert!(!check(&none, CheckType::KycDataPresent).passed);
}

#[test]
fn kyc_started_passes_once_an_onboarding_exists() {
    for strategy in BOTH {
        for stage in Stage::ALL {
            let s = status(&complete_customer(), &all_documents(), stage, strategy);
            let expected = if matches!(stage, Stage::NeedsProfile | Stage::ReadyToStart) {
                failed(CheckType::KycStarted, NextAction::StartKyc)
            } else {
                passed(CheckType::KycStarted, true)
            };
            assert_eq!(check(&s, CheckType::KycStarted), expected, "{strategy} {stage}");
        }
    }
}

#[test]
fn sdk_verification_is_required_on_the_standard_path_with_an_action_per_stage() {
    use NextAction::*;
    let sdk = CheckType::SdkVerificationCompleted;
    let expected = [
        (Stage::NeedsProfile, Some(StartKyc)),
        (Stage::ReadyToStart, Some(StartKyc)),
        (Stage::AwaitingSdk, Some(CompleteSdkFlow)),
        (Stage::InReview, Some(Wait)),
        (Stage::CollectingRequirements, None),
        (Stage::AwaitingDecision, None),
        (Stage::Expired, Some(RerunKyc)),
        (Stage::Errored, Some(ContactSupport)),
        (Stage::Approved, None),
        (Stage::Denied, Some(ContactSupport)),
    ];
    for (stage, action) in expected {
        let s = status(&complete_customer(), &all_documents(), stage, Strategy::CfKyc);
        let want = match action {
            Some(action) => failed(sdk, action),
            None => passed(sdk, true),
        };
        assert_eq!(check(&s, sdk), want, "{stage}");
    }
    // A denial after identity was verified keeps the check passed.
    let mut denied = view(Stage::Denied, Strategy::CfKyc);
    denied.identity_verified = true;
    let s = evaluate(
        &complete_customer(),
        &all_documents(),
        &denied,
        Strategy::CfKyc,
        NOW,
    );
    assert_eq!(check(&s, sdk), passed(sdk, true));
}

#[test]
fn a_verification_error_after_identity_was_verified_keeps_it_verified() {
    use crate::domain::{Readiness, Workflow, WorkflowEvent};
    let sdk = CheckType::SdkVerificationCompleted;
    for (stage, verified) in [
        (Stage::AwaitingSdk, false),
        (Stage::InReview, false),
        (Stage::CollectingRequirements, true),
        (Stage::AwaitingDecision, true),
    ] {
        let mut workflow = Workflow::restore(Uuid::from_u128(9), &view(stage, Strategy::CfKyc));
        workflow
            .handle(&WorkflowEvent::VerificationError, Readiness::NOTHING)
            .unwrap();
        let after = workflow.view();
        assert_eq!(
            (after.stage, after.identity_verified),
            (Stage::Errored, verified),
            "from {stage}"
        );
        let s = evaluate(
            &complete_customer(),
            &all_documents(),
            &after,
            Strategy::CfKyc,
            NOW,
        );
        let want = if verified {
            passed(sdk, true)
        } else {
            failed(sdk, NextAction::ContactSupport)
        };
        assert_eq!(check(&s, sdk), want, "from {stage}");
        assert_eq!(
            check(&s, CheckType::KycStatus),
            failed(CheckType::KycStatus, NextAction::ContactSupport)
        );
        // An observer reading that status sees the same.
        assert_eq!(
            WorkflowView::from_status(&s).identity_verified,
            verified,
            "from {stage}"
        );
    }
}

#[test]
fn sdk_verification_is_passed_and_not_required_on_the_external_path() {
    for stage in Stage::ALL {
        let s = status(
            &complete_customer(),
            &DocumentsOnFile::default(),
            stage,
            Strategy::ExternalKyc,
        );
        assert_eq!(
            check(&s, CheckType::SdkVerificationCompleted),
            passed(CheckType::SdkVerificationCompleted, false),
            "{stage}"
        );
    }
}

#[test]
fn kyc_status_passes_only_when_approved_and_points_at_the_most_urgent_blocker() {
    use NextAction::*;
    let status_check = |customer: &Customer, docs: &DocumentsOnFile, stage| {
        check(
            &status(customer, docs, stage, Strategy::CfKyc),
            CheckType::KycStatus,
        )
    };
    let complete = complete_customer();
    let docs = all_documents();
    let none = DocumentsOnFile::default();
    let kyc_status = CheckType::KycStatus;
    assert_eq!(
        status_check(&complete, &docs, Stage::Approved),
        passed(kyc_status, true)
    );
    assert_eq!(
        status_check(&complete, &docs, Stage::Denied),
        failed(kyc_status, ContactSupport)
    );
    assert_eq!(
        status_check(&complete, &docs, Stage::Errored),
        failed(kyc_status, ContactSupport)
    );
    assert_eq!(
        status_check(&complete, &docs, Stage::AwaitingDecision),
        failed(kyc_status, Wait)
    );
    assert_eq!(
        status_check(&complete, &docs, Stage::InReview),
        failed(kyc_status, Wait)
    );
    assert_eq!(
        status_check(&complete, &none, Stage::CollectingRequirements),
        failed(kyc_status, UploadDocument)
    );
    assert_eq!(
        status_check(&complete, &none, Stage::AwaitingSdk),
        failed(kyc_status, CompleteSdkFlow)
    );
    assert_eq!(
        status_check(&complete, &docs, Stage::Expired),
        failed(kyc_status, RerunKyc)
    );
    assert_eq!(
        status_check(&complete, &docs, Stage::ReadyToStart),
        failed(kyc_status, StartKyc)
    );
    let bare = customer_with(None, true);
    assert_eq!(
        status_check(&bare, &none, Stage::NeedsProfile),
        failed(kyc_status, UpdateProfile)
    );
}

#[test]
fn registration_address_needs_street_city_zip_and_country() {
    let address_check = |address: Option<Address>| {
        let kyc = Kyc {
            main_address: address,
            ..full_kyc()
        };
        let s = status(
            &customer_with(Some(kyc), true),
            &all_documents(),
            Stage::Approved,
            Strategy::CfKyc,
        );
        check(&s, CheckType::RegistrationAddress)
    };
    let full = full_kyc().main_address.unwrap();
    assert_eq!(
        address_check(Some(full.clone())),
        passed(CheckType::RegistrationAddress, true)
    );
    let optional_removed = Address {
        street2: None,
        state_region: None,
        ..full.clone()
    };
    assert!(
        address_check(Some(optional_removed)).passed,
        "street2 and stateRegion are optional"
    );
    let removals: [fn(&mut Address); 4] = [
        |a| a.street1 = None,
        |a| a.city_county = None,
        |a| a.zip = None,
        |a| a.country_code = None,
    ];
    for remove in removals {
        let mut address = full.clone();
        remove(&mut address);
        assert_eq!(
            address_check(Some(address)),
            failed(CheckType::RegistrationAddress, NextAction::UpdateProfile)
        );
    }
    assert!(!address_check(None).passed);
}

#[test]
fn tax_country_needs_nationality() {
    let with = status(
        &complete_customer(),
        &all_documents(),
        Stage::Approved,
        Strategy::CfKyc,
    );
    assert_eq!(
        check(&with, CheckType::TaxCountry),
        passed(CheckType::TaxCountry, true)
    );
    let kyc = Kyc {
        nationality: None,
        ..full_kyc()
    };
    let without = status(
        &customer_with(Some(kyc), true),
        &all_documents(),
        Stage::Approved,
        Strategy::CfKyc,
    );
    assert_eq!(
        check(&without, CheckType::TaxCountry),
        failed(CheckType::TaxCountry, NextAction::UpdateProfile)
    );
}

#[test]
fn occupation_needs_an_occupation() {
    let kyc = Kyc {
        occupation: None,
        ..full_kyc()
    };
    for strategy in BOTH {
        let s = status(
            &customer_with(Some(kyc.clone()), true),
            &all_documents(),
            Stage::Approved,
            strategy,
        );
        assert_eq!(
            check(&s, CheckType::Occupation),
            failed(CheckType::Occupation, NextAction::UpdateProfile)
        );
        let s = status(&complete_customer(), &all_documents(), Stage::Approved, strategy);
        assert_eq!(
            check(&s, CheckType::Occupation),
            passed(CheckType::Occupation, true)
        );
    }
}

fn doc_check(docs: &[DocumentType], strategy: Strategy, ip: bool, check_type: CheckType) -> Option<Check> {
    let docs: DocumentsOnFile = docs.iter().copied().collect();
    let customer = customer_with(Some(full_kyc()), ip);
    status(&customer, &docs, Stage::CollectingRequirements, strategy)
        .check(check_type)
        .cloned()
}

#[test]
fn source_of_funds_needs_its_document() {
    let c = CheckType::DocSourceOfFunds;
    for strategy in BOTH {
        assert_eq!(
            doc_check(&[], strategy, true, c),
            Some(failed(c, NextAction::UploadDocument))
        );
        assert_eq!(
            doc_check(&[DocumentType::SourceOfFunds], strategy, true, c),
            Some(passed(c, true))
        );
        assert!(!doc_check(&[DocumentType::W9], strategy, true, c).unwrap().passed);
    }
}

#[test]
fn fatca_needs_a_w9_or_a_w8ben() {
    let c = CheckType::DocFatca;
    for strategy in BOTH {
        assert_eq!(
            doc_check(&[], strategy, true, c),
            Some(failed(c, NextAction::UploadDocument))
        );
        assert_eq!(
            doc_check(&[DocumentType::W9], strategy, true, c),
            Some(passed(c, true))
        );
        assert_eq!(
            doc_check(&[DocumentType::W8ben], strategy, true, c),
            Some(passed(c, true))
        );
        assert!(
            !doc_check(&[DocumentType::SourceOfFunds], strategy, true, c)
                .unwrap()
                .passed
        );
    }
}

#[test]
fn biometric_report_is_required_on_the_external_path_only() {
    let c = CheckType::DocBiometricReport;
    assert_eq!(doc_check(&[], Strategy::CfKyc, true, c), Some(passed(c, false)));
    assert_eq!(
        doc_check(&[], Strategy::ExternalKyc, true, c),
        Some(failed(c, NextAction::UploadDocument))
    );
    assert_eq!(
        doc_check(&[DocumentType::BiometricReport], Strategy::ExternalKyc, true, c),
        Some(passed(c, true))
    );
}

#[test]
fn proof_of_address_is_listed_and_required_only_without_an_ip_address() {
    let c = CheckType::DocProofOfAddress;
    for strategy in BOTH {
        assert_eq!(
            doc_check(&[], strategy, true, c),
            None,
            "not listed with an IP address"
        );
        assert_eq!(
            doc_check(&[], strategy, false, c),
            Some(failed(c, NextAction::UploadDocument))
        );
        assert_eq!(
            doc_check(&[DocumentType::ProofOfAddress], strategy, false, c),
            Some(passed(c, true))
        );
    }
}

#[test]
fn checks_are_listed_in_table_order() {
    for (ip, count) in [(true, 10), (false, 11)] {
        let s = status(
            &customer_with(None, ip),
            &DocumentsOnFile::default(),
            Stage::NeedsProfile,
            Strategy::CfKyc,
        );
        let types: Vec<CheckType> = s.checks.iter().map(|c| c.check_type).collect();
        assert_eq!(types, CheckType::ALL[..count]);
    }
}

#[test]
fn next_action_priority_is_the_specs() {
    use NextAction::*;
    let mut actions = [
        Wait,
        UploadDocument,
        CompleteSdkFlow,
        StartKyc,
        UpdateProfile,
        RerunKyc,
        ContactSupport,
    ];
    actions.sort();
    assert_eq!(
        actions,
        [
            ContactSupport,
            RerunKyc,
            UpdateProfile,
            StartKyc,
            CompleteSdkFlow,
            UploadDocument,
            Wait
        ]
    );
}

#[test]
fn requirements_met_ignores_the_workflow_checks() {
    let customer = complete_customer();
    assert!(requirements_met(&customer, &all_documents(), Strategy::CfKyc));
    let without_biometric: DocumentsOnFile = [DocumentType::SourceOfFunds, DocumentType::W9]
        .into_iter()
        .collect();
    assert!(requirements_met(&customer, &without_biometric, Strategy::CfKyc));
    assert!(!requirements_met(
        &customer,
        &without_biometric,
        Strategy::ExternalKyc
    ));
    assert!(!requirements_met(
        &customer_with(None, true),
        &all_documents(),
        Strategy::CfKyc
    ));
}

#[test]
fn sdk_links_are_shown_only_while_live() {
    let s = status(
        &complete_customer(),
        &all_documents(),
        Stage::AwaitingSdk,
        Strategy::CfKyc,
    );
    assert!(s.sdk.is_some());
    let s = status(
        &complete_customer(),
        &all_documents(),
        Stage::Expired,
        Strategy::CfKyc,
    );
    assert!(s.sdk.is_none());
}

#[test]
fn an_sdk_link_is_offered_until_the_instant_it_expires() {
    let waiting = view(Stage::AwaitingSdk, Strategy::CfKyc);
    let expires = waiting.sdk.as_ref().unwrap().expires_at;
    let at = |now| {
        evaluate(
            &complete_customer(),
            &all_documents(),
            &waiting,
            Strategy::CfKyc,
            now,
        )
    };
    assert_eq!(at(expires - time::Duration::milliseconds(1)).sdk, waiting.sdk);
    // At the expiry instant, before any timer has moved the onboarding: no longer offered.
    assert_eq!(at(expires).sdk, None);
    assert_eq!(at(expires + time::Duration::hours(1)).sdk, None);
}
