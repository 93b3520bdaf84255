//! Which replica slots of an autoscaled fleet are off, starting (cold start), up (routable) or
//! draining, and for how long each held its GPUs. Every change is O(log slots); nothing here
//! scans the fleet.
//!
//! How Ray Serve changes a deployment's size (`python/ray/serve/_private/deployment_state.py`,
//! `DeploymentState._scale_deployment_replicas`): to add replicas it starts new ones, which
//! serve only once their constructor has returned (here: weights loaded and vLLM's engine
//! started); to remove replicas it stops those still STARTING first, then RUNNING ones. A
//! stopping replica is taken out of the routers' replica sets at once, so it gets no new
//! requests, and finishes the requests it holds (graceful shutdown) before its actor exits.
//! Ray picks which running replica to stop by how replicas are packed on nodes; a fleet without
//! nodes cannot reproduce that, so symbiote stops the newest one (last up, first stopped), and
//! the newest starting one first among those still starting.
//!
//! Slots are reused: a replica that left frees its slot for a later scale-up, which starts a
//! fresh engine there (cold prefix cache). There are `2 * max_replicas` slots, enough since at
//! most `max_replicas` are starting or up and each draining one was up before.

use std::collections::{BTreeSet, VecDeque};

use crate::sim::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    Off,
    Starting,
    Up,
    Draining,
}

/// How many replicas are in each live state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetCounts {
    pub up: u32,
    pub starting: u32,
    pub draining: u32,
}

/// What a resize asks the simulation to do to one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Start a replica in `slot`: a fresh engine, up after the cold start unless cancelled
    /// (`generation` tells a stale ready event from a live one).
    Start { slot: u32, generation: u32 },
    /// A starting replica was stopped before it came up: its GPUs are released now.
    Cancel { slot: u32 },
    /// An up replica stops taking requests and leaves once it holds none.
    Drain { slot: u32 },
}

/// The autoscaled fleet's replica slots.
#[derive(Debug)]
pub struct ScaledFleet {
    state: Vec<SlotState>,
    generation: Vec<u32>,
    free: BTreeSet<u32>,
    /// Starting slots in the order they were started: all share one cold start, so they come up
    /// in this order.
    starting: VecDeque<u32>,
    /// Up slots in the order they came up.
    up: Vec<u32>,
    draining: u32,
    held_since: Vec<SimTime>,
    /// GPU holding periods already over: `(from, to)`.
    pub held: Vec<(SimTime, SimTime)>,
    /// Resizes that raised or lowered the replica count, and replicas started and stopped.
    pub scale_ups: u64,
    pub scale_downs: u64,
    pub replicas_started: u64,
    pub replicas_stopped: u64,
    pub peak_up: u32,
}

impl ScaledFleet {
    /// `slots` slots of which the first `initial` are up at `SimTime::ZERO` (the deployment's
    /// initial replicas, taken as started before the run).
    pub fn new(slots: u32, initial: u32) -> ScaledFleet {
        assert!(initial <= slots && initial >= 1, "validation keeps 1 <= initial_replicas <= slots");
        let mut state = vec![SlotState::Off; slots as usize];
        state[..initial as usize].fill(SlotState::Up);
        ScaledFleet {
            state,
            generation: vec![0; slots as usize],
            free: (initial..slots).collect(),
            starting: VecDeque::new(),
            up: (0..initial).collect(),
            draining: 0,
            held_since: vec![SimTime::ZERO; slots as usize],
            held: Vec::new(),
            scale_ups: 0,
            scale_downs: 0,
            replicas_started: 0,
            replicas_stopped: 0,
            peak_up: initial,
        }
    }

    pub fn state(&self, slot: usize) -> SlotState {
        self.state[slot]
    }

    pub fn counts(&self) -> FleetCounts {
        FleetCounts { up: self.up.len() as u32, starting: self.starting.len() as u32, draining: self.draining }
    }

    /// Replicas the deployment counts toward its target: up and starting.
    pub fn live(&self) -> u32 {
        (self.up.len() + self.starting.len()) as u32
    }

    /// Moves the fleet toward `target` live replicas at `now`; returns what changed.
    pub fn scale_to(&mut self, target: u32, now: SimTime) -> Vec<Change> {
        let live = self.live();
        let mut changes = Vec::new();
        if target > live {
            self.scale_ups += 1;
            for _ in live..target {
                let slot = self.free.pop_first().expect("2 * max_replicas slots: one is free");
                let i = slot as usize;
                self.state[i] = SlotState::Starting;
                self.generation[i] += 1;
                self.held_since[i] = now;
                self.starting.push_back(slot);
                self.replicas_started += 1;
                changes.push(Change::Start { slot, generation: self.generation[i] });
            }
        } else if target < live {
            self.scale_downs += 1;
            for _ in target..live {
                self.replicas_stopped += 1;
                if let Some(slot) = self.starting.pop_back() {
                    self.release(slot as usize, now);
                    changes.push(Change::Cancel { slot });
                } else {
                    let slot = self.up.pop().expect("live replicas are starting or up");
                    self.state[slot as usize] = SlotState::Draining;
                    self.draining += 1;
                    changes.push(Change::Drain { slot });
                }
            }
        }
        changes
    }

