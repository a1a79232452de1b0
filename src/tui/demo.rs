//! The demo, against the embedded sandbox only: about 30 customers seeded on the first run
//! across every stage (both strategies, missing profile fields, no IP address, links about
//! to expire, review, denied, error, approved), then a driver that plays end users finishing
//! SDK flows, reviewers deciding and back offices dropping documents into the inbox, so the
//! screen lives. Everything goes through the API, as a real integration would.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::types::SimulateAction;
use crate::api::{ApiClient, ApiError};
use crate::domain::{CustomerProfile, DocumentType, NextAction, OnboardingStatus, Strategy, advise};

pub const STATEMENT_PDF: &[u8] = include_bytes!("../../assets/demo/statement.pdf");
pub const PROOF_PNG: &[u8] = include_bytes!("../../assets/demo/proof.png");

/// What a seeded customer is steered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    NeedsProfile,
    Ready,
    AwaitingSdk,
    ExpiringSoon,
    Review,
    Collecting,
    Approved,
    Denied,
    Errored,
    Expired,
    ExternalCollecting,
    ExternalApproved,
}

/// (first name, last name, nationality, has an IP address, goal)
const PEOPLE: &[(&str, &str, &str, bool, Goal)] = &[
    ("Ada", "Lovelace", "GB", true, Goal::Approved),
    ("Grace", "Hopper", "US", true, Goal::Collecting),
    ("Alan", "Turing", "GB", true, Goal::AwaitingSdk),
    ("Katherine", "Johnson", "US", true, Goal::ExpiringSoon),
    ("Edsger", "Dijkstra", "NL", true, Goal::Ready),
    ("Barbara", "Liskov", "US", false, Goal::Collecting),
    ("Donald", "Knuth", "US", true, Goal::Approved),
    ("Margaret", "Hamilton", "US", true, Goal::AwaitingSdk),
    ("Tim", "REVIEW", "GB", true, Goal::Review),
    ("Frances", "Allen", "US", true, Goal::ExternalCollecting),
    ("Dennis", "Ritchie", "US", true, Goal::Ready),
    ("Radia", "Perlman", "US", true, Goal::ExpiringSoon),
    ("Ken", "DENY", "US", true, Goal::Denied),
    ("Hedy", "Lamarr", "AT", true, Goal::ExternalApproved),
    ("John", "ERROR", "FR", true, Goal::Errored),
    ("Sophie", "EXPIRE", "FR", true, Goal::Expired),
    ("Leslie", "Lamport", "US", true, Goal::AwaitingSdk),
    ("Shafi", "Goldwasser", "IL", false, Goal::Collecting),
    ("Niklaus", "Wirth", "CH", true, Goal::NeedsProfile),
    ("Joan", "Clarke", "GB", true, Goal::Approved),
    ("Claude", "Shannon", "US", true, Goal::ExternalCollecting),
    ("Lynn", "Conway", "US", true, Goal::Review),
    ("Vint", "Cerf", "US", true, Goal::AwaitingSdk),
    ("Anita", "Borg", "US", true, Goal::NeedsProfile),
    ("Guido", "Rossum", "NL", true, Goal::Collecting),
    ("Karen", "Jones", "GB", true, Goal::Ready),
    ("Bjarne", "Stroustrup", "DK", true, Goal::AwaitingSdk),
    ("Mary", "Kenneth", "US", true, Goal::Approved),
    ("Robin", "Milner", "GB", false, Goal::Ready),
    ("Jean", "Bartik", "US", true, Goal::Expired),
];

fn profile(first: &str, last: &str, nationality: &str, ip: bool, complete: bool) -> CustomerProfile {
    let external_id = format!("{}-{}", first.to_lowercase(), last.to_lowercase());
    let mut kyc = json!({
        "firstName": first, "lastName": last,
        "mainAddress": {"street1": "1 Main St", "cityCounty": "Springfield", "zip": "10001", "countryCode": nationality},
        "nationality": nationality, "occupation": "15"
    });
    if complete {
        kyc["birthDate"] = json!("1985-06-15");
        kyc["documentNumber"] = json!(format!("P{:07}", external_id.len() * 7919));
    }
    let mut body = json!({
        "externalId": external_id,
        "email": format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
        "kyc": kyc,
    });
    if ip {
        body["ipAddress"] = json!("203.0.113.7");
    }
    // The values above are valid by construction; a mismatch is a bug in this table.
    serde_json::from_value(body).unwrap_or_default()
}

