//! A bounded log: the newest `N` entries, the oldest dropped as new ones arrive. The event log
//! and each customer's timeline are rings, so a dashboard left open for days stays small.

use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring<T, const N: usize> {
    entries: VecDeque<T>,
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Ring {
            entries: VecDeque::new(),
        }
    }
}

impl<T, const N: usize> Ring<T, N> {
    /// Adds the newest entry, dropping the oldest when the ring is full.
    pub fn push(&mut self, entry: T) {
        if self.entries.len() == N {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Oldest first (`.rev()` for newest first).
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.entries.iter()
    }

    /// The newest entry.
    pub fn back(&self) -> Option<&T> {
        self.entries.back()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn a_full_ring_drops_the_oldest_and_keeps_the_order() {
        let mut ring = Ring::<u32, 3>::default();
        assert!(ring.is_empty());
        for n in 1..=5 {
            ring.push(n);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(ring.back(), Some(&5));
    }
}
