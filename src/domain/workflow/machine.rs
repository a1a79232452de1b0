//! The statig machine itself: its states and superstates, what each event does in each, and
//! the plain data each state stands for. [`super::Workflow`] is how the rest of the crate
//! drives it.

use super::*;

/// The refusal a handler records; [`Workflow::handle`] turns it into a [`WorkflowError`]
/// naming the event and the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    ProfileIncomplete,
    AlreadyStarted,
    RerunNotAllowed,
    Finished,
    NotApplicable,
    StrategyMismatch(Strategy),
    RerunWithoutSdk(Strategy),
}

/// What a handler sees besides the event (the readiness) and what it leaves behind (the
/// events produced, or a refusal).
#[derive(Debug, Default)]
pub struct WorkflowContext {
    pub(super) readiness: Readiness,
    pub(super) produced: Vec<ProducedEvent>,
    pub(super) refusal: Option<Refusal>,
}

impl WorkflowContext {
    fn refuse(&mut self, refusal: Refusal) -> Outcome<MachineState> {
        self.refusal = Some(refusal);
        Handled
    }
}

/// The shared storage of the machine: whose workflow it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingMachine {
    pub(super) customer_id: Uuid,
}

#[state_machine(
    initial = "MachineState::needs_profile()",
    state(
        name = "MachineState",
        derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)
    ),
    superstate(name = "MachineSuperstate", derive(Debug))
)]
impl OnboardingMachine {
    // ---- before KYC ---------------------------------------------------------------------

    #[superstate]
    fn pre_kyc(&mut self, context: &mut WorkflowContext, event: &WorkflowEvent) -> Outcome<MachineState> {
        match event {
            WorkflowEvent::KycStarted { onboarding, sdk } => {
                if !context.readiness.kyc_data_present {
                    return context.refuse(Refusal::ProfileIncomplete);
                }
                self.start(context, onboarding, sdk)
            }
            WorkflowEvent::Restarted { .. } => context.refuse(Refusal::RerunNotAllowed),
            _ => context.refuse(Refusal::NotApplicable),
        }
    }

