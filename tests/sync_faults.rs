//! What goes wrong from outside: deliveries the receiver must refuse (each with its reason),
//! duplicates it must not apply twice, and an API that fails, throttles, stalls or answers
//! garbage — retried with backoff, reported, recovered from, never a panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use kycdash::api::{ApiClient, ApiError, ClientConfig, RetryPolicy};
use kycdash::sync::engine::ApiState;

use kycdash::sync::observation::{Ack, Observation, RejectReason};
use kycdash::sync::receiver;
use standardwebhooks::Webhook;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver whose engine side is this test: verified events are acknowledged as the
/// engine would, duplicates by id.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Observation>, CancellationToken) {
    let bound = receiver::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}/webhooks", bound.addr);
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    receiver::serve(
        bound,
        receiver::verifier(SECRET).unwrap(),
        receiver::Inlet::to(tx),
        cancel.clone(),
    );
    (url, rx, cancel)
}

fn event_body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","eventType":"CUSTOMER_CREATED","createdAt":"2026-11-30T10:00:00Z","data":{{"customerId":"0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11"}}}}"#
    )
}

fn signed(id: &str, timestamp: i64, body: &str, secret: &str) -> Vec<(&'static str, String)> {
    let signature = Webhook::new(secret)
        .unwrap()
        .sign(id, timestamp, body.as_bytes())
        .unwrap();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

async fn post(url: &str, headers: &[(&'static str, String)], body: impl Into<reqwest::Body>) -> u16 {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn every_bad_delivery_is_refused_with_its_reason_and_a_good_one_is_passed_on() {
    let (url, mut engine, cancel) = receiver().await;
    // The engine's side, faked: acknowledge each verified event. That repeats are applied
    // once is the real engine's part, tested on it below (a repeat during its first copy's
    // commit, a repeat older than the engine's memory).
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut ids = std::collections::HashSet::new();
        while let Some(observation) = engine.recv().await {
            match observation {
                Observation::Webhook { event, ack, .. } => {
                    let fresh = ids.insert(event.id.clone());
                    let _ = ack.send(if fresh { Ack::Recorded } else { Ack::Duplicate });
                    let _ = seen_tx.send(Ok((event.id, fresh)));
                }
                Observation::Rejected { reason, detail } => {
                    let _ = seen_tx.send(Err((reason, detail)));
                }
                _ => {}
            }
        }
    });
    let body = event_body("evt_1");
    let mut expect_rejection = async |status: u16, want_status: u16, want: RejectReason| {
        assert_eq!(status, want_status, "{want:?}");
        match tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .unwrap()
        {
            Some(Err((reason, detail))) => {
                assert_eq!(reason, want, "{detail}");
                assert!(!detail.is_empty());
            }
            other => panic!("expected a {want:?} rejection, got {other:?}"),
        }
    };

    let status = post(
        &url,
        &signed("evt_1", now(), &body, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        body.clone(),
    )
    .await;
    expect_rejection(status, 401, RejectReason::BadSignature).await;
    let status = post(&url, &signed("evt_1", now() - 600, &body, SECRET), body.clone()).await;
    expect_rejection(status, 401, RejectReason::StaleTimestamp).await;
    let status = post(&url, &signed("evt_1", now() + 600, &body, SECRET), body.clone()).await;
    expect_rejection(status, 401, RejectReason::StaleTimestamp).await;
    let status = post(&url, &signed("evt_1", now(), &body, SECRET)[..2], body.clone()).await;
    expect_rejection(status, 401, RejectReason::MissingHeaders).await;
    let garbage = "{\"not\": \"an event\"}";
    let status = post(&url, &signed("evt_x", now(), garbage, SECRET), garbage).await;
    expect_rejection(status, 400, RejectReason::Malformed).await;
    let huge = "x".repeat(receiver::BODY_LIMIT + 1);
    let status = post(&url, &signed("evt_y", now(), &huge, SECRET), huge.clone()).await;
    expect_rejection(status, 413, RejectReason::TooLarge).await;

    // A good one: passed on, and answered as the engine answers.
    let status = post(&url, &signed("evt_1", now(), &body, SECRET), body.clone()).await;
    assert_eq!(status, 200);
    let got = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap();
    assert_eq!(got.unwrap().unwrap(), ("evt_1".to_string(), true));
    // An unknown event type is kept and acknowledged.
    let unknown = r#"{"id":"evt_2","eventType":"CUSTOMER_ACCOUNT_OPENED","createdAt":"2026-11-30T10:00:00Z","data":{}}"#;
    assert_eq!(
        post(&url, &signed("evt_2", now(), unknown, SECRET), unknown).await,
        200
    );
    cancel.cancel();
}

/// A local API that misbehaves as told, counting requests.
async fn flaky_api(handler: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, handler).await });
    url
}

