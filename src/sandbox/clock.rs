//! Time in the sandbox: how long its simulated world takes ([`Timing`]), and how times are
//! stored (RFC 3339 text, Unix milliseconds). A leaf: the store, the unit of work and the
//! in-memory copy all use it without using each other for it.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long things take in the sandbox's simulated world.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long SDK links stay live.
    pub link_ttl: time::Duration,
    /// How long the provider takes to decide an onboarding whose requirements are all met.
    pub decision_delay: time::Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            link_ttl: time::Duration::minutes(30),
            decision_delay: time::Duration::seconds(2),
        }
    }
}

/// A time that cannot be stored or read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(String);

/// A time as stored: RFC 3339. A time RFC 3339 cannot write (a year past 9999) is an error,
/// never an empty string in the database.
pub fn rfc3339(at: OffsetDateTime) -> Result<String, TimeError> {
    at.format(&Rfc3339)
        .map_err(|e| TimeError(format!("the time {at} cannot be stored as RFC 3339: {e}")))
}

pub fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A stored millisecond time; one out of range is an error, not the epoch.
pub fn from_unix_ms(ms: i64) -> Result<OffsetDateTime, TimeError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| TimeError(format!("the time {ms} ms is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_out_of_range_are_errors_not_made_up() {
        assert!(from_unix_ms(i64::MAX).is_err());
        assert_eq!(
            from_unix_ms(unix_ms(OffsetDateTime::UNIX_EPOCH)),
            Ok(OffsetDateTime::UNIX_EPOCH)
        );
        // RFC 3339 has no year before 0000.
        let ancient = OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT);
        assert!(rfc3339(ancient).is_err());
    }
}
