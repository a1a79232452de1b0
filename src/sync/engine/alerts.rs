//! Alerts (SPEC §7): which ones a customer deserves is a pure function of what the engine
//! knows and of `now`; [`Model`] only remembers which it already raised.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{AlertKind, EngineEvent, Model};
use crate::domain::Stage;
use crate::sync::cache::Write;
use crate::sync::tracker::Drift;

/// What a countdown alert needs to know of a customer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Countdown {
    pub stage: Stage,
    /// Since when the customer is in `stage`, on this machine's clock.
    pub since: OffsetDateTime,
    /// When the SDK link expires, on the API's clock.
    pub sdk_expires: Option<OffsetDateTime>,
}

/// The alert a countdown calls for at `now`, if any: a link expiring within `expiring_within`
/// (on the API's clock, `server_now`), or a decision awaited for `stuck_after` or longer.
pub(super) fn countdown_alert(
    countdown: Countdown,
    now: OffsetDateTime,
    server_now: OffsetDateTime,
    expiring_within: std::time::Duration,
    stuck_after: std::time::Duration,
) -> Option<(AlertKind, String)> {
    match (countdown.stage, countdown.sdk_expires) {
        (Stage::AwaitingSdk, Some(expires)) => {
            let left = expires - server_now;
            // Said on this machine's clock, so the time agrees with "in N s" (SPEC §10).
            let expires_here = expires - (server_now - now);
            (left.is_positive() && left <= expiring_within).then(|| {
                (
                    AlertKind::SdkLinkExpiring,
                    format!(
                        "the SDK link expires in {} s ({}); remind the customer to finish",
                        left.whole_seconds(),
                        crate::sync::rfc3339(expires_here)
                    ),
                )
            })
        }
        (Stage::AwaitingDecision, _) => {
            let waiting = now - countdown.since;
            (waiting >= stuck_after).then(|| {
                (
                    AlertKind::StuckWaiting,
                    format!(
                        "waiting for the provider's decision for {} h (since {})",
                        waiting.whole_hours(),
                        crate::sync::rfc3339(countdown.since)
                    ),
                )
            })
        }
        _ => None,
    }
}

/// What `drift` says: both stages, and what it means.
pub(super) fn drift_detail(drift: &Drift) -> String {
    format!(
        "the webhooks said {} but the status says {}: an event was missed, late or out of order",
        drift.claimed, drift.seen
    )
}

pub(super) const VERIFICATION_ERROR: &str =
    "identity verification failed; the onboarding is final: contact the provider's support";

impl Model {
    /// Raises an alert once per customer and kind (until the customer's stage changes).
    pub(super) fn alert(&mut self, id: Uuid, alert: AlertKind, detail: String) {
        if self.alerted.insert((id, alert)) {
            self.writer_write(Write::Timeline {
                customer_id: id,
                at: OffsetDateTime::now_utc(),
                kind: "alert",
                text: detail.clone(),
            });
            self.emit(EngineEvent::Alert {
                customer_id: id,
                alert,
                detail,
            });
        }
    }

    /// Checks every customer whose countdown runs (once a minute).
    pub(super) fn check_countdowns(&mut self) {
        let candidates: Vec<(Uuid, Countdown)> = self
            .customers
            .iter()
            .filter_map(|(id, entry)| {
                let stage = self.tracker.stage(*id)?;
                matches!(stage, Stage::AwaitingSdk | Stage::AwaitingDecision).then(|| {
                    let sdk_expires = entry
                        .status
                        .as_ref()
                        .and_then(|s| s.sdk.as_ref())
                        .map(|s| s.expires_at);
                    let since = self.tracker.since(*id).unwrap_or(OffsetDateTime::now_utc());
                    (
                        *id,
                        Countdown {
                            stage,
                            since,
                            sdk_expires,
                        },
                    )
                })
            })
            .collect();
        for (id, countdown) in candidates {
            self.countdown(id, countdown);
        }
        self.count_stages();
    }

    pub(super) fn countdown(&mut self, id: Uuid, countdown: Countdown) {
        let now = OffsetDateTime::now_utc();
        let server_now = now + self.server_offset;
        let timing = self.timing;
        if let Some((alert, detail)) = countdown_alert(
            countdown,
            now,
            server_now,
            timing.expiring_within,
            timing.stuck_after,
        ) {
            self.alert(id, alert, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    const WITHIN: Duration = Duration::from_secs(300);
    const STUCK: Duration = Duration::from_secs(24 * 3600);

    fn alert_at(countdown: Countdown, now: OffsetDateTime, offset: time::Duration) -> Option<AlertKind> {
        countdown_alert(countdown, now, now + offset, WITHIN, STUCK).map(|(kind, _)| kind)
    }

    #[test]
    fn a_link_alerts_only_in_its_last_minutes_on_the_apis_clock() {
        let now = datetime!(2026-12-06 10:00 UTC);
        let awaiting = |expires| Countdown {
            stage: Stage::AwaitingSdk,
            since: now,
            sdk_expires: Some(expires),
        };
        let none = time::Duration::ZERO;
        assert_eq!(
            alert_at(awaiting(now + time::Duration::minutes(6)), now, none),
            None
        );
        assert_eq!(
            alert_at(awaiting(now + time::Duration::minutes(4)), now, none),
            Some(AlertKind::SdkLinkExpiring)
        );
        assert_eq!(
            alert_at(awaiting(now - time::Duration::seconds(1)), now, none),
            None,
            "expired"
        );
        // The API's clock is 2 minutes ahead: a link 6 minutes out by ours has 4 left by its.
        assert_eq!(
            alert_at(
                awaiting(now + time::Duration::minutes(6)),
                now,
                time::Duration::minutes(2)
            ),
            Some(AlertKind::SdkLinkExpiring)
        );
    }

    #[test]
    fn a_decision_alerts_once_it_has_waited_the_threshold() {
        let now = datetime!(2026-12-06 10:00 UTC);
        let waiting = |hours| Countdown {
            stage: Stage::AwaitingDecision,
            since: now - time::Duration::hours(hours),
            sdk_expires: None,
        };
        assert_eq!(alert_at(waiting(23), now, time::Duration::ZERO), None);
        let (kind, detail) = countdown_alert(waiting(25), now, now, WITHIN, STUCK).unwrap();
        assert_eq!(kind, AlertKind::StuckWaiting);
        assert!(detail.contains("for 25 h"), "{detail}");
    }

    #[test]
    fn other_stages_have_no_countdown() {
        let now = datetime!(2026-12-06 10:00 UTC);
        let long_ago = now - time::Duration::days(30);
        for stage in [
            Stage::InReview,
            Stage::Approved,
            Stage::Expired,
            Stage::CollectingRequirements,
        ] {
            let countdown = Countdown {
                stage,
                since: long_ago,
                sdk_expires: Some(now + time::Duration::minutes(1)),
            };
            assert_eq!(alert_at(countdown, now, time::Duration::ZERO), None, "{stage:?}");
        }
    }
}
