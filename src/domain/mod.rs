//! The domain core: pure rules of customers, documents, compliance checks, webhook events and
//! the onboarding workflow. Nothing here touches the network, the disk or the clock; time is
//! always passed in, so every rule is testable with plain values.

pub mod advice;
pub mod compliance;
pub mod customer;
pub mod document;
pub mod event;
pub mod simulation;
pub mod vocabulary;
pub mod workflow;

pub use advice::{Advice, advise, fatca_form};
pub use compliance::{
    Check, CheckType, ComplianceStatus, NextAction, OnboardingStatus, Strategy, Summary, evaluate, readiness,
    requirements_met,
};
pub use customer::{Address, Customer, CustomerProfile, FieldError, Kyc, ValidationErrors};
pub use document::{
    ContentFormat, DocumentError, DocumentType, DocumentsOnFile, MAX_DOCUMENT_BYTES, check_size,
};
pub use event::{EventBody, EventData, EventType, WebhookEvent};
pub use simulation::{SimulateAction, simulated_event, simulation_applies};
pub use workflow::{
    OnboardingRef, ProducedEvent, Readiness, SdkLink, Stage, Workflow, WorkflowError, WorkflowEvent,
    WorkflowView, observed_event,
};
