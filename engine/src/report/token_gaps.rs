//! Per-token gaps (ITL): every gap between consecutive tokens of a request, kept as
//! `(gap, count)` pairs so that percentiles are exact, up to a limit; beyond it the gaps fold
//! into an HdrHistogram, as the per-request latencies do (`report::samples`).
//!
//! A step records one value with a count: every request that also ran in the step before sees
//! the same gap. `vllm bench serve` pools every request's per-token gaps into one list and
//! takes `np.mean`, `np.std` and `np.percentile(itls, p)` over it (`calculate_metrics` in
//! `vllm/benchmarks/serve.py`, formerly `benchmarks/benchmark_serving.py`), numpy's default
//! linear interpolation. Over pairs that is the same computation on the expanded list: sort
//! the pairs by gap, find the two samples around the rank `q / 100 * (n - 1)` by cumulative
//! count, and interpolate between them.
//!
//! The limit is the run's `--exact-percentiles N`, counted in pairs kept (16 bytes each), not
//! in gaps: a pair holds every gap of one step's run of equal gaps, often hundreds, and what
//! the limit bounds is memory. Counted in gaps, a phase 1 run (8.3 million gaps) would lose its
//! exact percentiles at the default limit; it keeps about one pair per step. Beyond the limit:
//! percentiles at the nearest rank, 3 significant digits (within 0.1%,
//! [`super::samples::STREAMING_METHOD`]); the mean stays exact (an integer sum of
//! nanoseconds), the std is a weighted Welford update in milliseconds.

use hdrhistogram::Histogram;

use super::samples::SummaryMs;

/// Every per-token gap of a run, in nanoseconds.
#[derive(Debug)]
pub struct TokenGaps {
    /// `(gap ns, count)` as recorded while exact; emptied when the histogram takes over.
    pairs: Vec<(u64, u64)>,
    count: u64,
    sum_ns: u128,
    limit: Option<u64>,
    streaming: Option<Streaming>,
}

#[derive(Debug)]
struct Streaming {
    histogram: Histogram<u64>,
    /// Weighted Welford running mean and sum of squared deviations, in milliseconds.
    mean_ms: f64,
    m2: f64,
    weight: u64,
}

impl Streaming {
    fn new() -> Streaming {
        // 1 ns .. 1 hour at 3 significant digits, growing beyond an hour rather than clamping.
        let mut histogram = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");
        histogram.auto(true);
        Streaming { histogram, mean_ms: 0.0, m2: 0.0, weight: 0 }
    }

    fn push(&mut self, gap_ns: u64, count: u64) {
        // The histogram grows to any u64 value, so this fails only if it cannot allocate.
        self.histogram.record_n(gap_ns.max(1), count).expect("histogram grows to any gap");
        // West's weighted form of Welford's update: `count` equal samples at once.
        self.weight += count;
        let ms = gap_ns as f64 / 1e6;
        let delta = ms - self.mean_ms;
        self.mean_ms += delta * count as f64 / self.weight as f64;
        self.m2 += count as f64 * delta * (ms - self.mean_ms);
    }
}

impl TokenGaps {
    /// Gaps kept whole up to `limit` pairs (`None`: always).
    pub fn new(limit: Option<u64>) -> TokenGaps {
        TokenGaps { pairs: Vec::new(), count: 0, sum_ns: 0, limit, streaming: None }
    }

    /// Records `count` gaps of `gap_ns` each.
    pub fn push(&mut self, gap_ns: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.count += count;
        self.sum_ns += gap_ns as u128 * count as u128;
        if let Some(streaming) = &mut self.streaming {
            streaming.push(gap_ns, count);
            return;
        }
        if let Some(last) = self.pairs.last_mut().filter(|(gap, _)| *gap == gap_ns) {
            last.1 += count;
            return;
        }
        if self.limit.is_some_and(|limit| self.pairs.len() as u64 >= limit) {
            let mut streaming = Streaming::new();
            for &(gap, n) in &self.pairs {
                streaming.push(gap, n);
            }
            streaming.push(gap_ns, count);
            self.pairs = Vec::new();
            self.streaming = Some(streaming);
            return;
        }
        self.pairs.push((gap_ns, count));
    }

    /// How many gaps were recorded.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the gaps went beyond the limit into the histogram.
    pub fn is_streaming(&self) -> bool {
        self.streaming.is_some()
    }

    /// Mean, numpy's std (ddof 0) and percentiles at `qs` (0..100) in milliseconds; numpy's
    /// linear interpolation while exact. `None` without gaps.
    pub fn summary_ms(&self, qs: &[f64]) -> Option<SummaryMs> {
        if self.count == 0 {
            return None;
        }
        let mean = self.sum_ns as f64 / self.count as f64 / 1e6;
        match &self.streaming {
            None => {
                let mut sorted = self.pairs.clone();
                sorted.sort_unstable();
                let var = sorted.iter().map(|&(gap, n)| n as f64 * (gap as f64 / 1e6 - mean).powi(2)).sum::<f64>()
                    / self.count as f64;
                let percentiles = qs.iter().map(|&q| Some(percentile_pairs(&sorted, self.count, q))).collect();
                Some(SummaryMs { mean, std: var.sqrt(), percentiles })
            }
            Some(s) => {
                let percentiles =
                    qs.iter().map(|&q| Some(s.histogram.value_at_quantile(q / 100.0) as f64 / 1e6)).collect();
                Some(SummaryMs { mean, std: (s.m2 / s.weight as f64).sqrt(), percentiles })
            }
        }
    }
}

