//! Webhook events (SPEC §4–5): the envelope `{id, eventType, createdAt, data}` and every event
//! type. Parsing is lenient where the guide asks it to be: `CUSTOMER_KYC_SDK_FLOW_DONE` is read
//! as `CUSTOMER_KYC_SDK_FLOW_COMPLETED`, and an event type this version does not know is kept
//! with its data as it came instead of failing the whole delivery.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::vocabulary::OnboardingStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    CustomerCreated,
    CustomerUpdated,
    CustomerKycStarted,
    CustomerKycSdkFlowRequired,
    CustomerKycSdkFlowCompleted,
    CustomerKycFinished,
    CustomerKycRestarted,
    CustomerKycSdkExpired,
    CustomerKycError,
}

/// The spelling of SDK completion in the guide's sequence diagram.
pub const SDK_FLOW_DONE_ALIAS: &str = "CUSTOMER_KYC_SDK_FLOW_DONE";

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::CustomerCreated,
        EventType::CustomerUpdated,
        EventType::CustomerKycStarted,
        EventType::CustomerKycSdkFlowRequired,
        EventType::CustomerKycSdkFlowCompleted,
        EventType::CustomerKycFinished,
        EventType::CustomerKycRestarted,
        EventType::CustomerKycSdkExpired,
        EventType::CustomerKycError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CustomerCreated => "CUSTOMER_CREATED",
            EventType::CustomerUpdated => "CUSTOMER_UPDATED",
            EventType::CustomerKycStarted => "CUSTOMER_KYC_STARTED",
            EventType::CustomerKycSdkFlowRequired => "CUSTOMER_KYC_SDK_FLOW_REQUIRED",
            EventType::CustomerKycSdkFlowCompleted => "CUSTOMER_KYC_SDK_FLOW_COMPLETED",
            EventType::CustomerKycFinished => "CUSTOMER_KYC_FINISHED",
            EventType::CustomerKycRestarted => "CUSTOMER_KYC_RESTARTED",
            EventType::CustomerKycSdkExpired => "CUSTOMER_KYC_SDK_EXPIRED",
            EventType::CustomerKycError => "CUSTOMER_KYC_ERROR",
        }
    }

    /// Reads a wire name, accepting the guide's `..._SDK_FLOW_DONE` alias. `None` for a type
    /// this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        if name == SDK_FLOW_DONE_ALIAS {
            return Some(EventType::CustomerKycSdkFlowCompleted);
        }
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        EventType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type \"{name}\"")))
    }
}

impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|t| t.as_str())))
            .into()
    }
}

impl ToSchema for EventType {}

/// The `data` of every known event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    pub customer_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboarding_id: Option<Uuid>,
    /// The onboarding's status after the change (on CUSTOMER_KYC_FINISHED: APPROVED or
    /// DENIED_COMPLIANCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OnboardingStatus>,
    /// On CUSTOMER_KYC_RESTARTED: the onboarding the rerun replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_onboarding_id: Option<Uuid>,
}

impl EventData {
    pub fn customer(customer_id: Uuid) -> Self {
        Self {
            customer_id,
            onboarding_id: None,
            status: None,
            previous_onboarding_id: None,
        }
    }
}

/// What an event says: a known type with typed data, or an unknown type kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    Known { event_type: EventType, data: EventData },
    Unknown { event_type: String, data: Value },
}

/// A webhook event as delivered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub struct WebhookEvent {
    pub id: String,
    pub created_at: OffsetDateTime,
    pub body: EventBody,
}

impl WebhookEvent {
    pub fn new(id: String, created_at: OffsetDateTime, event_type: EventType, data: EventData) -> Self {
        Self {
            id,
            created_at,
            body: EventBody::Known { event_type, data },
        }
    }

    pub fn event_type(&self) -> Option<EventType> {
        match &self.body {
            EventBody::Known { event_type, .. } => Some(*event_type),
            EventBody::Unknown { .. } => None,
        }
    }

    /// The type as it is spelled on the wire (canonical for known types).
    pub fn event_type_name(&self) -> &str {
        match &self.body {
            EventBody::Known { event_type, .. } => event_type.as_str(),
            EventBody::Unknown { event_type, .. } => event_type,
        }
    }

    pub fn data(&self) -> Option<&EventData> {
        match &self.body {
            EventBody::Known { data, .. } => Some(data),
            EventBody::Unknown { .. } => None,
        }
    }

