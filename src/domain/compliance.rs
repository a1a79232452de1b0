//! The compliance status (SPEC §3): which checks a customer passes, what each failed one asks
//! for, and the single next action. `evaluate` is the one place these rules live; the sandbox
//! serves its result and the dashboard reads it, so the two can never disagree.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::customer::{Customer, Kyc};
use super::document::{DocumentType, DocumentsOnFile};
use super::vocabulary::intern;
pub use super::vocabulary::{OnboardingStatus, Strategy};
use super::workflow::{OnboardingRef, Readiness, SdkLink, Stage, WorkflowView};

/// The checks, declared in the order the API lists them. A check this version does not know
/// (a newer API's) is kept by name as `Unknown`, after the known ones, instead of failing the
/// whole status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckType {
    KycDataPresent,
    KycStarted,
    SdkVerificationCompleted,
    KycStatus,
    RegistrationAddress,
    TaxCountry,
    Occupation,
    DocSourceOfFunds,
    DocFatca,
    DocBiometricReport,
    DocProofOfAddress,
    Unknown(&'static str),
}

impl CheckType {
    pub const ALL: [CheckType; 11] = [
        CheckType::KycDataPresent,
        CheckType::KycStarted,
        CheckType::SdkVerificationCompleted,
        CheckType::KycStatus,
        CheckType::RegistrationAddress,
        CheckType::TaxCountry,
        CheckType::Occupation,
        CheckType::DocSourceOfFunds,
        CheckType::DocFatca,
        CheckType::DocBiometricReport,
        CheckType::DocProofOfAddress,
    ];

    /// The name as the API spells it (strum spells the known ones).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Unknown(name) => name,
            known => known.into(),
        }
    }
}

impl CheckType {
    /// Reads a wire name; a name this version does not know becomes `Unknown`.
    pub fn parse(name: &str) -> CheckType {
        CheckType::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or_else(|| CheckType::Unknown(intern(name)))
    }
}

impl fmt::Display for CheckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the integrator should do next. Declared from the most urgent to the least, so the
/// derived order is the priority of SPEC §3 and `min()` picks the next action. An action this
/// version does not know is kept by name as `Unknown`, least urgent of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum NextAction {
    ContactSupport,
    RerunKyc,
    UpdateProfile,
    StartKyc,
    CompleteSdkFlow,
    UploadDocument,
    Wait,
    Unknown(&'static str),
}

impl NextAction {
    /// The name as the API spells it (strum spells the known ones).
    pub fn as_str(self) -> &'static str {
        match self {
            NextAction::Unknown(name) => name,
            known => known.into(),
        }
    }
}

impl NextAction {
    pub const ALL: [NextAction; 7] = [
        NextAction::ContactSupport,
        NextAction::RerunKyc,
        NextAction::UpdateProfile,
        NextAction::StartKyc,
        NextAction::CompleteSdkFlow,
        NextAction::UploadDocument,
        NextAction::Wait,
    ];

    /// Reads a wire name; a name this version does not know becomes `Unknown`.
    pub fn parse(name: &str) -> NextAction {
        NextAction::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or_else(|| NextAction::Unknown(intern(name)))
    }
}

/// Serde and OpenAPI for the enums spelled by `as_str`/`parse`.
macro_rules! wire_name {
    ($type:ident) => {
        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok($type::parse(&name))
            }
        }

        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($type::ALL.iter().map(|t| t.as_str())))
                    .into()
            }
        }

        impl ToSchema for $type {}
    };
}

wire_name!(CheckType);
wire_name!(NextAction);

impl fmt::Display for NextAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    #[serde(rename = "type")]
    pub check_type: CheckType,
    pub passed: bool,
    pub required: bool,
    /// Present exactly when the check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_action: Option<NextAction>,
}

impl Check {
    fn passed(check_type: CheckType, required: bool) -> Self {
        Self {
            check_type,
            passed: true,
            required,
            suggested_action: None,
        }
    }

    fn failed(check_type: CheckType, required: bool, action: NextAction) -> Self {
        Self {
            check_type,
            passed: false,
            required,
            suggested_action: Some(action),
        }
    }

