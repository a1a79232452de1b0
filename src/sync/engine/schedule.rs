//! The poll schedule: when each customer is next polled, failures in a row (for backoff), and
//! the per-second budget of background polls; a poll that falls due joins the pull queue
//! (`pulls`). Plain data driven by `Instant`s the caller passes in, so it is tested without a
//! runtime or a clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A heap of due times with lazy deletion (an entry counts only while it matches `due`): a
/// reschedule is one push, and 100,000 customers cost no scan per tick. A timer wheel
/// (`tokio_util::time::DelayQueue`) would need its keys kept beside `due` all the same and
/// wake the task per entry; the heap lets the engine sleep until exactly the earliest poll.
#[derive(Debug)]
pub(super) struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, Uuid)>>,
    due: HashMap<Uuid, Instant>,
    failures: HashMap<Uuid, u32>,
    /// Background polls started in the current second: (its start, how many).
    budget: (Instant, u32),
    per_second: u32,
}

impl Schedule {
    /// At most `per_second` background polls start in any second (webhooks' pulls and
    /// refreshes do not count: someone waits for them).
    pub fn new(per_second: u32, now: Instant) -> Schedule {
        Schedule {
            heap: BinaryHeap::new(),
            due: HashMap::new(),
            failures: HashMap::new(),
            budget: (now, 0),
            per_second: per_second.max(1),
        }
    }

    /// Polls `id` at `at`, unless it is already due earlier.
    pub fn poll_at(&mut self, id: Uuid, at: Instant) {
        if self.due.get(&id).is_some_and(|known| *known <= at) {
            return;
        }
        self.due.insert(id, at);
        self.heap.push(Reverse((at, id)));
    }

    /// The API answers again after an outage: every scheduled customer whose polls failed
    /// is due now (the budget spreads them out), not after their backoff.
    pub fn retry_failed(&mut self, now: Instant) {
        let failed: Vec<Uuid> = self
            .failures
            .keys()
            .filter(|id| self.due.contains_key(id))
            .copied()
            .collect();
        for id in failed {
            self.poll_at(id, now);
        }
    }

    /// Forgets `id`'s next poll (its stage is final, or it is polled now).
    pub fn cancel(&mut self, id: Uuid) {
        self.due.remove(&id);
    }

    /// Whether a poll of `id` is scheduled.
    pub fn is_due(&self, id: Uuid) -> bool {
        self.due.contains_key(&id)
    }

    /// When the next background poll may start: its due time, or later when this second's
    /// budget is spent. `None` with nothing scheduled.
    pub fn next_wake(&mut self) -> Option<Instant> {
        let at = self.earliest()?;
        let (second, spent) = self.budget;
        Some(if spent >= self.per_second {
            at.max(second + Duration::from_secs(1))
        } else {
            at
        })
    }

    /// Takes the next poll due by `now` from this second's budget; `None` when none is due
    /// or the budget is spent.
    pub fn pop_due(&mut self, now: Instant) -> Option<Uuid> {
        let at = self.earliest().filter(|at| *at <= now)?;
        let (second, spent) = &mut self.budget;
        if now.duration_since(*second) >= Duration::from_secs(1) {
            *second = now;
            *spent = 0;
        }
        if *spent >= self.per_second {
            return None;
        }
        *spent += 1;
        let Reverse((_, id)) = self.heap.pop()?;
        debug_assert_eq!(self.due.get(&id), Some(&at));
        self.due.remove(&id);
        Some(id)
    }

    /// The earliest real due time; drops stale heap entries on the way.
    fn earliest(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if self.due.get(&id) == Some(&at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Counts a failed poll of `id`; returns the failures in a row.
    pub fn failed(&mut self, id: Uuid) -> u32 {
        let failures = self.failures.entry(id).or_insert(0);
        *failures += 1;
        *failures
    }

    pub fn succeeded(&mut self, id: Uuid) {
        self.failures.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    #[test]
    fn the_earlier_time_wins_and_a_replaced_entry_is_never_polled() {
        let start = Instant::now();
        let mut schedule = Schedule::new(100, start);
        let [a, b] = ids(2).try_into().unwrap();
        schedule.poll_at(a, start + Duration::from_secs(10));
        schedule.poll_at(a, start + Duration::from_secs(20)); // later: ignored
        schedule.poll_at(b, start + Duration::from_secs(5));
        schedule.poll_at(b, start + Duration::from_secs(1)); // earlier: replaces
        assert_eq!(schedule.next_wake(), Some(start + Duration::from_secs(1)));
        let later = start + Duration::from_secs(30);
        assert_eq!(schedule.pop_due(later), Some(b));
        assert_eq!(schedule.pop_due(later), Some(a));
        assert_eq!(
            schedule.pop_due(later),
            None,
            "b's replaced entry and a's later one are stale"
        );
        assert_eq!(schedule.next_wake(), None);
    }

    #[test]
    fn nothing_is_polled_before_it_is_due_and_a_cancelled_poll_never() {
        let start = Instant::now();
        let mut schedule = Schedule::new(100, start);
        let [a, b] = ids(2).try_into().unwrap();
        schedule.poll_at(a, start + Duration::from_secs(2));
        schedule.poll_at(b, start + Duration::from_secs(1));
        schedule.cancel(b);
        assert!(!schedule.is_due(b) && schedule.is_due(a));
        assert_eq!(schedule.pop_due(start + Duration::from_millis(1500)), None);
        assert_eq!(schedule.pop_due(start + Duration::from_secs(2)), Some(a));
    }

    #[test]
    fn the_budget_holds_background_polls_to_n_a_second_and_says_when_it_is_back() {
        let start = Instant::now();
        let mut schedule = Schedule::new(3, start);
        for id in ids(10) {
            schedule.poll_at(id, start);
        }
        let now = start + Duration::from_millis(10);
        let first: Vec<_> = std::iter::from_fn(|| schedule.pop_due(now)).collect();
        assert_eq!(first.len(), 3);
        // The second counts from when the budget was last refilled (here, the start).
        assert_eq!(schedule.next_wake(), Some(start + Duration::from_secs(1)));
        assert_eq!(schedule.pop_due(start + Duration::from_millis(999)), None);
        let next = start + Duration::from_secs(1);
        assert_eq!(std::iter::from_fn(|| schedule.pop_due(next)).count(), 3);
    }

    #[test]
    fn stale_entries_spend_no_budget() {
        let start = Instant::now();
        let mut schedule = Schedule::new(1, start);
        let [a, b] = ids(2).try_into().unwrap();
        schedule.poll_at(a, start + Duration::from_millis(5));
        schedule.cancel(a);
        schedule.poll_at(b, start + Duration::from_millis(6));
        assert_eq!(schedule.pop_due(start + Duration::from_millis(10)), Some(b));
    }

    #[test]
    fn failures_count_in_a_row_until_a_success() {
        let mut schedule = Schedule::new(1, Instant::now());
        let id = Uuid::new_v4();
        assert_eq!(schedule.failed(id), 1);
        assert_eq!(schedule.failed(id), 2);
        schedule.succeeded(id);
        assert_eq!(schedule.failed(id), 1);
    }
}