fn client(url: &str, timeout: Duration) -> ApiClient {
    let config = ClientConfig {
        timeout,
        retry: RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        ..ClientConfig::new(url, "sk_test_flaky")
    };
    ApiClient::new(&config).unwrap()
}

const EMPTY_PAGE: &str = r#"{"data": [], "nextCursor": null}"#;

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let url = flaky_api(Router::new().route(
        "/v1/customers",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
                } else {
                    ([("content-type", "application/json")], EMPTY_PAGE).into_response()
                }
            }
        }),
    ))
    .await;
    let page = client(&url, Duration::from_secs(2))
        .list_customers(10, None)
        .await
        .unwrap();
    assert!(page.data.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_servers_pause() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let url = flaky_api(Router::new().route(
        "/v1/customers",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response()
                } else {
                    ([("content-type", "application/json")], EMPTY_PAGE).into_response()
                }
            }
        }),
    ))
    .await;
    // The retry follows the 429 (how long it waits, Retry-After over the backoff, is
    // `RetryPolicy::wait_after`'s unit test: no wall clock here).
    client(&url, Duration::from_secs(2))
        .list_customers(10, None)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn timeouts_malformed_answers_refused_connections_and_401_are_typed_errors() {
    let url = flaky_api(
        Router::new()
            .route(
                "/v1/customers",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route(
                "/v1/customers/{id}",
                get(|| async { ([("content-type", "application/json")], "{not json") }),
            )
            .route(
                "/v1/webhooks",
                get(|headers: HeaderMap| async move {
                    assert!(headers.get("authorization").is_some());
                    (
                        StatusCode::UNAUTHORIZED,
                        [("content-type", "application/problem+json")],
                        r#"{"title": "Unauthorized", "status": 401, "detail": "unknown API key"}"#,
                    )
                }),
            ),
    )
    .await;
    let client = client(&url, Duration::from_millis(200));
    let timeout = client.list_customers(10, None).await.unwrap_err();
    assert!(
        matches!(timeout, ApiError::Transport(_)) && timeout.is_transient(),
        "{timeout}"
    );
    assert!(timeout.to_string().contains("timed out"), "{timeout}");

    let malformed = client.customer(uuid::Uuid::nil()).await.unwrap_err();
    assert!(matches!(malformed, ApiError::Decode(_)), "{malformed}");

    let refused = client.webhooks().await.unwrap_err();
    assert!(refused.is_unauthorized() && !refused.is_transient(), "{refused}");
    assert!(refused.to_string().contains("unknown API key"), "{refused}");
    assert!(!refused.to_string().contains("sk_test_flaky"));

    // Nothing listens on a port that was just freed.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let err = self::client(&dead, Duration::from_millis(200))
        .list_customers(1, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Transport(_)), "{err}");
}

