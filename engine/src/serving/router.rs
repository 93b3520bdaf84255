//! The fleet's front end: which replica an arriving request goes to.
//!
//! Policies: `round_robin`; `least_outstanding` (fewest requests queued or running);
//! `least_kv` (lowest KV-cache usage); `prefix_affinity` (the replica holding the longest
//! cached prefix of the request, falling back to least_outstanding when no replica holds
//! any, or on ties); `random` (its own seeded stream). Ties go to the lowest index.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::fleet_index::FleetIndex;
use super::request::Request;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RouterPolicy {
    #[default]
    #[value(alias = "round_robin")]
    RoundRobin,
    #[value(alias = "least_outstanding")]
    LeastOutstanding,
    #[value(alias = "least_kv")]
    LeastKv,
    #[value(alias = "prefix_affinity")]
    PrefixAffinity,
    Random,
}

/// What the router sees of one replica.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplicaView {
    /// False while the replica is starting up.
    pub ready: bool,
    pub outstanding: usize,
    pub kv_usage: f64,
    /// Cached full blocks of the request's prompt (prefix_affinity only).
    pub cached_blocks: usize,
}

#[derive(Debug)]
pub struct Router {
    pub policy: RouterPolicy,
    next: usize,
    rng: ChaCha8Rng,
}

impl Router {
    pub fn new(policy: RouterPolicy, rng: ChaCha8Rng) -> Router {
        Router { policy, next: 0, rng }
    }

    /// Whether `choose` needs `cached_blocks` filled in.
    pub fn needs_prefix_lookup(&self) -> bool {
        self.policy == RouterPolicy::PrefixAffinity
    }

    /// Picks a ready replica; `None` when none is ready.
    pub fn choose(&mut self, replicas: &[ReplicaView]) -> Option<usize> {
        let ready = || (0..replicas.len()).filter(|&i| replicas[i].ready);
        let first = ready().next()?;
        let least_outstanding = |best_cached: Option<usize>| {
            ready()
                .filter(|&i| best_cached.is_none_or(|b| replicas[i].cached_blocks == b))
                .min_by_key(|&i| replicas[i].outstanding)
        };
        match self.policy {
            RouterPolicy::RoundRobin => {
                let pick = ready().find(|&i| i >= self.next).unwrap_or(first);
                self.next = pick + 1;
                Some(pick)
            }
            RouterPolicy::LeastOutstanding => least_outstanding(None),
            RouterPolicy::LeastKv => ready().min_by(|&a, &b| replicas[a].kv_usage.total_cmp(&replicas[b].kv_usage)),
            RouterPolicy::PrefixAffinity => {
                let best = ready().map(|i| replicas[i].cached_blocks).max();
                least_outstanding(best)
            }
            RouterPolicy::Random => {
                let k = self.rng.gen_range(0..ready().count());
                ready().nth(k)
            }
        }
    }
}

impl Router {
    /// The same choice as [`Router::choose`] over the fleet's available replicas (all of them
    /// but an autoscaled fleet's starting, draining and off ones), from the fleet index in
    /// O(log replicas) instead of a scan. Not for `prefix_affinity`, whose lookups ask every
    /// replica's cache.
    pub fn choose_indexed(&mut self, fleet: &FleetIndex) -> usize {
        assert!(fleet.available_count() > 0, "an autoscaled fleet keeps at least one replica up");
        match self.policy {
            RouterPolicy::RoundRobin => {
                let pick = fleet.next_available_from(self.next).unwrap_or_else(|| fleet.nth_available(0));
                self.next = pick + 1;
                pick
            }
            RouterPolicy::LeastOutstanding => fleet.least_outstanding(),
            RouterPolicy::LeastKv => fleet.least_kv(),
            RouterPolicy::Random => fleet.nth_available(self.rng.gen_range(0..fleet.available_count())),
            RouterPolicy::PrefixAffinity => unreachable!("prefix_affinity routes from replica views"),
        }
    }
}

/// The prompt's full-block hashes, for prefix lookups.
pub fn prompt_block_hashes(request: &mut Request, block_size: u32) -> &[u64] {
    let full = (request.prompt_tokens.saturating_sub(1) / block_size) * block_size;
    request.ensure_block_hashes(full, block_size);
    &request.kv.block_hashes[..(full / block_size) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Stream, Streams};

    fn view(outstanding: usize, kv_usage: f64, cached_blocks: usize) -> ReplicaView {
        ReplicaView { ready: true, outstanding, kv_usage, cached_blocks }
    }

    fn router(policy: RouterPolicy) -> Router {
        Router::new(policy, Streams::new(1).get(Stream::Router))
    }

    #[test]
    fn round_robin_cycles_and_skips_replicas_that_are_not_ready() {
        let mut r = router(RouterPolicy::RoundRobin);
        let mut fleet = vec![view(0, 0.0, 0); 3];
        let picks: Vec<usize> = (0..4).map(|_| r.choose(&fleet).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0]);
        fleet[2].ready = false;
        let picks: Vec<usize> = (0..3).map(|_| r.choose(&fleet).unwrap()).collect();
        assert_eq!(picks, vec![1, 0, 1]);
    }

    #[test]
    fn least_outstanding_picks_the_emptiest_and_breaks_ties_by_index() {
        let mut r = router(RouterPolicy::LeastOutstanding);
        assert_eq!(r.choose(&[view(3, 0.0, 0), view(1, 0.0, 0), view(1, 0.0, 0)]), Some(1));
    }

    #[test]
    fn least_kv_picks_the_lowest_usage() {
        let mut r = router(RouterPolicy::LeastKv);
        assert_eq!(r.choose(&[view(0, 0.5, 0), view(9, 0.2, 0), view(0, 0.3, 0)]), Some(1));
    }

    #[test]
    fn prefix_affinity_prefers_the_longest_cached_prefix_then_the_emptiest() {
        let mut r = router(RouterPolicy::PrefixAffinity);
        assert_eq!(r.choose(&[view(0, 0.0, 2), view(5, 0.0, 7), view(1, 0.0, 3)]), Some(1));
        // Nobody holds anything: least outstanding.
        assert_eq!(r.choose(&[view(4, 0.0, 0), view(2, 0.0, 0), view(3, 0.0, 0)]), Some(1));
        // A tie on the prefix: the emptier of the holders.
        assert_eq!(r.choose(&[view(4, 0.0, 5), view(0, 0.0, 1), view(3, 0.0, 5)]), Some(2));
    }

    #[test]
    fn random_covers_every_ready_replica_and_no_other() {
        let mut r = router(RouterPolicy::Random);
        let mut fleet = vec![view(0, 0.0, 0); 4];
        fleet[3].ready = false;
        let mut counts = [0; 4];
        for _ in 0..3000 {
            counts[r.choose(&fleet).unwrap()] += 1;
        }
        assert_eq!(counts[3], 0);
        assert!(counts[..3].iter().all(|&c| (900..1100).contains(&c)), "{counts:?}");
    }

    #[test]
    fn no_ready_replica_means_no_choice() {
        let mut r = router(RouterPolicy::LeastKv);
        let mut fleet = vec![view(0, 0.0, 0); 2];
        fleet.iter_mut().for_each(|v| v.ready = false);
        assert_eq!(r.choose(&fleet), None);
    }
}