    /// The cold start of `slot` ended: true if it is the live start (not a cancelled one), in
    /// which case the replica is now up.
    pub fn on_ready(&mut self, slot: u32, generation: u32) -> bool {
        let i = slot as usize;
        if self.state[i] != SlotState::Starting || self.generation[i] != generation {
            return false;
        }
        let first = self.starting.pop_front();
        assert_eq!(first, Some(slot), "replicas sharing one cold start come up in start order");
        self.state[i] = SlotState::Up;
        self.up.push(slot);
        self.peak_up = self.peak_up.max(self.up.len() as u32);
        true
    }

    /// A draining replica holds no request any more: it leaves and frees its GPUs.
    pub fn leave(&mut self, slot: usize, now: SimTime) {
        assert_eq!(self.state[slot], SlotState::Draining, "only a draining replica leaves");
        self.draining -= 1;
        self.release(slot, now);
    }

    fn release(&mut self, slot: usize, now: SimTime) {
        self.state[slot] = SlotState::Off;
        self.held.push((self.held_since[slot], now));
        self.free.insert(slot as u32);
    }

    /// Every holding period, those still open closed at `end`.
    pub fn held_periods(&self, end: SimTime) -> Vec<(SimTime, SimTime)> {
        let open =
            (0..self.state.len()).filter(|&i| self.state[i] != SlotState::Off).map(|i| (self.held_since[i], end));
        self.held.iter().copied().chain(open).collect()
    }
}

/// Replica-seconds held within `[0, end]`: the sum of each period's part before `end`.
pub fn held_ns(periods: &[(SimTime, SimTime)], end: SimTime) -> u64 {
    periods.iter().map(|&(from, to)| to.min(end).0.saturating_sub(from.min(end).0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> SimTime {
        SimTime(x * 1_000_000_000)
    }

    #[test]
    fn starting_replicas_are_stopped_before_running_ones_and_the_newest_first() {
        let mut f = ScaledFleet::new(8, 2);
        assert_eq!(
            f.scale_to(4, s(10)),
            vec![Change::Start { slot: 2, generation: 1 }, Change::Start { slot: 3, generation: 1 }]
        );
        assert_eq!(f.counts(), FleetCounts { up: 2, starting: 2, draining: 0 });
        assert!(f.on_ready(2, 1));
        // Down to 2: slot 3 (still starting) is cancelled, then slot 2 (the newest up) drains.
        assert_eq!(f.scale_to(2, s(20)), vec![Change::Cancel { slot: 3 }, Change::Drain { slot: 2 }]);
        assert_eq!(f.counts(), FleetCounts { up: 2, starting: 0, draining: 1 });
        // The cancelled start's ready event is stale.
        assert!(!f.on_ready(3, 1));
        f.leave(2, s(25));
        assert_eq!(f.peak_up, 3);
        // The freed slots are reused, lowest first, with a new generation.
        assert_eq!(f.scale_to(3, s(30)), vec![Change::Start { slot: 2, generation: 2 }]);
    }

    #[test]
    fn gpu_time_of_a_hand_made_timeline() {
        // Two replicas up from 0; a third started at 10 s (held from the decision, cold start
        // included) drains and leaves at 70 s; a fourth started at 20 s is cancelled at 25 s.
        // The run ends at 100 s: 2 * 100 + (70 - 10) + (25 - 20) = 265 replica-seconds.
        let mut f = ScaledFleet::new(8, 2);
        f.scale_to(3, s(10));
        assert!(f.on_ready(2, 1));
        f.scale_to(4, s(20));
        f.scale_to(3, s(25));
        f.scale_to(2, s(40));
        f.leave(2, s(70));
        let periods = f.held_periods(s(100));
        assert_eq!(held_ns(&periods, s(100)), 265 * 1_000_000_000);
        // Counted only up to an earlier end (the last request's finish): at 50 s,
        // 2 * 50 + (50 - 10) + 5 = 145.
        assert_eq!(held_ns(&periods, s(50)), 145 * 1_000_000_000);
        assert_eq!((f.scale_ups, f.scale_downs, f.replicas_started, f.replicas_stopped), (2, 2, 2, 2));
    }
}
