//! The guide's external KYC flow against an in-process sandbox: no SDK links, a biometric
//! report from your own provider, and automatic approval once every document is on file.
//!
//! cargo run --example external_flow

mod support;

use serde_json::json;
use support::{Failure, Walkthrough};

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut w = Walkthrough::start("EXTERNAL_KYC").await?;

    w.phase("Phase 1: customer created with KYC data");
    let customer = w
        .call(
            "POST",
            "/v1/customers",
            Some(json!({
                "externalId": "acme-42",
                "ipAddress": "203.0.113.7",
                "kyc": {
                    "firstName": "Grace", "lastName": "Hopper", "birthDate": "1986-12-09", "documentNumber": "P7654321",
                    "mainAddress": {"street1": "1 Navy Way", "cityCounty": "Arlington", "stateRegion": "VA", "zip": "22202", "countryCode": "US"},
                    "nationality": "US", "occupation": "15"
                }
            })),
        )
        .await?;
    let id = customer["id"].as_str().ok_or("no customer id")?.to_string();
    w.webhooks(1).await;
    w.status(&id).await?;

    w.phase("Phase 2: KYC initiation (no SDK)");
    let started = w
        .call("POST", "/v1/compliance/kyc", Some(json!({"customerId": id})))
        .await?;
    println!("  SDK links in the answer: {}", started.get("sdk").is_some());
    w.webhooks(1).await;
    w.status(&id).await?;

    w.phase("Phase 3: documents, the biometric report from your own provider among them");
    w.upload(&id, "BIOMETRIC_REPORT").await?;
    w.upload(&id, "SOURCE_OF_FUNDS").await?;
    w.upload(&id, "W9").await?;
    w.status(&id).await?;

    w.phase("Phase 4: automatic approval (the sandbox clock skips the 2 s decision delay)");
    w.call("POST", "/v1/sandbox/clock/advance", Some(json!({"seconds": 2})))
        .await?;
    w.webhooks(1).await;
    w.status(&id).await?;
    w.sandbox.shutdown().await;
    Ok(())
}
