//! What both walkthroughs share: an in-process sandbox, a client, a webhook receiver that
//! verifies signatures, and a printer that reads a compliance status the way an integrator
//! would.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kycdash::domain::WebhookEvent;
use kycdash::sandbox::{self, ApiKey, RunningSandbox, SandboxConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

pub struct Walkthrough {
    pub sandbox: RunningSandbox,
    http: reqwest::Client,
    key: String,
    events: mpsc::UnboundedReceiver<WebhookEvent>,
}

#[derive(Clone)]
struct Receiver {
    secret: std::sync::Arc<std::sync::Mutex<String>>,
    events: mpsc::UnboundedSender<WebhookEvent>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = receiver.secret.lock().map(|s| s.clone()).unwrap_or_default();
    let Ok(verifier) = standardwebhooks::Webhook::new(&secret) else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    if verifier.verify(&body, &headers).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<WebhookEvent>(&body) {
        Ok(event) => {
            let _ = receiver.events.send(event);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

impl Walkthrough {
    /// Starts a sandbox whose one tenant uses `strategy`, and registers a receiver.
    pub async fn start(strategy: &str) -> Result<Walkthrough, Failure> {
        let key = format!("sk_test_walkthrough:{strategy}");
        let mut config = SandboxConfig::ephemeral();
        config.api_keys = vec![key.parse::<ApiKey>()?];
        let sandbox = sandbox::start(config).await?;
        println!("sandbox listening on {}", sandbox.base_url());

        let (sender, events) = mpsc::unbounded_channel();
        let receiver = Receiver {
            secret: Default::default(),
            events: sender,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/webhooks", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/webhooks", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let mut walkthrough = Walkthrough {
            sandbox,
            http: reqwest::Client::new(),
            key: "sk_test_walkthrough".into(),
            events,
        };
        let endpoint = walkthrough
            .call("POST", "/v1/webhooks", Some(json!({"url": url})))
            .await?;
        if let (Ok(mut secret), Some(value)) = (receiver.secret.lock(), endpoint["secret"].as_str()) {
            *secret = value.to_string();
        }
        println!("webhook receiver registered at {url}");
        Ok(walkthrough)
    }

    pub fn phase(&self, title: &str) {
        println!("\n── {title} {}", "─".repeat(70usize.saturating_sub(title.len())));
    }

    /// Sends a request and prints its outcome in one line; API errors are printed, not fatal.
    pub async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let method: reqwest::Method = method.parse()?;
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.sandbox.base_url()))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            println!("{method} {path} → {}", status.as_u16());
        } else {
            println!(
                "{method} {path} → {} {}",
                status.as_u16(),
                body["detail"].as_str().unwrap_or("")
            );
        }
        Ok(body)
    }

    pub async fn upload(&mut self, customer: &str, document_type: &str) -> Result<(), Failure> {
        let form = reqwest::multipart::Form::new()
            .text("customerId", customer.to_string())
            .text("type", document_type.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("document.pdf"),
            );
        let response = self
            .http
            .post(format!("{}/v1/compliance/upload-doc", self.sandbox.base_url()))
            .bearer_auth(&self.key)
            .multipart(form)
            .send()
            .await?;
        println!(
            "POST /v1/compliance/upload-doc ({document_type}) → {}",
            response.status().as_u16()
        );
        Ok(())
    }

    /// Prints the webhooks that arrive, waiting for `expected` of them.
    pub async fn webhooks(&mut self, expected: usize) {
        for _ in 0..expected {
            match tokio::time::timeout(Duration::from_secs(5), self.events.recv()).await {
                Ok(Some(event)) => {
                    let status = event
                        .data()
                        .and_then(|d| d.status)
                        .map(|s| format!(" (status {s})"))
                        .unwrap_or_default();
                    println!("  webhook ← {}{status}", event.event_type_name());
                }
                _ => {
                    println!("  (no webhook arrived)");
                    return;
                }
            }
        }
    }

    /// Pulls the compliance status and prints what it asks for.
    pub async fn status(&mut self, customer: &str) -> Result<Value, Failure> {
        let status = self
            .call("GET", &format!("/v1/compliance/status/{customer}"), None)
            .await?;
        let onboarding = status["onboardingStatus"].as_str().unwrap_or("no onboarding");
        let next = status["nextAction"].as_str().unwrap_or("nothing: compliant");
        println!("  {onboarding}; next action: {next}");
        for check in status["checks"].as_array().into_iter().flatten() {
            let mark = if check["passed"] == true { "✓" } else { "✗" };
            let required = if check["required"] == true {
                ""
            } else {
                " (not required)"
            };
            let action = check["suggestedAction"]
                .as_str()
                .map(|a| format!(" → {a}"))
                .unwrap_or_default();
            println!(
                "    {mark} {}{required}{action}",
                check["type"].as_str().unwrap_or("?")
            );
        }
        let summary = &status["summary"];
        println!(
            "  summary: {} passed, {} failed",
            summary["passed"], summary["failed"]
        );
        Ok(status)
    }
}
