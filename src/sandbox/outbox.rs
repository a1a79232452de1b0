//! Webhook delivery from the transactional outbox: a worker claims due deliveries (only the
//! oldest undelivered one per endpoint and customer, so each customer's events arrive in
//! order), signs them per Standard Webhooks, POSTs them with a timeout, records every attempt,
//! and retries failures with exponential backoff and jitter on the tenant's clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::clock::{rfc3339, unix_ms};
use super::error::SandboxError;
use super::memory::TenantId;
use super::store::{Store, StoreError, StoreState};
use crate::secret::Secret;

/// A pending delivery `d` is at the head of its queue: no earlier delivery of the same
/// endpoint and customer is still pending or in flight (deliveries go out in order per
/// customer). The one copy of that rule, for picking deliveries and for the next wake-up.
macro_rules! head_of_queue {
    () => {
        "NOT EXISTS (
           SELECT 1 FROM deliveries p
           WHERE p.endpoint_id = d.endpoint_id AND p.customer_id = d.customer_id
             AND p.seq < d.seq AND p.status IN ('PENDING', 'IN_FLIGHT'))"
    };
}

/// How deliveries are attempted and retried.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// The delay before the first retry; each further retry doubles it, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// After this many failed attempts the delivery is marked FAILED (resend it by hand).
    pub max_attempts: u32,
    /// How many deliveries are in flight at once.
    pub concurrency: usize,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            max_attempts: 12,
            concurrency: 16,
        }
    }
}

impl DeliveryPolicy {
    /// The delay after the `attempt`-th failure (1-based): exponential, capped, with jitter
    /// between half and all of it so that failed receivers are not hit in lockstep.
    pub fn retry_delay(&self, attempt: u32, jitter: f64) -> Duration {
        crate::backoff::delay(self.base_delay, self.max_delay, attempt.saturating_sub(1), jitter)
    }
}

/// One delivery to make.
#[derive(Debug, Clone)]
struct Job {
    delivery_id: String,
    tenant: TenantId,
    url: String,
    secret: Secret,
    event_id: String,
    body: String,
}

