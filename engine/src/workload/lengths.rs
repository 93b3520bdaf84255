//! Token-length distributions, each clamped to `[min, max]` and to at least one token.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use serde::{Deserialize, Serialize};

use crate::sim::bounds::{MAX_CV, MAX_TOKENS};

/// A distribution of token counts. `min`/`max` clamp every draw (defaults 1 and
/// [`MAX_TOKENS`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum LengthDist {
    Fixed {
        value: u32,
    },
    Uniform {
        min: u32,
        max: u32,
    },
    Normal {
        mean: f64,
        std: f64,
        #[serde(default)]
        min: Option<u32>,
        #[serde(default)]
        max: Option<u32>,
    },
    /// Log-normal given by its mean and coefficient of variation (std / mean), the way traces
    /// are usually summarised.
    Lognormal {
        mean: f64,
        cv: f64,
        #[serde(default)]
        min: Option<u32>,
        #[serde(default)]
        max: Option<u32>,
    },
}

impl LengthDist {
    /// Problems with the parameters, as `(field, message)` pairs; empty when valid.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match *self {
            LengthDist::Fixed { value: 0 } => out.push(("value", "must be at least 1 token".into())),
            LengthDist::Uniform { min, max } if min == 0 || min > max => {
                out.push(("min", format!("need 1 <= min <= max, got min {min}, max {max}")))
            }
            LengthDist::Normal { mean, std, .. } if !(mean > 0.0 && std >= 0.0 && std.is_finite()) => {
                out.push(("mean", format!("need mean > 0 and std >= 0, got {mean}, {std}")))
            }
            LengthDist::Lognormal { mean, cv, .. } if !(mean > 0.0 && cv >= 0.0 && cv.is_finite()) => {
                out.push(("mean", format!("need mean > 0 and cv >= 0, got {mean}, {cv}")))
            }
            _ => {}
        }
        if let LengthDist::Normal { min, max, .. } | LengthDist::Lognormal { min, max, .. } = *self {
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo > hi {
                    out.push(("min", format!("min {lo} is above max {hi}")));
                }
            }
        }
        out.extend(self.bound_problems());
        out
    }

    /// Values beyond what a run can represent: lengths above [`MAX_TOKENS`], a spread whose
    /// log-normal parameters would overflow.
    fn bound_problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let too_long = |field: &'static str, value: f64, out: &mut Vec<(&'static str, String)>| {
            if value > MAX_TOKENS as f64 {
                out.push((field, format!("{value} tokens is above the limit of {MAX_TOKENS}; lower it")));
            }
        };
        match *self {
            LengthDist::Fixed { value } => too_long("value", value as f64, &mut out),
            LengthDist::Uniform { max, .. } => too_long("max", max as f64, &mut out),
            LengthDist::Normal { mean, std, min, max } => {
                too_long("mean", mean, &mut out);
                too_long("std", std, &mut out);
                too_long("min", min.unwrap_or(0) as f64, &mut out);
                too_long("max", max.unwrap_or(0) as f64, &mut out);
            }
            LengthDist::Lognormal { mean, cv, min, max } => {
                too_long("mean", mean, &mut out);
                too_long("min", min.unwrap_or(0) as f64, &mut out);
                too_long("max", max.unwrap_or(0) as f64, &mut out);
                if cv > MAX_CV {
                    out.push(("cv", format!("cv {cv} is above {MAX_CV}; lower it")));
                }
            }
        }
        out
    }

    /// The largest value a draw can take.
    pub fn upper_bound(&self) -> u32 {
        match *self {
            LengthDist::Fixed { value } => value,
            LengthDist::Uniform { max, .. } => max,
            LengthDist::Normal { max, .. } | LengthDist::Lognormal { max, .. } => max.unwrap_or(MAX_TOKENS),
        }
    }

    /// The distribution's mean before clamping.
    pub fn mean(&self) -> f64 {
        match *self {
            LengthDist::Fixed { value } => value as f64,
            LengthDist::Uniform { min, max } => (min as f64 + max as f64) / 2.0,
            LengthDist::Normal { mean, .. } | LengthDist::Lognormal { mean, .. } => mean,
        }
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> u32 {
        let (raw, min, max) = match *self {
            LengthDist::Fixed { value } => return value.max(1),
            LengthDist::Uniform { min, max } => return rng.gen_range(min..=max).max(1),
            LengthDist::Normal { mean, std, min, max } => {
                let value = if std == 0.0 { mean } else { Normal::new(mean, std).expect("validated").sample(rng) };
                (value, min, max)
            }
            LengthDist::Lognormal { mean, cv, min, max } => {
                // For X ~ LogNormal(mu, sigma): E[X] = exp(mu + sigma^2/2), CV^2 = exp(sigma^2) - 1.
                let sigma2 = (1.0 + cv * cv).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                let value = LogNormal::new(mu, sigma2.sqrt()).expect("validated").sample(rng);
                (value, min, max)
            }
        };
        let lo = min.unwrap_or(1).max(1) as f64;
        let hi = max.unwrap_or(MAX_TOKENS) as f64;
        raw.round().clamp(lo, hi) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Stream, Streams};

    fn moments(dist: &LengthDist, n: usize) -> (f64, f64) {
        let mut rng = Streams::new(7).get(Stream::PromptLength);
        let draws: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng) as f64).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn lognormal_matches_its_mean_and_cv() {
        let dist = LengthDist::Lognormal { mean: 500.0, cv: 0.8, min: None, max: None };
        let (mean, std) = moments(&dist, 200_000);
        assert!((mean / 500.0 - 1.0).abs() < 0.01, "mean {mean}");
        assert!((std / mean / 0.8 - 1.0).abs() < 0.03, "cv {}", std / mean);
    }

    #[test]
    fn normal_is_clamped() {
        let dist = LengthDist::Normal { mean: 100.0, std: 50.0, min: Some(80), max: Some(120) };
        let mut rng = Streams::new(1).get(Stream::PromptLength);
        for _ in 0..10_000 {
            let v = dist.sample(&mut rng);
            assert!((80..=120).contains(&v));
        }
    }

    #[test]
    fn uniform_covers_its_range_evenly() {
        let dist = LengthDist::Uniform { min: 1, max: 4 };
        let mut rng = Streams::new(3).get(Stream::OutputLength);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[dist.sample(&mut rng) as usize - 1] += 1;
        }
        // Chi-squared with 3 degrees of freedom; 16.27 is the 0.001 critical value.
        let chi2: f64 = counts.iter().map(|&c| (c as f64 - 10_000.0).powi(2) / 10_000.0).sum();
        assert!(chi2 < 16.27, "chi2 {chi2} counts {counts:?}");
    }

    #[test]
    fn bad_parameters_are_reported() {
        assert!(!LengthDist::Uniform { min: 5, max: 2 }.problems().is_empty());
        assert!(!LengthDist::Fixed { value: 0 }.problems().is_empty());
        assert!(LengthDist::Fixed { value: 3 }.problems().is_empty());
    }
}
