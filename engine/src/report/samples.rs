//! Per-request latency samples (TTFT, TPOT, E2EL, queueing): every sample kept, for numpy's
//! exact percentiles, up to a limit; beyond it the samples fold into an HdrHistogram, so a
//! run's memory follows the requests in flight instead of the requests it has seen.
//!
//! The limit is `Capture::exact_samples` (`--exact-percentiles N` on the command line, default
//! [`DEFAULT_EXACT_SAMPLES`]); below it nothing changes, so every committed scenario keeps its
//! exact percentiles and byte-identical reports. Beyond it:
//! - percentiles are the HdrHistogram's value at the sample's nearest rank, 3 significant
//!   digits: within 0.1% of that sample ([`STREAMING_METHOD`]), instead of numpy's linear
//!   interpolation between the two samples around the rank;
//! - mean and standard deviation are exact up to floating-point rounding (Welford's running
//!   update, in arrival order of the samples, over the same millisecond values).

use hdrhistogram::Histogram;

/// Samples kept whole per metric before the histogram takes over: 8 bytes each, so about
/// 32 MB for the four per-request metrics of a million-request run, and every committed
/// scenario (the largest has a million requests) stays exact.
pub const DEFAULT_EXACT_SAMPLES: u64 = 1_000_000;

/// report.json's `percentile_method` for a metric that went beyond the limit in some run.
pub const STREAMING_METHOD: &str =
    "streaming beyond the exact-sample limit: hdrhistogram, 3 significant digits, nearest rank (relative error <= 0.1%)";

/// One metric's samples, in nanoseconds.
#[derive(Debug)]
pub struct Samples {
    /// Every sample while exact; emptied when the histogram takes over.
    exact: Vec<f64>,
    limit: Option<u64>,
    streaming: Option<Streaming>,
}

#[derive(Debug)]
struct Streaming {
    histogram: Histogram<u64>,
    count: u64,
    /// Welford's running mean and sum of squared deviations, in milliseconds.
    mean_ms: f64,
    m2: f64,
}

impl Streaming {
    fn new() -> Streaming {
        // 1 ns .. 1 hour at 3 significant digits, growing beyond an hour rather than clamping.
        let mut histogram = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");
        histogram.auto(true);
        Streaming { histogram, count: 0, mean_ms: 0.0, m2: 0.0 }
    }

    fn push(&mut self, ns: f64) {
        // The histogram grows to any u64 value, so this fails only if it cannot allocate.
        self.histogram.record((ns.round() as u64).max(1)).expect("histogram grows to any sample");
        self.count += 1;
        let ms = ns / 1e6;
        let delta = ms - self.mean_ms;
        self.mean_ms += delta / self.count as f64;
        self.m2 += delta * (ms - self.mean_ms);
    }
}

impl Samples {
    /// Samples kept whole up to `limit` (`None`: always).
    pub fn new(limit: Option<u64>) -> Samples {
        Samples { exact: Vec::new(), limit, streaming: None }
    }

    pub fn push(&mut self, ns: f64) {
        if let Some(streaming) = &mut self.streaming {
            streaming.push(ns);
            return;
        }
        if self.limit.is_some_and(|limit| self.exact.len() as u64 >= limit) {
            let mut streaming = Streaming::new();
            for &x in &self.exact {
                streaming.push(x);
            }
            streaming.push(ns);
            self.exact = Vec::new();
            self.streaming = Some(streaming);
            return;
        }
        self.exact.push(ns);
    }

