//! The modes without a screen: `kycdash watch` (the sync engine, printing NDJSON),
//! `kycdash status CUSTOMER` and `kycdash export`.

mod export;

use std::io::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use crate::api::{ApiClient, ApiError, ClientConfig};
use crate::cli::{StatusArgs, WatchArgs};
use crate::connection::{Failure, connect, engine_config, serve_metrics, shutdown_signal};
use crate::domain::{ComplianceStatus, Customer, advise};
use crate::sandbox;
use crate::sync::engine::{self, ApiState, EngineError, EngineEvent};

pub use self::export::export;

/// One NDJSON line: `at`, then the event's own fields (`kind` first).
pub fn ndjson_line(event: &EngineEvent, at: OffsetDateTime) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        at: String,
        #[serde(flatten)]
        event: &'a EngineEvent,
    }
    let line = Line {
        at: crate::sync::rfc3339(at),
        event,
    };
    serde_json::to_string(&line)
        .unwrap_or_else(|err| format!(r#"{{"kind":"error","error":"cannot encode an event: {err}"}}"#))
}

/// `kycdash watch`.
pub async fn watch(args: WatchArgs) -> Result<(), Failure> {
    // Installed before anything else: a signal during start-up stops `watch` cleanly too.
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut connection = connect(&args.connect, true).await?;
    if let Some(sandbox) = &connection.sandbox {
        eprintln!(
            "kycdash: embedded sandbox at {} (API key {}); drive it with curl meanwhile",
            sandbox.base_url(),
            sandbox::DEFAULT_API_KEY
        );
    }
    let mut config = engine_config(&connection, &args.sync, args.once)?;
    match serve_metrics(&connection, &args.sync).await {
        Ok(Some((metrics, bound))) => {
            eprintln!("kycdash: metrics at http://{bound}/metrics");
            config.metrics = Some(metrics);
        }
        Ok(None) => {}
        Err(failure) => {
            connection.shutdown().await;
            return Err(failure);
        }
    }
    let Some(lock) = connection.lock.take() else {
        return Err(Failure::fatal("the data directory is not locked"));
    };
    let started = engine::start(config, lock).await;
    let engine = match started {
        Ok(engine) => engine,
        Err(err) => {
            connection.shutdown().await;
            return Err(err.into());
        }
    };
    let (handle, mut events, task) = engine.into_parts();
    crate::crash::test_trigger();
    let mut fatal = None;
    let mut stopping = false;
    // Stopped by a signal or a closed stdout: a reader that does not read is not waited for.
    let mut hurried = false;
    let mut said_receiver: Option<String> = None;
    let mut api = ApiState::Connecting;
    let mut out = StdoutLines::spawn();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if let EngineEvent::Fatal { error } = &event {
                    fatal = Some(error.clone());
                }
                // Said once: a registration retried every few minutes says so again only if
                // the reason changes.
                if let EngineEvent::Receiver {
                    webhook_url, reason, ..
                } = &event
                {
                    let said = match (webhook_url, reason) {
                        (Some(url), _) => Some(format!("webhooks are received at {url}")),
                        (None, reason) => reason.clone(),
                    };
                    if let Some(said) = said.filter(|said| said_receiver.as_ref() != Some(said)) {
                        eprintln!("kycdash: {said}");
                        said_receiver = Some(said);
                    }
                }
                // `--once` ends at the first failure, with one line.
                if let EngineEvent::Api(state) = &event
                    && !args.once
                    && let Some(news) = api_news(&mut api, state)
                {
                    eprintln!("kycdash: {news}");
                }
                if !event.is_ndjson() {
                    continue;
                }
                let line = ndjson_line(&event, OffsetDateTime::now_utc());
                // A slow reader makes this wait (and the engine slow down); a signal still
                // stops it, and then a reader that reads no more is not waited for long.
                let written = if hurried {
                    tokio::time::timeout(STOP_PATIENCE, out.write(line)).await.unwrap_or(false)
                } else {
                    tokio::select! {
                        written = out.write(line.clone()) => written,
                        _ = &mut signal, if !stopping => {
                            handle.stop();
                            (stopping, hurried) = (true, true);
                            tokio::time::timeout(STOP_PATIENCE, out.write(line)).await.unwrap_or(false)
                        }
                    }
                };
                // A closed stdout (a pipe whose reader left) ends the watch like a signal;
                // the events are still drained, so the engine can stop.
                if !written {
                    out.abandon();
                    hurried = true;
                    if !stopping {
                        handle.stop();
                        stopping = true;
                    }
                }
                if matches!(event, EngineEvent::Stopped) {
                    break;
                }
            }
            _ = &mut signal, if !stopping => {
                handle.stop();
                (stopping, hurried) = (true, true);
            }
        }
    }
    let _ = task.await;
    out.finish(hurried).await;
    connection.shutdown().await;
    match fatal {
        Some(error) => Err(Failure::fatal(error)),
        None => Ok(()),
    }
}

