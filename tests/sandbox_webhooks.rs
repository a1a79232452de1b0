//! Webhook delivery: signed, retried with backoff until the receiver takes it, in order per
//! customer, every attempt in the log, resumed after a restart, resent by hand.

mod support;

use std::time::Duration;

use kycdash::sandbox::{DbLocation, DeliveryPolicy, SandboxConfig};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Harness, Receiver, client, config, full_profile, names, started_then};
use uuid::Uuid;

/// Retries within milliseconds, so a test waits for the network, never for a timer.
fn fast_retries() -> SandboxConfig {
    let mut config = config();
    config.delivery = DeliveryPolicy {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        timeout: Duration::from_secs(5),
        ..DeliveryPolicy::default()
    };
    config
}

#[tokio::test]
async fn a_failing_receiver_gets_every_event_in_order_per_customer() {
    let h = Harness::start_with(fast_retries(), support::KEY).await;
    h.receiver.fail_next(3);
    let a = h.client.create_customer(full_profile("Lovelace")).await;
    let b = h.client.create_customer(full_profile("Hopper")).await;
    h.client.start_kyc(a).await.assert_status(201);
    h.client.start_kyc(b).await.assert_status(201);
    h.client.simulate(a, "SDK_COMPLETE").await.assert_status(200);

    let events = h.receiver.take(7).await;
    let of = |customer: Uuid| -> Vec<String> {
        names(
            &events
                .iter()
                .filter(|e| e.customer_id() == Some(customer))
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        of(a),
        [
            "CUSTOMER_CREATED",
            "CUSTOMER_KYC_STARTED",
            "CUSTOMER_KYC_SDK_FLOW_REQUIRED",
            "CUSTOMER_KYC_SDK_FLOW_COMPLETED"
        ]
    );
    assert_eq!(
        of(b),
        [
            "CUSTOMER_CREATED",
            "CUSTOMER_KYC_STARTED",
            "CUSTOMER_KYC_SDK_FLOW_REQUIRED"
        ]
    );

    let deliveries = h.client.deliveries(h.endpoint).await;
    assert_eq!(deliveries.len(), 7);
    let attempts: usize = deliveries
        .iter()
        .map(|d| d["attempts"].as_array().unwrap().len())
        .sum();
    assert_eq!(attempts, 7 + 3, "three failures, then one success per event");
    let failed_then_delivered = deliveries
        .iter()
        .find(|d| d["attempts"].as_array().unwrap().len() > 1)
        .expect("a retried delivery");
    let log = failed_then_delivered["attempts"].as_array().unwrap();
    assert_eq!(log[0]["responseStatus"], 500);
    assert_eq!(log.last().unwrap()["responseStatus"], 204);
    assert_eq!(failed_then_delivered["status"], "DELIVERED");
    assert!(deliveries.iter().all(|d| d["status"] == "DELIVERED"));
    assert_eq!(
        h.receiver
            .bad_signatures
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn retries_wait_for_the_tenants_clock() {
    let h = Harness::start().await;
    h.receiver.fail_next(1);
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    h.receiver.wait_requests(1).await;

    // The failed attempt is recorded with a retry 2.5 to 5 s ahead on the tenant's clock.
    let delivery = support::eventually("the failed attempt recorded, a retry pending", || async {
        let deliveries = h.client.deliveries(h.endpoint).await;
        let first = deliveries.first()?;
        (first["attempts"].as_array().is_some_and(|a| a.len() == 1) && first["status"] == "PENDING")
            .then(|| first.clone())
    })
    .await;
    let at = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let ahead = at(&delivery["nextAttemptAt"]) - at(&delivery["attempts"][0]["attemptedAt"]);
    assert!(
        ahead >= time::Duration::milliseconds(2500) && ahead <= time::Duration::seconds(5),
        "the retry is {ahead} after the failed attempt, not 2.5 to 5 s"
    );
    assert!(h.receiver.pending().await.is_empty());
    h.client.advance(5).await;
    let events = h.expect_events(customer, &["CUSTOMER_CREATED"]).await;
    let deliveries = h.client.deliveries(h.endpoint).await;
    assert_eq!(deliveries[0]["status"], "DELIVERED");
    assert_eq!(deliveries[0]["attempts"].as_array().unwrap().len(), 2);
    h.assert_all_delivered(&events).await;
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_times_out_and_the_attempt_says_so() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut config = fast_retries();
    config.delivery.timeout = Duration::from_millis(200);
    config.delivery.max_attempts = 2;
    let sandbox = kycdash::sandbox::start(config).await.unwrap();
    let client = client(&sandbox, Some(support::KEY));
    let (endpoint, _) = client.register(&url).await;
    client.create_customer(full_profile("Lovelace")).await;
    let delivery = support::eventually("the delivery FAILED after its attempts", || async {
        let deliveries = client.deliveries(endpoint).await;
        let first = deliveries.first()?;
        (first["status"] == "FAILED").then(|| first.clone())
    })
    .await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "max_attempts, then FAILED");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("did not answer in time")
    );
    assert!(attempts[0].get("responseStatus").is_none());
    hold.abort();
}

#[tokio::test]
async fn pending_deliveries_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fast_retries();
    config.db = DbLocation::File(dir.path().join("sandbox.db"));
    let receiver = Receiver::start().await;
    receiver.fail_next(usize::MAX);

    let sandbox = kycdash::sandbox::start(config.clone()).await.unwrap();
    let first = client(&sandbox, Some(support::KEY));
    let (endpoint, secret) = first.register(&receiver.url).await;
    receiver.set_secret(&secret);
    let customer = first.create_customer(full_profile("Lovelace")).await;
    first.start_kyc(customer).await.assert_status(201);
    receiver.wait_requests(2).await;
    sandbox.shutdown().await;
    assert!(receiver.pending().await.is_empty(), "nothing was accepted yet");

    receiver.fail_next(0);
    let sandbox = kycdash::sandbox::start(config).await.unwrap();
    let events = receiver.take(3).await;
    assert_eq!(
        names(&events),
        [
            "CUSTOMER_CREATED",
            "CUSTOMER_KYC_STARTED",
            "CUSTOMER_KYC_SDK_FLOW_REQUIRED"
        ]
    );
    let again = client(&sandbox, Some(support::KEY));
    let deliveries = again.deliveries(endpoint).await;
    assert!(deliveries.iter().all(|d| d["status"] == "DELIVERED"));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_resend_delivers_the_same_event_again() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    let first = h.expect_events(customer, &["CUSTOMER_CREATED"]).await;
    let delivery = h.client.deliveries(h.endpoint).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resent = h
        .client
        .post(
            &format!("/v1/webhooks/{}/deliveries/{delivery}/resend", h.endpoint),
            json!({}),
        )
        .await;
    resent.assert_status(202);
    assert_ne!(resent.body["id"], delivery.as_str());
    let second = h.receiver.take(1).await;
    assert_eq!(
        second[0].id, first[0].id,
        "the same event id, so receivers deduplicate it"
    );
    h.client
        .post(
            &format!("/v1/webhooks/{}/deliveries/{}/resend", h.endpoint, Uuid::new_v4()),
            json!({}),
        )
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn endpoints_show_their_secret_once_and_deleting_one_cancels_its_deliveries() {
    let h = Harness::start().await;
    let listed = h.client.get("/v1/webhooks").await;
    let endpoint = &listed.body["data"][0];
    assert!(endpoint.get("secret").is_none(), "listing never shows the secret");
    assert!(endpoint["secretHint"].as_str().unwrap().starts_with("whsec_"));
    assert!(endpoint["secretHint"].as_str().unwrap().len() < 16);

    h.receiver.fail_next(usize::MAX);
    h.client.create_customer(full_profile("Lovelace")).await;
    h.receiver.wait_requests(1).await;
    h.client
        .send(Method::DELETE, &format!("/v1/webhooks/{}", h.endpoint), None, &[])
        .await
        .assert_status(204);
    let deliveries = h.client.deliveries(h.endpoint).await;
    assert_eq!(deliveries[0]["status"], "CANCELLED");
    assert_eq!(h.client.get("/v1/webhooks").await.body["data"], json!([]));
    h.client
        .send(Method::DELETE, &format!("/v1/webhooks/{}", h.endpoint), None, &[])
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn endpoint_urls_and_event_filters_are_validated() {
    let h = Harness::start().await;
    for (body, field) in [
        (json!({"url": "ftp://example.com/hooks"}), "url"),
        (json!({"url": "http://user:secret@127.0.0.1/hooks"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "http://127.0.0.1/", "eventTypes": ["CUSTOMER_KYC_SDK_FLOW_DONE"]}),
            "eventTypes[0]",
        ),
        (
            json!({"url": "http://127.0.0.1/", "eventTypes": []}),
            "eventTypes",
        ),
    ] {
        let response = h.client.post("/v1/webhooks", body).await;
        response.assert_problem(422);
        assert_eq!(response.error_fields(), [field]);
    }
}

#[tokio::test]
async fn an_endpoint_gets_only_the_event_types_it_asked_for() {
    let h = Harness::start().await;
    let receiver = Receiver::start().await;
    let response = h
        .client
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url, "eventTypes": ["CUSTOMER_KYC_FINISHED", "CUSTOMER_KYC_STARTED"]}),
        )
        .await;
    response.assert_status(201);
    receiver.set_secret(response.body["secret"].as_str().unwrap());
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    h.client.start_kyc(customer).await.assert_status(201);
    let filtered = receiver.take(1).await;
    assert_eq!(names(&filtered), ["CUSTOMER_KYC_STARTED"]);
    // The catch-all endpoint got everything.
    h.expect_events(customer, &started_then(&[])).await;
}
