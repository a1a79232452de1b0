//! An engine's events as tests wait for them: every event seen is kept, so one that arrived
//! while waiting for another still counts, and each wait claims the event it matched.

use std::collections::HashSet;
use std::time::Duration;

use kycdash::sync::EngineEvent;
use tokio::sync::mpsc::Receiver;

pub struct EventLog {
    events: Receiver<EngineEvent>,
    /// Every event seen so far, in order.
    pub seen: Vec<EngineEvent>,
    /// Indices of `seen` a wait has already matched.
    claimed: HashSet<usize>,
}

impl EventLog {
    pub fn new(events: Receiver<EngineEvent>) -> EventLog {
        EventLog {
            events,
            seen: Vec::new(),
            claimed: HashSet::new(),
        }
    }

    /// Waits (at most 10 s) for an event no earlier wait matched.
    pub async fn wait_for(&mut self, what: &str, matches: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
        let earlier = (0..self.seen.len()).find(|i| !self.claimed.contains(i) && matches(&self.seen[*i]));
        if let Some(i) = earlier {
            self.claimed.insert(i);
            return self.seen[i].clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 10 s; saw {:#?}", self.seen))
                .unwrap_or_else(|| panic!("the engine stopped before {what}; saw {:#?}", self.seen));
            self.seen.push(event.clone());
            if matches(&event) {
                self.claimed.insert(self.seen.len() - 1);
                return event;
            }
        }
    }
}
