//! The webhook receiver's check (`sync::receiver::check`: Standard Webhooks headers and
//! signature, then the event JSON), two ways:
//! - arbitrary headers and body: it answers 401 or 400, never panics;
//! - a correctly signed delivery of arbitrary bytes, with an arbitrary id and a timestamp
//!   inside the 5-minute window: it is verified (never a 401), then read as an event or
//!   refused as malformed (400); an event read goes on to what the engine does with it.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use kycdash::domain::{Stage, Strategy, observed_event};
use kycdash::sync::receiver;
use libfuzzer_sys::fuzz_target;
use standardwebhooks::Webhook;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static WEBHOOK: LazyLock<Webhook> = LazyLock::new(|| receiver::verifier(SECRET).expect("a valid secret"));

#[derive(Debug, Arbitrary)]
enum Name {
    Id,
    Timestamp,
    Signature,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Delivery {
    Raw {
        headers: Vec<(Name, Vec<u8>)>,
        body: Vec<u8>,
    },
    Signed {
        id: String,
        /// Seconds from now, kept within the window.
        skew: i16,
        body: String,
    },
}

fn raw(headers: Vec<(Name, Vec<u8>)>, body: &[u8]) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = match name {
            Name::Id => HeaderName::from_static("webhook-id"),
            Name::Timestamp => HeaderName::from_static("webhook-timestamp"),
            Name::Signature => HeaderName::from_static("webhook-signature"),
            Name::Other(name) => match HeaderName::try_from(name) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        // What hyper would take off the wire: any value `HeaderValue` accepts.
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            map.append(name, value);
        }
    }
    match receiver::check(&WEBHOOK, &map, body) {
        // libFuzzer does not forge an HMAC; an input that carries a real one is fine.
        Ok(event) => engine_reads(&event),
        Err(refused) => {
            assert!(
                refused.status == StatusCode::UNAUTHORIZED || refused.status == StatusCode::BAD_REQUEST,
                "{refused:?}"
            );
            assert!(!refused.detail.is_empty());
        }
    }
}

fn signed(id: &str, skew: i16, body: &str) {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(skew) % 240;
    let Ok(id_value) = HeaderValue::from_str(id) else {
        return;
    };
    let signature = WEBHOOK
        .sign(id, timestamp, body.as_bytes())
        .expect("a UTF-8 body signs");
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", id_value);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&signature).expect("base64 is a header value"),
    );
    match receiver::check(&WEBHOOK, &headers, body.as_bytes()) {
        Ok(event) => engine_reads(&event),
        Err(refused) => assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}"),
    }
}

/// What the engine does next with a verified event.
fn engine_reads(event: &kycdash::domain::WebhookEvent) {
    let _ = (event.event_type_name(), event.customer_id());
    for stage in Stage::ALL {
        for strategy in [Strategy::CfKyc, Strategy::ExternalKyc] {
            let _ = observed_event(stage, event, strategy);
        }
    }
}

fuzz_target!(|delivery: Delivery| {
    match delivery {
        Delivery::Raw { headers, body } => raw(headers, &body),
        Delivery::Signed { id, skew, body } => signed(&id, skew, &body),
    }
});