    fn when(check_type: CheckType, passed: bool, action: NextAction) -> Self {
        if passed {
            Self::passed(check_type, true)
        } else {
            Self::failed(check_type, true, action)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
    pub required_failed: Vec<CheckType>,
}

/// The body of `GET /v1/compliance/status/:customerId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceStatus {
    /// Always sent by this API; optional on the wire because the guide's own example omits
    /// it, and a client should read what a server sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    pub onboarding_id: Option<Uuid>,
    /// The onboarding's strategy, or the tenant's before there is one (see `customer_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    pub is_compliant: bool,
    pub onboarding_status: Option<OnboardingStatus>,
    pub next_action: Option<NextAction>,
    pub checks: Vec<Check>,
    pub summary: Summary,
    /// The SDK links, while they are live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkLink>,
}

impl ComplianceStatus {
    pub fn check(&self, check_type: CheckType) -> Option<&Check> {
        self.checks.iter().find(|c| c.check_type == check_type)
    }
}

impl Stage {
    /// The stage a compliance status proves (see [`WorkflowView::from_status`]).
    pub fn from_status(status: &ComplianceStatus) -> Stage {
        WorkflowView::from_status(status).stage
    }
}

impl WorkflowView {
    /// Where a compliance status proves the workflow is: the inverse of `evaluate` (the
    /// onboarding status, the SDK check, and whether KYC_STATUS is the only failed
    /// requirement). An observer's snapshot always wins over what it had inferred.
    ///
    /// A status that reports an onboarding status without its id (the guide's own example
    /// does) gets the nil id: the onboarding exists, the server did not say which.
    pub fn from_status(status: &ComplianceStatus) -> WorkflowView {
        let passed = |t: CheckType| status.check(t).is_some_and(|c| c.passed);
        let sdk_check = status.check(CheckType::SdkVerificationCompleted);
        // The SDK check is required exactly on the standard path.
        let strategy = match sdk_check {
            Some(check) if !check.required => Strategy::ExternalKyc,
            Some(_) => Strategy::CfKyc,
            None => status.strategy.unwrap_or(Strategy::CfKyc),
        };
        let sdk_passed = sdk_check.is_some_and(|c| c.passed);
        let stage = match status.onboarding_status {
            None if passed(CheckType::KycDataPresent) => Stage::ReadyToStart,
            None => Stage::NeedsProfile,
            Some(OnboardingStatus::PendingReview) => Stage::InReview,
            Some(OnboardingStatus::Expired) => Stage::Expired,
            Some(OnboardingStatus::Error) => Stage::Errored,
            Some(OnboardingStatus::Approved) => Stage::Approved,
            Some(OnboardingStatus::DeniedCompliance) => Stage::Denied,
            Some(OnboardingStatus::Processing) if strategy.uses_sdk() && !sdk_passed => Stage::AwaitingSdk,
            Some(OnboardingStatus::Processing)
                if status.summary.required_failed == [CheckType::KycStatus] =>
            {
                Stage::AwaitingDecision
            }
            Some(OnboardingStatus::Processing) => Stage::CollectingRequirements,
        };
        let onboarding = stage.onboarding_status().map(|_| OnboardingRef {
            id: status.onboarding_id.unwrap_or(Uuid::nil()),
            strategy,
        });
        let identity_verified = match stage {
            Stage::CollectingRequirements | Stage::AwaitingDecision | Stage::Approved => true,
            // Denied or errored after identity was verified: the SDK check says so.
            Stage::Denied | Stage::Errored => sdk_passed,
            _ => false,
        };
        WorkflowView {
            stage,
            onboarding,
            sdk: if stage == Stage::AwaitingSdk {
                status.sdk.clone()
            } else {
                None
            },
            identity_verified,
        }
    }
}

/// Whether every requirement that is not about the workflow itself passes: the profile and
/// the documents. When it does, an onboarding with verified identity awaits its decision.
pub fn requirements_met(customer: &Customer, documents: &DocumentsOnFile, strategy: Strategy) -> bool {
    Kyc::missing_identity_fields(customer.kyc.as_ref()).is_empty()
        && data_checks(customer, documents, strategy)
            .iter()
            .all(|c| c.passed || !c.required)
}

/// The readiness a workflow driver passes along with every event: derived from the facts each
/// time, never stored.
pub fn readiness(customer: &Customer, documents: &DocumentsOnFile, strategy: Strategy) -> Readiness {
    Readiness {
        kyc_data_present: Kyc::missing_identity_fields(customer.kyc.as_ref()).is_empty(),
        requirements_met: requirements_met(customer, documents, strategy),
    }
}

/// Evaluates a customer's compliance status from the facts: the customer, the documents on
/// file and the workflow. The strategy is the onboarding's own once there is one; before that,
/// `default_strategy` (the tenant's) decides which checks are required.
pub fn evaluate(
    customer: &Customer,
    documents: &DocumentsOnFile,
    workflow: &WorkflowView,
    default_strategy: Strategy,
    now: time::OffsetDateTime,
) -> ComplianceStatus {
    let strategy = workflow.strategy().unwrap_or(default_strategy);
    let stage = workflow.stage;
    let mut checks = Vec::with_capacity(CheckType::ALL.len());

    checks.push(Check::when(
        CheckType::KycDataPresent,
        Kyc::missing_identity_fields(customer.kyc.as_ref()).is_empty(),
        NextAction::UpdateProfile,
    ));
    checks.push(Check::when(
        CheckType::KycStarted,
        workflow.onboarding.is_some(),
        NextAction::StartKyc,
    ));
    checks.push(sdk_check(workflow, strategy));
    checks.extend(data_checks(customer, documents, strategy));

    // KYC_STATUS points at the most urgent thing standing between the customer and a decision.
    let kyc_status = if stage == Stage::Approved {
        Check::passed(CheckType::KycStatus, true)
    } else {
        let action = match stage {
            Stage::Denied | Stage::Errored => NextAction::ContactSupport,
            _ => most_urgent(&checks).unwrap_or(NextAction::Wait),
        };
        Check::failed(CheckType::KycStatus, true, action)
    };
    checks.insert(3, kyc_status);

    let required_failed: Vec<CheckType> = checks
        .iter()
        .filter(|c| c.required && !c.passed)
        .map(|c| c.check_type)
        .collect();
    let passed = checks.iter().filter(|c| c.passed).count() as u32;
    let failed = checks.len() as u32 - passed;

    ComplianceStatus {
        customer_id: Some(customer.id),
        onboarding_id: workflow.onboarding.map(|o| o.id),
        strategy: Some(strategy),
        is_compliant: required_failed.is_empty(),
        onboarding_status: stage.onboarding_status(),
        next_action: most_urgent(&checks),
        checks,
        summary: Summary {
            passed,
            failed,
            required_failed,
        },
        // A link past its expiry is never offered, even before the expiry timer has fired.
        sdk: workflow.sdk.clone().filter(|link| link.expires_at > now),
    }
}

/// The most urgent suggested action among the failed required checks.
fn most_urgent(checks: &[Check]) -> Option<NextAction> {
    checks
        .iter()
        .filter(|c| c.required && !c.passed)
        .filter_map(|c| c.suggested_action)
        .min()
}

fn sdk_check(workflow: &WorkflowView, strategy: Strategy) -> Check {
    const SDK: CheckType = CheckType::SdkVerificationCompleted;
    if !strategy.uses_sdk() {
        return Check::passed(SDK, false);
    }
    if workflow.identity_verified {
        return Check::passed(SDK, true);
    }
    // SDK_VERIFICATION_COMPLETED, failed, by stage (identity not verified):
    //   needs_profile, ready_to_start  START_KYC
    //   awaiting_sdk                   COMPLETE_SDK_FLOW
    //   expired                        RERUN_KYC
    //   in_review                      WAIT
    //   errored, denied                CONTACT_SUPPORT (the outcome is final)
    // Denied or errored after identity was verified, it stays passed; KYC_STATUS still
    // fails with CONTACT_SUPPORT.
    let action = match workflow.stage {
        Stage::NeedsProfile | Stage::ReadyToStart => NextAction::StartKyc,
        Stage::AwaitingSdk => NextAction::CompleteSdkFlow,
        Stage::Expired => NextAction::RerunKyc,
        Stage::InReview => NextAction::Wait,
        Stage::Errored | Stage::Denied => NextAction::ContactSupport,
        // Identity is verified in these stages; a view that says otherwise has nothing to do
        // but wait for the provider.
        Stage::CollectingRequirements | Stage::AwaitingDecision | Stage::Approved => NextAction::Wait,
    };
    Check::failed(SDK, true, action)
}

/// The checks on the customer's profile and documents, in check order.
fn data_checks(customer: &Customer, documents: &DocumentsOnFile, strategy: Strategy) -> Vec<Check> {
    let kyc = customer.kyc.as_ref();
    let set = |v: Option<&String>| v.is_some_and(|s| !s.trim().is_empty());
    let address = kyc.and_then(|k| k.main_address.as_ref());
    let address_complete = address.is_some_and(|a| {
        set(a.street1.as_ref())
            && set(a.city_county.as_ref())
            && set(a.zip.as_ref())
            && set(a.country_code.as_ref())
    });
    let has = |t: DocumentType| documents.has(t);

    let mut checks = vec![
        Check::when(
            CheckType::RegistrationAddress,
            address_complete,
            NextAction::UpdateProfile,
        ),
        Check::when(
            CheckType::TaxCountry,
            set(kyc.and_then(|k| k.nationality.as_ref())),
            NextAction::UpdateProfile,
        ),
        Check::when(
            CheckType::Occupation,
            set(kyc.and_then(|k| k.occupation.as_ref())),
            NextAction::UpdateProfile,
        ),
        Check::when(
            CheckType::DocSourceOfFunds,
            has(DocumentType::SourceOfFunds),
            NextAction::UploadDocument,
        ),
        Check::when(
            CheckType::DocFatca,
            has(DocumentType::W9) || has(DocumentType::W8ben),
            NextAction::UploadDocument,
        ),
    ];
    checks.push(if strategy.uses_sdk() {
        Check::passed(CheckType::DocBiometricReport, false)
    } else {
        Check::when(
            CheckType::DocBiometricReport,
            has(DocumentType::BiometricReport),
            NextAction::UploadDocument,
        )
    });
    if !set(customer.ip_address.as_ref()) {
        checks.push(Check::when(
            CheckType::DocProofOfAddress,
            has(DocumentType::ProofOfAddress),
            NextAction::UploadDocument,
        ));
    }
    checks
}

#[cfg(test)]
mod tests;
