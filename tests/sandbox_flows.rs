//! Every flow of the guide against an in-process sandbox over real HTTP: the status bodies at
//! each step, and the exact webhook sequence a signature-verifying receiver gets. No test
//! sleeps for a timer: the tenant's clock is advanced instead.

mod support;

use serde_json::{Value, json};
use support::{Harness, PDF, client, full_profile, started_then};
use uuid::Uuid;

fn check<'a>(status: &'a Value, check_type: &str) -> &'a Value {
    status["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["type"] == check_type))
        .unwrap_or_else(|| panic!("{check_type} not listed in {status}"))
}

fn assert_check(status: &Value, check_type: &str, passed: bool, action: Option<&str>) {
    let c = check(status, check_type);
    assert_eq!(c["passed"], passed, "{check_type} in {status}");
    match action {
        Some(action) => assert_eq!(c["suggestedAction"], action, "{check_type}"),
        None => assert!(c.get("suggestedAction").is_none(), "{check_type}: {c}"),
    }
}

async fn upload_all(h: &Harness, customer: Uuid, types: &[&str]) {
    for t in types {
        h.client.upload(customer, t, PDF).await.assert_status(201);
    }
}

#[tokio::test]
async fn standard_flow_phases_1a_to_5() {
    let h = Harness::start().await;
    let mut received = Vec::new();

    // Phase 1a: created without KYC data.
    let customer = h
        .client
        .create_customer(json!({"email": "ada@example.com", "ipAddress": "203.0.113.7"}))
        .await;
    received.extend(h.expect_events(customer, &["CUSTOMER_CREATED"]).await);
    let status = h.client.status(customer).await;
    assert_check(&status, "KYC_DATA_PRESENT", false, Some("UPDATE_PROFILE"));
    assert_eq!(status["nextAction"], "UPDATE_PROFILE");
    assert_eq!(status["onboardingStatus"], Value::Null);

    let patched = h
        .client
        .patch(
            &format!("/v1/customers/{customer}"),
            json!({"kyc": full_profile("Lovelace")["kyc"]}),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(patched.body["kyc"]["firstName"], "Ada");
    received.extend(h.expect_events(customer, &["CUSTOMER_UPDATED"]).await);

    // Phase 2: KYC initiation.
    let status = h.client.status(customer).await;
    assert_check(&status, "KYC_DATA_PRESENT", true, None);
    assert_check(&status, "KYC_STARTED", false, Some("START_KYC"));
    assert_eq!(status["nextAction"], "START_KYC");
    let started = h.client.start_kyc(customer).await;
    started.assert_status(201);
    let onboarding = started.body["onboarding"]["id"].as_str().unwrap().to_string();
    assert_eq!(started.body["onboarding"]["strategy"], "CF_KYC");
    assert_eq!(started.body["onboarding"]["status"], "PROCESSING");
    let link = started.body["sdk"]["link"]
        .as_str()
        .expect("SDK link")
        .to_string();
    assert!(link.starts_with(&format!("{}/sdk/", h.sandbox.base_url())));
    assert!(
        started.body["sdk"]["qrCode"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let events = h
        .expect_events(
            customer,
            &["CUSTOMER_KYC_STARTED", "CUSTOMER_KYC_SDK_FLOW_REQUIRED"],
        )
        .await;
    assert_eq!(
        events[0].data().unwrap().onboarding_id.unwrap().to_string(),
        onboarding
    );
    received.extend(events);
    let status = h.client.status(customer).await;
    assert_eq!(status["nextAction"], "COMPLETE_SDK_FLOW");
    assert_eq!(status["sdk"]["link"], link.as_str());

    // Phase 3: the user completes the SDK on the hosted page.
    let page = h.client.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Complete verification") && html.contains("Fail verification"));
    assert!(!html.contains("<script"), "the page works without JavaScript");
    let done = h
        .client
        .http
        .post(format!("{link}/complete"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    received.extend(
        h.expect_events(customer, &["CUSTOMER_KYC_SDK_FLOW_COMPLETED"])
            .await,
    );
    let status = h.client.status(customer).await;
    assert_check(&status, "SDK_VERIFICATION_COMPLETED", true, None);
    assert_check(&status, "KYC_STATUS", false, Some("UPLOAD_DOCUMENT"));
    assert_check(&status, "DOC_SOURCE_OF_FUNDS", false, Some("UPLOAD_DOCUMENT"));
    assert_check(&status, "DOC_FATCA", false, Some("UPLOAD_DOCUMENT"));
    assert_eq!(status["nextAction"], "UPLOAD_DOCUMENT");
    assert!(status.get("sdk").is_none(), "links are gone once used");

    // Phase 4: documents.
    upload_all(&h, customer, &["SOURCE_OF_FUNDS", "W9"]).await;
    let status = h.client.status(customer).await;
    assert_check(&status, "DOC_SOURCE_OF_FUNDS", true, None);
    assert_check(&status, "DOC_FATCA", true, None);
    assert_check(&status, "KYC_STATUS", false, Some("WAIT"));
    assert_eq!(status["nextAction"], "WAIT");
    assert_eq!(
        status["summary"],
        json!({"passed": 9, "failed": 1, "requiredFailed": ["KYC_STATUS"]})
    );

    // Phase 5: the decision follows after its delay.
    let clock = h.client.advance(2).await;
    assert_eq!(clock["timersFired"], 1);
    let events = h.expect_events(customer, &["CUSTOMER_KYC_FINISHED"]).await;
    assert_eq!(events[0].data().unwrap().status.unwrap().as_str(), "APPROVED");
    received.extend(events);
    let status = h.client.status(customer).await;
    assert_eq!(status["isCompliant"], true);
    assert_eq!(status["onboardingStatus"], "APPROVED");
    assert_eq!(status["nextAction"], Value::Null);
    h.assert_all_delivered(&received).await;
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn standard_flow_phase_1b_created_with_kyc_data() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    let received = h.expect_events(customer, &["CUSTOMER_CREATED"]).await;
    let status = h.client.status(customer).await;
    assert_check(&status, "KYC_DATA_PRESENT", true, None);
    assert_eq!(status["nextAction"], "START_KYC");
    assert_eq!(status["checks"].as_array().unwrap().len(), 10);
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn external_flow_is_approved_automatically_once_documents_are_on_file() {
    let h = Harness::start_with(support::config(), "sk_test_external").await;
    let mut received = Vec::new();
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    received.extend(h.expect_events(customer, &["CUSTOMER_CREATED"]).await);
    assert_eq!(h.client.status(customer).await["nextAction"], "START_KYC");

    let started = h.client.start_kyc(customer).await;
    started.assert_status(201);
    assert_eq!(started.body["onboarding"]["strategy"], "EXTERNAL_KYC");
    assert!(
        started.body.get("sdk").is_none(),
        "no SDK links on the external path"
    );
    received.extend(h.expect_events(customer, &["CUSTOMER_KYC_STARTED"]).await);

    let status = h.client.status(customer).await;
    assert_eq!(status["onboardingStatus"], "PROCESSING");
    assert_eq!(status["nextAction"], "UPLOAD_DOCUMENT");
    assert_check(&status, "SDK_VERIFICATION_COMPLETED", true, None);
    assert_eq!(check(&status, "SDK_VERIFICATION_COMPLETED")["required"], false);
    assert_check(&status, "DOC_BIOMETRIC_REPORT", false, Some("UPLOAD_DOCUMENT"));
    assert_eq!(status["summary"]["passed"], 6);
    assert_eq!(status["summary"]["failed"], 4);
    assert_eq!(
        status["summary"]["requiredFailed"],
        json!([
            "KYC_STATUS",
            "DOC_SOURCE_OF_FUNDS",
            "DOC_FATCA",
            "DOC_BIOMETRIC_REPORT"
        ])
    );

    upload_all(&h, customer, &["BIOMETRIC_REPORT", "SOURCE_OF_FUNDS", "W8BEN"]).await;
    assert_eq!(h.client.status(customer).await["nextAction"], "WAIT");
    h.client.advance(2).await;
    received.extend(h.expect_events(customer, &["CUSTOMER_KYC_FINISHED"]).await);
    let status = h.client.status(customer).await;
    assert_eq!(status["isCompliant"], true);
    assert_eq!(status["onboardingStatus"], "APPROVED");
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn expiry_then_rerun_continues_from_phase_2() {
    let h = Harness::start().await;
    let mut received = Vec::new();
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    let first = h.client.start_kyc(customer).await;
    let first_id = first.body["onboarding"]["id"].as_str().unwrap().to_string();
    let first_link = first.body["sdk"]["link"].as_str().unwrap().to_string();
    received.extend(h.expect_events(customer, &started_then(&[])).await);

    // Nothing happens a minute before the links expire...
    assert_eq!(h.client.advance(29 * 60).await["timersFired"], 0);
    assert_eq!(h.client.status(customer).await["onboardingStatus"], "PROCESSING");
    // ...and they expire at 30 minutes.
    assert_eq!(h.client.advance(60).await["timersFired"], 1);
    received.extend(h.expect_events(customer, &["CUSTOMER_KYC_SDK_EXPIRED"]).await);
    let status = h.client.status(customer).await;
    assert_eq!(status["onboardingStatus"], "EXPIRED");
    assert_eq!(status["nextAction"], "RERUN_KYC");
    assert_check(&status, "SDK_VERIFICATION_COMPLETED", false, Some("RERUN_KYC"));
    let page = h.client.http.get(&first_link).send().await.unwrap();
    assert_eq!(page.status(), 410, "an expired link says so");

    let rerun = h
        .client
        .post(&format!("/v1/compliance/kyc/{first_id}/rerun"), json!({}))
        .await;
    rerun.assert_status(201);
    assert_eq!(rerun.body["previousOnboardingId"], first_id.as_str());
    let second_id = rerun.body["onboarding"]["id"].as_str().unwrap().to_string();
    assert_ne!(second_id, first_id);
    let events = h
        .expect_events(
            customer,
            &["CUSTOMER_KYC_RESTARTED", "CUSTOMER_KYC_SDK_FLOW_REQUIRED"],
        )
        .await;
    let data = events[0].data().unwrap();
    assert_eq!(data.previous_onboarding_id.unwrap().to_string(), first_id);
    assert_eq!(data.onboarding_id.unwrap().to_string(), second_id);
    received.extend(events);
    let status = h.client.status(customer).await;
    assert_eq!(status["onboardingId"], second_id.as_str());
    assert_eq!(status["nextAction"], "COMPLETE_SDK_FLOW");

    // The old onboarding cannot be rerun again; the flow goes on with the new one.
    h.client
        .post(&format!("/v1/compliance/kyc/{first_id}/rerun"), json!({}))
        .await
        .assert_problem(409);
    h.client
        .simulate(customer, "SDK_COMPLETE")
        .await
        .assert_status(200);
    received.extend(
        h.expect_events(customer, &["CUSTOMER_KYC_SDK_FLOW_COMPLETED"])
            .await,
    );
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn denial_after_the_decision() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Deny")).await;
    h.client.start_kyc(customer).await.assert_status(201);
    h.client
        .simulate(customer, "SDK_COMPLETE")
        .await
        .assert_status(200);
    upload_all(&h, customer, &["SOURCE_OF_FUNDS", "W9"]).await;
    h.client.advance(2).await;
    let received = h
        .expect_events(
            customer,
            &started_then(&["CUSTOMER_KYC_SDK_FLOW_COMPLETED", "CUSTOMER_KYC_FINISHED"]),
        )
        .await;
    assert_eq!(
        received[4].data().unwrap().status.unwrap().as_str(),
        "DENIED_COMPLIANCE"
    );
    let status = h.client.status(customer).await;
    assert_eq!(status["onboardingStatus"], "DENIED_COMPLIANCE");
    assert_check(&status, "KYC_STATUS", false, Some("CONTACT_SUPPORT"));
    assert_eq!(status["nextAction"], "CONTACT_SUPPORT");
    // A final onboarding cannot be restarted.
    h.client.start_kyc(customer).await.assert_problem(409);
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn verification_error_from_the_magic_name_and_from_the_fail_button() {
    let h = Harness::start().await;
    let magic = h.client.create_customer(full_profile("Error")).await;
    h.client.start_kyc(magic).await.assert_status(201);
    h.client.simulate(magic, "SDK_COMPLETE").await.assert_status(200);
    let mut received = h
        .expect_events(magic, &started_then(&["CUSTOMER_KYC_ERROR"]))
        .await;
    let status = h.client.status(magic).await;
    assert_eq!(status["onboardingStatus"], "ERROR");
    assert_check(
        &status,
        "SDK_VERIFICATION_COMPLETED",
        false,
        Some("CONTACT_SUPPORT"),
    );
    assert_eq!(status["nextAction"], "CONTACT_SUPPORT");

    let plain = h.client.create_customer(full_profile("Lovelace")).await;
    let started = h.client.start_kyc(plain).await;
    let link = started.body["sdk"]["link"].as_str().unwrap().to_string();
    let failed = h.client.http.post(format!("{link}/fail")).send().await.unwrap();
    assert_eq!(failed.status(), 303);
    received.extend(
        h.expect_events(plain, &started_then(&["CUSTOMER_KYC_ERROR"]))
            .await,
    );
    assert_eq!(h.client.status(plain).await["nextAction"], "CONTACT_SUPPORT");
    // Pressing a button again changes nothing.
    let again = h
        .client
        .http
        .post(format!("{link}/complete"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(h.client.status(plain).await["onboardingStatus"], "ERROR");
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn review_then_approval() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Review")).await;
    h.client.start_kyc(customer).await.assert_status(201);
    upload_all(&h, customer, &["SOURCE_OF_FUNDS", "W9"]).await;
    h.client
        .simulate(customer, "SDK_COMPLETE")
        .await
        .assert_status(200);
    let mut received = h
        .expect_events(customer, &started_then(&["CUSTOMER_KYC_SDK_FLOW_COMPLETED"]))
        .await;
    assert_eq!(
        received[3].data().unwrap().status.unwrap().as_str(),
        "PENDING_REVIEW"
    );
    let status = h.client.status(customer).await;
    assert_eq!(status["onboardingStatus"], "PENDING_REVIEW");
    assert_check(&status, "SDK_VERIFICATION_COMPLETED", false, Some("WAIT"));
    assert_check(&status, "KYC_STATUS", false, Some("WAIT"));
    assert_eq!(status["nextAction"], "WAIT");
    // Time alone does not end a review.
    assert_eq!(h.client.advance(3600).await["timersFired"], 0);

    let approved = h.client.simulate(customer, "APPROVE").await;
    approved.assert_status(200);
    assert_eq!(approved.body["isCompliant"], true);
    let events = h.expect_events(customer, &["CUSTOMER_KYC_FINISHED"]).await;
    assert_eq!(events[0].data().unwrap().status.unwrap().as_str(), "APPROVED");
    received.extend(events);
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn review_then_denial() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    h.client.start_kyc(customer).await.assert_status(201);
    h.client.simulate(customer, "REVIEW").await.assert_status(200);
    let denied = h.client.simulate(customer, "DENY").await;
    denied.assert_status(200);
    assert_eq!(denied.body["onboardingStatus"], "DENIED_COMPLIANCE");
    let received = h
        .expect_events(
            customer,
            &started_then(&["CUSTOMER_KYC_SDK_FLOW_COMPLETED", "CUSTOMER_KYC_FINISHED"]),
        )
        .await;
    assert_eq!(
        received[4].data().unwrap().status.unwrap().as_str(),
        "DENIED_COMPLIANCE"
    );
    assert_eq!(h.client.status(customer).await["nextAction"], "CONTACT_SUPPORT");
    h.assert_all_delivered(&received).await;
}

#[tokio::test]
async fn expire_magic_name_expires_the_links_at_once() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Expire")).await;
    let started = h.client.start_kyc(customer).await;
    started.assert_status(201);
    assert_eq!(started.body["onboarding"]["status"], "EXPIRED");
    h.expect_events(customer, &started_then(&["CUSTOMER_KYC_SDK_EXPIRED"]))
        .await;
    assert_eq!(h.client.status(customer).await["nextAction"], "RERUN_KYC");
}

#[tokio::test]
async fn simulate_answers_409_when_the_action_does_not_apply() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    for action in ["SDK_COMPLETE", "SDK_EXPIRE", "REVIEW", "APPROVE", "DENY", "ERROR"] {
        h.client.simulate(customer, action).await.assert_problem(409);
    }
    h.client.start_kyc(customer).await.assert_status(201);
    h.client.simulate(customer, "APPROVE").await.assert_problem(409);
    h.client
        .simulate(customer, "SDK_COMPLETE")
        .await
        .assert_status(200);
    h.client
        .simulate(customer, "SDK_COMPLETE")
        .await
        .assert_problem(409);
    h.client
        .simulate(customer, "SDK_EXPIRE")
        .await
        .assert_problem(409);
    h.client.simulate(customer, "BOGUS").await.assert_problem(422);
    h.client
        .simulate(Uuid::new_v4(), "SDK_COMPLETE")
        .await
        .assert_problem(404);
}

#[tokio::test]
async fn a_restart_with_the_same_database_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let mut config = support::config();
    config.db = kycdash::sandbox::DbLocation::File(db.clone());

    let h = Harness::start_with(config.clone(), support::KEY).await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    let started = h.client.start_kyc(customer).await;
    let onboarding = started.body["onboarding"]["id"].clone();
    h.client.upload(customer, "W9", PDF).await.assert_status(201);
    h.client.advance(600).await;
    h.expect_events(customer, &started_then(&[])).await;
    let before = h.client.status(customer).await;
    let endpoint = h.endpoint;
    h.sandbox.shutdown().await;

    let sandbox = kycdash::sandbox::start(config.clone()).await.unwrap();
    let client = client(&sandbox, Some(support::KEY));
    // Everything as it was, the SDK link on the address served now (another port).
    let link = before["sdk"]["link"].as_str().unwrap();
    let path = &link[link.find("/sdk/").unwrap()..];
    let mut expected = before.clone();
    expected["sdk"]["link"] = json!(format!("{}{path}", sandbox.base_url()));
    assert_eq!(client.status(customer).await, expected);
    let page = client
        .http
        .get(format!("{}{path}", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        200,
        "the link opens the hosted page after the restart"
    );
    assert_eq!(client.status(customer).await["onboardingId"], onboarding);
    let documents = client.get(&format!("/v1/compliance/documents/{customer}")).await;
    assert_eq!(documents.body["data"][0]["type"], "W9");
    assert_eq!(client.deliveries(endpoint).await.len(), 3);
    // The clock kept its offset: 20 more minutes expire the links issued before the restart.
    assert_eq!(client.advance(20 * 60).await["timersFired"], 1);
    assert_eq!(client.status(customer).await["onboardingStatus"], "EXPIRED");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn sdk_links_are_built_on_the_public_url_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config();
    config.db = kycdash::sandbox::DbLocation::File(dir.path().join("sandbox.db"));
    let sandbox = kycdash::sandbox::start(config.clone()).await.unwrap();
    let first = client(&sandbox, Some(support::KEY));
    let customer = first.create_customer(full_profile("Lovelace")).await;
    let started = first.start_kyc(customer).await;
    let issued = started.body["sdk"]["link"].as_str().unwrap().to_string();
    assert!(issued.starts_with(sandbox.base_url()), "{issued}");
    sandbox.shutdown().await;

    // Behind a tunnel: the same link, on the address clients reach.
    config.public_url = Some("https://kyc-sandbox.example.test".into());
    let sandbox = kycdash::sandbox::start(config).await.unwrap();
    let again = client(&sandbox, Some(support::KEY));
    let link = again.status(customer).await["sdk"]["link"]
        .as_str()
        .unwrap()
        .to_string();
    let token = &issued[issued.find("/sdk/").unwrap()..];
    assert_eq!(link, format!("https://kyc-sandbox.example.test{token}"));
    let simulated = again.simulate(customer, "REVIEW").await;
    simulated.assert_status(200);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_strategy_override_brings_the_requirements_of_its_strategy() {
    let h = Harness::start().await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    upload_all(&h, customer, &["SOURCE_OF_FUNDS", "W9"]).await;
    let started = h
        .client
        .post(
            "/v1/compliance/kyc",
            json!({"customerId": customer, "strategy": "EXTERNAL_KYC"}),
        )
        .await;
    started.assert_status(201);
    assert_eq!(started.body["onboarding"]["strategy"], "EXTERNAL_KYC");
    let status = h.client.status(customer).await;
    assert_eq!(status["strategy"], "EXTERNAL_KYC");
    assert_check(&status, "DOC_BIOMETRIC_REPORT", false, Some("UPLOAD_DOCUMENT"));
    assert_eq!(status["nextAction"], "UPLOAD_DOCUMENT");
    // Without the biometric report there is no decision to wait for.
    assert_eq!(h.client.advance(60).await["timersFired"], 0);
    assert_eq!(h.client.status(customer).await["onboardingStatus"], "PROCESSING");
    upload_all(&h, customer, &["BIOMETRIC_REPORT"]).await;
    assert_eq!(h.client.advance(2).await["timersFired"], 1);
    assert_eq!(h.client.status(customer).await["isCompliant"], true);
}

/// Everything a tenant can read, to compare two moments of a sandbox.
async fn snapshot(client: &support::Client, endpoint: Uuid) -> Value {
    let customers = client.get("/v1/customers?limit=100").await.body["data"].clone();
    let mut per_customer = Vec::new();
    for customer in customers.as_array().unwrap() {
        let id: Uuid = customer["id"].as_str().unwrap().parse().unwrap();
        per_customer.push(json!({
            "customer": client.get(&format!("/v1/customers/{id}")).await.body,
            "status": client.status(id).await,
            "documents": client.get(&format!("/v1/compliance/documents/{id}")).await.body,
        }));
    }
    json!({
        "customers": customers,
        "details": per_customer,
        "webhooks": client.get("/v1/webhooks").await.body,
        "deliveries": client.deliveries(endpoint).await,
    })
}

#[tokio::test]
async fn what_is_served_from_memory_is_what_the_database_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config();
    config.db = kycdash::sandbox::DbLocation::File(dir.path().join("sandbox.db"));
    let h = Harness::start_with(config.clone(), support::KEY).await;

    // Customers in every stage, with documents, patches, reruns and a review.
    let bare = h
        .client
        .create_customer(json!({"email": "bare@example.com"}))
        .await;
    h.client
        .patch(
            &format!("/v1/customers/{bare}"),
            json!({"kyc": {"firstName": "Bo"}}),
        )
        .await
        .assert_status(200);
    let ready = h.client.create_customer(full_profile("Lovelace")).await;
    h.client.upload(ready, "W9", PDF).await.assert_status(201);
    let approved = h.client.create_customer(full_profile("Lovelace")).await;
    h.client.start_kyc(approved).await.assert_status(201);
    h.client
        .simulate(approved, "SDK_COMPLETE")
        .await
        .assert_status(200);
    upload_all(&h, approved, &["SOURCE_OF_FUNDS", "W8BEN"]).await;
    let reviewed = h.client.create_customer(full_profile("Review")).await;
    h.client.start_kyc(reviewed).await.assert_status(201);
    h.client
        .simulate(reviewed, "SDK_COMPLETE")
        .await
        .assert_status(200);
    let rerun = h.client.create_customer(full_profile("Expire")).await;
    let first = h.client.start_kyc(rerun).await.body["onboarding"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.client
        .post(&format!("/v1/compliance/kyc/{first}/rerun"), json!({}))
        .await
        .assert_status(201);
    let errored = h.client.create_customer(full_profile("Error")).await;
    h.client.start_kyc(errored).await.assert_status(201);
    h.client
        .simulate(errored, "SDK_COMPLETE")
        .await
        .assert_status(200);
    h.client.advance(2).await;
    assert_eq!(h.client.status(approved).await["onboardingStatus"], "APPROVED");
    let expected_events = h.client.deliveries(h.endpoint).await.len();
    h.receiver.take(expected_events).await;

    let before = snapshot(&h.client, h.endpoint).await;
    let endpoint = h.endpoint;
    h.sandbox.shutdown().await;
    let sandbox = kycdash::sandbox::start(config).await.unwrap();
    let client = support::client(&sandbox, Some(support::KEY));
    let after = snapshot(&client, endpoint).await;
    assert_eq!(after, before);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn timers_fire_on_their_own_when_real_time_makes_them_due() {
    let mut config = support::config();
    config.timing.decision_delay = time::Duration::ZERO;
    let h = Harness::start_with(config, support::KEY).await;
    let customer = h.client.create_customer(full_profile("Lovelace")).await;
    h.client.start_kyc(customer).await.assert_status(201);
    h.client
        .simulate(customer, "SDK_COMPLETE")
        .await
        .assert_status(200);
    upload_all(&h, customer, &["SOURCE_OF_FUNDS", "W9"]).await;
    // No clock advance: the timer task fires the due decision by itself.
    let events = h
        .expect_events(
            customer,
            &started_then(&["CUSTOMER_KYC_SDK_FLOW_COMPLETED", "CUSTOMER_KYC_FINISHED"]),
        )
        .await;
    assert_eq!(events[4].data().unwrap().status.unwrap().as_str(), "APPROVED");
    assert_eq!(h.client.status(customer).await["isCompliant"], true);
}
