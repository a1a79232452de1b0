//! The next action in plain words (SPEC §7 `kycdash status`): what to do, exactly which fields
//! to PATCH, which documents to upload, and the live SDK link. `kycdash status` and the
//! dashboard's details pane both say it with this code.

use serde::Serialize;

use super::compliance::{CheckType, ComplianceStatus, NextAction, OnboardingStatus};
use super::customer::{Customer, Kyc};
use super::document::DocumentType;
use super::workflow::SdkLink;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Advice {
    /// One sentence: what to do next.
    pub headline: String,
    /// The fields a PATCH must set, as JSON paths.
    pub fields_to_patch: Vec<&'static str>,
    pub documents_to_upload: Vec<DocumentType>,
    pub sdk: Option<SdkLink>,
}

pub fn advise(customer: &Customer, status: &ComplianceStatus) -> Advice {
    let fields_to_patch = fields_to_patch(customer, status);
    let documents_to_upload = documents_to_upload(customer, status);
    let headline = headline(status, &fields_to_patch, &documents_to_upload);
    Advice {
        headline,
        fields_to_patch,
        documents_to_upload,
        sdk: status.sdk.clone(),
    }
}

fn failed(status: &ComplianceStatus, check: CheckType) -> bool {
    status.check(check).is_some_and(|c| c.required && !c.passed)
}

/// The fields a failed profile check asks for, as JSON paths of a merge patch.
fn fields_to_patch(customer: &Customer, status: &ComplianceStatus) -> Vec<&'static str> {
    let kyc = customer.kyc.as_ref();
    let set = |v: Option<&String>| v.is_some_and(|s| !s.trim().is_empty());
    let mut fields = Vec::new();
    if failed(status, CheckType::KycDataPresent) {
        fields.extend(Kyc::missing_identity_fields(kyc));
    }
    if failed(status, CheckType::RegistrationAddress) {
        let address = kyc.and_then(|k| k.main_address.as_ref());
        for (path, value) in [
            (
                "kyc.mainAddress.street1",
                address.and_then(|a| a.street1.as_ref()),
            ),
            (
                "kyc.mainAddress.cityCounty",
                address.and_then(|a| a.city_county.as_ref()),
            ),
            ("kyc.mainAddress.zip", address.and_then(|a| a.zip.as_ref())),
            (
                "kyc.mainAddress.countryCode",
                address.and_then(|a| a.country_code.as_ref()),
            ),
        ] {
            if !set(value) {
                fields.push(path);
            }
        }
    }
    if failed(status, CheckType::TaxCountry) {
        fields.push("kyc.nationality");
    }
    if failed(status, CheckType::Occupation) {
        fields.push("kyc.occupation");
    }
    fields
}

/// The documents the failed document checks ask for.
fn documents_to_upload(customer: &Customer, status: &ComplianceStatus) -> Vec<DocumentType> {
    [
        (CheckType::DocSourceOfFunds, DocumentType::SourceOfFunds),
        (CheckType::DocFatca, fatca_form(customer)),
        (CheckType::DocBiometricReport, DocumentType::BiometricReport),
        (CheckType::DocProofOfAddress, DocumentType::ProofOfAddress),
    ]
    .into_iter()
    .filter(|(check, _)| failed(status, *check))
    .map(|(_, document)| document)
    .collect()
}

/// The next action in plain words.
fn headline(status: &ComplianceStatus, fields: &[&str], documents: &[DocumentType]) -> String {
    match status.next_action {
        None => "Compliant: every required check passes; nothing to do.".to_string(),
        Some(NextAction::ContactSupport) => match status.onboarding_status {
            Some(OnboardingStatus::DeniedCompliance) => {
                "Denied by compliance; the decision is final. Contact the provider's support to appeal."
                    .to_string()
            }
            _ => "Identity verification failed; the onboarding is final. Contact the provider's support."
                .to_string(),
        },
        Some(NextAction::RerunKyc) => {
            "The SDK link expired before the customer finished. Rerun KYC to issue a new link.".to_string()
        }
        Some(NextAction::UpdateProfile) => {
            format!("The profile is missing data. PATCH the customer with: {}.", fields.join(", "))
        }
        Some(NextAction::StartKyc) => "Ready for KYC: start it.".to_string(),
        // The expiry is on the API's clock (a sandbox's may run ahead): shown beside the
        // link, as a countdown where one can be computed, not in this sentence.
        Some(NextAction::CompleteSdkFlow) if status.sdk.is_some() => {
            "Waiting for the customer to finish identity verification: send them the SDK link before it expires."
                .to_string()
        }
        Some(NextAction::CompleteSdkFlow) => {
            "Waiting for the customer to finish identity verification in the SDK.".to_string()
        }
        Some(NextAction::UploadDocument) => {
            let names: Vec<&str> = documents.iter().map(|d| d.as_str()).collect();
            format!("Upload {}.", names.join(", "))
        }
        Some(NextAction::Wait) if status.onboarding_status == Some(OnboardingStatus::PendingReview) => {
            "In manual review: the provider's reviewers decide; nothing to do meanwhile.".to_string()
        }
        Some(NextAction::Wait) => {
            "Every requirement is met: waiting for the provider's decision; nothing to do.".to_string()
        }
        Some(NextAction::Unknown(name)) => format!(
            "The API asks for {name}, which this version of kycdash does not know; see the provider's documentation."
        ),
    }
}

/// The FATCA form a customer files: W9 for US nationals, W8BEN otherwise.
pub fn fatca_form(customer: &Customer) -> DocumentType {
    let us = customer
        .kyc
        .as_ref()
        .and_then(|k| k.nationality.as_deref())
        .is_some_and(|n| n.eq_ignore_ascii_case("US"));
    if us { DocumentType::W9 } else { DocumentType::W8ben }
}
