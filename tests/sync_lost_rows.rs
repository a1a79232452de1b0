//! SPEC §10, "exactly once in, nothing lost", against the real engine: a row its cache refuses
//! is named and written again, and an inbox file moves to `.processed/` only once its upload
//! is recorded. The refusals are SQLite triggers on the engine's own cache; the API is the
//! in-process sandbox on loopback.

mod engine_events;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::CustomerProfile;
use kycdash::sandbox::{self, RunningSandbox, SandboxConfig};
use kycdash::sync::cache;
use kycdash::sync::engine::{self, EngineConfig, EngineEvent, EngineHandle, EngineTiming, ReceiverConfig};
use kycdash::sync::inbox::InboxTiming;
use uuid::Uuid;

const PDF: &[u8] = b"%PDF-1.4\n% test document\n";

/// A running engine on its own data directory, and every event it said so far.
struct Running {
    handle: EngineHandle,
    log: engine_events::EventLog,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Polling alone (no receiver), with an inbox under `dir` that settles quickly.
    async fn start(sandbox: &RunningSandbox, dir: &Path) -> Running {
        Running::start_with(sandbox, dir, None).await
    }

    async fn start_with(sandbox: &RunningSandbox, dir: &Path, receiver: Option<ReceiverConfig>) -> Running {
        let config = EngineConfig {
            inbox: Some(dir.join("inbox")),
            receiver,
            timing: EngineTiming {
                inbox: InboxTiming {
                    stable_for: Duration::from_millis(200),
                    rescan_every: Duration::from_millis(200),
                },
                ..EngineTiming::default()
            },
            ..EngineConfig::new(
                ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY),
                dir.to_path_buf(),
            )
        };
        let lock = engine::lock_data_dir(dir).unwrap();
        let (handle, events, task) = engine::start(config, lock).await.unwrap().into_parts();
        Running {
            handle,
            log: engine_events::EventLog::new(events),
            task,
        }
    }

    /// Waits (at most 10 s) for an event no earlier wait matched.
    async fn wait_for(&mut self, what: &str, matches: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
        self.log.wait_for(what, matches).await
    }

    async fn sweep(&mut self) {
        self.wait_for("a sweep", |e| matches!(e, EngineEvent::Sweep { .. }))
            .await;
    }

    /// Waits for the `poll_error` that names a refused row of `id`; returns its text.
    async fn refusal(&mut self, id: Uuid, row: &str) -> String {
        let said = self
            .wait_for(&format!("the refusal of {id}'s {row}"), |e| {
                matches!(e, EngineEvent::PollError { customer_id: Some(c), error, .. }
                    if *c == id && error.contains(row) && error.contains("refused by the test"))
            })
            .await;
        match said {
            EngineEvent::PollError { error, .. } => error,
            _ => unreachable!(),
        }
    }

    async fn stop(mut self) {
        self.handle.stop();
        self.wait_for("stopped", |e| matches!(e, EngineEvent::Stopped))
            .await;
        self.task.await.unwrap();
    }
}

/// The engine's cache, opened (created) before the engine, with a trigger that refuses what
/// `when` says on `table`.
fn refuse(dir: &Path, table: &str, when: &str) -> rusqlite::Connection {
    let conn = cache::open(&dir.join("cache.db")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN {when}
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ))
    .unwrap();
    conn
}

fn rows(conn: &rusqlite::Connection, sql: &str, id: Uuid) -> i64 {
    conn.query_row(sql, [id.to_string()], |row| row.get(0)).unwrap()
}

/// A customer's row the cache refuses costs that row alone: the other customers are stored,
/// the refused one is named to the user, and once the cache takes it again the next sweep
/// writes it (the engine forgot that it had stored it).
#[tokio::test]
async fn a_customer_row_the_cache_refuses_is_named_and_written_by_the_next_sweep() {
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let customer = client.create_customer(&CustomerProfile::default()).await.unwrap();
        ids.push(customer.id);
    }
    let refused = ids[1];
    let dir = tempfile::tempdir().unwrap();
    let cache = refuse(dir.path(), "customers", &format!("NEW.id = '{refused}'"));
    let mut engine = Running::start(&sandbox, dir.path()).await;

    let said = engine.refusal(refused, "customers").await;
    assert!(said.contains("written again"), "{said}");
    engine.sweep().await;
    let stored = "SELECT count(*) FROM customers WHERE id = ?1";
    for id in &ids {
        let want = if *id == refused { 0 } else { 1 };
        assert_eq!(rows(&cache, stored, *id), want, "{id}");
    }

    cache.execute_batch("DROP TRIGGER refuse").unwrap();
    engine.handle.refresh(None);
    engine.sweep().await;
    assert_eq!(
        rows(&cache, stored, refused),
        1,
        "written again by the next sweep"
    );
    engine.stop().await;
    sandbox.shutdown().await;
}

