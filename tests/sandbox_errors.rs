//! Bad input of every kind gets its status and an RFC 9457 problem, never a 5xx; tenants are
//! isolated; idempotency keys replay and conflict; the rate limit answers 429.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Client, KEY, PDF, PNG, client, config, full_profile};
use uuid::Uuid;

/// A sandbox configuration on a database file (kept across a restart).
fn on_file(db: &std::path::Path) -> kycdash::sandbox::SandboxConfig {
    kycdash::sandbox::SandboxConfig {
        db: kycdash::sandbox::DbLocation::File(db.to_path_buf()),
        ..config()
    }
}

async fn sandbox() -> (kycdash::sandbox::RunningSandbox, Client) {
    let sandbox = kycdash::sandbox::start(config()).await.unwrap();
    let client = client(&sandbox, Some(KEY));
    (sandbox, client)
}

#[tokio::test]
async fn a_missing_or_unknown_api_key_is_401() {
    let (sandbox, _) = sandbox().await;
    let anonymous = client(&sandbox, None);
    let response = anonymous.get("/v1/customers").await;
    response.assert_problem(401);
    assert_eq!(response.headers["www-authenticate"], "Bearer");
    let stranger = client(&sandbox, Some("sk_live_0123456789abcdef"));
    let response = stranger.get("/v1/customers").await;
    response.assert_problem(401);
    assert!(
        !response.text.contains("sk_live_0123456789abcdef"),
        "the key is not echoed in full: {}",
        response.text
    );
    let basic = anonymous
        .send(
            Method::GET,
            "/v1/customers",
            None,
            &[("authorization", "Basic Zm9vOmJhcg==")],
        )
        .await;
    basic.assert_problem(401);
}

