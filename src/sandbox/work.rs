//! A unit of work: one command of one tenant, run on the store thread as one SQLite savepoint
//! (inside the store's batch transaction). The workflow transition, the webhook events it
//! produced (the outbox), the delivery rows and the timers are all written together or not at
//! all; the in-memory copy is updated only once the savepoint is released.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::clock::{Timing, rfc3339, unix_ms};
use super::error::SandboxError;
use super::ids::{new_event_id, new_id};
use super::memory::{
    CustomerRecord, EndpointRecord, OnboardingRecord, ReadModel, TenantId, Timer, TimerKind,
};
use super::store::{Signals, StoreError, StoreState, exec};
use crate::domain::{EventData, EventType, Stage, Strategy, WebhookEvent, WorkflowEvent, readiness};

/// A unit's savepoint: released by [`UnitOfWork::commit`], rolled back if the unit is
/// dropped before. Its statements are prepared once per connection (rusqlite's `Savepoint`
/// prepares them anew each time, on the store thread every write waits for).
struct Savepoint<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Savepoint<'c> {
    /// Opens the savepoint inside the batch's transaction; refuses when there is none (SQLite
    /// rolled it back), since a savepoint would then begin a transaction of its own, which
    /// its release would commit outside the batch.
    fn begin(conn: &'c Connection) -> Result<Self, StoreError> {
        if conn.is_autocommit() {
            return Err(StoreError::Commit(
                "the database rolled the batch's transaction back".into(),
            ));
        }
        exec(conn, "SAVEPOINT work")?;
        Ok(Self { conn, open: true })
    }

    /// Keeps the unit's writes; should that fail, dropping rolls them back.
    fn release(mut self) -> rusqlite::Result<()> {
        exec(self.conn, "RELEASE work")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        // With no transaction left (SQLite rolled it back), there is nothing to roll back.
        if self.open
            && !self.conn.is_autocommit()
            && let Err(err) =
                exec(self.conn, "ROLLBACK TO work").and_then(|()| exec(self.conn, "RELEASE work"))
        {
            tracing::error!("rolling back a unit of work failed: {err}");
        }
    }
}

pub struct UnitOfWork<'c> {
    /// A savepoint inside the store's batch (and inside the command's own savepoint when its
    /// Idempotency-Key answer is stored with it).
    tx: Savepoint<'c>,
    memory: &'c RwLock<ReadModel>,
    signals: &'c Signals,
    pub tenant: TenantId,
    pub default_strategy: Strategy,
    pub clock_offset_ms: i64,
    pub now: OffsetDateTime,
    /// When the tenant's newest customer was created: a new one is never stamped earlier.
    pub newest_created_at: Option<OffsetDateTime>,
    pub timing: Timing,
    touched: HashMap<Uuid, CustomerRecord>,
    /// Customers handed out for change since they were read or inserted: rewritten at commit.
    changed: HashSet<Uuid>,
    onboardings: Vec<OnboardingRecord>,
    /// New SDK link tokens and whose they are.
    tokens: Vec<(String, Uuid)>,
    timers: HashMap<Uuid, Vec<Timer>>,
    endpoints_added: Vec<EndpointRecord>,
    endpoints_removed: Vec<Uuid>,
    clock_changed: bool,
    deliveries_added: bool,
}

impl<'c> UnitOfWork<'c> {
    /// Begins a unit of work for `tenant`; `None` when the tenant is unknown.
    pub fn begin(db: &'c mut StoreState, tenant: &TenantId) -> Result<Self, SandboxError> {
        let StoreState {
            conn,
            memory,
            signals,
            timing,
            ..
        } = db;
        let (default_strategy, clock_offset_ms, now, newest_created_at) = {
            let memory = memory.read().unwrap_or_else(|p| p.into_inner());
            let state = memory
                .tenants
                .get(tenant)
                .ok_or_else(|| SandboxError::not_found("tenant", &tenant.0))?;
            (
                state.default_strategy,
                state.clock_offset_ms,
                state.now(),
                state.newest_created_at(),
            )
        };
        let timing = *timing;
        let memory = &**memory;
        let signals = &**signals;
        let tx = Savepoint::begin(conn)?;
        Ok(Self {
            tx,
            memory,
            signals,
            tenant: tenant.clone(),
            default_strategy,
            clock_offset_ms,
            now,
            newest_created_at,
            timing,
            touched: HashMap::new(),
            changed: HashSet::new(),
            onboardings: Vec::new(),
            tokens: Vec::new(),
            timers: HashMap::new(),
            endpoints_added: Vec::new(),
            endpoints_removed: Vec::new(),
            clock_changed: false,
            deliveries_added: false,
        })
    }

    /// Runs a statement, prepared once per connection (a command runs the same few).
    pub fn execute(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.tx.conn.prepare_cached(sql)?.execute(params)
    }

