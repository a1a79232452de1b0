//! The shared vocabulary of onboardings: which strategy, what status, which onboarding, and
//! its SDK link. A leaf module, so the compliance rules, the workflow and the webhook events
//! can all speak of these without importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// How identity is verified: by the provider's SDK, or by the client's own KYC provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Strategy {
    #[serde(rename = "CF_KYC")]
    CfKyc,
    #[serde(rename = "EXTERNAL_KYC")]
    ExternalKyc,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::CfKyc => "CF_KYC",
            Strategy::ExternalKyc => "EXTERNAL_KYC",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "CF_KYC" => Some(Strategy::CfKyc),
            "EXTERNAL_KYC" => Some(Strategy::ExternalKyc),
            _ => None,
        }
    }

    /// Whether identity is verified through the provider's SDK (the standard path).
    pub fn uses_sdk(self) -> bool {
        self == Strategy::CfKyc
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of an onboarding as the API reports it (`null` when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnboardingStatus {
    Processing,
    PendingReview,
    Expired,
    Error,
    Approved,
    DeniedCompliance,
}

impl OnboardingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardingStatus::Processing => "PROCESSING",
            OnboardingStatus::PendingReview => "PENDING_REVIEW",
            OnboardingStatus::Expired => "EXPIRED",
            OnboardingStatus::Error => "ERROR",
            OnboardingStatus::Approved => "APPROVED",
            OnboardingStatus::DeniedCompliance => "DENIED_COMPLIANCE",
        }
    }
}

impl fmt::Display for OnboardingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The onboarding a workflow is on: state-local to every state after KYC starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingRef {
    pub id: Uuid,
    pub strategy: Strategy,
}

/// The hosted SDK link the end user opens, and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkLink {
    pub link: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}
