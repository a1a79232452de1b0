//! What the dashboard's [`Effect`]s do outside `update`: requests to the engine, reads of
//! the cache, the API and the disk (each answered later as an [`Action`] on a channel), the
//! clipboard, mouse capture and the demo driver.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::app::{Action, Details, Effect, LogLine};
use super::request::{Done, Failed, Request};
use super::terminal::TerminalGuard;
use crate::sync::engine::EngineHandle;

/// Where effects go, and where their answers come back.
pub struct Outside<'a> {
    pub handle: &'a EngineHandle,
    pub actions: mpsc::UnboundedSender<Action>,
    /// Which customer's details were asked for last (documents are read only for that one).
    pub selected: Arc<Mutex<Option<Uuid>>>,
    /// Whether the demo driver plays.
    pub demo: &'a AtomicBool,
}

impl Outside<'_> {
    pub fn perform(&self, effect: Effect, guard: &mut TerminalGuard) {
        let handle = self.handle;
        match effect {
            Effect::Refresh(id) => handle.refresh(id),
            Effect::Pause(paused) => handle.pause(paused),
            Effect::LoadDetails(id) => self.load_details(id),
            Effect::Copy(text) => copy(&text, guard),
            Effect::Send(request) => {
                let (handle, actions) = (handle.clone(), self.actions.clone());
                tokio::spawn(async move {
                    let result = send(&handle, &request).await;
                    let _ = actions.send(Action::Done { request, result });
                });
            }
            Effect::LoadWebhooks => {
                let (handle, actions) = (handle.clone(), self.actions.clone());
                tokio::spawn(async move {
                    let endpoints = handle.webhook_endpoints().await;
                    let _ = actions.send(Action::WebhooksLoaded(endpoints.map_err(|e| e.to_string())));
                });
            }
            Effect::LoadDeliveries(endpoint) => {
                let (handle, actions) = (handle.clone(), self.actions.clone());
                tokio::spawn(async move {
                    let deliveries = handle.deliveries(endpoint).await;
                    let _ = actions.send(Action::DeliveriesLoaded(
                        endpoint,
                        deliveries.map_err(|e| e.to_string()),
                    ));
                });
            }
            Effect::ListDir(dir) => {
                let actions = self.actions.clone();
                tokio::task::spawn_blocking(move || {
                    let entries = super::modal::list_folder(&dir);
                    let _ = actions.send(Action::Listed(dir, entries));
                });
            }
            Effect::Export(ids) => {
                let (handle, actions) = (handle.clone(), self.actions.clone());
                tokio::spawn(async move {
                    let exported = handle.export_csv(ids).await;
                    let _ = actions.send(Action::Exported(exported));
                });
            }
            Effect::Mouse(on) => {
                let _ = guard.set_mouse(on);
            }
            Effect::Demo(on) => self.demo.store(on, Ordering::Relaxed),
            Effect::Quit => {}
        }
    }

    /// Reads a customer's details from the cache, then (if they stay selected a moment)
    /// their documents from the API.
    fn load_details(&self, id: Uuid) {
        let (handle, actions) = (self.handle.clone(), self.actions.clone());
        *self.selected.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
        let selected = self.selected.clone();
        tokio::spawn(async move {
            let details = read_details(&handle, id).await;
            if actions.send(Action::Details(Box::new(details))).is_err() {
                return;
            }
            // Documents are an API read: only for a selection that stays a moment, not
            // for every row the cursor passes.
            tokio::time::sleep(Duration::from_millis(250)).await;
            if *selected.lock().unwrap_or_else(|e| e.into_inner()) != Some(id) {
                return;
            }
            let documents = handle.documents(id).await.map_err(|err| err.to_string());
            let _ = actions.send(Action::Documents(id, documents));
        });
    }
}