/// What happened when a delivery was attempted.
#[derive(Debug, Clone)]
struct Attempt {
    response_status: Option<u16>,
    error: Option<String>,
    duration: Duration,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        self.response_status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Claims up to `limit` due deliveries, marking them in flight. A claim older than
/// `stale_after` whose attempt was never recorded (the database failed just then) is released
/// first, so one lost write cannot hold back a customer's deliveries for good.
fn claim_due(db: &mut StoreState, limit: usize, stale_after: Duration) -> Result<Vec<Job>, SandboxError> {
    let tenants: Vec<(TenantId, i64)> = db
        .memory()
        .tenants
        .iter()
        .map(|(id, t)| (id.clone(), unix_ms(t.now())))
        .collect();
    let real_now = unix_ms(time::OffsetDateTime::now_utc());
    let tx = db.conn.savepoint()?;
    tx.execute(
        "UPDATE deliveries SET status = 'PENDING' WHERE status = 'IN_FLIGHT' AND claimed_ms < ?1",
        [real_now - stale_after.as_millis() as i64],
    )?;
    let mut jobs = Vec::new();
    {
        let mut stmt = tx.prepare_cached(concat!(
            "SELECT d.id, w.url, w.secret, e.id, e.body
                 FROM deliveries d
                 JOIN events e ON e.seq = d.event_seq
                 JOIN webhook_endpoints w ON w.id = d.endpoint_id
                 WHERE d.tenant_id = ?1 AND d.status = 'PENDING' AND d.next_attempt_ms <= ?2 AND ",
            head_of_queue!(),
            " ORDER BY d.seq LIMIT ?3"
        ))?;
        for (tenant, now_ms) in tenants {
            let remaining = limit.saturating_sub(jobs.len());
            if remaining == 0 {
                break;
            }
            let rows = stmt.query_map((&tenant.0, now_ms, remaining as i64), |r| {
                Ok(Job {
                    delivery_id: r.get(0)?,
                    tenant: tenant.clone(),
                    url: r.get(1)?,
                    secret: Secret::from(r.get::<_, String>(2)?),
                    event_id: r.get(3)?,
                    body: r.get(4)?,
                })
            })?;
            for job in rows {
                jobs.push(job?);
            }
        }
        let mut mark =
            tx.prepare_cached("UPDATE deliveries SET status = 'IN_FLIGHT', claimed_ms = ?2 WHERE id = ?1")?;
        for job in &jobs {
            mark.execute((&job.delivery_id, real_now))?;
        }
    }
    tx.commit()?;
    Ok(jobs)
}

/// Records an attempt and decides what comes next for the delivery.
fn record_attempt(
    db: &mut StoreState,
    job: &Job,
    attempt: &Attempt,
    policy: &DeliveryPolicy,
) -> Result<(), SandboxError> {
    let now = db
        .memory()
        .tenants
        .get(&job.tenant)
        .map(|t| t.now())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let tx = db.conn.savepoint()?;
    tx.execute(
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, response_status, error, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            &job.delivery_id,
            rfc3339(now)?,
            attempt.response_status,
            &attempt.error,
            attempt.duration.as_millis() as i64,
        ),
    )?;
    let count: u32 = tx.query_row(
        "UPDATE deliveries SET attempt_count = attempt_count + 1 WHERE id = ?1 RETURNING attempt_count",
        [&job.delivery_id],
        |row| row.get(0),
    )?;
    // A delivery cancelled while in flight stays cancelled.
    if attempt.succeeded() {
        tx.execute(
            "UPDATE deliveries SET status = 'DELIVERED', next_attempt_ms = NULL
             WHERE id = ?1 AND status = 'IN_FLIGHT'",
            [&job.delivery_id],
        )?;
    } else if count >= policy.max_attempts {
        tx.execute(
            "UPDATE deliveries SET status = 'FAILED', next_attempt_ms = NULL
             WHERE id = ?1 AND status = 'IN_FLIGHT'",
            [&job.delivery_id],
        )?;
    } else {
        let delay = policy.retry_delay(count, rand::rng().random::<f64>());
        let next = unix_ms(now) + delay.as_millis() as i64;
        tx.execute(
            "UPDATE deliveries SET status = 'PENDING', next_attempt_ms = ?2
             WHERE id = ?1 AND status = 'IN_FLIGHT'",
            (&job.delivery_id, next),
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// When the next claimable delivery (the head of its customer's queue) is due, in
/// milliseconds of real time from now.
fn next_due_in_ms(db: &mut StoreState) -> Result<Option<i64>, SandboxError> {
    let offsets: Vec<(TenantId, i64)> = db
        .memory()
        .tenants
        .iter()
        .map(|(id, t)| (id.clone(), t.clock_offset_ms))
        .collect();
    let real_now = unix_ms(time::OffsetDateTime::now_utc());
    let mut stmt = db.conn.prepare_cached(concat!(
        "SELECT MIN(d.next_attempt_ms) FROM deliveries d
             WHERE d.tenant_id = ?1 AND d.status = 'PENDING' AND ",
        head_of_queue!()
    ))?;
    let mut earliest: Option<i64> = None;
    for (tenant, offset) in offsets {
        let due: Option<i64> = stmt.query_row([&tenant.0], |row| row.get(0))?;
        if let Some(due) = due {
            let in_ms = due - offset - real_now;
            earliest = Some(earliest.map_or(in_ms, |e| e.min(in_ms)));
        }
    }
    Ok(earliest)
}

/// Signs and POSTs one delivery.
async fn attempt(client: &reqwest::Client, job: &Job, timeout: Duration) -> Attempt {
    let started = Instant::now();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = standardwebhooks::Webhook::new(job.secret.expose_secret())
        .and_then(|signer| signer.sign(&job.event_id, timestamp, job.body.as_bytes()));
    let signature = match signature {
        Ok(signature) => signature,
        Err(err) => {
            return Attempt {
                response_status: None,
                error: Some(format!("cannot sign the delivery: {err}")),
                duration: started.elapsed(),
            };
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("kycdash-sandbox/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in [
        ("webhook-id", job.event_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let result = client
        .post(&job.url)
        .headers(headers)
        .body(job.body.clone())
        .timeout(timeout)
        .send()
        .await;
    match result {
        Ok(response) => Attempt {
            response_status: Some(response.status().as_u16()),
            error: None,
            duration: started.elapsed(),
        },
        Err(err) => Attempt {
            response_status: None,
            error: Some(describe(&err)),
            duration: started.elapsed(),
        },
    }
}

/// A URL for a log line: a query string may carry a token, so it is left out.
fn without_query(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "(invalid URL)".into(),
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "the receiver did not answer in time".into()
    } else if err.is_connect() {
        "could not connect to the receiver".into()
    } else {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        match err.url() {
            Some(url) => message.replace(url.as_str(), &without_query(url.as_str())),
            None => message,
        }
    }
}

/// The delivery worker: runs until `cancel` fires.
pub async fn run(store: Store, policy: DeliveryPolicy, cancel: CancellationToken) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(policy.timeout)
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!("webhook delivery is off: cannot build an HTTP client: {err}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(policy.concurrency.max(1)));
    // Attempts in flight; aborted on shutdown (an interrupted delivery is sent again later).
    let mut attempts = tokio::task::JoinSet::new();
    loop {
        while attempts.try_join_next().is_some() {}
        let free = slots.available_permits();
        let stale_after = policy.timeout * 2 + Duration::from_secs(60);
        let jobs = if free > 0 {
            match store.run(move |db| claim_due(db, free, stale_after)).await {
                Ok(Ok(jobs)) => jobs,
                Err(StoreError::Closed) => break,
                Ok(Err(err)) => {
                    tracing::error!("claiming deliveries failed: {err}");
                    Vec::new()
                }
                Err(err) => {
                    tracing::error!("claiming deliveries failed: {err}");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        for job in jobs {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (store, client) = (store.clone(), client.clone());
            attempts.spawn(async move {
                deliver(&store, &client, job, policy).await;
                drop(permit);
                store.signals.deliveries.notify_one();
            });
        }
        let wait = match store.run(next_due_in_ms).await {
            Ok(Ok(Some(ms))) => Duration::from_millis(ms.clamp(0, 3_600_000) as u64),
            Ok(Ok(None)) => Duration::from_secs(3600),
            Err(StoreError::Closed) => break,
            // The store failed to answer: try again in a moment rather than spin or stop.
            Ok(Err(_)) | Err(_) => Duration::from_secs(1),
        };
        // Due now but not claimed means every slot is busy: a finished attempt rings the bell.
        let wait = wait.max(Duration::from_millis(if slots.available_permits() == 0 {
            1000
        } else {
            0
        }));
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = store.signals.deliveries.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    // Let attempts under way finish and be recorded, briefly; the rest are sent again after
    // the next start (their deliveries are still in flight, which a start resets to pending).
    let finishing = async { while attempts.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), finishing).await;
    attempts.shutdown().await;
}

/// One attempt of one delivery, and its record (the outcome, or the next retry).
async fn deliver(store: &Store, client: &reqwest::Client, job: Job, policy: DeliveryPolicy) {
    let outcome = attempt(client, &job, policy.timeout).await;
    if !outcome.succeeded() {
        let why = match (&outcome.response_status, &outcome.error) {
            (Some(status), _) => format!("answered {status}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "failed".into(),
        };
        tracing::warn!(event = %job.event_id, to = %without_query(&job.url), "webhook delivery {why}; it will be retried");
    }
    let recorded = store
        .run(move |db| record_attempt(db, &job, &outcome, &policy))
        .await;
    if let Ok(Err(err)) = recorded {
        tracing::error!("recording a delivery attempt failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_within_the_cap_and_the_jitter() {
        let policy = DeliveryPolicy::default();
        assert_eq!(policy.retry_delay(1, 1.0), Duration::from_secs(5));
        assert_eq!(policy.retry_delay(2, 1.0), Duration::from_secs(10));
        assert_eq!(policy.retry_delay(4, 1.0), Duration::from_secs(40));
        assert_eq!(policy.retry_delay(3, 0.0), Duration::from_secs(10));
        assert_eq!(policy.retry_delay(20, 1.0), Duration::from_secs(3600));
        assert_eq!(policy.retry_delay(200, 0.5), Duration::from_secs(2700));
    }
}