#[tokio::test]
async fn unknown_routes_ids_and_methods() {
    let (_sandbox, client) = sandbox().await;
    client.get("/v1/nothing-here").await.assert_problem(404);
    client.get("/").await.assert_problem(404);
    client
        .get(&format!("/v1/customers/{}", Uuid::new_v4()))
        .await
        .assert_problem(404);
    client.get("/v1/customers/not-a-uuid").await.assert_problem(404);
    client
        .get(&format!("/v1/compliance/status/{}", Uuid::new_v4()))
        .await
        .assert_problem(404);
    client.get("/v1/compliance/documents/x").await.assert_problem(404);
    client
        .post(&format!("/v1/compliance/kyc/{}/rerun", Uuid::new_v4()), json!({}))
        .await
        .assert_problem(404);
    client
        .send(Method::DELETE, "/v1/customers", None, &[])
        .await
        .assert_problem(405);
    client.start_kyc(Uuid::new_v4()).await.assert_problem(404);
    client.upload(Uuid::new_v4(), "W9", PDF).await.assert_problem(404);
    let page = client
        .http
        .get(format!("{}/sdk/unknown-token", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
}

#[tokio::test]
async fn malformed_json_wrong_content_types_and_validation() {
    let (_sandbox, client) = sandbox().await;
    let raw = |body: &'static str, content_type: &'static str| {
        let client = client.clone();
        async move {
            let request = client
                .http
                .post(format!("{}/v1/customers", client.base))
                .bearer_auth(KEY)
                .header("content-type", content_type)
                .body(body);
            support::into_response(request.send().await.unwrap()).await
        }
    };
    raw("{\"kyc\": ", "application/json").await.assert_problem(400);
    raw("", "application/json").await.assert_problem(400);
    raw("{}", "text/plain").await.assert_problem(415);
    raw("[]", "application/json").await.assert_problem(422);

    let response = client
        .post(
            "/v1/customers",
            json!({"kyc": {"nationality": "XX", "birthDate": "2999-01-01", "occupation": "99"}, "email": "nope"}),
        )
        .await;
    response.assert_problem(422);
    assert_eq!(
        response.error_fields(),
        ["email", "kyc.birthDate", "kyc.nationality", "kyc.occupation"]
    );
    let response = client
        .post("/v1/customers", json!({"kyc": {"firstName": 7}}))
        .await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["kyc.firstName"]);
    let response = client.post("/v1/customers", json!({"nickname": "Ada"})).await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["nickname"]);

    let customer = client.create_customer(full_profile("Lovelace")).await;
    let response = client
        .patch(
            &format!("/v1/customers/{customer}"),
            json!({"id": Uuid::new_v4()}),
        )
        .await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["id"]);
    let response = client
        .patch(
            &format!("/v1/customers/{customer}"),
            json!({"kyc": {"mainAddress": {"countryCode": "usa"}}}),
        )
        .await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["kyc.mainAddress.countryCode"]);
    // The refused patch changed nothing.
    let unchanged = client.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(unchanged.body["kyc"]["mainAddress"]["countryCode"], "US");

    client
        .post("/v1/compliance/kyc", json!({}))
        .await
        .assert_problem(422);
    client
        .post(
            "/v1/compliance/kyc",
            json!({"customerId": customer, "strategy": "OTHER"}),
        )
        .await
        .assert_problem(422);
    client
        .post("/v1/sandbox/clock/advance", json!({"seconds": 0}))
        .await
        .assert_problem(422);
    client
        .post("/v1/sandbox/clock/advance", json!({"seconds": -5}))
        .await
        .assert_problem(422);
    client.get("/v1/customers?limit=0").await.assert_problem(400);
    client.get("/v1/customers?limit=abc").await.assert_problem(400);
    client
        .get("/v1/customers?cursor=garbage")
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_before_they_are_read() {
    let (_sandbox, client) = sandbox().await;
    // Declared too large: refused on the Content-Length alone, with no body sent at all.
    let declared = client
        .http
        .post(format!("{}/v1/customers", client.base))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header("content-length", (64 * 1024 * 1024).to_string())
        .body(reqwest::Body::wrap_stream(futures_util::stream::pending::<
            Result<Vec<u8>, std::io::Error>,
        >()));
    let response = support::into_response(declared.send().await.unwrap()).await;
    response.assert_problem(413);

    // Streamed without a length: cut off at the limit.
    let big = format!("{{\"email\": \"{}@example.com\"}}", "a".repeat(2 * 1024 * 1024));
    let chunks = futures_util::stream::iter(
        big.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let streamed = client
        .http
        .post(format!("{}/v1/customers", client.base))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks));
    support::into_response(streamed.send().await.unwrap())
        .await
        .assert_problem(413);

    let customer = client.create_customer(full_profile("Lovelace")).await;
    let mut huge = PDF.to_vec();
    huge.resize(10 * 1024 * 1024 + 1, b' ');
    client.upload(customer, "W9", &huge).await.assert_problem(413);
    huge.truncate(10 * 1024 * 1024);
    client.upload(customer, "W9", &huge).await.assert_status(201);
}

#[tokio::test]
async fn uploads_are_checked_by_content() {
    let (_sandbox, client) = sandbox().await;
    let customer = client.create_customer(full_profile("Lovelace")).await;
    client.upload(customer, "W9", b"").await.assert_problem(422);
    client
        .upload(customer, "W9", b"just some text")
        .await
        .assert_problem(415);
    let response = client.upload(customer, "BIOMETRIC_REPORT", PNG).await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["file"]);
    let response = client.upload(customer, "PASSPORT", PDF).await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["type"]);
    client
        .upload(customer, "PROOF_OF_ADDRESS", PNG)
        .await
        .assert_status(201);

    let not_multipart = client
        .post(
            "/v1/compliance/upload-doc",
            json!({"customerId": customer, "type": "W9"}),
        )
        .await;
    not_multipart.assert_problem(415);
    let form = reqwest::multipart::Form::new().text("type", "W9");
    let missing = client
        .http
        .post(format!("{}/v1/compliance/upload-doc", client.base))
        .bearer_auth(KEY)
        .multipart(form);
    let response = support::into_response(missing.send().await.unwrap()).await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["customerId", "file"]);

    // History is kept; the newest of a type is the current one.
    client.upload(customer, "W9", PDF).await.assert_status(201);
    client.upload(customer, "W9", PNG).await.assert_status(201);
    let documents = client.get(&format!("/v1/compliance/documents/{customer}")).await;
    let data = documents.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        (
            data[0]["type"].clone(),
            data[0]["format"].clone(),
            data[0]["current"].clone()
        ),
        (json!("W9"), json!("PNG"), json!(true))
    );
    assert_eq!(data[1]["current"], false);
    assert!(data.iter().all(|d| d.get("content").is_none()), "metadata only");
}

