//! A tiny in-memory driver of the domain for black-box tests: one customer, their documents and
//! their workflow, moved along the guide's flows with the domain's own rules.

#![allow(dead_code)]

use std::path::PathBuf;

use kycdash::domain::{
    ComplianceStatus, Customer, CustomerProfile, DocumentType, DocumentsOnFile, EventType, OnboardingRef,
    SdkLink, Strategy, Workflow, WorkflowEvent, evaluate, readiness,
};
use serde_json::Value;
use time::macros::{date, datetime};
use uuid::Uuid;

pub const CUSTOMER_ID: Uuid = Uuid::from_u128(0x6f1f0c52_2b8e_4a55_9a0e_6d2f5c3b9e01);
pub const FIRST_ONBOARDING: Uuid = Uuid::from_u128(0xb3c1d7a2_4e5f_4a6b_8c9d_0e1f2a3b4c5d);
pub const SECOND_ONBOARDING: Uuid = Uuid::from_u128(0xd4e5f6a7_b8c9_4d0e_9f1a_2b3c4d5e6f70);

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A customer whose profile passes every profile check (tests/fixtures/full_profile.json).
pub fn full_profile() -> Value {
    fixture("full_profile.json")
}

pub struct Scenario {
    pub customer: Customer,
    pub documents: DocumentsOnFile,
    pub workflow: Workflow,
    pub tenant_strategy: Strategy,
    pub produced: Vec<EventType>,
}

impl Scenario {
    pub fn new(profile: Value, tenant_strategy: Strategy) -> Self {
        let profile = CustomerProfile::from_json(profile, date!(2026 - 11 - 27)).expect("valid profile");
        let customer = Customer::new(CUSTOMER_ID, profile, datetime!(2026-11-27 10:00 UTC));
        let documents = DocumentsOnFile::default();
        let ready = readiness(&customer, &documents, tenant_strategy);
        Self {
            workflow: Workflow::new(CUSTOMER_ID, ready),
            customer,
            documents,
            tenant_strategy,
            produced: vec![EventType::CustomerCreated],
        }
    }

    fn strategy(&self) -> Strategy {
        self.workflow.view().strategy().unwrap_or(self.tenant_strategy)
    }

    pub fn event(&mut self, event: WorkflowEvent) -> &mut Self {
        let ready = readiness(&self.customer, &self.documents, self.strategy());
        let produced = self
            .workflow
            .handle(&event, ready)
            .unwrap_or_else(|err| panic!("{} refused: {err}", event.name()));
        self.produced.extend(produced.into_iter().map(|e| e.event_type));
        self
    }

    pub fn patch(&mut self, patch: Value) -> &mut Self {
        let profile = self
            .customer
            .merge_patch(&patch, date!(2026 - 11 - 27))
            .expect("valid patch");
        self.customer.apply(profile, datetime!(2026-11-27 10:05 UTC));
        self.produced.push(EventType::CustomerUpdated);
        self.event(WorkflowEvent::ProfileChanged)
    }

    pub fn upload(&mut self, document_type: DocumentType) -> &mut Self {
        self.documents.insert(document_type);
        self.event(WorkflowEvent::DocumentReceived)
    }

    pub fn start(&mut self) -> &mut Self {
        let strategy = self.tenant_strategy;
        let sdk = strategy.uses_sdk().then(|| link(FIRST_ONBOARDING));
        self.event(WorkflowEvent::KycStarted {
            onboarding: OnboardingRef {
                id: FIRST_ONBOARDING,
                strategy,
            },
            sdk,
        })
    }

    pub fn rerun(&mut self) -> &mut Self {
        self.event(WorkflowEvent::Restarted {
            onboarding: OnboardingRef {
                id: SECOND_ONBOARDING,
                strategy: Strategy::CfKyc,
            },
            sdk: Some(link(SECOND_ONBOARDING)),
        })
    }

    pub fn status(&self) -> ComplianceStatus {
        evaluate(
            &self.customer,
            &self.documents,
            &self.workflow.view(),
            self.tenant_strategy,
            // Before the links expire (10:30).
            datetime!(2026-11-27 10:00 UTC),
        )
    }

    pub fn status_json(&self) -> Value {
        serde_json::to_value(self.status()).expect("serializes")
    }
}

pub fn link(onboarding: Uuid) -> SdkLink {
    SdkLink {
        link: format!("http://127.0.0.1:8080/sdk/{}", onboarding.simple()),
        expires_at: datetime!(2026-11-27 10:30 UTC),
    }
}

/// Asserts that `actual` says everything `expected` says: every key of an object with an equal
/// value, and every check `expected` lists (matched by type) equal to the one listed in
/// `actual`. This is how the guide's examples are compared: they elide checks with "...".
pub fn assert_says(actual: &Value, expected: &Value) {
    let (Some(actual_fields), Some(expected_fields)) = (actual.as_object(), expected.as_object()) else {
        panic!("both sides must be objects");
    };
    for (key, want) in expected_fields {
        let got = actual_fields
            .get(key)
            .unwrap_or_else(|| panic!("missing \"{key}\" in {actual}"));
        if key == "checks" {
            for check in want.as_array().expect("checks is an array") {
                let listed = got
                    .as_array()
                    .and_then(|checks| checks.iter().find(|c| c["type"] == check["type"]))
                    .unwrap_or_else(|| panic!("{} is not listed in {got}", check["type"]));
                assert_eq!(listed, check, "check {}", check["type"]);
            }
        } else {
            assert_eq!(got, want, "field \"{key}\"");
        }
    }
}
