//! The compliance evaluator against the workflow machine, driven as the sandbox drives it
//! (`sandbox/work.rs`): facts change and their event follows with the readiness derived from
//! the facts under the strategy in effect; workflow events arrive in any order (refused ones
//! change nothing). After every step, the status `evaluate` computes proves the machine's
//! stage: `Stage::from_status(evaluate(..)) == workflow.stage()`. That is the relation the
//! dashboard's tracker relies on (`WorkflowView::from_status` is the inverse of `evaluate`),
//! checked here on the rest of the view too: the onboarding, the SDK links while live, and on
//! the SDK path whether identity was verified.
#![no_main]

use arbitrary::Arbitrary;
use kycdash::domain::{
    Address, Customer, CustomerProfile, DocumentType, DocumentsOnFile, Kyc, OnboardingRef, SdkLink, Stage,
    Strategy, Workflow, WorkflowEvent, WorkflowView, evaluate, readiness,
};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

/// A text field's value: absent, blank (which the checks count as missing), or set.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Text {
    Absent,
    Empty,
    Blank,
    Set,
}

impl Text {
    fn value(self, set: &str) -> Option<String> {
        match self {
            Text::Absent => None,
            Text::Empty => Some(String::new()),
            Text::Blank => Some("  ".into()),
            Text::Set => Some(set.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Field {
    FirstName,
    LastName,
    BirthDate,
    DocumentNumber,
    Street1,
    Street2,
    City,
    Zip,
    Country,
    Nationality,
    Occupation,
    Ip,
    /// `kyc: null`, `mainAddress: null`.
    NoKyc,
    NoAddress,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Strat {
    Sdk,
    External,
}

impl Strat {
    fn strategy(self) -> Strategy {
        match self {
            Strat::Sdk => Strategy::CfKyc,
            Strat::External => Strategy::ExternalKyc,
        }
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Step {
    Profile(Field, Text),
    Document(u8),
    /// The tenant's default strategy changes (no event: nothing about the customer did).
    Default(Strat),
    KycStarted {
        id: u8,
        strategy: Strat,
        link: Option<i8>,
    },
    Restarted {
        id: u8,
        strategy: Strat,
        link: Option<i8>,
    },
    SdkCompleted,
    SentToReview,
    ReviewApproved,
    ReviewDenied,
    DecisionApproved,
    DecisionDenied,
    SdkExpired,
    VerificationError,
    /// The clock moves on (minutes): links expire.
    Later(u8),
}

#[derive(Debug, Arbitrary)]
struct Input {
    default: Strat,
    steps: Vec<Step>,
}

fn address(kyc: &mut Kyc) -> &mut Address {
    kyc.main_address.get_or_insert_with(Address::default)
}

fn set(customer: &mut Customer, field: Field, text: Text) {
    let kyc = customer.kyc.get_or_insert_with(Kyc::default);
    match field {
        Field::FirstName => kyc.first_name = text.value("Ada"),
        Field::LastName => kyc.last_name = text.value("Lovelace"),
        Field::BirthDate => kyc.birth_date = text.value("1990-04-12"),
        Field::DocumentNumber => kyc.document_number = text.value("X1"),
        Field::Street1 => address(kyc).street1 = text.value("1 Main St"),
        Field::Street2 => address(kyc).street2 = text.value("Flat 2"),
        Field::City => address(kyc).city_county = text.value("New York"),
        Field::Zip => address(kyc).zip = text.value("10001"),
        Field::Country => address(kyc).country_code = text.value("US"),
        Field::Nationality => kyc.nationality = text.value("US"),
        Field::Occupation => kyc.occupation = text.value("11"),
        Field::Ip => customer.ip_address = text.value("203.0.113.7"),
        Field::NoKyc => customer.kyc = None,
        Field::NoAddress => kyc.main_address = None,
    }
}

fn onboarding(
    id: u8,
    strategy: Strat,
    link: Option<i8>,
    now: OffsetDateTime,
) -> (OnboardingRef, Option<SdkLink>) {
    let onboarding = OnboardingRef {
        id: Uuid::from_u128(u128::from(id) + 1),
        strategy: strategy.strategy(),
    };
    let sdk = link.map(|minutes| SdkLink {
        link: "http://127.0.0.1:8080/sdk/t".into(),
        expires_at: now + Duration::minutes(i64::from(minutes)),
    });
    (onboarding, sdk)
}

fuzz_target!(|input: Input| {
    let mut default = input.default.strategy();
    let mut now = NOW;
    let mut customer = Customer::new(Uuid::from_u128(7), CustomerProfile::default(), now);
    let mut documents = DocumentsOnFile::default();
    let mut workflow = Workflow::new(customer.id, readiness(&customer, &documents, default));
    for step in input.steps.iter().take(64) {
        let event = match *step {
            Step::Profile(field, text) => {
                set(&mut customer, field, text);
                Some(WorkflowEvent::ProfileChanged)
            }
            Step::Document(n) => {
                documents.insert(DocumentType::ALL[usize::from(n) % DocumentType::ALL.len()]);
                Some(WorkflowEvent::DocumentReceived)
            }
            Step::Default(strategy) => {
                default = strategy.strategy();
                None
            }
            Step::KycStarted { id, strategy, link } => {
                let (onboarding, sdk) = onboarding(id, strategy, link, now);
                Some(WorkflowEvent::KycStarted { onboarding, sdk })
            }
            Step::Restarted { id, strategy, link } => {
                let (onboarding, sdk) = onboarding(id, strategy, link, now);
                Some(WorkflowEvent::Restarted { onboarding, sdk })
            }
            Step::SdkCompleted => Some(WorkflowEvent::SdkCompleted),
            Step::SentToReview => Some(WorkflowEvent::SentToReview),
            Step::ReviewApproved => Some(WorkflowEvent::ReviewApproved),
            Step::ReviewDenied => Some(WorkflowEvent::ReviewDenied),
            Step::DecisionApproved => Some(WorkflowEvent::DecisionApproved),
            Step::DecisionDenied => Some(WorkflowEvent::DecisionDenied),
            Step::SdkExpired => Some(WorkflowEvent::SdkExpired),
            Step::VerificationError => Some(WorkflowEvent::VerificationError),
            Step::Later(minutes) => {
                now += Duration::minutes(i64::from(minutes));
                None
            }
        };
        if let Some(event) = event {
            // As the sandbox does: a new onboarding's own strategy decides its requirements.
            let strategy = match &event {
                WorkflowEvent::KycStarted { onboarding, .. }
                | WorkflowEvent::Restarted { onboarding, .. } => onboarding.strategy,
                _ => workflow.view().strategy().unwrap_or(default),
            };
            let _ = workflow.handle(&event, readiness(&customer, &documents, strategy));
        }
        let view = workflow.view();
        let status = evaluate(&customer, &documents, &view, default, now);
        assert_eq!(
            Stage::from_status(&status),
            workflow.stage(),
            "\n{view:?}\n{status:#?}\n{customer:?}\n{documents:?}"
        );
        let proved = WorkflowView::from_status(&status);
        assert_eq!(proved.onboarding, view.onboarding, "\n{view:?}\n{status:#?}");
        // Whether identity was verified shows in the SDK check, which only the SDK path has:
        // on the external path that check passes as not required whatever the machine says.
        if view.strategy() == Some(Strategy::CfKyc) {
            assert_eq!(
                proved.identity_verified, view.identity_verified,
                "\n{view:?}\n{status:#?}"
            );
        }
        let live = view.sdk.clone().filter(|link| link.expires_at > now);
        if view.stage == Stage::AwaitingSdk {
            assert_eq!(proved.sdk, live, "\n{view:?}\n{status:#?}");
        }
    }
});
