//! The one queue of status pulls: first come, first served, the pulls a person asked for (a
//! refresh, an upload's) first, then those a webhook prompted, then background and sweep
//! polls; at most one pull per customer queued or in flight, a newer reason joining the one
//! already there; and at most `limit` in flight. While polling is paused only what a person
//! asked for starts. What waits is counted as queued, what runs as in flight, so the header
//! and the NDJSON lines can tell them apart.

use std::collections::{HashMap, HashSet, VecDeque};

use uuid::Uuid;

/// Who waits for a pull, in the order they are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) enum Priority {
    /// The schedule, or a sweep.
    #[default]
    Background,
    /// A webhook said something changed.
    Webhook,
    /// A person asked (a refresh, an upload): goes even while polling is paused.
    User,
}

/// Why a customer is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pull {
    pub priority: Priority,
    /// The customer's body is fetched too (unknown to the engine, or its profile changed).
    pub fetch_customer: bool,
    /// The sweep (its number) this pull is counted for.
    pub sweep: Option<u32>,
    /// The schedule asked for it (the customer's poll fell due): a failed sweep that joined it
    /// does not take it away.
    pub scheduled: bool,
}

impl Pull {
    pub const USER: Pull = Pull::of(Priority::User);
    pub const WEBHOOK: Pull = Pull::of(Priority::Webhook);
    pub const BACKGROUND: Pull = Pull::of(Priority::Background);
    pub const SCHEDULED: Pull = Pull {
        scheduled: true,
        ..Pull::BACKGROUND
    };

    const fn of(priority: Priority) -> Pull {
        Pull {
            priority,
            fetch_customer: false,
            sweep: None,
            scheduled: false,
        }
    }

    /// One pull serving both reasons (`newer`'s sweep, if any: sweeps follow each other, and
    /// the one running is the one that counts).
    fn join(self, newer: Pull) -> Pull {
        Pull {
            priority: self.priority.max(newer.priority),
            fetch_customer: self.fetch_customer || newer.fetch_customer,
            sweep: newer.sweep.or(self.sweep),
            scheduled: self.scheduled || newer.scheduled,
        }
    }
}

/// What became of an ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asked {
    /// Queued now.
    Queued,
    /// Joined the pull already queued.
    Joined,
    /// A pull is out: another follows its answer (the answer may predate what prompted this).
    After,
    /// A pull is out, or queued for the same sweep, and its answer serves this ask too (a
    /// sweep's or the background's): a sweep counts it as done now.
    Served,
}

#[derive(Debug)]
pub(super) struct Pulls {
    /// One queue per priority, lowest first, of (customer, generation).
    queues: [VecDeque<(Uuid, u64)>; 3],
    /// Every queued customer, why, and the generation of its live queue entry: a customer
    /// moved up, or started and queued again, leaves an older entry behind, skipped when
    /// reached, so nobody overtakes those queued before them.
    queued: HashMap<Uuid, (Pull, u64)>,
    generation: u64,
    in_flight: HashSet<Uuid>,
    /// Pulls asked for while one was out, started once it returns.
    after: HashMap<Uuid, Pull>,
    limit: usize,
}

impl Pulls {
    pub fn new(limit: usize) -> Pulls {
        Pulls {
            queues: Default::default(),
            queued: HashMap::new(),
            generation: 0,
            in_flight: HashSet::new(),
            after: HashMap::new(),
            limit: limit.max(1),
        }
    }

    /// Asks for a pull of `id`.
    pub fn ask(&mut self, id: Uuid, pull: Pull) -> Asked {
        if self.in_flight.contains(&id) {
            if pull.priority == Priority::Background {
                return Asked::Served;
            }
            let after = self.after.entry(id).or_default();
            *after = after.join(pull);
            return Asked::After;
        }
        self.generation += 1;
        let generation = self.generation;
        match self.queued.get_mut(&id) {
            Some((queued, live)) => {
                let counted = pull.sweep.is_some() && queued.sweep == pull.sweep;
                let moves_up = pull.priority > queued.priority;
                *queued = queued.join(pull);
                if moves_up {
                    *live = generation;
                    self.queues[pull.priority as usize].push_back((id, generation));
                }
                if counted { Asked::Served } else { Asked::Joined }
            }
            None => {
                self.queued.insert(id, (pull, generation));
                self.queues[pull.priority as usize].push_back((id, generation));
                Asked::Queued
            }
        }
    }