/// How long a stopping `watch` waits for a reader that does not read.
const STOP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// NDJSON lines written by a thread of their own, through a bounded queue: a slow reader
/// blocks that thread and makes `watch` wait (so the engine slows down, SPEC §10), never an
/// async worker, and nothing queues without bound.
struct StdoutLines {
    lines: Option<tokio::sync::mpsc::Sender<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StdoutLines {
    fn spawn() -> StdoutLines {
        let (lines, mut queue) = tokio::sync::mpsc::channel::<String>(1024);
        let thread = std::thread::Builder::new()
            .name("kycdash-stdout".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                while let Some(line) = queue.blocking_recv() {
                    // Flushed whenever the queue is empty: a line is out as soon as nothing
                    // follows it, and a burst costs one write.
                    let written = writeln!(out, "{line}")
                        .and_then(|()| if queue.is_empty() { out.flush() } else { Ok(()) });
                    if written.is_err() {
                        return;
                    }
                }
                let _ = out.flush();
            })
            .ok();
        StdoutLines {
            lines: thread.is_some().then_some(lines),
            thread,
        }
    }

    /// Queues a line, waiting while the queue is full; `false` once stdout is closed.
    async fn write(&self, line: String) -> bool {
        match &self.lines {
            Some(lines) => lines.send(line).await.is_ok(),
            None => false,
        }
    }

    /// Stdout is gone: lines are dropped from now on.
    fn abandon(&mut self) {
        self.lines = None;
    }

    /// Waits for the lines queued to be written: all of them for a reader that reads, however
    /// slowly; when `hurried` (a signal, a closed stdout), not for ever.
    async fn finish(mut self, hurried: bool) {
        self.lines = None;
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            if hurried {
                let _ = tokio::time::timeout(STOP_PATIENCE, joined).await;
            } else {
                let _ = joined.await;
            }
        }
    }
}

/// What a person reading stderr is told when the API's state changes: that it went (once,
/// not at every retry; `poll_error` lines carry those) and that it came back.
fn api_news(last: &mut ApiState, state: &ApiState) -> Option<String> {
    let news = match (&*last, state) {
        (ApiState::Unreachable { .. }, ApiState::Unreachable { .. }) => None,
        (_, ApiState::Unreachable { since, reason, .. }) => Some(format!(
            "the API is unreachable since {} ({reason}); retrying, with backoff",
            crate::sync::rfc3339(crate::local_time::local(*since))
        )),
        (ApiState::Unreachable { .. } | ApiState::KeyRefused { .. }, ApiState::Connected) => {
            Some("the API answers again".to_string())
        }
        _ => None,
    };
    *last = state.clone();
    news
}

/// `kycdash status CUSTOMER`: the API's answer, or, while the API is unreachable, the cache's
/// last one marked stale (SPEC §10).
pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    let connection = connect(&args.connect, false).await?;
    let result = status_of(&connection.api, &args.customer).await;
    let embedded = connection.sandbox.is_some();
    let (api, data_dir) = (connection.api.clone(), connection.data_dir.clone());
    connection.shutdown().await;
    let answer = match result {
        Ok((customer, status)) => Answer {
            customer,
            status,
            fetched_at: OffsetDateTime::now_utc(),
            unreachable: None,
        },
        Err(Unanswered::Failure(failure)) => return Err(failure),
        Err(Unanswered::Unreachable(error)) => {
            cached_status(&data_dir, &api, embedded, &args.customer, error)?
        }
    };
    print_status(&answer, args.json);
    Ok(())
}

/// What `status` says of a customer, and how fresh it is.
struct Answer {
    customer: Customer,
    status: ComplianceStatus,
    fetched_at: OffsetDateTime,
    /// Why the API could not be asked, when this comes from the cache.
    unreachable: Option<ApiError>,
}

enum Unanswered {
    /// The API could not be reached (or failed): the cache may answer.
    Unreachable(ApiError),
    Failure(Failure),
}

