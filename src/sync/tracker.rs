//! The tracker: each customer's onboarding mirrored in the domain's own statig machine, driven
//! by what the engine observes. Webhooks move it where the move is legal; every status
//! snapshot reconciles it (the snapshot wins), so missed, duplicated or out-of-order webhooks
//! never leave it wrong. Pure: no I/O, time passed in.

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    CheckType, ComplianceStatus, Readiness, Stage, Strategy, WebhookEvent, Workflow, WorkflowEvent,
    WorkflowView, observed_event,
};

/// One customer as the tracker knows them.
#[derive(Debug, Clone)]
struct Tracked {
    /// The machine: the last snapshot, moved on by the webhooks since.
    workflow: Workflow,
    /// The stage the last snapshot proved (what was last reported).
    reported: Option<Stage>,
    /// When the customer entered `reported`.
    since: OffsetDateTime,
    strategy: Strategy,
    readiness: Readiness,
    /// Webhooks that moved the machine since the last snapshot.
    moved_by_webhooks: u32,
}

/// What a snapshot changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The stage last reported; `None` the first time the customer is seen.
    pub from: Option<Stage>,
    pub to: Stage,
    pub view: WorkflowView,
    /// When the customer entered `to`.
    pub since: OffsetDateTime,
    /// The webhooks had said `claimed`, which this snapshot contradicts.
    pub drift: Option<Drift>,
}

impl Reconciled {
    pub fn changed(&self) -> bool {
        self.from != Some(self.to)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drift {
    pub claimed: Stage,
    pub seen: Stage,
}

#[derive(Debug, Default)]
pub struct Tracker {
    customers: HashMap<Uuid, Tracked>,
}

impl Tracker {
    /// Restores a customer from the cache (the stage last reported and since when).
    pub fn restore(&mut self, customer_id: Uuid, view: &WorkflowView, since: OffsetDateTime) {
        self.customers.insert(
            customer_id,
            Tracked {
                workflow: Workflow::restore(customer_id, view),
                reported: Some(view.stage),
                since,
                strategy: view.strategy().unwrap_or(Strategy::CfKyc),
                readiness: Readiness::NOTHING,
                moved_by_webhooks: 0,
            },
        );
    }

    /// The stage last reported by a snapshot.
    pub fn stage(&self, customer_id: Uuid) -> Option<Stage> {
        self.customers.get(&customer_id).and_then(|t| t.reported)
    }

    /// The stage the machine is in now (the snapshot moved on by webhooks).
    pub fn claimed(&self, customer_id: Uuid) -> Option<Stage> {
        self.customers.get(&customer_id).map(|t| t.workflow.stage())
    }

    pub fn since(&self, customer_id: Uuid) -> Option<OffsetDateTime> {
        self.customers.get(&customer_id).map(|t| t.since)
    }

    /// Every customer's stage last reported, and since when.
    pub fn reported(&self) -> impl Iterator<Item = (Stage, OffsetDateTime)> + '_ {
        self.customers
            .values()
            .filter_map(|t| t.reported.map(|stage| (stage, t.since)))
    }

    /// Applies a webhook where the move is legal. Returns the stage it moved the machine to,
    /// or `None` when it did not move it (not legal from here, a fact, or a customer the
    /// tracker has not seen yet: the pull every webhook triggers will tell).
    pub fn on_webhook(&mut self, event: &WebhookEvent) -> Option<Stage> {
        let tracked = self.customers.get_mut(&event.customer_id()?)?;
        let stage = tracked.workflow.stage();
        let workflow_event = observed_event(stage, event, tracked.strategy)?;
        // A finished-approved webhook proves every requirement was met.
        let readiness = match workflow_event {
            WorkflowEvent::ReviewApproved | WorkflowEvent::DecisionApproved => Readiness::ALL,
            _ => tracked.readiness,
        };
        tracked.workflow.handle(&workflow_event, readiness).ok()?;
        let moved_to = tracked.workflow.stage();
        if moved_to == stage {
            return None;
        }
        tracked.moved_by_webhooks += 1;
        Some(moved_to)
    }

    /// Reconciles with a status snapshot: the snapshot wins. `superseded`: a webhook arrived
    /// while the snapshot was read, so it may be older than what the webhooks said; the stage
    /// it proves is reported, but the machine keeps what the webhooks claimed, and the pull
    /// that follows is the one compared with them (and may find drift).
    pub fn on_snapshot(
        &mut self,
        customer_id: Uuid,
        status: &ComplianceStatus,
        now: OffsetDateTime,
        superseded: bool,
    ) -> Reconciled {
        let view = WorkflowView::from_status(status);
        let readiness = readiness_of(status);
        let strategy = view.strategy().or(status.strategy).unwrap_or(Strategy::CfKyc);
        let tracked = self.customers.entry(customer_id).or_insert_with(|| Tracked {
            workflow: Workflow::restore(customer_id, &view),
            reported: None,
            since: now,
            strategy,
            readiness,
            moved_by_webhooks: 0,
        });
        let claimed = tracked.workflow.stage();
        let drift = (!superseded && tracked.moved_by_webhooks > 0 && contradicts(claimed, view.stage))
            .then_some(Drift {
                claimed,
                seen: view.stage,
            });
        let from = tracked.reported;
        if from != Some(view.stage) {
            tracked.since = now;
        }
        if !superseded {
            tracked.workflow.observe(&view);
            tracked.moved_by_webhooks = 0;
        }
        tracked.reported = Some(view.stage);
        tracked.strategy = strategy;
        tracked.readiness = readiness;
        Reconciled {
            from,
            to: view.stage,
            view,
            since: tracked.since,
            drift,
        }
    }
}

/// What the snapshot says of the customer's data, for the moves webhooks make.
fn readiness_of(status: &ComplianceStatus) -> Readiness {
    const ABOUT_THE_WORKFLOW: [CheckType; 3] = [
        CheckType::KycStarted,
        CheckType::SdkVerificationCompleted,
        CheckType::KycStatus,
    ];
    Readiness {
        kyc_data_present: status.check(CheckType::KycDataPresent).is_some_and(|c| c.passed),
        requirements_met: status
            .checks
            .iter()
            .filter(|c| !ABOUT_THE_WORKFLOW.contains(&c.check_type))
            .all(|c| c.passed || !c.required),
    }
}

/// Whether a snapshot in `seen` contradicts webhooks that led to `claimed`. A snapshot ahead
/// of the webhooks (a stage reachable from `claimed`) is lag — a webhook still on its way, or
/// a change no webhook announces — not a contradiction.
pub fn contradicts(claimed: Stage, seen: Stage) -> bool {
    claimed != seen && !crate::domain::workflow::reachable(claimed).contains(&seen)
}

#[cfg(test)]
mod tests;
