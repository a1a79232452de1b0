//! JSON round trips of every wire type, the guide's example payloads among the fixtures.

mod common;

use common::{Scenario, fixture, full_profile};
use kycdash::domain::{
    Check, CheckType, ComplianceStatus, Customer, CustomerProfile, DocumentType, EventData, EventType,
    FieldError, NextAction, OnboardingStatus, SdkLink, Stage, Strategy, Summary, WebhookEvent, WorkflowEvent,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// value → JSON → value, and JSON → value → the same JSON.
fn round_trip<T>(json: Value) -> T
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
    let written = serde_json::to_value(&value).unwrap();
    assert_eq!(written, json, "JSON changed on a round trip");
    let again: T = serde_json::from_value(written).unwrap();
    assert_eq!(again, value);
    value
}

#[test]
fn the_guides_webhook_payload() {
    let event: WebhookEvent = round_trip(fixture("guide/webhook_payload.json"));
    assert_eq!(event.event_type(), Some(EventType::CustomerKycSdkFlowCompleted));
    let data = event.data().unwrap();
    assert_eq!(data.status, Some(OnboardingStatus::Approved));
    assert!(data.onboarding_id.is_some());
}

#[test]
fn a_restarted_webhook_names_the_previous_onboarding() {
    let event: WebhookEvent = round_trip(fixture("guide/webhook_restarted.json"));
    assert_eq!(event.event_type(), Some(EventType::CustomerKycRestarted));
    assert!(event.data().unwrap().previous_onboarding_id.is_some());
}

#[test]
fn every_event_type_round_trips_in_an_envelope() {
    for t in EventType::ALL {
        let json = json!({
            "id": format!("msg_{}", t.as_str().to_lowercase()),
            "eventType": t.as_str(),
            "createdAt": "2026-11-27T10:00:00Z",
            "data": {"customerId": common::CUSTOMER_ID}
        });
        let event: WebhookEvent = round_trip(json);
        assert_eq!(event.event_type(), Some(t));
    }
}

#[test]
fn event_data() {
    round_trip::<EventData>(fixture("guide/webhook_restarted.json")["data"].clone());
    round_trip::<EventData>(json!({"customerId": common::CUSTOMER_ID}));
}

#[test]
fn customers_and_profiles() {
    let profile: CustomerProfile = round_trip(full_profile());
    round_trip::<CustomerProfile>(fixture("guide/update_profile_patch.json"));
    let customer = json!({
        "id": common::CUSTOMER_ID,
        "externalId": "acme-42",
        "email": "ada@example.com",
        "ipAddress": "203.0.113.7",
        "createdAt": "2026-11-27T10:00:00Z",
        "updatedAt": "2026-11-27T10:05:00Z",
        "kyc": full_profile()["kyc"]
    });
    let customer: Customer = round_trip(customer);
    assert_eq!(customer.kyc, profile.kyc);
    round_trip::<Customer>(json!({
        "id": common::CUSTOMER_ID,
        "createdAt": "2026-11-27T10:00:00Z",
        "updatedAt": "2026-11-27T10:00:00Z"
    }));
}

#[test]
fn compliance_status_of_every_flow_round_trips() {
    let mut s = Scenario::new(full_profile(), Strategy::CfKyc);
    let mut statuses = vec![s.status_json()];
    s.start();
    statuses.push(s.status_json());
    s.event(WorkflowEvent::SdkCompleted)
        .upload(DocumentType::SourceOfFunds);
    statuses.push(s.status_json());
    for json in statuses {
        let status: ComplianceStatus = round_trip(json);
        assert_eq!(
            status.summary.passed + status.summary.failed,
            status.checks.len() as u32
        );
    }
}

#[test]
fn checks_summaries_and_links() {
    round_trip::<Check>(
        json!({"type": "KYC_STATUS", "passed": false, "required": true, "suggestedAction": "WAIT"}),
    );
    round_trip::<Check>(json!({"type": "DOC_BIOMETRIC_REPORT", "passed": true, "required": false}));
    round_trip::<Summary>(fixture("guide/status_standard_example.json")["summary"].clone());
    round_trip::<SdkLink>(
        json!({"link": "http://127.0.0.1:8080/sdk/abc", "expiresAt": "2026-11-27T10:30:00Z"}),
    );
    round_trip::<FieldError>(json!({"field": "kyc.nationality", "message": "not a country"}));
}

#[test]
fn every_enum_is_spelled_as_the_api_spells_it() {
    for t in CheckType::ALL {
        assert_eq!(round_trip::<CheckType>(json!(t.as_str())), t);
    }
    for name in [
        "START_KYC",
        "COMPLETE_SDK_FLOW",
        "UPLOAD_DOCUMENT",
        "UPDATE_PROFILE",
        "RERUN_KYC",
        "WAIT",
        "CONTACT_SUPPORT",
    ] {
        assert_eq!(round_trip::<NextAction>(json!(name)).as_str(), name);
    }
    for name in [
        "PROCESSING",
        "PENDING_REVIEW",
        "EXPIRED",
        "ERROR",
        "APPROVED",
        "DENIED_COMPLIANCE",
    ] {
        assert_eq!(round_trip::<OnboardingStatus>(json!(name)).as_str(), name);
    }
    for name in ["CF_KYC", "EXTERNAL_KYC"] {
        assert_eq!(round_trip::<Strategy>(json!(name)).as_str(), name);
    }
    for t in DocumentType::ALL {
        assert_eq!(round_trip::<DocumentType>(json!(t.as_str())), t);
    }
    for stage in Stage::ALL {
        assert_eq!(round_trip::<Stage>(json!(stage.as_str())), stage);
    }
    assert!(serde_json::from_value::<Strategy>(json!("cf_kyc")).is_err());
}