    /// The customer the event is about, when it names one (unknown types too, if their data
    /// has a `customerId`).
    pub fn customer_id(&self) -> Option<Uuid> {
        match &self.body {
            EventBody::Known { data, .. } => Some(data.customer_id),
            EventBody::Unknown { data, .. } => data
                .get("customerId")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok()),
        }
    }
}

/// The envelope as it is on the wire (and in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookEvent)]
pub struct RawEvent {
    pub id: String,
    #[schema(example = "CUSTOMER_KYC_STARTED")]
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[schema(value_type = EventData)]
    pub data: Value,
}

/// Why a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    #[error("the event id is empty")]
    EmptyId,
    #[error("the data of {event_type} is not valid: {source}")]
    InvalidData {
        event_type: EventType,
        source: serde_json::Error,
    },
}

impl TryFrom<RawEvent> for WebhookEvent {
    type Error = EventParseError;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        if raw.id.trim().is_empty() {
            return Err(EventParseError::EmptyId);
        }
        let body = match EventType::parse(&raw.event_type) {
            Some(event_type) => {
                let data = serde_json::from_value(raw.data)
                    .map_err(|source| EventParseError::InvalidData { event_type, source })?;
                EventBody::Known { event_type, data }
            }
            None => EventBody::Unknown {
                event_type: raw.event_type,
                data: raw.data,
            },
        };
        Ok(WebhookEvent {
            id: raw.id,
            created_at: raw.created_at,
            body,
        })
    }
}

/// Serialized through the wire envelope; data that cannot be serialized is an error, never
/// an event shipped with `data: null`.
impl Serialize for WebhookEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawEvent::try_from(self.clone())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl TryFrom<WebhookEvent> for RawEvent {
    type Error = serde_json::Error;

    fn try_from(event: WebhookEvent) -> Result<Self, Self::Error> {
        let (event_type, data) = match event.body {
            EventBody::Known { event_type, data } => {
                (event_type.as_str().to_owned(), serde_json::to_value(data)?)
            }
            EventBody::Unknown { event_type, data } => (event_type, data),
        };
        Ok(RawEvent {
            id: event.id,
            event_type,
            created_at: event.created_at,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(event_type: &str, data: Value) -> Value {
        json!({
            "id": "msg_2p5jXN8AQM9LWM0D4loKWxJek",
            "eventType": event_type,
            "createdAt": "2026-11-27T10:00:00Z",
            "data": data,
        })
    }

    #[test]
    fn sdk_flow_done_is_read_as_completed_and_written_canonically() {
        let data = json!({"customerId": "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11"});
        let event: WebhookEvent =
            serde_json::from_value(envelope("CUSTOMER_KYC_SDK_FLOW_DONE", data.clone())).unwrap();
        assert_eq!(event.event_type(), Some(EventType::CustomerKycSdkFlowCompleted));
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(written, envelope("CUSTOMER_KYC_SDK_FLOW_COMPLETED", data));
    }

    #[test]
    fn unknown_types_are_kept_with_their_data() {
        let data = json!({"customerId": "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11", "accountId": 7});
        let input = envelope("CUSTOMER_ACCOUNT_OPENED", data);
        let event: WebhookEvent = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(event.event_type(), None);
        assert_eq!(event.event_type_name(), "CUSTOMER_ACCOUNT_OPENED");
        assert_eq!(
            event.customer_id().map(|id| id.to_string()).as_deref(),
            Some("0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11")
        );
        assert_eq!(serde_json::to_value(&event).unwrap(), input);
    }

    #[test]
    fn known_types_with_broken_data_and_empty_ids_are_errors() {
        let err = serde_json::from_value::<WebhookEvent>(envelope(
            "CUSTOMER_KYC_FINISHED",
            json!({"customerId": "not-a-uuid"}),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("CUSTOMER_KYC_FINISHED"), "{err}");
        let mut empty_id = envelope("CUSTOMER_CREATED", json!({"customerId": Uuid::nil()}));
        empty_id["id"] = json!("");
        assert!(serde_json::from_value::<WebhookEvent>(empty_id).is_err());
    }

    #[test]
    fn every_type_round_trips_by_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(serde_json::from_value::<EventType>(json).unwrap(), t);
        }
    }
}
