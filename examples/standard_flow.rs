//! The guide's standard (CF_KYC) flow against an in-process sandbox, phase by phase: what
//! each call answers, which webhooks arrive, and what the compliance status asks for next.
//!
//! cargo run --example standard_flow

mod support;

use serde_json::json;
use support::{Failure, Walkthrough};

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut w = Walkthrough::start("CF_KYC").await?;

    w.phase("Phase 1a: customer created without KYC data");
    let customer = w
        .call(
            "POST",
            "/v1/customers",
            Some(json!({"email": "ada@example.com", "ipAddress": "203.0.113.7"})),
        )
        .await?;
    let id = customer["id"].as_str().ok_or("no customer id")?.to_string();
    w.webhooks(1).await;
    w.status(&id).await?;
    let kyc = json!({"kyc": {
        "firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1234567",
        "mainAddress": {"street1": "123 Main St", "cityCounty": "New York", "stateRegion": "NY", "zip": "10001", "countryCode": "US"},
        "nationality": "US", "occupation": "11"
    }});
    w.call("PATCH", &format!("/v1/customers/{id}"), Some(kyc)).await?;
    w.webhooks(1).await;

    w.phase("Phase 2: KYC initiation");
    w.status(&id).await?;
    let started = w
        .call("POST", "/v1/compliance/kyc", Some(json!({"customerId": id})))
        .await?;
    let link = started["sdk"]["link"].as_str().ok_or("no SDK link")?.to_string();
    println!(
        "  show the user: {link} (also as a QR code: {} bytes of PNG data URL)",
        started["sdk"]["qrCode"].as_str().map_or(0, str::len)
    );
    w.webhooks(2).await;
    w.status(&id).await?;

    w.phase("Phase 3: the user completes the SDK (the hosted page's button)");
    let completed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(format!("{link}/complete"))
        .send()
        .await?;
    println!("POST {link}/complete → {}", completed.status().as_u16());
    w.webhooks(1).await;
    w.status(&id).await?;

    w.phase("Phase 4: document upload");
    w.upload(&id, "SOURCE_OF_FUNDS").await?;
    w.upload(&id, "W9").await?;
    w.status(&id).await?;

    w.phase("Phase 5: KYC approved (the decision follows after 2 s; the sandbox clock skips ahead)");
    w.call("POST", "/v1/sandbox/clock/advance", Some(json!({"seconds": 2})))
        .await?;
    w.webhooks(1).await;
    let status = w.status(&id).await?;
    println!(
        "\ncustomer ready for virtual account creation: {}",
        status["isCompliant"]
    );
    w.sandbox.shutdown().await;
    Ok(())
}
