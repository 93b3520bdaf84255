//! vLLM's `max_concurrent_requests` (the most completed requests whose `[arrival, finish)`
//! intervals overlap at one time, an end at t before a start at t), swept as the run goes so
//! that memory follows the requests in flight, not the requests seen.
//!
//! Why a sweep can run ahead of the end: every request enters at its arrival time, which is
//! the simulated time then (`workload` stamps arrivals with `now`), and finishes at a later
//! simulated time. So once every request that entered before time t has ended, nothing still
//! to come can start or end before t, and the sweep may pass t. The answer is the same
//! number as a sort of every interval at the end (a test holds it).

use std::collections::VecDeque;

/// Requests that entered at one arrival time.
#[derive(Clone, Copy, Debug)]
struct Arrivals {
    time: u64,
    /// Entered and not ended yet.
    live: u32,
    /// Completed: each one a start in the sweep.
    starts: u32,
}

#[derive(Debug, Default)]
pub struct PeakConcurrency {
    /// Arrival times not swept yet, increasing.
    arrivals: VecDeque<Arrivals>,
    /// Finish times of completed requests not swept yet, non-decreasing.
    ends: VecDeque<u64>,
    /// No event before this time can still come: the latest arrival entered (finishes are
    /// later still, but hand-built metrics record them without entering).
    now: u64,
    running: i64,
    peak: i64,
}

impl PeakConcurrency {
    /// A request entered (was realized) at `arrival`; arrivals come in time order.
    pub fn enter(&mut self, arrival: u64) {
        debug_assert!(arrival >= self.now, "an arrival at {arrival} after time {}", self.now);
        self.now = self.now.max(arrival);
        match self.arrivals.back_mut() {
            Some(last) if last.time == arrival => last.live += 1,
            _ => self.arrivals.push_back(Arrivals { time: arrival, live: 1, starts: 0 }),
        }
    }

    /// A request that entered at `arrival` ended without completing (refused).
    pub fn abandon(&mut self, arrival: u64) {
        if let Some(i) = self.find(arrival) {
            let entry = &mut self.arrivals[i];
            entry.live = entry.live.saturating_sub(1);
        }
        self.sweep();
    }

    /// A request that arrived at `arrival` completed at `finish`.
    pub fn complete(&mut self, arrival: u64, finish: u64) {
        match self.find(arrival) {
            Some(i) => {
                let entry = &mut self.arrivals[i];
                entry.live = entry.live.saturating_sub(1);
                entry.starts += 1;
            }
            // A request recorded without entering (unit tests build metrics by hand): `now` only
            // follows entries, so nothing at or after its arrival was swept and it takes its place.
            None => {
                let at = self.arrivals.partition_point(|a| a.time < arrival);
                self.arrivals.insert(at, Arrivals { time: arrival, live: 0, starts: 1 });
            }
        }
        debug_assert!(self.ends.back().is_none_or(|&last| finish >= last), "finishes out of order");
        self.ends.push_back(finish);
        self.sweep();
    }

    fn find(&self, arrival: u64) -> Option<usize> {
        self.arrivals.binary_search_by_key(&arrival, |a| a.time).ok()
    }

    /// Sweeps every event that nothing still to come can precede.
    fn sweep(&mut self) {
        while let Some(&front) = self.arrivals.front() {
            if front.live > 0 || front.time >= self.now {
                break;
            }
            while self.ends.front().is_some_and(|&end| end <= front.time) {
                self.ends.pop_front();
                self.running -= 1;
            }
            self.running += front.starts as i64;
            self.peak = self.peak.max(self.running);
            self.arrivals.pop_front();
        }
        let horizon = self.arrivals.front().map_or(self.now, |a| a.time.min(self.now));
        while self.ends.front().is_some_and(|&end| end < horizon) {
            self.ends.pop_front();
            self.running -= 1;
        }
    }

    /// The peak over the whole run: the events not swept yet are swept here, on copies.
    pub fn peak(&self) -> u64 {
        let (mut running, mut peak) = (self.running, self.peak);
        let mut ends = self.ends.iter().peekable();
        for a in &self.arrivals {
            while ends.next_if(|&&end| end <= a.time).is_some() {
                running -= 1;
            }
            running += a.starts as i64;
            peak = peak.max(running);
        }
        peak.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::peak_concurrency;
    use rand::{Rng, SeedableRng};

    /// Against the sort of every interval, on random runs where requests enter in time order,
    /// some are refused, some never finish, and many share arrival and finish times.
    #[test]
    fn the_running_sweep_equals_a_sort_of_every_interval() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        for _ in 0..200 {
            let mut sweep = PeakConcurrency::default();
            let mut intervals = Vec::new();
            // In flight: (arrival, finish or refusal time, completes).
            let mut in_flight: Vec<(u64, u64, bool)> = Vec::new();
            let mut now = 0u64;
            for _ in 0..rng.gen_range(1..300) {
                now += rng.gen_range(0..3);
                // End, in time order, what is due by now.
                in_flight.sort_by_key(|r| r.1);
                while in_flight.first().is_some_and(|r| r.1 <= now) {
                    let (arrival, end, completes) = in_flight.remove(0);
                    if completes {
                        sweep.complete(arrival, end);
                        intervals.push((arrival, end));
                    } else {
                        sweep.abandon(arrival);
                    }
                }
                for _ in 0..rng.gen_range(0..3) {
                    sweep.enter(now);
                    let refused = rng.gen_bool(0.1);
                    let end = if refused { now } else { now + rng.gen_range(1..20) };
                    in_flight.push((now, end, !refused));
                }
            }
            // What is still in flight never finishes.
            assert_eq!(sweep.peak(), peak_concurrency(intervals.iter().copied()));
            assert!(sweep.arrivals.len() <= in_flight.len() + 40, "the sweep holds more than what is in flight");
        }
    }

    /// Intervals recorded without entering (metrics built by hand) give the same answer.
    #[test]
    fn completions_without_entries_still_count() {
        let mut sweep = PeakConcurrency::default();
        for (a, f) in [(0, 3), (1, 5), (2, 7), (3, 9), (4, 16)] {
            sweep.complete(a, f);
        }
        assert_eq!(sweep.peak(), 4);
    }
}
