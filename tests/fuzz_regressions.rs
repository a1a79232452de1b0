//! Inputs the fuzz targets (`fuzz/`, `benches/fuzz.sh`) found, each as a literal, with what
//! must happen instead of what did.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use kycdash::sync::observation::RejectReason;
use kycdash::sync::receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    headers.insert("webhook-timestamp", HeaderValue::from_str(timestamp).unwrap());
    headers.insert("webhook-signature", HeaderValue::from_str(signature).unwrap());
    headers
}

/// A timestamp far enough in the past overflowed `now - timestamp` inside standardwebhooks'
/// check: a panic in a debug build, and in a release build (where it wraps) a timestamp that
/// passed as fresh. Any unsigned sender could send it, before the signature is looked at.
#[test]
fn a_timestamp_near_i64_min_is_stale_not_a_panic() {
    let webhook = receiver::verifier(SECRET).unwrap();
    for timestamp in ["-9223372036854775808", "-9223372036000000000"] {
        let refused =
            receiver::check(&webhook, &headers("msg_1", timestamp, "v1,AAAA"), b"{}").expect_err("refused");
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{timestamp}");
        assert_eq!(refused.reason, RejectReason::StaleTimestamp, "{timestamp}");
    }
}

/// Signed by the right secret with that timestamp, the delivery must still be stale: the
/// wrapped subtraction must not make it fresh.
#[test]
fn a_signed_delivery_with_a_timestamp_near_i64_min_is_stale() {
    let webhook = receiver::verifier(SECRET).unwrap();
    let body = br#"{"id":"evt_1","eventType":"CUSTOMER_CREATED","createdAt":"2026-11-30T10:00:00Z","data":{"customerId":"00000000-0000-0000-0000-000000000007"}}"#;
    let signature = webhook.sign("msg_1", i64::MIN, body).unwrap();
    let refused = receiver::check(
        &webhook,
        &headers("msg_1", &i64::MIN.to_string(), &signature),
        body,
    )
    .expect_err("refused");
    assert_eq!(refused.reason, RejectReason::StaleTimestamp);
}

/// The window is five minutes each way, as standardwebhooks' own was: a delivery signed 299 s
/// away from this machine's clock passes, one 302 s away is stale, in the past and the future
/// alike (a second on each side for the clock ticking during the test).
#[test]
fn the_timestamp_window_is_five_minutes_each_way() {
    let webhook = receiver::verifier(SECRET).unwrap();
    let body = br#"{"id":"evt_1","eventType":"CUSTOMER_CREATED","createdAt":"2026-11-30T10:00:00Z","data":{"customerId":"00000000-0000-0000-0000-000000000007"}}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (offset, fresh) in [(-299, true), (299, true), (-302, false), (302, false)] {
        let timestamp = now + offset;
        let signature = webhook.sign("msg_1", timestamp, body).unwrap();
        let checked = receiver::check(
            &webhook,
            &headers("msg_1", &timestamp.to_string(), &signature),
            body,
        );
        match (fresh, checked) {
            (true, Ok(event)) => assert_eq!(event.id, "evt_1"),
            (false, Err(refused)) => assert_eq!(refused.reason, RejectReason::StaleTimestamp, "{offset}"),
            (fresh, other) => panic!(
                "offset {offset}: expected fresh={fresh}, got {:?}",
                other.map(|e| e.id)
            ),
        }
    }
}
