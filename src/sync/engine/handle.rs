//! How users act on a running engine: [`EngineHandle`]'s commands, and [`Engine`], the running
//! task with its event stream.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::EngineEvent;
use crate::api::types::{Delivery, Document, KycStarted, WebhookEndpoint};
use crate::api::{ApiClient, ApiError};
use crate::domain::{ComplianceStatus, Customer, DocumentType};
use crate::sync::cache;
use crate::sync::inbox::Uploaded;
use crate::sync::observation::{Observation, UploadResult};

/// What users ask of the engine.
pub(super) enum Command {
    /// Poll one customer now (or, with `None`, sweep everyone).
    Refresh(Option<Uuid>),
    Pause(bool),
    Stop,
}

/// How users act on the engine. API actions go through the engine's own client and end in a
/// refresh of the customer they touched, so their effect shows up as events like any other.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) client: ApiClient,
    pub(super) uploaded: Uploaded,
    pub(super) sandbox: bool,
    pub(super) reader: Arc<Mutex<rusqlite::Connection>>,
    /// Where exports go: `<data-dir>/exports`.
    pub(super) exports: std::path::PathBuf,
    /// What the handle's own actions observed (an upload), told to the engine like the inbox.
    pub(super) observations: mpsc::UnboundedSender<Observation>,
}

impl EngineHandle {
    pub fn refresh(&self, customer_id: Option<Uuid>) {
        let _ = self.commands.send(Command::Refresh(customer_id));
    }

    pub fn pause(&self, paused: bool) {
        let _ = self.commands.send(Command::Pause(paused));
    }

