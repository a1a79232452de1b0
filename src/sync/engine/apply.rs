//! What each observation changes in the model: a status snapshot (the truth, reconciled with
//! the tracker), a verified webhook (recorded before it is acknowledged) and an upload.

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::alerts::{self, Countdown};
use super::pulls::Pull;
use super::{AlertKind, EngineEvent, Model};
use crate::domain::{ComplianceStatus, Customer, DocumentType, Stage, WebhookEvent};
use crate::sync::cache::{CustomerSummary, StatusSummary, Write};
use crate::sync::observation::{Ack, Observation, UploadResult};
use crate::sync::tracker::Reconciled;

impl Model {
    /// A status snapshot: keeps the customer and status, reconciles the tracker, tells what
    /// changed and schedules the next poll. `superseded`: a webhook arrived while it was read,
    /// and a newer pull follows; it is applied all the same (the truth when it was read), but
    /// cannot tell drift from the webhook's news.
    pub(super) fn snapshot(
        &mut self,
        id: Uuid,
        customer: Option<Customer>,
        status: ComplianceStatus,
        superseded: bool,
    ) {
        let now = OffsetDateTime::now_utc();
        let mut publish = false;
        if let Some(customer) = customer {
            match CustomerSummary::of(&customer) {
                Ok(kept) => publish = self.keep_customer(kept),
                Err(err) => tracing::error!("cannot keep customer {id}: {err}"),
            }
        }
        let Some(entry) = self.customers.get_mut(&id) else {
            return;
        };
        entry.checked_at = Some(now);
        let reconciled = self.tracker.on_snapshot(id, &status, now, superseded);
        self.rewrite_lost_workflow(id, &reconciled);
        publish |= self.keep_status(id, &status, now);
        // The row first, so whoever reads the events below already knows the customer.
        if publish || reconciled.changed() {
            self.publish([id]);
        }
        if let Some(drift) = &reconciled.drift {
            self.emit(EngineEvent::Alert {
                customer_id: id,
                alert: AlertKind::Drift,
                detail: alerts::drift_detail(drift),
            });
        }
        if reconciled.changed() {
            self.stage_changed(id, &reconciled, &status, now);
        }
        let countdown = Countdown {
            stage: reconciled.to,
            since: reconciled.since,
            sdk_expires: status.sdk.as_ref().map(|s| s.expires_at),
        };
        self.countdown(id, countdown);
        self.schedule_next(id, reconciled.to);
    }

    /// Keeps a status that differs from the one known; returns whether it did.
    fn keep_status(&mut self, id: Uuid, status: &ComplianceStatus, now: OffsetDateTime) -> bool {
        let (summary, body) = match StatusSummary::of(status) {
            Ok(kept) => kept,
            Err(err) => {
                tracing::error!("cannot keep the status of {id}: {err}");
                return false;
            }
        };
        let Some(entry) = self.customers.get_mut(&id) else {
            return false;
        };
        if entry
            .status
            .as_ref()
            .is_some_and(|known| known.hash == summary.hash)
        {
            // Unchanged, but read now: after a restart with the API down, its age (and
            // `status`'s "as of") is that of this read, not of its last change.
            self.writer_write(Write::Checked {
                customer_id: id,
                at: now,
            });
            return false;
        }
        let summary = Arc::new(summary);
        entry.status = Some(summary.clone());
        self.writer_write(Write::Status {
            customer_id: id,
            body,
            summary,
            fetched_at: now,
        });
        true
    }

    /// The customer moved to another stage: kept, put on their timeline and said.
    fn stage_changed(
        &mut self,
        id: Uuid,
        reconciled: &Reconciled,
        status: &ComplianceStatus,
        now: OffsetDateTime,
    ) {
        self.writer_write(Write::Workflow {
            customer_id: id,
            view: reconciled.view.clone(),
            since: reconciled.since,
        });
        self.writer_write(Write::Timeline {
            customer_id: id,
            at: now,
            kind: crate::sync::timeline::STAGE,
            text: crate::sync::timeline::stage_text(reconciled.from, reconciled.to),
        });
        self.alerted.retain(|(customer, _)| *customer != id);
        if let Some(sweep) = &mut self.sweeps.current {
            sweep.changed += 1;
        }
        let external_id = self
            .customers
            .get(&id)
            .and_then(|entry| entry.customer.external_id.as_deref().map(String::from));
        self.emit(EngineEvent::StageChanged {
            customer_id: id,
            external_id,
            from: reconciled.from,
            to: reconciled.to,
            onboarding_status: status.onboarding_status,
            next_action: status.next_action,
            is_compliant: status.is_compliant,
        });
        if reconciled.to == Stage::Errored && reconciled.from.is_some() {
            self.alert(
                id,
                AlertKind::VerificationError,
                alerts::VERIFICATION_ERROR.into(),
            );
        }
    }

