//! The modes without a screen: `kycdash watch` (the sync engine, printing NDJSON) and
//! `kycdash status CUSTOMER`.

use std::io::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use crate::api::{ApiClient, ApiError, ClientConfig};
use crate::cli::{StatusArgs, WatchArgs};
use crate::connection::{Failure, connect, engine_config, shutdown_signal};
use crate::domain::{ComplianceStatus, Customer, advise};
use crate::sandbox;
use crate::sync::engine::{self, EngineError, EngineEvent};

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
    let mut connection = connect(&args.connect, true).await?;
    if let Some(sandbox) = &connection.sandbox {
        eprintln!(
            "kycdash: embedded sandbox at {} (API key {}); drive it with curl meanwhile",
            sandbox.base_url(),
            sandbox::DEFAULT_API_KEY
        );
    }
    let config = engine_config(&connection, &args.sync, args.once)?;
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
    let mut fatal = None;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut stopping = false;
    let stdout = std::io::stdout();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if let EngineEvent::Fatal { error } = &event {
                    fatal = Some(error.clone());
                }
                if !event.is_ndjson() {
                    continue;
                }
                let line = ndjson_line(&event, OffsetDateTime::now_utc());
                let mut out = stdout.lock();
                // A closed stdout (a pipe whose reader left) ends the watch like a signal.
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() && !stopping {
                    handle.stop();
                    stopping = true;
                }
                if matches!(event, EngineEvent::Stopped) {
                    break;
                }
            }
            _ = &mut signal, if !stopping => {
                handle.stop();
                stopping = true;
            }
        }
    }
    let _ = task.await;
    connection.shutdown().await;
    match fatal {
        Some(error) => Err(Failure::fatal(error)),
        None => Ok(()),
    }
}

/// `kycdash status CUSTOMER`.
pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    let connection = connect(&args.connect, false).await?;
    let result = status_of(&connection.api, &args.customer).await;
    connection.shutdown().await;
    let (customer, status) = result?;
    let advice = advise(&customer, &status);
    if args.json {
        let body = serde_json::json!({ "customer": customer, "status": status, "advice": advice });
        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
        return Ok(());
    }
    let name = customer.display_name();
    println!("{name} ({})", customer.id);
    println!(
        "stage: {}   onboarding: {}   compliant: {}",
        crate::domain::Stage::from_status(&status),
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
    Ok(())
}

async fn status_of(api: &ClientConfig, customer: &str) -> Result<(Customer, ComplianceStatus), Failure> {
    let client = ApiClient::new(api).map_err(|e| Failure::usage(e.to_string()))?;
    let api_failure = |err: ApiError| {
        if err.is_unauthorized() {
            Failure::fatal(EngineError::Unauthorized.to_string())
        } else {
            Failure::fatal(err.to_string())
        }
    };
    let found = client.find_customer(customer).await.map_err(api_failure)?;
    let Some(found) = found else {
        return Err(Failure::fatal(format!(
            "no customer has the id or externalId \"{customer}\""
        )));
    };
    let status = client.status(found.id).await.map_err(api_failure)?;
    Ok((found, status))
}