    /// Asks the engine to stop; the event stream ends with `stopped`.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    pub fn is_sandbox(&self) -> bool {
        self.sandbox
    }

    pub async fn create_customer(
        &self,
        profile: &crate::domain::CustomerProfile,
    ) -> Result<Customer, ApiError> {
        let customer = self.client.create_customer(profile).await?;
        self.refresh(Some(customer.id));
        Ok(customer)
    }

    pub async fn patch_customer(&self, id: Uuid, patch: &serde_json::Value) -> Result<Customer, ApiError> {
        let customer = self.client.patch_customer(id, patch).await?;
        self.refresh(Some(id));
        Ok(customer)
    }

    pub async fn start_kyc(&self, id: Uuid) -> Result<KycStarted, ApiError> {
        let started = self.client.start_kyc(id, None).await?;
        self.refresh(Some(id));
        Ok(started)
    }

    /// Reruns the customer's expired onboarding: the one the API has now, not what the cache
    /// says. `None` when the customer has no onboarding yet.
    pub async fn rerun_kyc(&self, customer_id: Uuid) -> Result<Option<KycStarted>, ApiError> {
        let status = self.client.status(customer_id).await?;
        let Some(onboarding_id) = status.onboarding_id else {
            return Ok(None);
        };
        let started = self.client.rerun_kyc(onboarding_id).await?;
        self.refresh(Some(customer_id));
        Ok(Some(started))
    }

    /// Uploads a document under the same rule as the inbox: the same content for the same
    /// customer and type is not uploaded twice. Recorded and reported like an inbox upload;
    /// returns whether it was a duplicate.
    pub async fn upload(
        &self,
        customer_id: Uuid,
        document_type: DocumentType,
        file_name: &str,
        content: &[u8],
    ) -> Result<bool, ApiError> {
        let (sha, result) = crate::sync::inbox::upload_once(
            &self.client,
            &self.uploaded,
            customer_id,
            document_type,
            file_name,
            content,
        )
        .await?;
        let duplicate = result == UploadResult::Duplicate;
        let _ = self.observations.send(Observation::Upload {
            path: file_name.to_string(),
            customer_id: Some(customer_id),
            document_type: Some(document_type),
            sha256: Some(sha),
            result,
        });
        Ok(duplicate)
    }

    pub async fn simulate(
        &self,
        customer_id: Uuid,
        action: crate::api::types::SimulateAction,
    ) -> Result<(), ApiError> {
        self.client.simulate(customer_id, action).await?;
        self.refresh(Some(customer_id));
        Ok(())
    }

    pub async fn advance_clock(&self, seconds: u64) -> Result<crate::api::types::ClockState, ApiError> {
        let clock = self.client.advance_clock(seconds).await?;
        self.refresh(None);
        Ok(clock)
    }

    /// The customer's documents on file (a read the engine does not keep).
    pub async fn documents(&self, customer_id: Uuid) -> Result<Vec<Document>, ApiError> {
        Ok(self.client.documents(customer_id).await?.data)
    }

    /// The account's webhook endpoints.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ApiError> {
        Ok(self.client.webhooks().await?.data)
    }

    /// An endpoint's delivery log, newest first.
    pub async fn deliveries(&self, endpoint_id: Uuid) -> Result<Vec<Delivery>, ApiError> {
        Ok(self.client.deliveries(endpoint_id).await?.data)
    }

    /// Sends a delivery again (to whatever listens at the endpoint now).
    pub async fn resend(&self, endpoint_id: Uuid, delivery_id: Uuid) -> Result<(), ApiError> {
        self.client.resend(endpoint_id, delivery_id).await.map(|_| ())
    }

    /// The whole customer and status last fetched, from the cache (point reads on their own
    /// connection; the writer thread is never waited for).
    pub async fn cached(
        &self,
        customer_id: Uuid,
    ) -> Result<(Option<Customer>, Option<ComplianceStatus>), cache::CacheError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().map_err(|_| cache::CacheError::Closed)?;
            Ok((
                cache::customer(&conn, customer_id)?,
                cache::status(&conn, customer_id)?,
            ))
        })
        .await
        .map_err(|_| cache::CacheError::Closed)?
    }

    /// Writes these customers, in this order, as CSV (SPEC §11: no personal data) to
    /// `<data-dir>/exports/kycdash-<timestamp>.csv`; where, and how many.
    pub async fn export_csv(&self, ids: Vec<Uuid>) -> Result<(std::path::PathBuf, usize), String> {
        let (reader, dir) = (self.reader.clone(), self.exports.clone());
        tokio::task::spawn_blocking(move || {
            let rows = {
                let conn = reader
                    .lock()
                    .map_err(|_| "the cache's reader is gone".to_string())?;
                cache::everyone(&conn).map_err(|err| err.to_string())?
            };
            let mut by_id: std::collections::HashMap<Uuid, _> =
                rows.into_iter().map(|row| (row.customer.id, row)).collect();
            let records: Vec<_> = ids
                .iter()
                .filter_map(|id| by_id.remove(id))
                .map(|row| crate::export::record(&row, false))
                .collect();
            let mut csv = Vec::new();
            crate::export::write_csv(&records, false, &mut csv).map_err(|err| err.to_string())?;
            crate::private::create_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
            let path = dir.join(export_name(OffsetDateTime::now_utc()));
            crate::export::write_atomically(&path, &csv)
                .map_err(|err| format!("{}: {err}", path.display()))?;
            Ok((path, records.len()))
        })
        .await
        .map_err(|_| "the export stopped".to_string())?
    }

    /// A customer's timeline from the cache, oldest first (at most `limit` entries).
    pub async fn timeline(
        &self,
        customer_id: Uuid,
        limit: u32,
    ) -> Result<Vec<(OffsetDateTime, String, String)>, cache::CacheError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().map_err(|_| cache::CacheError::Closed)?;
            cache::timeline(&conn, customer_id, limit)
        })
        .await
        .map_err(|_| cache::CacheError::Closed)?
    }
}

/// A running engine.
pub struct Engine {
    pub handle: EngineHandle,
    pub events: mpsc::Receiver<EngineEvent>,
    pub(super) task: JoinHandle<()>,
}

impl Engine {
    /// Waits for the engine to stop (after [`EngineHandle::stop`], a fatal error, or `--once`).
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Splits into the handle, the events and the task. The events must be read, or dropped:
    /// the channel is bounded, and an engine whose watcher neither reads nor lets go cannot
    /// deliver its last events, so `task` would not end.
    pub fn into_parts(self) -> (EngineHandle, mpsc::Receiver<EngineEvent>, JoinHandle<()>) {
        (self.handle, self.events, self.task)
    }
}

/// `kycdash-20261206T050312Z.csv`: sortable, and safe in every file system.
fn export_name(at: OffsetDateTime) -> String {
    format!(
        "kycdash-{:04}{:02}{:02}T{:02}{:02}{:02}Z.csv",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}
