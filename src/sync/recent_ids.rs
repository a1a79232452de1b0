//! The webhook ids the engine saw lately (SPEC §10, "bounded over time"): the newest
//! [`RECENT_IDS`] of them, not every id ever received. A repeat of an older event is told by
//! the cache, which the receiver asks before the event reaches the engine
//! ([`crate::sync::cache::StoredEvents`]), so memory does not grow with the number of webhooks
//! received or the length of the run.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How many ids are kept: a sender's burst of repeats lands well within them (about 10 MB).
pub const RECENT_IDS: usize = 100_000;

#[derive(Debug)]
pub struct RecentIds {
    /// Each id with the number of its last insertion, so that an id removed and seen again is
    /// not forgotten early by its first insertion's turn in `order`.
    ids: HashMap<Arc<str>, u64>,
    order: VecDeque<(u64, Arc<str>)>,
    inserted: u64,
    capacity: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        RecentIds::with_capacity(RECENT_IDS)
    }
}

impl RecentIds {
    pub fn with_capacity(capacity: usize) -> RecentIds {
        RecentIds {
            ids: HashMap::new(),
            order: VecDeque::new(),
            inserted: 0,
            capacity: capacity.max(1),
        }
    }

    /// Notes `id`; `false` if it was already there.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains_key(id) {
            return false;
        }
        self.inserted += 1;
        let id: Arc<str> = Arc::from(id);
        self.ids.insert(id.clone(), self.inserted);
        self.order.push_back((self.inserted, id));
        while self.ids.len() > self.capacity {
            self.forget_oldest();
        }
        // Entries of removed ids are dropped lazily; they never outnumber the live ones.
        while self.order.len() > 2 * self.capacity {
            self.forget_oldest();
        }
        true
    }

    /// Forgets `id` (its commit failed: a retry must be applied, not called a repeat).
    pub fn remove(&mut self, id: &str) {
        self.ids.remove(id);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn forget_oldest(&mut self) {
        if let Some((number, id)) = self.order.pop_front()
            && self.ids.get(&id) == Some(&number)
        {
            self.ids.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_ids_are_kept_and_no_more() {
        let mut recent = RecentIds::with_capacity(3);
        for id in ["a", "b", "c"] {
            assert!(recent.insert(id));
        }
        assert!(!recent.insert("b"), "a repeat");
        assert!(recent.insert("d"));
        assert_eq!(recent.len(), 3);
        assert!(recent.insert("a"), "the oldest was forgotten");
        // A removed id seen again is kept for its new turn, not dropped at its old one.
        recent.remove("c");
        assert!(recent.insert("c"));
        assert!(recent.insert("e"));
        assert!(!recent.insert("c"), "still known after its first turn passed");
        for n in 0..1000 {
            recent.insert(&format!("x{n}"));
        }
        assert_eq!(recent.len(), 3);
        assert!(recent.order.len() <= 6);
    }
}