/// numpy `percentile(expanded, q)` (linear interpolation), in ms, over `(gap ns, count)` pairs
/// sorted by gap whose counts sum to `total` (> 0).
fn percentile_pairs(sorted: &[(u64, u64)], total: u64, q: f64) -> f64 {
    let rank = q / 100.0 * (total - 1) as f64;
    let (lo, hi) = (rank.floor() as u64, rank.ceil() as u64);
    let (below, above) = (nth(sorted, lo) as f64 / 1e6, nth(sorted, hi) as f64 / 1e6);
    below + (above - below) * (rank - lo as f64)
}

/// The `index`-th (0-based) gap of the expanded sorted list.
fn nth(sorted: &[(u64, u64)], index: u64) -> u64 {
    let mut seen = 0;
    for &(gap, n) in sorted {
        seen += n;
        if index < seen {
            return gap;
        }
    }
    sorted.last().expect("at least one pair").0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::{mean_std, percentile_sorted};
    use rand::{Rng, SeedableRng};

    /// The expanded list of every gap in ms, sorted: the oracle numpy would be given.
    fn expanded(pairs: &[(u64, u64)]) -> Vec<f64> {
        let mut all: Vec<f64> =
            pairs.iter().flat_map(|&(gap, n)| std::iter::repeat_n(gap as f64 / 1e6, n as usize)).collect();
        all.sort_by(f64::total_cmp);
        all
    }

    /// Hand-worked: gaps [10, 10, 10, 20, 40] ms. numpy: percentile([10,10,10,20,40], 50) = 10,
    /// 90 -> rank 3.6 -> 20 + 0.6 * 20 = 32, 75 -> rank 3 -> 20; mean 18, std sqrt(136) (ddof 0).
    #[test]
    fn pairs_give_numpys_percentiles_by_hand() {
        let mut g = TokenGaps::new(None);
        g.push(40_000_000, 1);
        g.push(10_000_000, 3);
        g.push(20_000_000, 1);
        let s = g.summary_ms(&[50.0, 75.0, 90.0, 100.0, 0.0]).unwrap();
        assert_eq!(s.percentiles, vec![Some(10.0), Some(20.0), Some(32.0), Some(40.0), Some(10.0)]);
        assert!((s.mean - 18.0).abs() < 1e-12);
        assert!((s.std - 136f64.sqrt()).abs() < 1e-12, "{}", s.std);
        assert!(TokenGaps::new(None).summary_ms(&[50.0]).is_none());
    }

    /// Random pairs against the expanded list through the per-request code's numpy percentile:
    /// the same numbers to the last bit for percentiles, within rounding for mean and std.
    #[test]
    fn pairs_equal_the_expanded_list() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        for _ in 0..50 {
            let mut g = TokenGaps::new(Some(1_000_000));
            let mut pairs = Vec::new();
            for _ in 0..rng.gen_range(1..200) {
                let pair = (rng.gen_range(1_000..50_000_000u64), rng.gen_range(1..64u64));
                g.push(pair.0, pair.1);
                pairs.push(pair);
            }
            let all = expanded(&pairs);
            let qs = [0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0];
            let s = g.summary_ms(&qs).unwrap();
            for (q, got) in qs.iter().zip(&s.percentiles) {
                assert_eq!(*got, percentile_sorted(&all, *q), "p{q}");
            }
            let (mean, std) = mean_std(&all).unwrap();
            assert!((s.mean - mean).abs() <= 1e-9 * mean);
            assert!((s.std - std).abs() <= 1e-9 * mean, "{} vs {std}", s.std);
            assert!(!g.is_streaming());
        }
    }

    /// Beyond the limit the pairs go, and the histogram's nearest-rank value is within 0.1% of
    /// the expanded list's nearest-rank sample; mean exact, std within rounding.
    #[test]
    fn beyond_the_limit_the_histogram_is_within_its_stated_error() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(61);
        let mut g = TokenGaps::new(Some(500));
        let mut pairs = Vec::new();
        for _ in 0..2_000 {
            let pair = ((10f64.powf(rng.gen_range(5.0..9.0))) as u64, rng.gen_range(1..32u64));
            g.push(pair.0, pair.1);
            pairs.push(pair);
        }
        assert!(g.is_streaming() && g.pairs.is_empty());
        let all = expanded(&pairs);
        assert_eq!(g.len(), all.len() as u64);
        let qs = [1.0, 50.0, 90.0, 99.0];
        let s = g.summary_ms(&qs).unwrap();
        for (q, got) in qs.iter().zip(&s.percentiles) {
            let rank = ((q / 100.0 * all.len() as f64).ceil() as usize).clamp(1, all.len());
            let nearest = all[rank - 1];
            assert!((got.unwrap() - nearest).abs() <= 1e-3 * nearest, "p{q}: {got:?} vs {nearest}");
        }
        let (mean, std) = mean_std(&all).unwrap();
        assert!((s.mean - mean).abs() <= 1e-9 * mean);
        assert!((s.std - std).abs() <= 1e-9 * std, "{} vs {std}", s.std);
    }

    /// The limit counts pairs kept, whatever their counts: `limit` pairs stay exact, one more
    /// streams; a gap equal to the last one joins its pair.
    #[test]
    fn the_limit_counts_pairs_not_gaps() {
        let mut g = TokenGaps::new(Some(2));
        g.push(5, 1_000_000);
        g.push(5, 7);
        g.push(6, 1);
        assert_eq!((g.pairs.clone(), g.len(), g.is_streaming()), (vec![(5, 1_000_007), (6, 1)], 1_000_008, false));
        g.push(7, 1);
        assert!(g.is_streaming() && g.pairs.is_empty());
        assert_eq!(g.len(), 1_000_009);
    }
}
