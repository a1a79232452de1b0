//! How far the engine's watchers are behind (SPEC §10, "bounded over time"): events handed
//! to the forwarder and not yet taken by the watcher. The events channel is bounded, so a
//! watcher that stops reading (a `watch` whose stdout is not read) holds them here; the engine
//! then starts no new pulls and reads no more listing pages, and past a harder limit the
//! receiver answers new webhooks 503 at once (the sender retries them later) rather than
//! queueing without bound or keeping the sender waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Events behind at which the engine stops starting work of its own, by default; new
/// webhooks are turned away (503, retried by the sender) at four times as many.
pub const SLOW_DOWN: usize = 8_192;

#[derive(Debug, Clone)]
pub struct Backlog {
    behind: Arc<AtomicUsize>,
    /// Woken when the backlog falls back under `slow_down`.
    drained: Arc<Notify>,
    slow_down: usize,
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog::new(SLOW_DOWN)
    }
}

impl Backlog {
    /// The engine slows down past `slow_down` events behind, and turns webhooks away past
    /// four times that.
    pub fn new(slow_down: usize) -> Backlog {
        Backlog {
            behind: Arc::default(),
            drained: Arc::default(),
            slow_down: slow_down.max(1),
        }
    }

    /// `n` more events wait for the watcher.
    pub fn add(&self, n: usize) {
        self.behind.fetch_add(n, Ordering::Relaxed);
    }

    /// One event reached the watcher.
    pub fn taken(&self) {
        let before = self.behind.fetch_sub(1, Ordering::Relaxed);
        if before == self.slow_down + 1 {
            self.drained.notify_one();
        }
    }

    pub fn behind(&self) -> usize {
        self.behind.load(Ordering::Relaxed)
    }

    /// Whether the engine should start nothing of its own until the watcher catches up.
    pub fn slow_down(&self) -> bool {
        self.behind() > self.slow_down
    }

    /// Whether new webhooks are turned away for now.
    pub fn turn_away(&self) -> bool {
        self.behind() > 4 * self.slow_down
    }

    /// Completes once the backlog falls back under its slow-down mark (or at once if it is).
    pub async fn drained(&self) {
        let notified = self.drained.notified();
        if !self.slow_down() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_backlog_slows_down_turns_away_and_says_when_it_drained() {
        const SLOW: usize = 100;
        const TURN_AWAY: usize = 4 * SLOW;
        let backlog = Backlog::new(SLOW);
        backlog.add(SLOW);
        assert!(!backlog.slow_down());
        backlog.add(1);
        assert!(backlog.slow_down() && !backlog.turn_away());
        backlog.add(TURN_AWAY);
        assert!(backlog.turn_away());
        let waiter = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        for _ in 0..TURN_AWAY + 1 {
            backlog.taken();
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken once under the limit")
            .unwrap();
        assert!(!backlog.slow_down());
    }
}
