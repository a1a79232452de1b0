//! Why a request failed, in words a person can act on: the API's problem details (RFC 9457)
//! with their field errors, no answer at all, or an answer that cannot be read.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use super::types::Problem;
use crate::domain::FieldError;

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error status (and, usually, a problem body).
    #[error("{}", describe_problem(*status, problem))]
    Status {
        status: u16,
        problem: Box<Problem>,
        /// From `Retry-After`, on 429 and 503.
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed or timed out.
    #[error("cannot reach the API: {0}")]
    Transport(String),
    /// An answer this client cannot read.
    #[error("the API's answer could not be read: {0}")]
    Decode(String),
}

fn describe_problem(status: u16, problem: &Problem) -> String {
    let mut text = format!("HTTP {status}");
    if !problem.title.is_empty() {
        text.push_str(&format!(" {}", problem.title));
    }
    if !problem.detail.is_empty() {
        text.push_str(&format!(": {}", problem.detail));
    }
    if !problem.errors.is_empty() {
        let fields: Vec<String> = problem
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        text.push_str(&format!(" ({})", fields.join("; ")));
    }
    text
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The API key was refused (401, or 403 for a key without the rights it needs): nothing
    /// will work until the configuration changes.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// The API did not answer, or answered that it cannot serve (5xx): it is unreachable for
    /// what a person needs to know. A 429 is an answer (slow down), not an outage.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ApiError::Transport(_) => true,
            ApiError::Status { status, .. } => *status >= 500,
            ApiError::Decode(_) => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Worth trying again later: no answer, a 5xx, or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport(_) => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 429,
            ApiError::Decode(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The field errors of a 422.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ApiError::Status { problem, .. } => &problem.errors,
            _ => &[],
        }
    }
}

pub(super) fn transport_error(err: reqwest::Error) -> ApiError {
    let what = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    // reqwest's Display names the URL, never the headers, so the key cannot leak here.
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        detail.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    ApiError::Transport(format!("{what} ({detail})"))
}

/// A problem body, or what can be said of an error answer that has none.
pub(super) fn parse_problem(status: StatusCode, body: &[u8]) -> Problem {
    serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| Problem {
        problem_type: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("error").to_string(),
        status: status.as_u16(),
        detail: String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
        errors: Vec::new(),
    })
}

/// The longest pause a server's `Retry-After` can impose: beyond it the value is taken as an
/// hour (a wrong or hostile header must not stop the client for good).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in either form RFC 9110 allows: a number of seconds, or an HTTP date (the
/// wait until then from `now`; a date already past means at once); at most an hour.
pub(super) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_keep_detail_and_fields_and_tolerate_missing_members() {
        let body = br#"{"status": 422, "detail": "bad", "errors": [{"field": "kyc.birthDate", "message": "not a date"}]}"#;
        let problem = parse_problem(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(problem.detail, "bad");
        assert_eq!(problem.errors[0].field, "kyc.birthDate");
        let err = ApiError::Status {
            status: 422,
            problem: Box::new(problem),
            retry_after: None,
        };
        assert!(err.to_string().contains("kyc.birthDate: not a date"), "{err}");
        let html = parse_problem(StatusCode::BAD_GATEWAY, b"<html>upstream down</html>");
        assert_eq!(html.status, 502);
        assert!(html.detail.contains("upstream down"));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let in_a_minute = httpdate::fmt_http_date(now + Duration::from_secs(60));
        assert_eq!(retry_after(&in_a_minute, now), Some(Duration::from_secs(60)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(60));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("18446744073709551615", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after("-3", now), None);
    }
}