    /// Inserts one row and returns its rowid (the table's integer key).
    fn insert(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<i64> {
        self.tx.conn.prepare_cached(sql)?.insert(params)
    }

    fn read<R>(&self, f: impl FnOnce(&ReadModel) -> R) -> R {
        let memory = self.memory.read().unwrap_or_else(|p| p.into_inner());
        f(&memory)
    }

    /// The customer as this work sees it (with its changes so far), to change: it is written
    /// back at commit.
    pub fn customer(&mut self, id: Uuid) -> Result<&mut CustomerRecord, SandboxError> {
        self.changed.insert(id);
        if !self.touched.contains_key(&id) {
            let record = self
                .read(|m| {
                    m.tenants
                        .get(&self.tenant)
                        .and_then(|t| t.customers.get(&id))
                        .map(|record| CustomerRecord::clone(record))
                })
                .ok_or_else(|| SandboxError::not_found("customer", id))?;
            self.touched.insert(id, record);
        }
        self.touched
            .get_mut(&id)
            .ok_or_else(|| SandboxError::not_found("customer", id))
    }

    /// Stores a new customer, given its JSON and its workflow's (written off the store thread),
    /// and returns its creation sequence number.
    pub fn insert_written_customer(
        &mut self,
        mut record: CustomerRecord,
        body: &str,
        workflow: &str,
    ) -> Result<i64, SandboxError> {
        let seq = self.insert(
            "INSERT INTO customers (id, tenant_id, body, workflow) VALUES (?1, ?2, ?3, ?4)",
            (record.customer.id.to_string(), &self.tenant.0, body, workflow),
        )?;
        record.seq = seq;
        self.touched.insert(record.customer.id, record);
        Ok(seq)
    }

    pub fn onboarding(&self, id: Uuid) -> Option<OnboardingRecord> {
        self.onboardings
            .iter()
            .find(|o| o.id == id)
            .cloned()
            .or_else(|| self.read(|m| m.tenants.get(&self.tenant)?.onboardings.get(&id).cloned()))
    }

    pub fn insert_onboarding(
        &mut self,
        record: OnboardingRecord,
        sdk_token: Option<String>,
    ) -> Result<(), SandboxError> {
        self.execute(
            "INSERT INTO onboardings (id, tenant_id, customer_id, strategy, created_at, previous_id, sdk_token)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                record.id.to_string(),
                &self.tenant.0,
                record.customer_id.to_string(),
                record.strategy.as_str(),
                rfc3339(record.created_at)?,
                record.previous_id.map(|id| id.to_string()),
                &sdk_token,
            ),
        )?;
        if let Some(token) = sdk_token {
            self.tokens.push((token, record.customer_id));
        }
        self.onboardings.push(record);
        Ok(())
    }

    /// Submits a workflow event for a customer: refused events change nothing; accepted ones
    /// write their webhook events to the outbox and bring the customer's timers in line with
    /// the new stage.
    pub fn handle_event(&mut self, customer_id: Uuid, event: &WorkflowEvent) -> Result<(), SandboxError> {
        let default_strategy = self.default_strategy;
        let record = self.customer(customer_id)?;
        let before = record.workflow.stage();
        // A new onboarding's own strategy decides its requirements (the request may override
        // the tenant's), not the strategy in effect before it.
        let strategy = match event {
            WorkflowEvent::KycStarted { onboarding, .. } | WorkflowEvent::Restarted { onboarding, .. } => {
                onboarding.strategy
            }
            _ => record.strategy(default_strategy),
        };
        let readiness = readiness(&record.customer, &record.documents_on_file(), strategy);
        let produced = record.workflow.handle(event, readiness)?;
        let view = record.workflow.view();
        for event in produced {
            self.queue_webhook(event.event_type, event.data)?;
        }
        if view.stage != before {
            self.execute(
                "DELETE FROM timers WHERE customer_id = ?1",
                [customer_id.to_string()],
            )?;
            let mut timers = Vec::new();
            let due = match view.stage {
                Stage::AwaitingSdk => view.sdk.map(|sdk| (TimerKind::LinkExpiry, sdk.expires_at)),
                Stage::AwaitingDecision => Some((TimerKind::Decision, self.now + self.timing.decision_delay)),
                _ => None,
            };
            if let Some((kind, at)) = due {
                let due_ms = unix_ms(at);
                let id = self.insert(
                    "INSERT INTO timers (tenant_id, customer_id, kind, due_ms) VALUES (?1, ?2, ?3, ?4)",
                    (&self.tenant.0, customer_id.to_string(), kind.as_str(), due_ms),
                )?;
                timers.push(Timer {
                    id,
                    customer_id,
                    kind,
                    due_ms,
                });
            }
            self.timers.insert(customer_id, timers);
        }
        Ok(())
    }

