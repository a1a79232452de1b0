//! The shared vocabulary of onboardings: which strategy, what status, which onboarding, and
//! its SDK link. A leaf module, so the compliance rules, the workflow and the webhook events
//! can all speak of these without importing each other.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Serde, `Display` and the OpenAPI schema of an enum whose names strum spells (one spelling:
/// `#[strum(serialize_all = ...)]` on the enum), through `as_str` and `parse`. An unknown
/// name is serde's usual "unknown variant" error, listing the known ones.
macro_rules! strum_names {
    ($type:ident) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            pub fn parse(name: &str) -> Option<Self> {
                name.parse().ok()
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                $type::parse(&name).ok_or_else(|| {
                    <D::Error as serde::de::Error>::unknown_variant(
                        &name,
                        <$type as strum::VariantNames>::VARIANTS,
                    )
                })
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(
                        <$type as strum::VariantNames>::VARIANTS.iter().copied(),
                    ))
                    .into()
            }
        }

        impl utoipa::ToSchema for $type {}
    };
}
pub(crate) use strum_names;

/// How identity is verified: by the provider's SDK, or by the client's own KYC provider.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantNames,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    CfKyc,
    ExternalKyc,
}

strum_names!(Strategy);

impl Strategy {
    /// Whether identity is verified through the provider's SDK (the standard path).
    pub fn uses_sdk(self) -> bool {
        self == Strategy::CfKyc
    }
}

/// The status of an onboarding as the API reports it (`null` when there is none).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantNames,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum OnboardingStatus {
    Processing,
    PendingReview,
    Expired,
    Error,
    Approved,
    DeniedCompliance,
}

strum_names!(OnboardingStatus);

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

/// Names a newer API uses that this version does not know, kept once each for the life of the
/// process (there are a handful at most), so the types holding them stay `Copy`.
pub(crate) fn intern(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| Mutex::new(HashSet::new()));
    let mut names = match names.lock() {
        Ok(names) => names,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}
