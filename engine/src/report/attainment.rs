//! SLO attainment counted while a run goes: how many requests (or inter-token gaps) broke
//! each latency target, and whether so many already have that the run can no longer meet it.
//!
//! A target "p99 TTFT <= 2 s" holds when at most `floor(n * (1 - 0.99))` of the `n` requests
//! are slower than 2 s (the nearest-rank reading of a percentile, the way SLO attainment is
//! counted). `n` is not known until the run ends, but an upper bound is (the planner counts
//! the workload's requests and tokens before it simulates), and the allowance only grows with
//! `n`; so once the violations exceed the allowance of the upper bound, no ending can meet the
//! target and the run may stop (`Outcome::SloBroken`). `symbiote plan` uses this to cut short
//! the simulations of configurations that fail, which are most of a search.
//!
//! A request that never completes (rejected, refused) counts as a violation of every
//! per-request target and as a bad request for the goodput floor.

use crate::sim::Nanos;

/// The latency a target bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SloMetric {
    Ttft,
    Tpot,
    Itl,
    E2el,
}

impl SloMetric {
    /// The metric's name in report keys (`p99_ttft_ms`).
    pub fn key(self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Tpot => "tpot",
            SloMetric::Itl => "itl",
            SloMetric::E2el => "e2el",
        }
    }
}

/// One target and the number of violations its run may have before it is broken for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchTarget {
    pub metric: SloMetric,
    /// A value above this violates the target.
    pub threshold: Nanos,
    /// Violations allowed over the whole run (from an upper bound on its sample count).
    pub allowed: u64,
}

/// What a run watches: latency targets, and optionally a goodput floor (requests within every
/// target), each with its allowance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSpec {
    pub targets: Vec<WatchTarget>,
    /// Requests allowed to miss at least one per-request target (goodput floor), if any.
    pub allowed_bad_requests: Option<u64>,
    /// Stop the run as soon as a target can no longer be met.
    pub stop_early: bool,
}

/// Running counts for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SloWatch {
    pub spec: WatchSpec,
    /// Violations so far, one count per target of `spec.targets`.
    pub violations: Vec<u64>,
    /// Requests that missed at least one per-request target or never completed.
    pub bad_requests: u64,
    /// Set once some count exceeds its allowance.
    pub broken: bool,
}

impl SloWatch {
    pub fn new(spec: &WatchSpec) -> SloWatch {
        SloWatch { violations: vec![0; spec.targets.len()], spec: spec.clone(), bad_requests: 0, broken: false }
    }

    /// A completed request's latencies (TPOT is `None` for a one-token output).
    pub fn on_request(&mut self, ttft: u64, tpot: Option<f64>, e2el: u64) {
        let mut bad = false;
        for (target, count) in self.spec.targets.iter().zip(&mut self.violations) {
            let over = match target.metric {
                SloMetric::Ttft => ttft > target.threshold.0,
                SloMetric::E2el => e2el > target.threshold.0,
                SloMetric::Tpot => tpot.is_some_and(|t| t > target.threshold.0 as f64),
                SloMetric::Itl => continue,
            };
            if over {
                *count += 1;
                bad = true;
                self.broken |= *count > target.allowed;
            }
        }
        self.count_bad(bad);
    }

    /// `count` inter-token gaps of `gap` each.
    pub fn on_itl(&mut self, gap: Nanos, count: u64) {
        for (target, violations) in self.spec.targets.iter().zip(&mut self.violations) {
            if target.metric == SloMetric::Itl && gap > target.threshold {
                *violations += count;
                self.broken |= *violations > target.allowed;
            }
        }
    }

    /// A request that will never complete: it misses every per-request target.
    pub fn on_failed_request(&mut self) {
        for (target, count) in self.spec.targets.iter().zip(&mut self.violations) {
            if target.metric != SloMetric::Itl {
                *count += 1;
                self.broken |= *count > target.allowed;
            }
        }
        self.count_bad(true);
    }

    fn count_bad(&mut self, bad: bool) {
        if bad {
            self.bad_requests += 1;
            self.broken |= self.spec.allowed_bad_requests.is_some_and(|allowed| self.bad_requests > allowed);
        }
    }