/// A customer's profile, status and timeline from the cache. The engine sends a row only
/// once what it shows is committed, so one read agrees with it.
async fn read_details(handle: &EngineHandle, id: Uuid) -> Details {
    let cached = handle.cached(id).await.unwrap_or_else(|err| {
        tracing::error!("cannot read {id} from the cache: {err}");
        (None, None)
    });
    let history = handle
        .timeline(id, 50)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(at, kind, text)| LogLine {
            at,
            customer: Some(id),
            text: if kind == "webhook" {
                format!("webhook {text}")
            } else {
                text
            },
            alert: kind == "alert",
        })
        .collect();
    let (customer, status) = cached;
    Details {
        id,
        customer,
        status,
        history,
        documents: None,
    }
}

/// OSC 52: the terminal puts it on the clipboard, over SSH and tmux too.
fn copy(text: &str, guard: &mut TerminalGuard) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let backend = guard.terminal.backend_mut();
    let _ = write!(backend, "\x1b]52;c;{encoded}\x07");
    let _ = backend.flush();
}

/// Asks the engine for a request; errors in the words of the API's problem details.
async fn send(handle: &EngineHandle, request: &Request) -> Result<Done, Failed> {
    let sdk = |started: crate::api::types::KycStarted| Done::Started {
        sdk: started.sdk.map(|s| crate::domain::SdkLink {
            link: s.link,
            expires_at: s.expires_at,
        }),
    };
    match request {
        Request::StartKyc { customer, .. } => handle.start_kyc(*customer).await.map(sdk),
        Request::Rerun { customer, .. } => {
            return match handle.rerun_kyc(*customer).await? {
                Some(started) => Ok(sdk(started)),
                None => Err(Failed::new(
                    "this customer has no onboarding to rerun yet; start KYC with K",
                )),
            };
        }
        Request::Simulate { customer, action, .. } => handle
            .simulate(*customer, *action)
            .await
            .map(|()| Done::Simulated),
        Request::Upload {
            customer,
            path,
            document_type,
            ..
        } => {
            let content = read_document(path, *document_type).await.map_err(Failed::new)?;
            let file_name = path
                .file_name()
                .map_or_else(|| "document".to_string(), |n| n.to_string_lossy().into_owned());
            handle
                .upload(*customer, *document_type, &file_name, &content)
                .await
                .map(|duplicate| Done::Uploaded { duplicate })
        }
        Request::AdvanceClock { seconds } => handle
            .advance_clock(*seconds)
            .await
            .map(|clock| Done::ClockAdvanced { now: clock.now }),
        Request::Resend {
            endpoint, delivery, ..
        } => handle.resend(*endpoint, *delivery).await.map(|()| Done::Resent),
        Request::Create { profile } => handle.create_customer(profile).await.map(|c| Done::Saved {
            customer: c.id,
            name: c.display_name(),
        }),
        Request::RerunMany { customers } => {
            // All asked at once: the engine's client holds them to --concurrency.
            let reruns = customers.iter().map(|(customer, name)| async move {
                match handle.rerun_kyc(*customer).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err((name.clone(), "no onboarding to rerun yet".to_string())),
                    Err(error) => Err((name.clone(), error.to_string())),
                }
            });
            let results = futures_util::future::join_all(reruns).await;
            let succeeded = results.iter().filter(|r| r.is_ok()).count();
            let failed = results.into_iter().filter_map(Result::err).collect();
            return Ok(Done::Many { succeeded, failed });
        }
        Request::Patch { customer, patch, .. } => {
            handle
                .patch_customer(*customer, patch)
                .await
                .map(|c| Done::Saved {
                    customer: c.id,
                    name: c.display_name(),
                })
        }
    }
    .map_err(Failed::from)
}

/// Reads a file to upload off the runtime's threads and checks it as the API will (size,
/// format for the type), with the inbox's rule, so a file the API would refuse is not sent.
async fn read_document(
    path: &std::path::Path,
    document_type: crate::domain::DocumentType,
) -> Result<Vec<u8>, String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::sync::inbox::read_document(&path, document_type))
        .await
        .map_err(|e| e.to_string())?
}