/// A status row the cache refuses is named, and the engine forgets it stored it: the next
/// poll of that customer writes it (here a refresh, rather than waiting for the poll the
/// engine schedules for the next sweep).
#[tokio::test]
async fn a_status_row_the_cache_refuses_is_named_and_written_by_the_next_poll() {
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let id = client
        .create_customer(&CustomerProfile::default())
        .await
        .unwrap()
        .id;
    let dir = tempfile::tempdir().unwrap();
    let cache = refuse(dir.path(), "statuses", &format!("NEW.customer_id = '{id}'"));
    let mut engine = Running::start(&sandbox, dir.path()).await;
    engine.refusal(id, "statuses").await;
    engine.sweep().await;
    let stored = "SELECT count(*) FROM statuses WHERE customer_id = ?1";
    assert_eq!(rows(&cache, stored, id), 0);

    cache.execute_batch("DROP TRIGGER refuse").unwrap();
    engine.handle.refresh(Some(id));
    // Nothing the engine says follows an unchanged status: the row itself is looked for.
    wait_until("the status written again", || rows(&cache, stored, id) == 1).await;
    engine.stop().await;
    sandbox.shutdown().await;
}

/// A webhook whose row the cache refuses is answered 503, not 200 (SPEC §10: never
/// acknowledged unless committed), and named; the sender's retry, once the cache takes it,
/// is recorded and answered 200.
#[tokio::test]
async fn a_webhook_the_cache_refuses_is_not_acknowledged_and_its_retry_is() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let id = client
        .create_customer(&CustomerProfile::default())
        .await
        .unwrap()
        .id;
    let dir = tempfile::tempdir().unwrap();
    let cache = refuse(dir.path(), "webhook_events", "NEW.id = 'evt_refused'");
    let receiver = ReceiverConfig {
        secret: Some(SECRET.into()),
        ..ReceiverConfig::loopback()
    };
    let mut engine = Running::start_with(&sandbox, dir.path(), Some(receiver)).await;
    let url = match engine
        .wait_for("started", |e| matches!(e, EngineEvent::Started { .. }))
        .await
    {
        EngineEvent::Started { webhook_url, .. } => webhook_url.unwrap(),
        _ => unreachable!(),
    };
    engine.sweep().await;
    let body = format!(
        r#"{{"id":"evt_refused","eventType":"CUSTOMER_UPDATED","createdAt":"2026-11-30T10:00:00Z","data":{{"customerId":"{id}"}}}}"#
    );
    let deliver = || async {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .sign("evt_refused", now, body.as_bytes())
            .unwrap();
        reqwest::Client::new()
            .post(&url)
            .header("webhook-id", "evt_refused")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(deliver().await, 503, "acknowledged though not committed");
    let said = engine
        .wait_for(
            "the refused event named",
            |e| matches!(e, EngineEvent::PollError { error, .. } if error.contains("evt_refused")),
        )
        .await;
    assert!(format!("{said:?}").contains("deliver it again"), "{said:?}");

    cache.execute_batch("DROP TRIGGER refuse").unwrap();
    assert_eq!(deliver().await, 200);
    let stored = "SELECT count(*) FROM webhook_events WHERE id = ?1";
    let count: i64 = cache
        .query_row(stored, ["evt_refused"], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 1);
    engine.stop().await;
    sandbox.shutdown().await;
}

/// Waits (at most 10 s) for what no event says, by looking.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An inbox file whose upload the cache cannot record stays in the inbox (and is said); once
/// the cache takes it, the upload is made again (a replay, by its idempotency key), recorded,
/// and the file lands in `.processed/` once, before `upload` says so.
#[tokio::test]
async fn an_inbox_file_moves_only_once_its_upload_is_recorded() {
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let id = client
        .create_customer(&CustomerProfile::default())
        .await
        .unwrap()
        .id;
    let dir = tempfile::tempdir().unwrap();
    let cache = refuse(dir.path(), "uploads", "1");
    let mut engine = Running::start(&sandbox, dir.path()).await;
    engine.sweep().await;

    let inbox = dir.path().join("inbox");
    let processed = inbox.join(".processed");
    let name = format!("{id}__W9.pdf");
    std::fs::write(inbox.join(&name), PDF).unwrap();
    let said = engine.refusal(id, "uploads").await;
    assert!(said.contains("stays in place"), "{said}");
    assert!(
        inbox.join(&name).exists(),
        "moved though its upload was not recorded"
    );
    assert!(!processed.join(&name).exists());

    cache.execute_batch("DROP TRIGGER refuse").unwrap();
    engine
        .wait_for(
            "the upload",
            |e| matches!(e, EngineEvent::Upload { result: "uploaded", customer_id: Some(c), .. } if *c == id),
        )
        .await;
    assert!(!inbox.join(&name).exists());
    assert_eq!(files_in(&processed), vec![processed.join(&name)], "moved once");
    let recorded = "SELECT count(*) FROM uploads WHERE customer_id = ?1";
    assert_eq!(rows(&cache, recorded, id), 1);
    assert_eq!(client.documents(id).await.unwrap().data.len(), 1, "uploaded once");
    let uploads = engine
        .log
        .seen
        .iter()
        .filter(|e| matches!(e, EngineEvent::Upload { .. }));
    assert_eq!(uploads.count(), 1, "said once: {:#?}", engine.log.seen);
    engine.stop().await;
    sandbox.shutdown().await;
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect()
}