#[tokio::test]
async fn workflow_conflicts_are_409_and_name_what_is_missing() {
    let (_sandbox, client) = sandbox().await;
    let bare = client
        .create_customer(json!({"kyc": {"firstName": "Ada", "documentNumber": "X1"}}))
        .await;
    let response = client.start_kyc(bare).await;
    response.assert_problem(409);
    assert_eq!(response.error_fields(), ["kyc.lastName", "kyc.birthDate"]);
    assert!(
        response.body["detail"]
            .as_str()
            .unwrap()
            .contains("PATCH /v1/customers/")
    );

    let customer = client.create_customer(full_profile("Lovelace")).await;
    let started = client.start_kyc(customer).await;
    started.assert_status(201);
    let response = client.start_kyc(customer).await;
    response.assert_problem(409);
    assert!(
        response.body["detail"]
            .as_str()
            .unwrap()
            .contains("already started")
    );
    let onboarding = started.body["onboarding"]["id"].as_str().unwrap();
    let response = client
        .post(&format!("/v1/compliance/kyc/{onboarding}/rerun"), json!({}))
        .await;
    response.assert_problem(409);
    assert!(
        response.body["detail"]
            .as_str()
            .unwrap()
            .contains("only an expired onboarding")
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let (sandbox, client) = sandbox().await;
    let other = support::client(&sandbox, Some("sk_test_other"));
    let customer = client.create_customer(full_profile("Lovelace")).await;
    let started = client.start_kyc(customer).await;
    let onboarding = started.body["onboarding"]["id"].as_str().unwrap().to_string();

    other
        .get(&format!("/v1/customers/{customer}"))
        .await
        .assert_problem(404);
    other
        .get(&format!("/v1/compliance/status/{customer}"))
        .await
        .assert_problem(404);
    other
        .get(&format!("/v1/compliance/documents/{customer}"))
        .await
        .assert_problem(404);
    other
        .patch(
            &format!("/v1/customers/{customer}"),
            json!({"email": "x@example.com"}),
        )
        .await
        .assert_problem(404);
    other.start_kyc(customer).await.assert_problem(404);
    other.upload(customer, "W9", PDF).await.assert_problem(404);
    other.simulate(customer, "SDK_COMPLETE").await.assert_problem(404);
    other
        .post(&format!("/v1/compliance/kyc/{onboarding}/rerun"), json!({}))
        .await
        .assert_problem(404);
    assert_eq!(other.get("/v1/customers").await.body["data"], json!([]));

    let (endpoint, _) = client.register("http://127.0.0.1:9/hooks").await;
    other
        .get(&format!("/v1/webhooks/{endpoint}/deliveries"))
        .await
        .assert_problem(404);
    other
        .send(Method::DELETE, &format!("/v1/webhooks/{endpoint}"), None, &[])
        .await
        .assert_problem(404);
    assert_eq!(other.get("/v1/webhooks").await.body["data"], json!([]));

    // Clocks are per tenant too.
    other.advance(3600).await;
    assert_eq!(client.status(customer).await["onboardingStatus"], "PROCESSING");
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_refuse_a_different_request() {
    let (_sandbox, client) = sandbox().await;
    let body = full_profile("Lovelace");
    let key = [("idempotency-key", "create-ada-1")];
    let first = client
        .send(Method::POST, "/v1/customers", Some(body.clone()), &key)
        .await;
    first.assert_status(201);
    assert!(first.headers.get("idempotent-replayed").is_none());

    let again = client
        .send(Method::POST, "/v1/customers", Some(body.clone()), &key)
        .await;
    again.assert_status(201);
    assert_eq!(again.body, first.body, "the same answer, not a second customer");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.headers["location"], first.headers["location"]);

    let conflict = client
        .send(
            Method::POST,
            "/v1/customers",
            Some(json!({"email": "other@example.com"})),
            &key,
        )
        .await;
    conflict.assert_problem(409);
    assert_eq!(
        client.get("/v1/customers").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A retried start answers as the first did, instead of 409 for starting twice.
    let customer: Uuid = first.body["id"].as_str().unwrap().parse().unwrap();
    let start_key = [("idempotency-key", "start-1")];
    let start = client
        .send(
            Method::POST,
            "/v1/compliance/kyc",
            Some(json!({"customerId": customer})),
            &start_key,
        )
        .await;
    start.assert_status(201);
    let retry = client
        .send(
            Method::POST,
            "/v1/compliance/kyc",
            Some(json!({"customerId": customer})),
            &start_key,
        )
        .await;
    retry.assert_status(201);
    assert_eq!(retry.body, start.body);

    // Keys belong to their tenant.
    let other = Client {
        key: Some("sk_test_other".into()),
        ..client.clone()
    };
    other
        .send(Method::POST, "/v1/customers", Some(body), &key)
        .await
        .assert_status(201);
    client
        .send(
            Method::POST,
            "/v1/customers",
            Some(json!({})),
            &[("idempotency-key", "")],
        )
        .await
        .assert_problem(400);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let mut config = config();
    config.rate_limit = Some(5);
    let sandbox = kycdash::sandbox::start(config).await.unwrap();
    let client = client(&sandbox, Some(KEY));
    let other = support::client(&sandbox, Some("sk_test_other"));
    let mut limited = None;
    for _ in 0..50 {
        let response = client.get("/v1/customers").await;
        if response.status == 429 {
            limited = Some(response);
            break;
        }
        response.assert_status(200);
    }
    let limited = limited.expect("the limit is reached within 50 requests");
    limited.assert_problem(429);
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    // Another tenant has its own budget.
    other.get("/v1/customers").await.assert_status(200);
}

#[tokio::test]
async fn pagination_is_stable_and_filters_by_external_id() {
    let (_sandbox, client) = sandbox().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let mut body = full_profile("Lovelace");
        body["externalId"] = json!(format!("acme-{}", i % 2));
        created.push(client.create_customer(body).await.to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1.. {
        assert!(
            page <= 10,
            "7 customers in pages of 3 took more than 10 pages: {seen:?}"
        );
        let path = match &cursor {
            Some(c) => format!("/v1/customers?limit=3&cursor={c}"),
            None => "/v1/customers?limit=3".to_string(),
        };
        let page = client.get(&path).await;
        page.assert_status(200);
        for customer in page.body["data"].as_array().unwrap() {
            seen.push(customer["id"].as_str().unwrap().to_string());
        }
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every customer once, oldest first");
    let filtered = client.get("/v1/customers?externalId=acme-1").await;
    assert_eq!(filtered.body["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn no_input_produces_a_server_error() {
    let (_sandbox, client) = sandbox().await;
    let customer = client.create_customer(full_profile("Lovelace")).await.to_string();
    let bodies = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({}),
        json!({"kyc": []}),
        json!({"kyc": {"mainAddress": 5}}),
        json!({"customerId": customer, "action": null}),
        json!({"seconds": 1e30}),
        json!({"url": "ftp://example.com"}),
        json!({"url": "http://user:pass@127.0.0.1/"}),
        json!({"url": "http://127.0.0.1/", "eventTypes": ["NOPE"]}),
        json!({"url": "http://127.0.0.1/", "eventTypes": []}),
        json!({"kyc": {"birthDate": "1990-02-30"}}),
        json!({"a": "\u{0000}\u{ffff}"}),
    ];
    let paths = [
        "/v1/customers".to_string(),
        format!("/v1/customers/{customer}"),
        "/v1/compliance/kyc".to_string(),
        format!("/v1/sandbox/customers/{customer}/simulate"),
        "/v1/sandbox/clock/advance".to_string(),
        "/v1/webhooks".to_string(),
        format!(
            "/v1/webhooks/{}/deliveries/{}/resend",
            Uuid::new_v4(),
            Uuid::new_v4()
        ),
    ];
    for path in &paths {
        for body in &bodies {
            for method in [Method::POST, Method::PATCH, Method::GET, Method::DELETE] {
                let response = client.send(method.clone(), path, Some(body.clone()), &[]).await;
                assert!(
                    response.status.as_u16() < 500,
                    "{method} {path} {body} answered {}: {}",
                    response.status,
                    response.text
                );
                if !response.status.is_success() {
                    response.assert_problem(response.status.as_u16());
                }
            }
        }
    }
}

#[tokio::test]
async fn a_retried_upload_with_the_same_key_is_the_same_upload() {
    let (_sandbox, client) = sandbox().await;
    let customer = client.create_customer(full_profile("Lovelace")).await;
    // Each attempt builds its form anew, so each has its own multipart boundary.
    let upload = |content: &'static [u8]| {
        let client = client.clone();
        async move {
            let form = reqwest::multipart::Form::new()
                .text("customerId", customer.to_string())
                .text("type", "W9")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(content).file_name("w9.pdf"),
                );
            let request = client
                .http
                .post(format!("{}/v1/compliance/upload-doc", client.base))
                .bearer_auth(KEY)
                .header("idempotency-key", "upload-w9")
                .multipart(form);
            support::into_response(request.send().await.unwrap()).await
        }
    };
    let first = upload(PDF).await;
    first.assert_status(201);
    let again = upload(PDF).await;
    again.assert_status(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    upload(PNG).await.assert_problem(409);
    let documents = client.get(&format!("/v1/compliance/documents/{customer}")).await;
    assert_eq!(documents.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_clock_runs_at_most_a_century_ahead() {
    let (_sandbox, client) = sandbox().await;
    for _ in 0..100 {
        client.advance(31_536_000).await;
    }
    let response = client
        .post("/v1/sandbox/clock/advance", json!({"seconds": 31_536_000}))
        .await;
    response.assert_problem(422);
    assert_eq!(response.error_fields(), ["seconds"]);
    // Everything still works on the far-future clock.
    let customer = client.create_customer(full_profile("Lovelace")).await;
    client.start_kyc(customer).await.assert_status(201);
}

/// Not bad input but a bad disk: a stored answer this build cannot replay is a 500 that says
/// so, never a made-up 200 without its headers.
#[tokio::test]
async fn a_stored_answer_that_cannot_be_replayed_is_an_error_not_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let start = || kycdash::sandbox::start(on_file(&db));
    let corruptions = [
        (
            "bad-status",
            "UPDATE idempotency_keys SET status = 1000 WHERE key = 'bad-status'",
        ),
        (
            "bad-headers",
            "UPDATE idempotency_keys SET headers = 'not json' WHERE key = 'bad-headers'",
        ),
        (
            "bad-header-name",
            "UPDATE idempotency_keys SET headers = '[[\"bad name\",\"x\"]]' WHERE key = 'bad-header-name'",
        ),
    ];
    let body = full_profile("Lovelace");
    let sandbox = start().await.unwrap();
    let first = client(&sandbox, Some(KEY));
    for (key, _) in corruptions {
        first
            .send(
                Method::POST,
                "/v1/customers",
                Some(body.clone()),
                &[("idempotency-key", key)],
            )
            .await
            .assert_status(201);
    }
    sandbox.shutdown().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (_, corruption) in corruptions {
        assert_eq!(conn.execute(corruption, []).unwrap(), 1, "{corruption}");
    }
    drop(conn);
    let sandbox = start().await.unwrap();
    let again = client(&sandbox, Some(KEY));
    for (key, _) in corruptions {
        let answer = again
            .send(
                Method::POST,
                "/v1/customers",
                Some(body.clone()),
                &[("idempotency-key", key)],
            )
            .await;
        answer.assert_problem(500);
        assert!(answer.headers.get("idempotent-replayed").is_none(), "{key}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_document_type_is_read_as_the_inbox_reads_it_ignoring_case() {
    let (_sandbox, client) = sandbox().await;
    let customer = client.create_customer(full_profile("Lovelace")).await;
    let uploaded = client.upload(customer, " w9 ", PDF).await;
    uploaded.assert_status(201);
    assert_eq!(uploaded.body["type"], "W9");
    client.upload(customer, "W10", PDF).await.assert_problem(422);
}

/// Exactly once: a command and the answer to its Idempotency-Key commit together. Here the
/// answer cannot be stored (a trigger stands in for a crash or a full disk at that moment):
/// the command is undone with it, so the retry runs it once, not a second time.
#[tokio::test]
async fn a_command_whose_answer_cannot_be_stored_did_not_happen_and_its_retry_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let start = || kycdash::sandbox::start(on_file(&db));
    // A first start makes the schema; then answers cannot be stored.
    start().await.unwrap().shutdown().await;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_answers BEFORE INSERT ON idempotency_keys
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
        )
        .unwrap();
    let sandbox = start().await.unwrap();
    let first = client(&sandbox, Some(KEY));
    let key = [("idempotency-key", "create-once")];
    let body = full_profile("Lovelace");
    let failed = first
        .send(Method::POST, "/v1/customers", Some(body.clone()), &key)
        .await;
    failed.assert_problem(500);
    assert_eq!(
        first.get("/v1/customers").await.body["data"],
        json!([]),
        "nothing was created"
    );
    sandbox.shutdown().await;

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER no_answers")
        .unwrap();
    let sandbox = start().await.unwrap();
    let again = client(&sandbox, Some(KEY));
    let created = again
        .send(Method::POST, "/v1/customers", Some(body.clone()), &key)
        .await;
    created.assert_status(201);
    let replayed = again.send(Method::POST, "/v1/customers", Some(body), &key).await;
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.body, created.body);
    assert_eq!(
        again.get("/v1/customers").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sandbox.shutdown().await;
}

/// The sandbox keeps the keys it has answered in memory, to skip looking up a new key: after
/// a restart they are still known, a 201 and a 422 alike.
#[tokio::test]
async fn answers_to_idempotency_keys_replay_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let body = full_profile("Lovelace");
    let invalid = json!({"email": "not an email"});
    let (created_key, invalid_key) = ([("idempotency-key", "create-1")], [("idempotency-key", "bad-1")]);

    let sandbox = kycdash::sandbox::start(on_file(&db)).await.unwrap();
    let before = client(&sandbox, Some(KEY));
    let created = before
        .send(Method::POST, "/v1/customers", Some(body.clone()), &created_key)
        .await;
    created.assert_status(201);
    let refused = before
        .send(Method::POST, "/v1/customers", Some(invalid.clone()), &invalid_key)
        .await;
    refused.assert_problem(422);
    let replayed = before
        .send(Method::POST, "/v1/customers", Some(invalid.clone()), &invalid_key)
        .await;
    assert_eq!(
        replayed.headers["idempotent-replayed"], "true",
        "replayed before the restart too"
    );
    sandbox.shutdown().await;

    let sandbox = kycdash::sandbox::start(on_file(&db)).await.unwrap();
    let after = client(&sandbox, Some(KEY));
    let replayed = after
        .send(Method::POST, "/v1/customers", Some(body), &created_key)
        .await;
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.body, created.body);
    let replayed = after
        .send(Method::POST, "/v1/customers", Some(invalid), &invalid_key)
        .await;
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.body, refused.body);
    assert_eq!(
        after.get("/v1/customers").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one customer, created before the restart"
    );
    sandbox.shutdown().await;
}
