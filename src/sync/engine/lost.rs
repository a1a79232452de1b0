//! Rows the cache could not store (SPEC §10, nothing lost). The engine keeps hashes of what
//! it wrote so it writes only what changed; a row the writer reports lost must be forgotten,
//! or it would never be written again. It is written again at the next listing or poll (not
//! at once: a row the database refuses would be refused again and again), and said. Producers
//! that must not move on before their row is stored (the inbox) hear after the commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{EngineEvent, Model};
use crate::sync::cache::{CustomerSummary, Lost, Row, StatusSummary, Write};
use crate::sync::observation::UploadMade;
use crate::sync::tracker::Reconciled;

/// The hash of a body the engine no longer claims to have stored: no body has it, so the next
/// one seen differs and is written.
pub(super) const FORGOTTEN: u64 = 0;

impl Model {
    /// Rows the writer could not store: forgotten, so they are written again, and said.
    pub(super) fn lost(&mut self, lost: Vec<Lost>) {
        let retry = self.until_next_sweep();
        for Lost { rows, reason } in lost {
            for row in &rows {
                self.forget_stored(row, retry);
            }
            self.say_lost(&rows, &reason, retry);
        }
    }

    /// Forgets that `row` is stored. A customer's row is written again by the next listing
    /// (its hash differs); a status or workflow by the customer's next poll, due by then at
    /// the latest (a customer whose stage is final is not polled otherwise).
    fn forget_stored(&mut self, row: &Row, retry: Duration) {
        let (id, status) = match row {
            Row::Customer(id) => (*id, false),
            Row::Status(id) => (*id, true),
            Row::Workflow(id) => {
                self.workflows_lost.insert(*id);
                (*id, true)
            }
            // A webhook's sender hears 503 and delivers it again; the inbox hears that its
            // upload is not recorded and tries again; the rest cannot be written again.
            _ => return,
        };
        let Some(entry) = self.customers.get_mut(&id) else {
            return;
        };
        if status {
            if let Some(known) = &entry.status {
                entry.status = Some(Arc::new(StatusSummary {
                    hash: FORGOTTEN,
                    ..(**known).clone()
                }));
            }
            self.schedule.poll_at(id, Instant::now() + retry);
        } else {
            entry.customer = Arc::new(CustomerSummary {
                hash: FORGOTTEN,
                ..(*entry.customer).clone()
            });
        }
    }

    /// One `poll_error` per reason: naming the row when the database refused one, counting
    /// them when the cache could store nothing.
    fn say_lost(&mut self, rows: &[Row], reason: &str, retry: Duration) {
        let (customer_id, error) = match rows {
            [row] => (
                row.customer_id(),
                format!("the cache refused {row}: {reason}; {}", what_follows(row)),
            ),
            rows => (
                None,
                format!(
                    "the cache could not store {} rows ({reason}); customers and statuses among them \
                     will be written again, webhooks delivered again",
                    rows.len()
                ),
            ),
        };
        self.emit(EngineEvent::PollError {
            customer_id,
            status: None,
            error,
            retry_in_seconds: retry.as_secs(),
            queued: self.pulls.queued(),
            in_flight: self.pulls.in_flight(),
        });
    }

    /// When lost rows are written again at the latest: the next sweep (the one running now
    /// has listed them already).
    fn until_next_sweep(&self) -> Duration {
        let next = self.sweeps.next_at.saturating_duration_since(Instant::now());
        if self.sweeps.current.is_none() && !next.is_zero() {
            next
        } else {
            self.timing.sweep_every
        }
    }

    /// A customer whose workflow row was lost: written again with the status that follows
    /// (a stage change writes it anyway).
    pub(super) fn rewrite_lost_workflow(&mut self, id: Uuid, reconciled: &Reconciled) {
        if self.workflows_lost.remove(&id) && !reconciled.changed() {
            self.writer_write(Write::Workflow {
                customer_id: id,
                view: reconciled.view.clone(),
                since: reconciled.since,
            });
        }
    }

    /// Records an upload the inbox made, and tells it once the row is committed: only then
    /// may the file leave the inbox. (`upload`, which follows, writes the same row again;
    /// the cache ignores it.)
    pub(super) fn record_upload(&mut self, made: UploadMade) {
        self.writer_write(Write::Upload {
            sha256: made.sha256,
            customer_id: made.customer_id,
            document_type: made.document_type.as_str().to_string(),
            path: made.path,
            document_id: None,
            at: time::OffsetDateTime::now_utc(),
        });
        self.tell_when_stored(made.recorded);
    }

    /// Answers `stored` once everything queued so far is committed (`true`) or not.
    fn tell_when_stored(&self, stored: oneshot::Sender<bool>) {
        let (committed, on_commit) = oneshot::channel();
        self.writer_write(Write::Flush(committed));
        tokio::spawn(async move {
            let _ = stored.send(on_commit.await == Ok(true));
        });
    }
}

/// What becomes of a lost row, for the person reading about it.
fn what_follows(row: &Row) -> &'static str {
    match row {
        Row::Customer(_) | Row::Status(_) | Row::Workflow(_) => "it will be written again",
        Row::Event { .. } => "its sender is told to deliver it again",
        Row::Upload { .. } => "an inbox file stays in place and is tried again",
        Row::Timeline(_) | Row::Setting(_) | Row::Clear => "it is not kept",
        Row::Prune => "it is tried again at the next prune",
    }
}