    pub fn len(&self) -> u64 {
        self.streaming.as_ref().map_or(self.exact.len() as u64, |s| s.count)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every sample, in the order recorded, while they are all kept.
    pub fn exact(&self) -> Option<&[f64]> {
        self.streaming.is_none().then_some(&self.exact[..])
    }

    /// Whether the samples went beyond the limit into the histogram.
    pub fn is_streaming(&self) -> bool {
        self.streaming.is_some()
    }

    /// The samples' summary in milliseconds: mean, numpy's std, and percentiles at `qs` (0..100),
    /// numpy's linear interpolation while exact. `None` without samples.
    pub fn summary_ms(&self, qs: &[f64]) -> Option<SummaryMs> {
        match &self.streaming {
            None => {
                let mut ms: Vec<f64> = self.exact.iter().map(|ns| ns / 1e6).collect();
                ms.sort_by(f64::total_cmp);
                let (mean, std) = super::summary::mean_std(&ms)?;
                let percentiles = qs.iter().map(|&q| super::summary::percentile_sorted(&ms, q)).collect();
                Some(SummaryMs { mean, std, percentiles })
            }
            Some(s) if s.count > 0 => {
                let std = (s.m2 / s.count as f64).sqrt();
                let percentiles =
                    qs.iter().map(|&q| Some(s.histogram.value_at_quantile(q / 100.0) as f64 / 1e6)).collect();
                Some(SummaryMs { mean: s.mean_ms, std, percentiles })
            }
            Some(_) => None,
        }
    }
}

/// What [`Samples::summary_ms`] gives: `percentiles` in the order asked.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryMs {
    pub mean: f64,
    pub std: f64,
    pub percentiles: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive_percentile(sorted: &[f64], q: f64) -> f64 {
        let h = (sorted.len() - 1) as f64 * q / 100.0;
        let below = sorted[h.floor() as usize];
        let above = sorted[(h.floor() as usize + 1).min(sorted.len() - 1)];
        below + (h - h.floor()) * (above - below)
    }

    /// Below the limit the samples stay whole and the summary is numpy's; at the limit they
    /// fold into the histogram and the memory goes.
    #[test]
    fn samples_stay_exact_up_to_the_limit() {
        let mut s = Samples::new(Some(4));
        for x in [4e6, 1e6, 3e6, 2e6] {
            s.push(x);
        }
        assert_eq!(s.exact(), Some(&[4e6, 1e6, 3e6, 2e6][..]));
        let summary = s.summary_ms(&[50.0, 90.0]).unwrap();
        // numpy: np.percentile([1, 2, 3, 4], [50, 90]) = 2.5, 3.7; std(ddof=0) = sqrt(1.25).
        assert_eq!(summary.percentiles[0], Some(2.5));
        assert!((summary.percentiles[1].unwrap() - 3.7).abs() < 1e-12);
        assert!((summary.std - 1.25f64.sqrt()).abs() < 1e-12);
        s.push(5e6);
        assert!(s.is_streaming() && s.exact().is_none());
        assert_eq!(s.len(), 5);
        assert!(Samples::new(Some(4)).summary_ms(&[50.0]).is_none());
    }

    /// Beyond the limit, against an oracle that kept every sample: each percentile within 0.1%
    /// of the sample at its nearest rank, and within 0.1% plus the gap to the neighbouring
    /// sample of numpy's interpolated value; mean and std within floating-point rounding.
    #[test]
    fn streaming_percentiles_are_within_their_stated_error_of_an_exact_oracle() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        let mut s = Samples::new(Some(1000));
        let mut all = Vec::new();
        for _ in 0..100_000 {
            // Log-uniform from 1 us to 100 s: six decades, as latencies spread.
            let ns = 10f64.powf(rng.gen_range(3.0..11.0)).round();
            s.push(ns);
            all.push(ns / 1e6);
        }
        assert!(s.is_streaming());
        all.sort_by(f64::total_cmp);
        let qs = [1.0, 25.0, 50.0, 90.0, 99.0, 99.9];
        let summary = s.summary_ms(&qs).unwrap();
        for (q, got) in qs.iter().zip(&summary.percentiles) {
            let got = got.unwrap();
            let rank = ((q / 100.0 * all.len() as f64).ceil() as usize).clamp(1, all.len());
            let nearest = all[rank - 1];
            assert!((got - nearest).abs() <= 1e-3 * nearest, "p{q}: {got} vs nearest-rank {nearest}");
            let numpy = naive_percentile(&all, *q);
            let gap = (all[rank.min(all.len() - 1)] - all[rank - 1]).abs() + (nearest - all[rank.saturating_sub(2)]);
            assert!((got - numpy).abs() <= 1e-3 * nearest + gap, "p{q}: {got} vs numpy {numpy}");
        }
        let (mean, std) = super::super::summary::mean_std(&all).unwrap();
        assert!((summary.mean - mean).abs() <= 1e-9 * mean, "{} vs {mean}", summary.mean);
        assert!((summary.std - std).abs() <= 1e-9 * std, "{} vs {std}", summary.std);
    }

    #[test]
    fn no_limit_keeps_everything() {
        let mut s = Samples::new(None);
        for i in 0..10_000 {
            s.push(i as f64);
        }
        assert_eq!(s.exact().map(<[f64]>::len), Some(10_000));
    }
}
