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
    let failed = |t: CheckType| status.check(t).is_some_and(|c| c.required && !c.passed);
    let kyc = customer.kyc.as_ref();
    let set = |v: Option<&String>| v.is_some_and(|s| !s.trim().is_empty());

    let mut fields_to_patch = Vec::new();
    if failed(CheckType::KycDataPresent) {
        fields_to_patch.extend(Kyc::missing_identity_fields(kyc));
    }
    if failed(CheckType::RegistrationAddress) {
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
                fields_to_patch.push(path);
            }
        }
    }
    if failed(CheckType::TaxCountry) {
        fields_to_patch.push("kyc.nationality");
    }
    if failed(CheckType::Occupation) {
        fields_to_patch.push("kyc.occupation");
    }

    let mut documents_to_upload = Vec::new();
    if failed(CheckType::DocSourceOfFunds) {
        documents_to_upload.push(DocumentType::SourceOfFunds);
    }
    if failed(CheckType::DocFatca) {
        documents_to_upload.push(fatca_form(customer));
    }
    if failed(CheckType::DocBiometricReport) {
        documents_to_upload.push(DocumentType::BiometricReport);
    }
    if failed(CheckType::DocProofOfAddress) {
        documents_to_upload.push(DocumentType::ProofOfAddress);
    }

    let list = |items: Vec<String>| items.join(", ");
    let headline = match status.next_action {
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
        Some(NextAction::UpdateProfile) => format!(
            "The profile is missing data. PATCH the customer with: {}.",
            list(fields_to_patch.iter().map(|f| f.to_string()).collect())
        ),
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
        Some(NextAction::UploadDocument) => format!(
            "Upload {}.",
            list(
                documents_to_upload
                    .iter()
                    .map(|d| d.as_str().to_string())
                    .collect()
            )
        ),
        Some(NextAction::Wait) if status.onboarding_status == Some(OnboardingStatus::PendingReview) => {
            "In manual review: the provider's reviewers decide; nothing to do meanwhile.".to_string()
        }
        Some(NextAction::Wait) => {
            "Every requirement is met: waiting for the provider's decision; nothing to do.".to_string()
        }
        Some(NextAction::Unknown(name)) => format!(
            "The API asks for {name}, which this version of kycdash does not know; see the provider's documentation."
        ),
    };
    Advice {
        headline,
        fields_to_patch,
        documents_to_upload,
        sdk: status.sdk.clone(),
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