    /// The next pull to start, if one waits and fewer than `limit` are out; while `paused`,
    /// only what a person asked for.
    pub fn start_next(&mut self, paused: bool) -> Option<(Uuid, Pull)> {
        if self.in_flight.len() >= self.limit {
            return None;
        }
        let lowest = if paused {
            Priority::User
        } else {
            Priority::Background
        };
        for priority in [Priority::User, Priority::Webhook, Priority::Background] {
            if priority < lowest {
                break;
            }
            while let Some((id, generation)) = self.queues[priority as usize].pop_front() {
                if let Some((pull, _)) = self.queued.get(&id).copied().filter(|(_, g)| *g == generation) {
                    return Some(self.start(id, pull));
                }
            }
        }
        None
    }

    fn start(&mut self, id: Uuid, pull: Pull) -> (Uuid, Pull) {
        self.queued.remove(&id);
        self.in_flight.insert(id);
        (id, pull)
    }

    /// A pull of `id` came back; returns the pull asked for meanwhile, if any, which the
    /// caller asks for again (it goes to the back of its queue, as any newer ask would).
    pub fn returned(&mut self, id: Uuid) -> Option<Pull> {
        self.in_flight.remove(&id);
        self.after.remove(&id)
    }

    /// Drops the pulls queued for sweep `number` alone (the sweep failed; each customer keeps
    /// its own schedule). Returns how many.
    pub fn drop_sweep(&mut self, number: u32) -> usize {
        let before = self.queued.len();
        self.queued.retain(|_, (pull, _)| {
            pull.priority != Priority::Background || pull.scheduled || pull.sweep != Some(number)
        });
        let dropped = before - self.queued.len();
        if dropped > 0 {
            let queued = &self.queued;
            self.queues[Priority::Background as usize].retain(|(id, _)| queued.contains_key(id));
        }
        dropped
    }

    pub fn is_busy(&self, id: Uuid) -> bool {
        self.queued.contains_key(&id) || self.in_flight.contains(&id)
    }

    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    fn drain(pulls: &mut Pulls) -> Vec<Uuid> {
        let mut started = Vec::new();
        while let Some((id, _)) = pulls.start_next(false) {
            started.push(id);
            pulls.returned(id);
        }
        started
    }

    #[test]
    fn first_come_first_served_a_persons_first_then_webhooks_then_the_background() {
        let mut pulls = Pulls::new(8);
        let [a, b, c, d, e] = ids(5).try_into().unwrap();
        pulls.ask(a, Pull::BACKGROUND);
        pulls.ask(b, Pull::WEBHOOK);
        pulls.ask(c, Pull::BACKGROUND);
        pulls.ask(d, Pull::WEBHOOK);
        pulls.ask(e, Pull::USER);
        assert_eq!(drain(&mut pulls), [e, b, d, a, c]);
    }

    #[test]
    fn a_newer_reason_joins_the_queued_pull_and_can_move_it_up() {
        let mut pulls = Pulls::new(8);
        let [a, b, c] = ids(3).try_into().unwrap();
        assert_eq!(pulls.ask(a, Pull::BACKGROUND), Asked::Queued);
        assert_eq!(pulls.ask(b, Pull::WEBHOOK), Asked::Queued);
        let profile = Pull {
            fetch_customer: true,
            ..Pull::WEBHOOK
        };
        assert_eq!(pulls.ask(a, profile), Asked::Joined);
        assert_eq!(pulls.ask(c, Pull::BACKGROUND), Asked::Queued);
        assert_eq!(pulls.queued(), 3);
        assert_eq!(pulls.start_next(false), Some((b, Pull::WEBHOOK)));
        let (id, pull) = pulls.start_next(false).unwrap();
        assert_eq!(id, a);
        assert!(pull.priority == Priority::Webhook && pull.fetch_customer);
        assert_eq!(pulls.start_next(false).map(|(id, _)| id), Some(c));
        assert_eq!(
            pulls.start_next(false),
            None,
            "a's background entry is stale, not a second pull"
        );
    }