/// The cache's last answer for `customer`, if the cache holds this account and the customer.
fn cached_status(
    data_dir: &std::path::Path,
    api: &ClientConfig,
    embedded: bool,
    customer: &str,
    error: ApiError,
) -> Result<Answer, Failure> {
    let unreachable = || Failure::fatal(format!("{error}; the cache does not know \"{customer}\" either"));
    let path = data_dir.join("cache.db");
    if !path.exists() {
        return Err(unreachable());
    }
    let conn = crate::sync::cache::open(&path).map_err(|e| Failure::fatal(format!("{error}; and {e}")))?;
    let identity: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [engine::API_IDENTITY],
            |row| row.get(0),
        )
        .ok();
    if identity != Some(engine::api_identity(api, embedded)) {
        return Err(unreachable());
    }
    match crate::sync::cache::find(&conn, customer) {
        Ok(Some(crate::sync::cache::Known {
            customer,
            status: Some((status, fetched_at)),
        })) => Ok(Answer {
            customer,
            status,
            fetched_at,
            unreachable: Some(error),
        }),
        _ => Err(unreachable()),
    }
}

fn print_status(answer: &Answer, json: bool) {
    let Answer {
        customer,
        status,
        fetched_at,
        unreachable,
    } = answer;
    let advice = advise(customer, status);
    if json {
        let body = serde_json::json!({
            "customer": customer,
            "status": status,
            "advice": advice,
            "stale": unreachable.is_some(),
            "fetchedAt": crate::sync::rfc3339(*fetched_at),
        });
        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
        return;
    }
    if let Some(error) = unreachable {
        let age = (OffsetDateTime::now_utc() - *fetched_at).whole_seconds().max(0);
        println!(
            "as of {} ({} ago); the API is unreachable: {error}",
            crate::sync::rfc3339(crate::local_time::local(*fetched_at)),
            age_words(age)
        );
        println!();
    }
    print_advice(customer, status, &advice);
}

/// `42 s`, `5 min`, `3 h`, `2 days`.
fn age_words(seconds: i64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

fn print_advice(customer: &Customer, status: &ComplianceStatus, advice: &crate::domain::Advice) {
    let name = customer.display_name();
    println!("{name} ({})", customer.id);
    println!(
        "stage: {}   onboarding: {}   compliant: {}",
        crate::domain::Stage::from_status(status),
        status.onboarding_status.map(|s| s.as_str()).unwrap_or("none"),
        if status.is_compliant { "yes" } else { "no" }
    );
    println!();
    println!("Next: {}", advice.headline);
    let failed: Vec<_> = status.checks.iter().filter(|c| !c.passed && c.required).collect();
    if !failed.is_empty() {
        println!();
        println!("Failed checks:");
        for check in failed {
            println!(
                "  ✗ {:<28} {}",
                check.check_type.as_str(),
                check.suggested_action.map(|a| a.as_str()).unwrap_or("")
            );
        }
    }
    if !advice.fields_to_patch.is_empty() {
        println!();
        println!(
            "PATCH /v1/customers/{} with: {}",
            customer.id,
            advice.fields_to_patch.join(", ")
        );
    }
    if !advice.documents_to_upload.is_empty() {
        println!();
        let docs: Vec<&str> = advice.documents_to_upload.iter().map(|d| d.as_str()).collect();
        println!("Upload: {}", docs.join(", "));
    }
    if let Some(sdk) = &advice.sdk {
        println!();
        println!(
            "SDK link: {} (expires {})",
            sdk.link,
            crate::sync::rfc3339(sdk.expires_at)
        );
    }
}

async fn status_of(api: &ClientConfig, customer: &str) -> Result<(Customer, ComplianceStatus), Unanswered> {
    let client = ApiClient::new(api).map_err(|e| Unanswered::Failure(Failure::usage(e.to_string())))?;
    let api_failure = |err: ApiError| {
        if err.is_unauthorized() {
            Unanswered::Failure(Failure::fatal(EngineError::Unauthorized.to_string()))
        } else if err.is_transient() {
            Unanswered::Unreachable(err)
        } else {
            Unanswered::Failure(Failure::fatal(err.to_string()))
        }
    };
    let found = client.find_customer(customer).await.map_err(api_failure)?;
    let Some(found) = found else {
        return Err(Unanswered::Failure(Failure::fatal(format!(
            "no customer has the id or externalId \"{customer}\""
        ))));
    };
    let status = client.status(found.id).await.map_err(api_failure)?;
    Ok((found, status))
}