    /// A verified webhook: applied once per event id, acknowledged only once committed, and
    /// followed by a pull of its customer's status.
    pub(super) fn webhook(
        &mut self,
        event: WebhookEvent,
        raw: String,
        ack: oneshot::Sender<Ack>,
        stored: bool,
    ) {
        let customer_id = event.customer_id();
        let duplicate = !self.recent_ids.insert(&event.id) || stored;
        self.emit(EngineEvent::Webhook {
            event_id: event.id.clone(),
            event_type: event.event_type_name().to_string(),
            customer_id,
            duplicate,
        });
        if duplicate {
            match self.committing.get_mut(&event.id) {
                // The first copy is still being committed: this one's answer follows that
                // commit, and is a failure if it fails.
                Some(waiting) => waiting.push(ack),
                None => {
                    let _ = ack.send(Ack::Duplicate);
                }
            }
            return;
        }
        self.last_webhook = Some(Instant::now());
        let now = OffsetDateTime::now_utc();
        self.writer_write(Write::Event {
            id: event.id.clone(),
            event_type: event.event_type_name().to_string(),
            customer_id,
            body: raw,
            received_at: now,
        });
        self.acknowledge_on_commit(event.id.clone(), ack);
        let Some(customer_id) = customer_id else { return };
        self.writer_write(Write::Timeline {
            customer_id,
            at: now,
            kind: "webhook",
            text: event.event_type_name().to_string(),
        });
        self.tracker.on_webhook(&event);
        // Push says something changed; pull says what to do.
        let profile_changed = matches!(
            event.event_type(),
            Some(crate::domain::EventType::CustomerCreated | crate::domain::EventType::CustomerUpdated)
        );
        let pull = Pull {
            fetch_customer: profile_changed,
            ..Pull::WEBHOOK
        };
        self.poll_now(customer_id, pull);
    }

    /// The sender hears 200 only once the event is committed, and so does a repeat that
    /// arrives meanwhile. If it is not, the id is forgotten: the senders hear 503 and their
    /// retry is applied rather than called a duplicate.
    fn acknowledge_on_commit(&mut self, event_id: String, ack: oneshot::Sender<Ack>) {
        self.committing.insert(event_id.clone(), Vec::new());
        let (committed, on_commit) = oneshot::channel();
        self.writer_write(Write::Flush(committed));
        let observations = self.observations.clone();
        tokio::spawn(async move {
            let recorded = on_commit.await == Ok(true);
            let _ = observations.send(Observation::Committed {
                event_id,
                recorded,
                ack,
            });
        });
    }

    /// A webhook's commit is over: its answer, and those of the repeats that waited for it.
    pub(super) fn committed(&mut self, event_id: String, recorded: bool, ack: oneshot::Sender<Ack>) {
        let repeats = self.committing.remove(&event_id).unwrap_or_default();
        if recorded {
            let _ = ack.send(Ack::Recorded);
            for repeat in repeats {
                let _ = repeat.send(Ack::Duplicate);
            }
        } else {
            // Dropped answers are heard as "not recorded; try again".
            self.recent_ids.remove(&event_id);
        }
    }

    /// An upload (the inbox's or the user's): recorded when it went through, put on the
    /// customer's timeline, said; the customer's status is pulled after a real upload.
    pub(super) fn upload(
        &mut self,
        path: String,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        sha256: Option<String>,
        result: UploadResult,
    ) {
        let now = OffsetDateTime::now_utc();
        let uploaded = result == UploadResult::Uploaded;
        let (result, error) = match result {
            UploadResult::Uploaded => ("uploaded", None),
            UploadResult::Duplicate => ("duplicate", None),
            UploadResult::Failed(why) => ("failed", Some(why)),
        };
        if let (true, Some(id), Some(document_type), Some(sha256)) =
            (uploaded, customer_id, document_type, sha256)
        {
            self.writer_write(Write::Upload {
                sha256,
                customer_id: id,
                document_type: document_type.as_str().to_string(),
                path: path.clone(),
                document_id: None,
                at: now,
            });
        }
        if let Some(id) = customer_id {
            self.writer_write(Write::Timeline {
                customer_id: id,
                at: now,
                kind: "upload",
                text: format!(
                    "{} {path}: {result}{}",
                    document_type.map(|t| t.as_str()).unwrap_or("document"),
                    error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
                ),
            });
            if uploaded {
                // Someone uploaded it (a person, or their inbox): pulled even while paused.
                self.poll_now(id, Pull::USER);
            }
        }
        self.emit(EngineEvent::Upload {
            path,
            customer_id,
            document_type,
            result,
            error,
        });
    }
}