    /// Whether the run should stop now.
    pub fn should_stop(&self) -> bool {
        self.broken && self.spec.stop_early
    }
}

/// Violations a target at percentile `q` (0 to 100) allows among `n` samples: at most
/// `floor(n * (1 - q / 100))`, computed in integers so that p99 of 100 allows exactly 1.
pub fn allowed_violations(n: u64, q: f64) -> u64 {
    // q in hundredths of a percent: 99.9 -> 9990 of 10000.
    let q_units = (q * 100.0).round().clamp(0.0, 10_000.0) as u128;
    ((n as u128 * (10_000 - q_units)) / 10_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(metric: SloMetric, ms: u64, allowed: u64) -> WatchSpec {
        WatchSpec {
            targets: vec![WatchTarget { metric, threshold: Nanos(ms * 1_000_000), allowed }],
            allowed_bad_requests: None,
            stop_early: true,
        }
    }

    #[test]
    fn allowance_is_the_nearest_rank_count() {
        assert_eq!(allowed_violations(100, 99.0), 1);
        assert_eq!(allowed_violations(199, 99.0), 1);
        assert_eq!(allowed_violations(200, 99.0), 2);
        assert_eq!(allowed_violations(1000, 99.9), 1);
        assert_eq!(allowed_violations(10, 50.0), 5);
        assert_eq!(allowed_violations(7, 100.0), 0);
        // 0.07 is not exact in binary; the allowance still comes out right.
        assert_eq!(allowed_violations(10_000, 99.93), 7);
    }

    #[test]
    fn a_target_breaks_on_the_first_violation_beyond_its_allowance() {
        let mut watch = SloWatch::new(&spec(SloMetric::Ttft, 2000, 1));
        watch.on_request(1_000_000_000, None, 1_500_000_000);
        assert!(!watch.broken);
        watch.on_request(2_000_000_001, None, 3_000_000_000);
        assert!(!watch.broken, "one violation is allowed");
        assert_eq!(watch.violations, vec![1]);
        watch.on_request(2_500_000_000, None, 3_000_000_000);
        assert!(watch.should_stop());
    }

    #[test]
    fn itl_counts_every_gap_of_a_step() {
        let mut watch = SloWatch::new(&spec(SloMetric::Itl, 100, 10));
        watch.on_itl(Nanos(100_000_000), 50);
        assert_eq!(watch.violations, vec![0], "a gap equal to the threshold meets it");
        watch.on_itl(Nanos(100_000_001), 10);
        assert!(!watch.broken);
        watch.on_itl(Nanos(150_000_000), 1);
        assert!(watch.broken);
        assert_eq!(watch.violations, vec![11]);
    }

    #[test]
    fn a_failed_request_misses_request_targets_and_counts_as_bad() {
        let mut s = spec(SloMetric::E2el, 1000, 5);
        s.targets.push(WatchTarget { metric: SloMetric::Itl, threshold: Nanos(1), allowed: 0 });
        s.allowed_bad_requests = Some(0);
        let mut watch = SloWatch::new(&s);
        watch.on_failed_request();
        assert_eq!(watch.violations, vec![1, 0]);
        assert_eq!(watch.bad_requests, 1);
        assert!(watch.broken, "the goodput floor allowed no bad request");
    }

    #[test]
    fn tpot_is_not_judged_for_one_token_outputs() {
        let mut watch = SloWatch::new(&spec(SloMetric::Tpot, 10, 0));
        watch.on_request(u64::MAX / 2, None, u64::MAX / 2);
        assert!(!watch.broken);
        watch.on_request(1, Some(10_000_001.0), 2);
        assert!(watch.broken);
    }

    #[test]
    fn without_stop_early_a_broken_watch_only_counts() {
        let mut s = spec(SloMetric::Ttft, 1, 0);
        s.stop_early = false;
        let mut watch = SloWatch::new(&s);
        watch.on_request(5_000_000, None, 5_000_000);
        assert!(watch.broken && !watch.should_stop());
    }
}