    #[state(superstate = "pre_kyc")]
    fn needs_profile(context: &mut WorkflowContext, event: &WorkflowEvent) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() && context.readiness.kyc_data_present => {
                Transition(MachineState::ready_to_start())
            }
            e if e.is_fact() => Handled,
            _ => Super,
        }
    }

    #[state(superstate = "pre_kyc")]
    fn ready_to_start(context: &mut WorkflowContext, event: &WorkflowEvent) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() && !context.readiness.kyc_data_present => {
                Transition(MachineState::needs_profile())
            }
            e if e.is_fact() => Handled,
            _ => Super,
        }
    }

    // ---- KYC in progress ----------------------------------------------------------------

    #[superstate]
    fn in_progress(
        &mut self,
        onboarding: &OnboardingRef,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() => Handled,
            WorkflowEvent::KycStarted { .. } => context.refuse(Refusal::AlreadyStarted),
            WorkflowEvent::Restarted { .. } => context.refuse(Refusal::RerunNotAllowed),
            // Before identity is verified (the states that know it was verified say so).
            WorkflowEvent::VerificationError => self.verification_error(context, onboarding, false),
            _ => context.refuse(Refusal::NotApplicable),
        }
    }

    #[superstate(superstate = "in_progress")]
    fn verification(onboarding: &OnboardingRef) -> Outcome<MachineState> {
        let _ = onboarding;
        Super
    }

    #[state(superstate = "verification")]
    fn awaiting_sdk(
        &mut self,
        onboarding: &OnboardingRef,
        sdk: &Option<SdkLink>,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        let _ = sdk;
        match event {
            WorkflowEvent::SdkCompleted => {
                let next = Self::after_identity_verified(context, onboarding);
                self.produce_for(
                    context,
                    EventType::CustomerKycSdkFlowCompleted,
                    onboarding,
                    OnboardingStatus::Processing,
                );
                Transition(next)
            }
            WorkflowEvent::SentToReview => {
                self.produce_for(
                    context,
                    EventType::CustomerKycSdkFlowCompleted,
                    onboarding,
                    OnboardingStatus::PendingReview,
                );
                Transition(MachineState::in_review(*onboarding))
            }
            WorkflowEvent::SdkExpired => {
                self.produce_for(
                    context,
                    EventType::CustomerKycSdkExpired,
                    onboarding,
                    OnboardingStatus::Expired,
                );
                Transition(MachineState::expired(*onboarding))
            }
            _ => Super,
        }
    }

    #[state(superstate = "verification")]
    fn in_review(
        &mut self,
        onboarding: &OnboardingRef,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        match event {
            WorkflowEvent::ReviewApproved if context.readiness.requirements_met => {
                self.produce_for(
                    context,
                    EventType::CustomerKycFinished,
                    onboarding,
                    OnboardingStatus::Approved,
                );
                Transition(MachineState::approved(*onboarding))
            }
            WorkflowEvent::ReviewApproved => Transition(MachineState::collecting_requirements(*onboarding)),
            WorkflowEvent::ReviewDenied => {
                self.produce_for(
                    context,
                    EventType::CustomerKycFinished,
                    onboarding,
                    OnboardingStatus::DeniedCompliance,
                );
                Transition(MachineState::denied(*onboarding, false))
            }
            _ => Super,
        }
    }

    #[state(superstate = "in_progress")]
    fn collecting_requirements(
        &mut self,
        onboarding: &OnboardingRef,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() && context.readiness.requirements_met => {
                Transition(MachineState::awaiting_decision(*onboarding))
            }
            WorkflowEvent::VerificationError => self.verification_error(context, onboarding, true),
            _ => Super,
        }
    }

    #[state(superstate = "in_progress")]
    fn awaiting_decision(
        &mut self,
        onboarding: &OnboardingRef,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() && !context.readiness.requirements_met => {
                Transition(MachineState::collecting_requirements(*onboarding))
            }
            WorkflowEvent::DecisionApproved => {
                self.produce_for(
                    context,
                    EventType::CustomerKycFinished,
                    onboarding,
                    OnboardingStatus::Approved,
                );
                Transition(MachineState::approved(*onboarding))
            }
            WorkflowEvent::DecisionDenied => {
                self.produce_for(
                    context,
                    EventType::CustomerKycFinished,
                    onboarding,
                    OnboardingStatus::DeniedCompliance,
                );
                Transition(MachineState::denied(*onboarding, true))
            }
            WorkflowEvent::VerificationError => self.verification_error(context, onboarding, true),
            _ => Super,
        }
    }

    // ---- after KYC ----------------------------------------------------------------------

    #[state]
    fn expired(
        &mut self,
        onboarding: &OnboardingRef,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() => Handled,
            WorkflowEvent::Restarted {
                onboarding: next,
                sdk,
            } => {
                if !next.strategy.uses_sdk() {
                    return context.refuse(Refusal::RerunWithoutSdk(next.strategy));
                }
                self.produce(
                    context,
                    EventType::CustomerKycRestarted,
                    EventData {
                        customer_id: self.customer_id,
                        onboarding_id: Some(next.id),
                        status: Some(OnboardingStatus::Processing),
                        previous_onboarding_id: Some(onboarding.id),
                    },
                );
                self.produce_for(
                    context,
                    EventType::CustomerKycSdkFlowRequired,
                    next,
                    OnboardingStatus::Processing,
                );
                Transition(MachineState::awaiting_sdk(*next, sdk.clone()))
            }
            WorkflowEvent::KycStarted { .. } => context.refuse(Refusal::AlreadyStarted),
            _ => context.refuse(Refusal::NotApplicable),
        }
    }

    /// `identity_verified`: what was verified before the error stays verified.
    #[state]
    fn errored(
        onboarding: &OnboardingRef,
        identity_verified: &bool,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        let _ = (onboarding, identity_verified);
        Self::after_the_end(context, event)
    }

    #[superstate]
    fn finished(
        onboarding: &OnboardingRef,
        context: &mut WorkflowContext,
        event: &WorkflowEvent,
    ) -> Outcome<MachineState> {
        let _ = onboarding;
        Self::after_the_end(context, event)
    }

    #[state(superstate = "finished")]
    fn approved(onboarding: &OnboardingRef) -> Outcome<MachineState> {
        let _ = onboarding;
        Super
    }

    #[state(superstate = "finished")]
    fn denied(onboarding: &OnboardingRef, identity_verified: &bool) -> Outcome<MachineState> {
        let _ = (onboarding, identity_verified);
        Super
    }
}

impl OnboardingMachine {
    fn verification_error(
        &mut self,
        context: &mut WorkflowContext,
        onboarding: &OnboardingRef,
        identity_verified: bool,
    ) -> Outcome<MachineState> {
        self.produce_for(
            context,
            EventType::CustomerKycError,
            onboarding,
            OnboardingStatus::Error,
        );
        Transition(MachineState::errored(*onboarding, identity_verified))
    }