#[tokio::test]
async fn the_engine_reports_a_failing_api_and_recovers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let url = flaky_api(Router::new().route(
        "/v1/customers",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // Down for the first listing and its retries, then up.
                if n < 4 {
                    (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response()
                } else {
                    ([("content-type", "application/json")], EMPTY_PAGE).into_response()
                }
            }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = kycdash::sync::EngineConfig {
        api: ClientConfig {
            retry: RetryPolicy {
                attempts: 4,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
            ..ClientConfig::new(&url, "sk_test_flaky")
        },
        sandbox: false,
        data_dir: dir.path().to_path_buf(),
        inbox: None,
        receiver: None,
        concurrency: 2,
        once: false,
        publish_customers: false,
        stop_on_refused_key: true,
        register_before_start: true,
        retain: std::time::Duration::from_secs(90 * 86_400),
        timing: Default::default(),
        metrics: None,
    };
    let lock = kycdash::sync::engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = kycdash::sync::engine::start(config, lock)
        .await
        .unwrap()
        .into_parts();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no recovery; saw {seen:#?}"))
            .unwrap();
        let done = matches!(event, kycdash::sync::EngineEvent::Sweep { .. });
        seen.push(event);
        if done {
            break;
        }
    }
    let error = seen.iter().find_map(|e| match e {
        kycdash::sync::EngineEvent::PollError {
            status,
            error,
            retry_in_seconds,
            ..
        } => Some((*status, error.clone(), *retry_in_seconds)),
        _ => None,
    });
    let (status, error, retry) = error.unwrap_or_else(|| panic!("no poll_error in {seen:#?}"));
    assert_eq!(status, Some(503));
    assert!(error.contains("maintenance"), "{error}");
    assert!((1..=2).contains(&retry), "{retry}");
    // SPEC §10: the API's state is said as it changes: unreachable (with why), then
    // connected again once it answers.
    let states: Vec<&ApiState> = seen
        .iter()
        .filter_map(|e| match e {
            kycdash::sync::EngineEvent::Api(state) => Some(state),
            _ => None,
        })
        .collect();
    match states.as_slice() {
        [
            ApiState::Unreachable {
                reason,
                since,
                retry_at,
            },
            ApiState::Connected,
        ] => {
            assert!(reason.contains("maintenance"), "{reason}");
            assert!(retry_at > since, "the next retry is after the outage began");
        }
        other => panic!("unreachable then connected, not {other:?}"),
    }
    handle.stop();
    task.await.unwrap();
}

/// Delivers event `id` once; its answer, and whether `released` was set when it came.
async fn deliver(url: String, id: &'static str, released: Arc<std::sync::atomic::AtomicBool>) -> (u16, bool) {
    let body = event_body(id);
    let status = post(&url, &signed(id, now(), &body, SECRET), body.clone()).await;
    (status, released.load(Ordering::SeqCst))
}

/// SPEC §10, exactly once in: a repeat that arrives while the first copy is still being
/// committed gets its answer after that commit, the same as the first's; when the commit
/// fails, both hear "not recorded" and the sender's retry is applied once. The commit is held
/// by another connection's write lock on the real engine's cache.
#[tokio::test]
async fn a_repeat_waits_for_the_first_copys_commit_and_shares_its_fate() {
    use kycdash::sync::engine::{self, EngineConfig, EngineEvent, ReceiverConfig};
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        receiver: Some(ReceiverConfig {
            secret: Some(SECRET.into()),
            ..ReceiverConfig::loopback()
        }),
        ..EngineConfig::new(
            ClientConfig::new(sandbox.base_url(), kycdash::sandbox::DEFAULT_API_KEY),
            dir.path().to_path_buf(),
        )
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let url = loop {
        if let Some(EngineEvent::Started { webhook_url, .. }) = events.recv().await {
            break webhook_url.unwrap();
        }
    };
    while !matches!(events.recv().await, Some(EngineEvent::Sweep { .. }) | None) {}
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });

    // Holds the cache's write lock for `hold`, then lets go and says so.
    let hold_cache = |hold: Duration| {
        let path = dir.path().join("cache.db");
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = released.clone();
        let (locked_tx, locked) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(hold);
            flag.store(true, Ordering::SeqCst);
            conn.execute_batch("ROLLBACK").unwrap();
        });
        locked.recv().unwrap();
        released
    };
    let deliver_twice = |id: &'static str, released: Arc<std::sync::atomic::AtomicBool>| {
        let url = url.clone();
        async move {
            let first = tokio::spawn(deliver(url.clone(), id, released.clone()));
            // The repeat goes while the first is still waiting for its commit.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let repeat = deliver(url, id, released).await;
            (first.await.unwrap(), repeat)
        }
    };

    // A commit held for a second: both answered 200, and only after it.
    let released = hold_cache(Duration::from_secs(1));
    let (first, repeat) = deliver_twice("evt_held", released).await;
    assert_eq!(first, (200, true), "the first copy");
    assert_eq!(
        repeat,
        (200, true),
        "the repeat is answered after the commit, not before"
    );

    // A commit that fails (the lock outlasts the writer's 5 s patience): both hear 503, and
    // the sender's retry is applied, once.
    let released = hold_cache(Duration::from_secs(7));
    let (first, repeat) = deliver_twice("evt_failed", released.clone()).await;
    assert_eq!(first.0, 503, "the first copy was not recorded");
    assert_eq!(repeat.0, 503, "nor was its repeat");
    while !released.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = event_body("evt_failed");
    let retry = post(&url, &signed("evt_failed", now(), &body, SECRET), body.clone()).await;
    assert_eq!(retry, 200);
    let stored: i64 = rusqlite::Connection::open(dir.path().join("cache.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM webhook_events WHERE id = 'evt_failed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(stored, 1);

    handle.stop();
    task.await.unwrap();
    drain.await.unwrap();
}

/// SPEC §10, degraded not dead: an API that creates the webhook endpoint but returns no secret
/// (any server that differs from the sandbox) leaves the engine polling alone, saying why,
/// and the registration is tried again until it succeeds; then the receiver takes webhooks.
#[tokio::test]
async fn a_failed_registration_polls_alone_then_registers_on_a_retry() {
    use kycdash::sync::engine::{self, EngineConfig, EngineEvent, EngineTiming};
    let creations = Arc::new(AtomicUsize::new(0));
    let counter = creations.clone();
    let endpoint = move |secret: Option<&str>| {
        serde_json::json!({
            "id": "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11", "url": "http://127.0.0.1:1/webhooks",
            "secret": secret, "secretHint": "whsec_Mf…", "createdAt": "2026-12-06T10:00:00Z"
        })
    };
    let url = flaky_api(
        Router::new()
            .route(
                "/v1/customers",
                get(|| async { ([("content-type", "application/json")], EMPTY_PAGE) }),
            )
            .route(
                "/v1/webhooks",
                get(|| async { axum::Json(serde_json::json!({"data": []})) }).merge(axum::routing::post(
                    move || {
                        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
                        let body = endpoint((!first).then_some(SECRET));
                        async move { (StatusCode::CREATED, axum::Json(body)) }
                    },
                )),
            ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        timing: EngineTiming {
            register_retry: Duration::from_millis(50),
            ..EngineTiming::default()
        },
        ..EngineConfig::new(ClientConfig::new(&url, "sk_test_stub"), dir.path().to_path_buf())
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock)
        .await
        .expect("the engine starts")
        .into_parts();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event in time")
            .expect("the engine runs")
    };
    match next().await {
        EngineEvent::Started { webhook_url, .. } => assert_eq!(webhook_url, None, "not receiving yet"),
        other => panic!("started first, not {other:?}"),
    }
    let mut said = None;
    let receiving = loop {
        match next().await {
            EngineEvent::PollError { error, .. } if error.contains("webhook registration") => {
                said.get_or_insert(error);
            }
            EngineEvent::Receiver {
                webhook_url: Some(url),
                ..
            } => break url,
            _ => {}
        }
    };
    let said = said.expect("the failed registration is said");
    assert!(
        said.contains("no secret") && said.contains("polling alone"),
        "{said}"
    );
    assert_eq!(
        creations.load(Ordering::SeqCst),
        2,
        "registered on the first retry"
    );

    // The receiver now takes webhooks signed with the secret it got.
    let body = event_body("evt_after_registration");
    let status = post(
        &receiving,
        &signed("evt_after_registration", now(), &body, SECRET),
        body,
    )
    .await;
    assert_eq!(status, 200);
    handle.stop();
    task.await.unwrap();
}

/// Waits for the first event `pick` accepts, within 15 s.
async fn wait_for<T>(
    events: &mut mpsc::Receiver<kycdash::sync::EngineEvent>,
    what: &str,
    mut pick: impl FnMut(&kycdash::sync::EngineEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} in time"))
            .unwrap_or_else(|| panic!("the engine stopped before {what}"));
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

/// SPEC §10: while the API is unreachable, the customers whose status is older than their
/// stage's polling interval are named (a dashboard shows their age); for a dashboard, a
/// refused key is a state it shows, not the end.
#[tokio::test]
async fn an_unreachable_api_names_stale_rows_and_a_refused_key_is_shown_not_fatal() {
    use kycdash::sync::engine::{self, EngineConfig, EngineEvent, EngineTiming};
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let url = sandbox.base_url().to_string();
    let key = kycdash::sandbox::DEFAULT_API_KEY;
    let api = kycdash::api::ApiClient::new(&ClientConfig::new(&url, key)).unwrap();
    let profile: kycdash::domain::CustomerProfile = serde_json::from_value(serde_json::json!({
        "ipAddress": "203.0.113.7",
        "kyc": {"firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12",
            "documentNumber": "X1", "nationality": "US", "occupation": "11",
            "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001", "countryCode": "US"}}
    }))
    .unwrap();
    let customer = api.create_customer(&profile).await.unwrap().id;

    let dir = tempfile::tempdir().unwrap();
    let quick = ClientConfig {
        retry: RetryPolicy::NONE,
        ..ClientConfig::new(&url, key)
    };
    let config = EngineConfig {
        receiver: None,
        publish_customers: true,
        stop_on_refused_key: false,
        timing: EngineTiming {
            poll_integrator: Duration::from_millis(300),
            stale_every: Duration::from_millis(100),
            ..EngineTiming::default()
        },
        ..EngineConfig::new(quick, dir.path().to_path_buf())
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    wait_for(&mut events, "the customer's stage", |e| match e {
        EngineEvent::StageChanged { customer_id, .. } if *customer_id == customer => Some(()),
        _ => None,
    })
    .await;
    sandbox.shutdown().await;
    handle.refresh(None);
    wait_for(&mut events, "the API unreachable", |e| {
        matches!(e, EngineEvent::Api(ApiState::Unreachable { .. })).then_some(())
    })
    .await;
    let stale = wait_for(&mut events, "the stale row named", |e| match e {
        EngineEvent::Stale(rows) if !rows.is_empty() => Some(rows.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        stale.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![customer]
    );
    handle.stop();
    task.await.unwrap();

    // The same cache, a key the API refuses: said as a state, and the engine goes on.
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    // A file in the inbox: its upload meets the refused key too, and that is not the end
    // either.
    let inbox = dir.path().join("refused-inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("ada-1__W9.pdf"), b"%PDF-1.7\n%%EOF\n").unwrap();
    let refused = EngineConfig {
        receiver: None,
        inbox: Some(inbox),
        publish_customers: true,
        stop_on_refused_key: false,
        ..EngineConfig::new(
            ClientConfig::new(sandbox.base_url(), "sk_test_not_a_key"),
            dir.path().join("refused"),
        )
    };
    std::fs::create_dir_all(dir.path().join("refused")).unwrap();
    let lock = engine::lock_data_dir(&dir.path().join("refused")).unwrap();
    let (handle, mut events, task) = engine::start(refused, lock).await.unwrap().into_parts();
    let reason = wait_for(&mut events, "the key refused", |e| match e {
        EngineEvent::Api(ApiState::KeyRefused { reason }) => Some(reason.clone()),
        EngineEvent::Fatal { error } => panic!("a refused key ends a dashboard's engine: {error}"),
        _ => None,
    })
    .await;
    assert!(reason.contains("401"), "{reason}");
    // The inbox's attempt (after the file held still) also meets the refused key.
    let inbox_tried = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(Some(event)) = tokio::time::timeout_at(inbox_tried, events.recv()).await {
        assert!(
            !matches!(event, EngineEvent::Fatal { .. }),
            "a refused key ends a dashboard's engine: {event:?}"
        );
    }
    handle.stop();
    let mut rest = Vec::new();
    while let Some(event) = events.recv().await {
        rest.push(event);
    }
    assert!(
        !rest.iter().any(|e| matches!(e, EngineEvent::Fatal { .. })),
        "{rest:#?}"
    );
    assert_eq!(rest.last(), Some(&EngineEvent::Stopped));
    task.await.unwrap();
    sandbox.shutdown().await;
}

/// SPEC §10: `p` pauses sweeps too, not only the polls they queue: while paused, the listing
/// asks for no page; resumed, it goes on where it was.
#[tokio::test]
async fn pausing_stops_a_running_sweep_s_listing_until_resumed() {
    use kycdash::sync::engine::{self, EngineConfig};
    let pages = Arc::new(AtomicUsize::new(0));
    let counter = pages.clone();
    let url = flaky_api(Router::new().route(
        "/v1/customers",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let next = if n < 10_000 {
                    format!(r#""p{}""#, n + 1)
                } else {
                    "null".into()
                };
                let body = format!(r#"{{"data": [], "nextCursor": {next}}}"#);
                ([("content-type", "application/json")], body).into_response()
            }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        receiver: None,
        ..EngineConfig::new(ClientConfig::new(&url, "sk_test_stub"), dir.path().to_path_buf())
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, _events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let listed = |at_least: usize| {
        let pages = pages.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), async {
                while pages.load(Ordering::SeqCst) < at_least {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .expect("the listing goes on");
        }
    };
    listed(3).await;
    handle.pause(true);
    // The page asked for as the pause came is answered; then nothing more is asked (one more
    // at most, on a machine so loaded that it was past the pause check already; unpaused,
    // the listing asks for about 50 in this time).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let paused_at = pages.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = pages.load(Ordering::SeqCst);
    assert!(
        later <= paused_at + 1,
        "no page while paused: {paused_at} then {later}"
    );
    handle.pause(false);
    listed(paused_at + 3).await;
    handle.stop();
    task.await.unwrap();
}

/// SPEC §10, bounded over time: the engine keeps only the newest webhook ids in memory (none
/// are loaded at start), and a repeat of an older event is told by the cache: after a restart,
/// a redelivery is answered as a duplicate and not applied again.
#[tokio::test]
async fn a_repeat_older_than_the_engines_memory_is_told_by_the_cache() {
    use kycdash::sync::engine::EngineEvent;
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for run in 0..2 {
        let (handle, mut events, task, url) =
            engine_receiving(&sandbox, dir.path(), Default::default()).await;
        let body = event_body("evt_old");
        let status = post(&url, &signed("evt_old", now(), &body, SECRET), body.clone()).await;
        assert_eq!(status, 200, "run {run}");
        let duplicate = wait_for(&mut events, "the webhook", |e| match e {
            EngineEvent::Webhook {
                event_id, duplicate, ..
            } if event_id == "evt_old" => Some(*duplicate),
            _ => None,
        })
        .await;
        seen.push(duplicate);
        handle.stop();
        while events.recv().await.is_some() {}
        task.await.unwrap();
    }
    assert_eq!(
        seen,
        [false, true],
        "new in the first run, a repeat in the second"
    );
}

/// SPEC §10, bounded over time: a watcher that stops reading (a `watch` whose stdout nobody
/// reads) does not grow a queue without bound, and never keeps a webhook's sender waiting:
/// past the limit, new webhooks are answered 503 at once (the sender retries), and once the
/// watcher reads again, they are taken.
#[tokio::test]
async fn a_watcher_that_stops_reading_bounds_the_engine_and_webhooks_are_answered_at_once() {
    use kycdash::sync::engine::EngineTiming;
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let timing = EngineTiming {
        watcher_behind: 8,
        ..EngineTiming::default()
    };
    let (handle, mut events, task, url) = engine_receiving(&sandbox, dir.path(), timing).await;
    // From here on nobody reads the events: 1,100 webhooks (the channel holds 1,024).
    let send = |n: usize| {
        let url = url.clone();
        async move {
            let id = format!("evt_flood_{n}");
            let body = event_body(&id);
            let headers = signed(&id, now(), &body, SECRET);
            let mut request = reqwest::Client::new().post(&url).body(body);
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            let answer = tokio::time::timeout(Duration::from_secs(5), request.send())
                .await
                .expect("answered at once, whatever the watcher does")
                .unwrap();
            answer.status().as_u16()
        }
    };
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..1_100 {
        *answers.entry(send(n).await).or_default() += 1;
    }
    let turned_away = answers.get(&503).copied().unwrap_or(0);
    assert!(turned_away > 0, "some were turned away: {answers:?}");
    // Taken: what the channel holds and the backlog's limit, not all of them.
    let taken = answers.get(&200).copied().unwrap_or(0);
    assert!(taken <= 1_024 + 4 * 8 + 8, "{answers:?}");

    // The watcher reads again: the backlog drains and webhooks are taken again.
    let drained = tokio::spawn(async move {
        let mut n = 0;
        while events.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut n = 1_100;
    loop {
        n += 1;
        if send(n).await == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "taken again once read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop();
    task.await.unwrap();
    assert!(drained.await.unwrap() >= taken);
}

/// A real engine on `dir` against `sandbox`, its receiver verifying with [`SECRET`], with
/// `timing`; its handle, events, task and the receiver's URL.
async fn engine_receiving(
    sandbox: &kycdash::sandbox::RunningSandbox,
    dir: &std::path::Path,
    timing: kycdash::sync::EngineTiming,
) -> (
    kycdash::sync::EngineHandle,
    mpsc::Receiver<kycdash::sync::EngineEvent>,
    tokio::task::JoinHandle<()>,
    String,
) {
    use kycdash::sync::engine::{self, EngineConfig, EngineEvent, ReceiverConfig};
    let config = EngineConfig {
        receiver: Some(ReceiverConfig {
            secret: Some(SECRET.into()),
            ..ReceiverConfig::loopback()
        }),
        timing,
        ..EngineConfig::new(
            ClientConfig::new(sandbox.base_url(), kycdash::sandbox::DEFAULT_API_KEY),
            dir.to_path_buf(),
        )
    };
    let lock = engine::lock_data_dir(dir).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let url = wait_for(&mut events, "started", |e| match e {
        EngineEvent::Started { webhook_url, .. } => webhook_url.clone(),
        _ => None,
    })
    .await;
    (handle, events, task, url)
}
