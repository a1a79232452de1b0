//! What the header says of the API's health: its state as the engine found it, and error
//! counts over the last few minutes (SPEC §10: counts since start would say "3 errors" long
//! after the API came back).

use std::collections::VecDeque;

use time::OffsetDateTime;

/// How far back error counts reach.
pub const RECENT: time::Duration = time::Duration::minutes(5);

/// How many errors happened in each second of the last [`RECENT`]: at most 300 buckets,
/// however many errors a flood brings.
#[derive(Debug, Default, Clone)]
pub struct RecentErrors {
    seconds: VecDeque<(i64, usize)>,
}

impl RecentErrors {
    pub fn note(&mut self, at: OffsetDateTime) {
        self.forget_before(at - RECENT);
        let second = at.unix_timestamp();
        match self.seconds.back_mut() {
            Some((last, count)) if *last == second => *count += 1,
            _ => self.seconds.push_back((second, 1)),
        }
    }

    /// How many happened in the [`RECENT`] minutes before `now`.
    pub fn count(&self, now: OffsetDateTime) -> usize {
        let since = (now - RECENT).unix_timestamp();
        self.seconds
            .iter()
            .rev()
            .take_while(|(second, _)| *second > since)
            .map(|(_, count)| count)
            .sum()
    }

    /// Whether the count can still change by itself (an error is yet to age out): then the
    /// header ticks.
    pub fn ageing(&self, now: OffsetDateTime) -> bool {
        self.count(now) > 0
    }

    /// Drops what aged out (called on each note, so the queue holds five minutes at most).
    fn forget_before(&mut self, since: OffsetDateTime) {
        let since = since.unix_timestamp();
        while self.seconds.front().is_some_and(|(second, _)| *second <= since) {
            self.seconds.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_for_five_minutes_then_age_out() {
        let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let mut errors = RecentErrors::default();
        errors.note(start);
        errors.note(start + time::Duration::minutes(2));
        errors.note(start + time::Duration::minutes(3));
        assert_eq!(errors.count(start + time::Duration::minutes(3)), 3);
        assert_eq!(
            errors.count(start + time::Duration::minutes(5) + time::Duration::SECOND),
            2
        );
        assert_eq!(
            errors.count(start + time::Duration::minutes(8) + time::Duration::SECOND),
            0
        );
        assert!(!errors.ageing(start + time::Duration::minutes(9)));
        // A note forgets what aged out, and a flood in one second is one bucket.
        for _ in 0..10_000 {
            errors.note(start + time::Duration::minutes(20));
        }
        assert_eq!(errors.seconds.len(), 1);
        assert_eq!(errors.count(start + time::Duration::minutes(20)), 10_000);
    }
}