    /// Writes one webhook event to the outbox, with a pending delivery for every endpoint
    /// that subscribes to its type.
    pub fn queue_webhook(&mut self, event_type: EventType, data: EventData) -> Result<(), SandboxError> {
        let customer_id = data.customer_id;
        let id = new_event_id();
        let event = WebhookEvent::new(id.clone(), self.now, event_type, data);
        self.queue_written_event(&id, event_type, customer_id, &to_json(&event)?)
    }

    /// [`Self::queue_webhook`] with the event's JSON written already: `body` must be the event
    /// `id`, of `event_type`, about `customer_id`.
    pub fn queue_written_event(
        &mut self,
        id: &str,
        event_type: EventType,
        customer_id: Uuid,
        body: &str,
    ) -> Result<(), SandboxError> {
        let event_seq = self.insert(
            "INSERT INTO events (id, tenant_id, customer_id, event_type, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            (
                id,
                &self.tenant.0,
                customer_id.to_string(),
                event_type.as_str(),
                body,
            ),
        )?;
        let endpoints: Vec<Uuid> = self.read(|m| {
            m.tenants
                .get(&self.tenant)
                .map(|t| {
                    t.endpoints
                        .values()
                        .filter(|e| e.subscribes_to(event_type.as_str()))
                        .map(|e| e.id)
                        .collect()
                })
                .unwrap_or_default()
        });
        for endpoint in endpoints {
            self.queue_delivery(endpoint, event_seq, customer_id)?;
        }
        Ok(())
    }

    pub fn queue_delivery(
        &mut self,
        endpoint: Uuid,
        event_seq: i64,
        customer_id: Uuid,
    ) -> Result<Uuid, SandboxError> {
        let id = new_id();
        self.execute(
            "INSERT INTO deliveries (id, tenant_id, endpoint_id, event_seq, customer_id, status, next_attempt_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING', ?6, ?7)",
            (
                id.to_string(),
                &self.tenant.0,
                endpoint.to_string(),
                event_seq,
                customer_id.to_string(),
                unix_ms(self.now),
                rfc3339(self.now)?,
            ),
        )?;
        self.deliveries_added = true;
        Ok(id)
    }

    pub fn add_endpoint(&mut self, endpoint: EndpointRecord) -> Result<(), SandboxError> {
        self.execute(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                endpoint.id.to_string(),
                &self.tenant.0,
                &endpoint.url,
                &endpoint.description,
                endpoint.event_types.as_ref().map(to_json).transpose()?,
                endpoint.secret.expose_secret(),
                rfc3339(endpoint.created_at)?,
            ),
        )?;
        self.endpoints_added.push(endpoint);
        Ok(())
    }

    /// Deletes an endpoint and cancels what was still waiting to be delivered to it.
    pub fn remove_endpoint(&mut self, id: Uuid) -> Result<(), SandboxError> {
        let changed = self.execute(
            "UPDATE webhook_endpoints SET deleted = 1 WHERE id = ?1 AND tenant_id = ?2 AND deleted = 0",
            (id.to_string(), &self.tenant.0),
        )?;
        if changed == 0 {
            return Err(SandboxError::not_found("webhook endpoint", id));
        }
        self.execute(
            "UPDATE deliveries SET status = 'CANCELLED', next_attempt_ms = NULL
             WHERE endpoint_id = ?1 AND status IN ('PENDING', 'IN_FLIGHT')",
            [id.to_string()],
        )?;
        self.endpoints_removed.push(id);
        Ok(())
    }

    /// Moves the tenant's clock forward.
    pub fn advance_clock(&mut self, by: time::Duration) -> Result<(), SandboxError> {
        self.clock_offset_ms += by.whole_milliseconds() as i64;
        self.now += by;
        self.execute(
            "UPDATE tenants SET clock_offset_ms = ?1 WHERE id = ?2",
            (self.clock_offset_ms, &self.tenant.0),
        )?;
        self.clock_changed = true;
        Ok(())
    }

    /// The timers of this tenant due at `self.now`, earliest first, as this work sees them.
    pub fn due_timers(&self) -> Vec<Timer> {
        let now_ms = unix_ms(self.now);
        let mut due: Vec<Timer> = self.read(|m| {
            m.tenants
                .get(&self.tenant)
                .map(|t| {
                    t.timers
                        .values()
                        .filter(|timer| {
                            timer.due_ms <= now_ms && !self.timers.contains_key(&timer.customer_id)
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        });
        due.extend(
            self.timers
                .values()
                .flatten()
                .filter(|timer| timer.due_ms <= now_ms)
                .cloned(),
        );
        due.sort_by_key(|t| (t.due_ms, t.id));
        due
    }

    /// Removes a timer that fired without changing the stage (so `drive` did not replace it).
    pub fn drop_timer(&mut self, timer: &Timer) -> Result<(), SandboxError> {
        self.execute("DELETE FROM timers WHERE id = ?1", [timer.id])?;
        let remaining: Vec<Timer> = match self.timers.get(&timer.customer_id) {
            Some(timers) => timers.clone(),
            None => self.read(|m| {
                m.tenants
                    .get(&self.tenant)
                    .map(|t| {
                        t.timers
                            .values()
                            .filter(|x| x.customer_id == timer.customer_id)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            }),
        };
        let remaining = remaining.into_iter().filter(|t| t.id != timer.id).collect();
        self.timers.insert(timer.customer_id, remaining);
        Ok(())
    }

    /// Commits, then brings the in-memory copy in line and wakes the workers that have work.
    pub fn commit(self) -> Result<(), SandboxError> {
        for record in self.changed.iter().filter_map(|id| self.touched.get(id)) {
            let written = self.execute(
                "UPDATE customers SET body = ?1, workflow = ?2 WHERE id = ?3",
                (
                    to_json(&record.customer)?,
                    to_json(&record.workflow.view())?,
                    record.customer.id.to_string(),
                ),
            )?;
            if written != 1 {
                // Memory knew a customer the disk does not: never answer as if it were saved.
                return Err(StoreError::Corrupt(format!(
                    "customer {} is in memory but not in the database",
                    record.customer.id
                ))
                .into());
            }
        }
        self.tx.release().map_err(StoreError::from)?;

        let mut memory = self.memory.write().unwrap_or_else(|p| p.into_inner());
        let memory = &mut *memory;
        for (token, customer) in self.tokens {
            memory.sdk_tokens.insert(token, (self.tenant.clone(), customer));
        }
        let Some(state) = memory.tenants.get_mut(&self.tenant) else {
            return Ok(());
        };
        for (id, record) in self.touched {
            state.order.insert(record.seq, id);
            state.customers.insert(id, Box::new(record));
        }
        for onboarding in self.onboardings {
            state.onboardings.insert(onboarding.id, onboarding);
        }
        let timers_changed = !self.timers.is_empty() || self.clock_changed;
        for (customer, timers) in self.timers {
            state.timers.retain(|_, t| t.customer_id != customer);
            for timer in timers {
                state.timers.insert((timer.due_ms, timer.id), timer);
            }
        }
        for endpoint in self.endpoints_added {
            state.endpoints.insert(endpoint.id, endpoint);
        }
        for id in self.endpoints_removed {
            state.endpoints.remove(&id);
        }
        state.clock_offset_ms = self.clock_offset_ms;
        if timers_changed {
            self.signals.timers.notify_one();
        }
        if self.deliveries_added || self.clock_changed {
            self.signals.deliveries.notify_one();
        }
        Ok(())
    }
}

pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, SandboxError> {
    serde_json::to_string(value).map_err(|e| SandboxError::Store(StoreError::Corrupt(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::store::open_with_one_tenant;

    #[tokio::test]
    async fn a_unit_of_work_dropped_before_its_commit_writes_nothing() {
        let (tenant, store, _thread) = open_with_one_tenant();
        let counts = store
            .run(move |db| {
                let events = |db: &StoreState| -> i64 {
                    db.conn
                        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
                        .unwrap()
                };
                let event = || EventData::customer(Uuid::nil());
                {
                    // A command that fails midway returns its error, dropping the unit.
                    let mut work = UnitOfWork::begin(db, &tenant).unwrap();
                    work.queue_webhook(EventType::CustomerCreated, event()).unwrap();
                }
                let after_drop = events(db);
                assert!(
                    db.conn.execute_batch("RELEASE work").is_err(),
                    "the dropped unit's savepoint is gone, not left open"
                );
                let mut work = UnitOfWork::begin(db, &tenant).unwrap();
                work.queue_webhook(EventType::CustomerCreated, event()).unwrap();
                work.commit().unwrap();
                (after_drop, events(db))
            })
            .await
            .unwrap();
        assert_eq!(
            counts,
            (0, 1),
            "(events after the dropped unit, after the committed one)"
        );
    }

    #[tokio::test]
    async fn no_unit_of_work_begins_once_sqlite_has_rolled_the_batch_back() {
        let (tenant, store, _thread) = open_with_one_tenant();
        let began = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = began.clone();
        let answer = store
            .run(move |db| {
                // As SQLite does on an I/O error or a full disk.
                db.conn.execute_batch("ROLLBACK").unwrap();
                let work = UnitOfWork::begin(db, &tenant);
                *seen.lock().unwrap() = Some(work.is_ok());
            })
            .await;
        assert_eq!(*began.lock().unwrap(), Some(false), "the unit refused to begin");
        assert!(answer.is_err(), "the job hears that its batch failed");
    }
}