    fn start(
        &mut self,
        context: &mut WorkflowContext,
        onboarding: &OnboardingRef,
        sdk: &Option<SdkLink>,
    ) -> Outcome<MachineState> {
        if !onboarding.strategy.uses_sdk() && sdk.is_some() {
            return context.refuse(Refusal::StrategyMismatch(onboarding.strategy));
        }
        self.produce_for(
            context,
            EventType::CustomerKycStarted,
            onboarding,
            OnboardingStatus::Processing,
        );
        if onboarding.strategy.uses_sdk() {
            self.produce_for(
                context,
                EventType::CustomerKycSdkFlowRequired,
                onboarding,
                OnboardingStatus::Processing,
            );
            Transition(MachineState::awaiting_sdk(*onboarding, sdk.clone()))
        } else {
            // Without an SDK, identity is the client's own provider's business: the
            // onboarding goes straight to its requirements.
            Transition(Self::after_identity_verified(context, onboarding))
        }
    }

    /// Where an onboarding goes once identity is verified.
    fn after_identity_verified(context: &WorkflowContext, onboarding: &OnboardingRef) -> MachineState {
        if context.readiness.requirements_met {
            MachineState::awaiting_decision(*onboarding)
        } else {
            MachineState::collecting_requirements(*onboarding)
        }
    }

    fn after_the_end(context: &mut WorkflowContext, event: &WorkflowEvent) -> Outcome<MachineState> {
        match event {
            e if e.is_fact() => Handled,
            WorkflowEvent::KycStarted { .. } => context.refuse(Refusal::AlreadyStarted),
            WorkflowEvent::Restarted { .. } => context.refuse(Refusal::RerunNotAllowed),
            _ => context.refuse(Refusal::Finished),
        }
    }

    fn produce_for(
        &self,
        context: &mut WorkflowContext,
        event_type: EventType,
        onboarding: &OnboardingRef,
        status: OnboardingStatus,
    ) {
        let data = EventData {
            customer_id: self.customer_id,
            onboarding_id: Some(onboarding.id),
            status: Some(status),
            previous_onboarding_id: None,
        };
        self.produce(context, event_type, data);
    }

    fn produce(&self, context: &mut WorkflowContext, event_type: EventType, data: EventData) {
        context.produced.push(ProducedEvent { event_type, data });
    }
}

impl MachineState {
    pub(super) fn view(&self) -> WorkflowView {
        let (stage, onboarding, sdk, identity_verified) = match self {
            MachineState::NeedsProfile {} => (Stage::NeedsProfile, None, None, false),
            MachineState::ReadyToStart {} => (Stage::ReadyToStart, None, None, false),
            MachineState::AwaitingSdk { onboarding, sdk } => {
                (Stage::AwaitingSdk, Some(*onboarding), sdk.clone(), false)
            }
            MachineState::InReview { onboarding } => (Stage::InReview, Some(*onboarding), None, false),
            MachineState::CollectingRequirements { onboarding } => {
                (Stage::CollectingRequirements, Some(*onboarding), None, true)
            }
            MachineState::AwaitingDecision { onboarding } => {
                (Stage::AwaitingDecision, Some(*onboarding), None, true)
            }
            MachineState::Expired { onboarding } => (Stage::Expired, Some(*onboarding), None, false),
            MachineState::Errored {
                onboarding,
                identity_verified,
            } => (Stage::Errored, Some(*onboarding), None, *identity_verified),
            MachineState::Approved { onboarding } => (Stage::Approved, Some(*onboarding), None, true),
            MachineState::Denied {
                onboarding,
                identity_verified,
            } => (Stage::Denied, Some(*onboarding), None, *identity_verified),
        };
        WorkflowView {
            stage,
            onboarding,
            sdk,
            identity_verified,
        }
    }
}

impl MachineState {
    /// The state a stored view stands for. Stages after KYC starts need an onboarding; a view
    /// without one gets the nil id (an onboarding the data did not name).
    pub(super) fn of_view(view: &WorkflowView) -> MachineState {
        let onboarding = view.onboarding.unwrap_or(OnboardingRef {
            id: Uuid::nil(),
            strategy: Strategy::CfKyc,
        });
        match view.stage {
            Stage::NeedsProfile => MachineState::needs_profile(),
            Stage::ReadyToStart => MachineState::ready_to_start(),
            Stage::AwaitingSdk => MachineState::awaiting_sdk(onboarding, view.sdk.clone()),
            Stage::InReview => MachineState::in_review(onboarding),
            Stage::CollectingRequirements => MachineState::collecting_requirements(onboarding),
            Stage::AwaitingDecision => MachineState::awaiting_decision(onboarding),
            Stage::Expired => MachineState::expired(onboarding),
            Stage::Errored => MachineState::errored(onboarding, view.identity_verified),
            Stage::Approved => MachineState::approved(onboarding),
            Stage::Denied => MachineState::denied(onboarding, view.identity_verified),
        }
    }
}