/// Seeds the demo customers when the sandbox has none. Returns how many were created.
pub async fn seed(client: &ApiClient) -> Result<usize, ApiError> {
    if !client.list_customers(1, None).await?.data.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::new();
    for &(first, last, nationality, ip, goal) in PEOPLE {
        let complete = goal != Goal::NeedsProfile;
        let customer = client
            .create_customer(&profile(first, last, nationality, ip, complete))
            .await?;
        ids.push((customer.id, nationality, ip, goal));
    }
    // Links that expire in a few minutes: started, then the clock moves 26 minutes on.
    for &(id, _, _, goal) in &ids {
        if goal == Goal::ExpiringSoon {
            client.start_kyc(id, None).await?;
        }
    }
    client.advance_clock(26 * 60).await?;
    for &(id, nationality, ip, goal) in &ids {
        let fatca = if nationality == "US" {
            DocumentType::W9
        } else {
            DocumentType::W8ben
        };
        let documents = |all: bool| {
            let mut docs = vec![DocumentType::SourceOfFunds];
            if all {
                docs.push(fatca);
                if !ip {
                    docs.push(DocumentType::ProofOfAddress);
                }
            }
            docs
        };
        match goal {
            Goal::NeedsProfile | Goal::Ready | Goal::ExpiringSoon => {}
            Goal::AwaitingSdk | Goal::Expired => {
                client.start_kyc(id, None).await?;
            }
            Goal::Review | Goal::Errored => {
                client.start_kyc(id, None).await?;
                client.simulate(id, SimulateAction::SdkComplete).await?;
            }
            Goal::Collecting => {
                client.start_kyc(id, None).await?;
                client.simulate(id, SimulateAction::SdkComplete).await?;
                upload(client, id, &documents(false)).await?;
            }
            Goal::Approved | Goal::Denied => {
                upload(client, id, &documents(true)).await?;
                client.start_kyc(id, None).await?;
                client.simulate(id, SimulateAction::SdkComplete).await?;
            }
            Goal::ExternalCollecting => {
                client.start_kyc(id, Some(Strategy::ExternalKyc)).await?;
                upload(client, id, &documents(false)).await?;
            }
            Goal::ExternalApproved => {
                let mut docs = documents(true);
                docs.push(DocumentType::BiometricReport);
                upload(client, id, &docs).await?;
                client.start_kyc(id, Some(Strategy::ExternalKyc)).await?;
            }
        }
    }
    // Decisions follow 2 s after the requirements are met.
    client.advance_clock(3).await?;
    Ok(ids.len())
}

async fn upload(client: &ApiClient, id: Uuid, documents: &[DocumentType]) -> Result<(), ApiError> {
    for &document_type in documents {
        let (name, content) = file_for(document_type);
        client
            .upload_document(id, document_type, name, content, None)
            .await?;
    }
    Ok(())
}

fn file_for(document_type: DocumentType) -> (&'static str, &'static [u8]) {
    match document_type {
        DocumentType::ProofOfAddress => ("proof.png", PROOF_PNG),
        _ => ("statement.pdf", STATEMENT_PDF),
    }
}

/// Plays end users, reviewers and back offices: one step every few seconds while `on`, until
/// cancelled.
pub async fn drive(
    client: ApiClient,
    inbox: Option<PathBuf>,
    on: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    loop {
        let pause = Duration::from_millis(rand::rng().random_range(3000..7000));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        if !on.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(err) = step(&client, inbox.as_deref()).await {
            tracing::debug!("demo step failed: {err}");
        }
    }
}

async fn step(client: &ApiClient, inbox: Option<&std::path::Path>) -> Result<(), ApiError> {
    let page = client.list_customers(100, None).await?;
    let Some(customer) = page.data.choose(&mut rand::rng()).cloned() else {
        return Ok(());
    };
    let status = client.status(customer.id).await?;
    let roll: f64 = rand::rng().random();
    match status.next_action {
        Some(NextAction::CompleteSdkFlow) if roll < 0.7 => {
            client.simulate(customer.id, SimulateAction::SdkComplete).await?;
        }
        Some(NextAction::Wait) if status.onboarding_status == Some(OnboardingStatus::PendingReview) => {
            let decision = if roll < 0.75 {
                SimulateAction::Approve
            } else {
                SimulateAction::Deny
            };
            client.simulate(customer.id, decision).await?;
        }
        Some(NextAction::UploadDocument) => {
            let advice = advise(&customer, &status);
            if let Some(&document_type) = advice.documents_to_upload.first() {
                let (name, content) = file_for(document_type);
                match (inbox, &customer.external_id) {
                    // Half the time through the inbox, as a back office would.
                    (Some(inbox), Some(external_id)) if roll < 0.5 => {
                        let ext = name.rsplit_once('.').map_or("pdf", |(_, e)| e);
                        let path = inbox.join(format!("{external_id}__{}.{ext}", document_type.as_str()));
                        let part = path.with_extension(format!("{ext}.part"));
                        // Written under a temporary name, then renamed: never half a file, and
                        // never over a file already waiting there.
                        if path.exists() {
                            return Ok(());
                        }
                        if std::fs::write(&part, content)
                            .and_then(|_| std::fs::rename(&part, &path))
                            .is_err()
                        {
                            client
                                .upload_document(customer.id, document_type, name, content, None)
                                .await?;
                        }
                    }
                    _ => {
                        client
                            .upload_document(customer.id, document_type, name, content, None)
                            .await?;
                    }
                }
            }
        }
        Some(NextAction::StartKyc) if roll < 0.5 => {
            client.start_kyc(customer.id, None).await?;
        }
        Some(NextAction::RerunKyc) if roll < 0.3 => {
            if let Some(onboarding) = status.onboarding_id {
                client.rerun_kyc(onboarding).await?;
            }
        }
        _ if roll > 0.93 && page.data.len() < 60 => {
            let &(first, last, nationality, ip, _) = PEOPLE.choose(&mut rand::rng()).unwrap_or(&PEOPLE[0]);
            let mut profile = profile(first, last, nationality, ip, true);
            profile.external_id = Some(format!(
                "{}-{}",
                first.to_lowercase(),
                rand::rng().random_range(100..999)
            ));
            client.create_customer(&profile).await?;
        }
        _ => {}
    }
    Ok(())
}
