//! The webhook receiver (SPEC §7): `POST /webhooks`, verified per Standard Webhooks. It only
//! observes: a verified event goes to the engine, which records it durably before the
//! receiver answers 200, so a crash can make the sender repeat an event but never lose one.
//!
//! | what arrived | answer | `reason` |
//! |---|---|---|
//! | no `webhook-id`/`-timestamp`/`-signature` | 401 | `missing_headers` |
//! | a timestamp more than 5 minutes off | 401 | `stale_timestamp` |
//! | a signature that does not match | 401 | `bad_signature` |
//! | a body over the limit | 413 | `too_large` |
//! | a signed body that is not an event | 400 | `malformed` |
//! | an event id seen before | 200, nothing applied | — |

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use standardwebhooks::{Webhook, WebhookError};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::backlog::Backlog;
use super::cache::StoredEvents;
use super::observation::{Ack, Observation, RejectReason};
use crate::domain::WebhookEvent;

/// How far a delivery's `webhook-timestamp` may be from this machine's clock (Standard
/// Webhooks' window, the same as standardwebhooks' own).
const TIMESTAMP_TOLERANCE_SECONDS: u64 = 5 * 60;

/// The largest body the receiver reads.
pub const BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
struct Receiver {
    webhook: std::sync::Arc<Webhook>,
    inlet: Inlet,
}

/// Where verified webhooks go, and what the receiver consults before they do.
#[derive(Clone)]
pub struct Inlet {
    pub engine: mpsc::UnboundedSender<Observation>,
    /// While the engine's watcher is far behind, new webhooks are turned away (503 at once;
    /// the sender retries), rather than queued without bound or kept waiting.
    pub backlog: Backlog,
    /// The cache, which tells a repeat of an event older than the engine's memory of ids.
    pub stored: Option<StoredEvents>,
}

impl Inlet {
    /// Straight to `engine`, with nothing to consult.
    pub fn to(engine: mpsc::UnboundedSender<Observation>) -> Inlet {
        Inlet {
            engine,
            backlog: Backlog::default(),
            stored: None,
        }
    }
}

/// A bound receiver, not yet serving.
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
}

pub async fn bind(listen: SocketAddr) -> std::io::Result<Bound> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok(Bound { listener, addr })
}

/// Checks a signing secret before anything is served with it.
pub fn verifier(secret: &str) -> Result<Webhook, String> {
    Webhook::new(secret).map_err(|_| "the webhook secret is not a valid whsec_… secret".to_string())
}

/// Serves until `cancel`.
pub fn serve(
    bound: Bound,
    webhook: Webhook,
    inlet: Inlet,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let state = Receiver {
        webhook: std::sync::Arc::new(webhook),
        inlet,
    };
    let router = Router::new().route("/webhooks", post(receive)).with_state(state);
    tokio::spawn(async move {
        let served = axum::serve(bound.listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!("the webhook receiver stopped: {err}");
        }
    })
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    // First of all, so that nothing (a flood of forged deliveries either) adds to a backlog
    // that is already far behind.
    if receiver.inlet.backlog.turn_away() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "30")],
            "busy: what was received is still being read; try again later",
        )
            .into_response();
    }
    let reject = |status: StatusCode, reason: RejectReason, detail: String| {
        let _ = receiver.inlet.engine.send(Observation::Rejected {
            reason,
            detail: detail.clone(),
        });
        (status, detail).into_response()
    };
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                RejectReason::TooLarge,
                format!("the body is over the receiver's limit of {BODY_LIMIT} bytes"),
            );
        }
    };
    let event = match check(&receiver.webhook, &headers, &body) {
        Ok(event) => event,
        Err(refused) => return reject(refused.status, refused.reason, refused.detail),
    };
    let stored = match &receiver.inlet.stored {
        Some(stored) => stored.contains(&event.id).await,
        None => false,
    };
    let (ack, answer) = oneshot::channel();
    let raw = String::from_utf8_lossy(&body).into_owned();
    if receiver
        .inlet
        .engine
        .send(Observation::Webhook {
            event,
            raw,
            ack,
            stored,
        })
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(30), answer).await {
        Ok(Ok(Ack::Recorded)) => (StatusCode::OK, "recorded").into_response(),
        Ok(Ok(Ack::Duplicate)) => (StatusCode::OK, "duplicate: already recorded").into_response(),
        // Not recorded: the sender must try again.
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not recorded; try again").into_response(),
    }
}

/// Why [`check`] refused a delivery: the answer, the reason the engine records, and what the
/// sender is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: RejectReason,
    pub detail: String,
}

/// Verifies a delivery's Standard Webhooks headers and signature against its body, then reads
/// the body as an event. Pure (the clock is the only outside thing it reads, through the
/// verifier's timestamp window), so the fuzz targets and tests call it with arbitrary input.
pub fn check(webhook: &Webhook, headers: &HeaderMap, body: &[u8]) -> Result<WebhookEvent, Refused> {
    let refuse = |status: StatusCode, reason: RejectReason, detail: String| Refused {
        status,
        reason,
        detail,
    };
    let missing: Vec<&str> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .filter(|name| !headers.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            RejectReason::MissingHeaders,
            format!(
                "missing {}: is this a Standard Webhooks sender?",
                missing.join(", ")
            ),
        ));
    }
    let stale = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            RejectReason::StaleTimestamp,
            "webhook-timestamp is more than 5 minutes from this machine's clock; check both clocks"
                .to_string(),
        )
    };
    // standardwebhooks computes `now - timestamp` unchecked: a timestamp near i64::MIN
    // panics there in a debug build and wraps to "fresh" in a release one. Its window is
    // applied here first, without overflow, so only timestamps near now reach it.
    let timestamp = headers
        .get("webhook-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(timestamp) = timestamp
        && time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .abs_diff(timestamp)
            > TIMESTAMP_TOLERANCE_SECONDS
    {
        return Err(stale());
    }
    if let Err(err) = webhook.verify(body, headers) {
        let (reason, detail) = match err {
            WebhookError::TimestampTooOldError | WebhookError::FutureTimestampError => return Err(stale()),
            WebhookError::InvalidTimestamp => (
                RejectReason::MissingHeaders,
                "webhook-timestamp is not a Unix time in seconds".to_string(),
            ),
            _ => (
                RejectReason::BadSignature,
                "the signature does not match: the sender signs with another secret".to_string(),
            ),
        };
        return Err(refuse(StatusCode::UNAUTHORIZED, reason, detail));
    }
    serde_json::from_slice(body).map_err(|err| {
        refuse(
            StatusCode::BAD_REQUEST,
            RejectReason::Malformed,
            format!("the body is not a webhook event: {err}"),
        )
    })
}