    #[test]
    fn a_webhooks_ask_while_out_follows_the_answer_and_a_background_one_is_served_by_it() {
        let mut pulls = Pulls::new(8);
        let id = Uuid::from_u128(1);
        pulls.ask(id, Pull::BACKGROUND);
        pulls.start_next(false).unwrap();
        assert_eq!(pulls.ask(id, Pull::BACKGROUND), Asked::Served);
        assert_eq!(pulls.ask(id, Pull::WEBHOOK), Asked::After);
        assert_eq!(pulls.ask(id, Pull::WEBHOOK), Asked::After);
        assert!(pulls.is_busy(id));
        assert_eq!(
            pulls.returned(id),
            Some(Pull::WEBHOOK),
            "one more pull, however many asks"
        );
        assert_eq!(pulls.returned(id), None);
        assert!(!pulls.is_busy(id));
    }

    #[test]
    fn at_most_limit_in_flight_and_only_a_persons_asks_while_paused() {
        let mut pulls = Pulls::new(2);
        let all = ids(5);
        for id in &all[..3] {
            pulls.ask(*id, Pull::BACKGROUND);
        }
        pulls.ask(all[3], Pull::WEBHOOK);
        pulls.ask(all[4], Pull::USER);
        assert_eq!(pulls.start_next(true).map(|(id, _)| id), Some(all[4]));
        assert_eq!(
            pulls.start_next(true),
            None,
            "paused: webhooks and background wait"
        );
        assert_eq!(pulls.start_next(false).map(|(id, _)| id), Some(all[3]));
        assert_eq!(pulls.start_next(false), None, "two out");
        assert_eq!((pulls.queued(), pulls.in_flight()), (3, 2));
        pulls.returned(all[3]);
        assert_eq!(pulls.start_next(false).map(|(id, _)| id), Some(all[0]));
    }

    #[test]
    fn a_failed_sweeps_own_pulls_are_dropped_and_the_others_kept() {
        let mut pulls = Pulls::new(8);
        let [a, b, c, d] = ids(4).try_into().unwrap();
        let sweep = Pull {
            sweep: Some(7),
            ..Pull::BACKGROUND
        };
        pulls.ask(a, sweep);
        pulls.ask(b, sweep);
        pulls.ask(b, Pull::WEBHOOK);
        pulls.ask(c, Pull::BACKGROUND);
        pulls.ask(d, Pull::SCHEDULED);
        pulls.ask(d, sweep);
        assert_eq!(pulls.drop_sweep(7), 1);
        assert_eq!(
            drain(&mut pulls),
            [b, c, d],
            "d fell due before the sweep joined it"
        );
    }

    #[test]
    fn a_customer_listed_twice_by_one_sweep_is_counted_once_per_ask() {
        let mut pulls = Pulls::new(8);
        let id = Uuid::from_u128(1);
        let sweep = |n| Pull {
            sweep: Some(n),
            ..Pull::BACKGROUND
        };
        assert_eq!(pulls.ask(id, sweep(3)), Asked::Queued);
        // The second listing of the same sweep: served by the queued pull, counted now.
        assert_eq!(pulls.ask(id, sweep(3)), Asked::Served);
        // The next sweep's ask joins it and takes it over: counted when it returns.
        assert_eq!(pulls.ask(id, sweep(4)), Asked::Joined);
        assert_eq!(pulls.start_next(false).map(|(_, p)| p.sweep), Some(Some(4)));
    }

    #[test]
    fn an_old_queue_entry_never_lets_a_customer_overtake() {
        let mut pulls = Pulls::new(1);
        let [a, b] = ids(2).try_into().unwrap();
        pulls.ask(a, Pull::BACKGROUND);
        pulls.ask(a, Pull::WEBHOOK); // moves up, leaving its background entry behind
        pulls.ask(b, Pull::BACKGROUND);
        assert_eq!(pulls.start_next(false).map(|(id, _)| id), Some(a));
        pulls.returned(a);
        pulls.ask(a, Pull::BACKGROUND); // queued again, behind b
        assert_eq!(drain(&mut pulls), [b, a]);
    }
}