#[test]
fn the_guides_status_examples_parse_into_the_typed_status() {
    for name in [
        "guide/status_standard_example.json",
        "guide/status_external_example.json",
    ] {
        let json = fixture(name);
        let status: ComplianceStatus =
            serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Neither example names the customer or the strategy; nothing is made up for them.
        assert_eq!(status.customer_id, None);
        assert_eq!(status.strategy, None);
        assert_eq!(
            status.summary.required_failed.len(),
            json["summary"]["requiredFailed"].as_array().unwrap().len()
        );
        assert_eq!(serde_json::to_value(&status).unwrap()["checks"], json["checks"]);
    }
}

#[test]
fn a_servers_extra_fields_are_read_but_a_requests_unknown_fields_are_refused() {
    let from_server = json!({
        "id": "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11",
        "createdAt": "2026-11-27T10:00:00Z",
        "updatedAt": "2026-11-27T10:00:00Z",
        "riskScore": 12,
        "kyc": {"firstName": "Ada", "middleName": "King", "mainAddress": {"street1": "1 Main St", "floor": 3}}
    });
    let customer: Customer = serde_json::from_value(from_server).unwrap();
    assert_eq!(customer.kyc.unwrap().first_name.as_deref(), Some("Ada"));

    let today = time::macros::date!(2026 - 11 - 30);
    let err = CustomerProfile::from_json(
        json!({"riskScore": 1, "kyc": {"middleName": "K", "mainAddress": {"floor": 3}}}),
        today,
    )
    .unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["riskScore", "kyc.middleName", "kyc.mainAddress.floor"]);
}

#[test]
fn every_member_of_a_problem_is_optional() {
    let problem: kycdash::api::types::Problem =
        serde_json::from_value(json!({"detail": "slow down"})).unwrap();
    assert_eq!(problem.detail, "slow down");
    assert_eq!(problem.problem_type, "about:blank");
    let empty: kycdash::api::types::Problem = serde_json::from_value(json!({})).unwrap();
    assert_eq!(empty.status, 0);
}

#[test]
fn a_newer_apis_check_types_and_actions_are_kept_by_name() {
    let mut json = fixture("guide/status_standard_example.json");
    json["nextAction"] = json!("VERIFY_PHONE");
    json["checks"].as_array_mut().unwrap().push(
        json!({"type": "PHONE_VERIFIED", "passed": false, "required": true, "suggestedAction": "VERIFY_PHONE"}),
    );
    json["summary"]["requiredFailed"]
        .as_array_mut()
        .unwrap()
        .push(json!("PHONE_VERIFIED"));
    let status: ComplianceStatus = serde_json::from_value(json.clone()).unwrap();
    let written = serde_json::to_value(&status).unwrap();
    assert_eq!(written["checks"], json["checks"]);
    assert_eq!(written["nextAction"], json["nextAction"]);
    assert_eq!(status.next_action.unwrap().as_str(), "VERIFY_PHONE");
    assert!(matches!(
        status.next_action,
        Some(NextAction::Unknown("VERIFY_PHONE"))
    ));
    let phone = status.checks.last().unwrap();
    assert_eq!(phone.check_type, CheckType::Unknown("PHONE_VERIFIED"));
    // Known names still parse to their own variants, and an unknown one sorts after them.
    assert_eq!(CheckType::parse("DOC_FATCA"), CheckType::DocFatca);
    assert!(CheckType::DocProofOfAddress < phone.check_type);
    assert!(NextAction::Wait < status.next_action.unwrap());
}

#[test]
fn a_newer_apis_document_types_are_kept_by_name_and_never_uploadable() {
    use kycdash::api::types::DocumentList;
    use kycdash::domain::DocumentType;
    let json = json!({"data": [{
        "id": "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11",
        "customerId": "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e12",
        "type": "PASSPORT_SCAN",
        "format": "PDF",
        "size": 1024,
        "sha256": "00",
        "current": true,
        "uploadedAt": "2026-11-27T10:00:00Z"
    }]});
    let list: DocumentList = serde_json::from_value(json.clone()).unwrap();
    let passport = list.data[0].document_type;
    assert_eq!(passport, DocumentType::Unknown("PASSPORT_SCAN"));
    assert_eq!(
        serde_json::to_value(&list).unwrap()["data"][0]["type"],
        "PASSPORT_SCAN"
    );
    // What an upload may name is still only what this version knows.
    assert_eq!(DocumentType::parse("PASSPORT_SCAN"), None);
    assert!(passport.check_content(b"%PDF-1.7 x").is_err());
    assert_eq!(DocumentType::from_wire("W8BEN"), DocumentType::W8ben);
}
