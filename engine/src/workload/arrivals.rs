//! Open-loop arrival processes: poisson, gamma (rate and cv) and constant gaps, driven by a
//! piecewise-constant rate profile (stages and multipliers: spikes, oscillation, ramps).
//!
//! Gaps are drawn with mean 1 in "operational time" and mapped to real time through the
//! cumulative rate, so a gamma process keeps its burstiness when the rate changes, and a rate
//! of zero simply pauses arrivals.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Gamma};
use serde::{Deserialize, Serialize};

use crate::sim::bounds::{MAX_CV, MAX_FACTOR, MAX_RATE, MAX_SECONDS, MIN_GAMMA_CV, MIN_RATE};
use crate::sim::SimTime;

/// How inter-arrival gaps are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessKind {
    #[default]
    Poisson,
    Gamma,
    Constant,
}

/// One load stage: `rate` requests per second for `duration_s` seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration_s: f64,
    pub rate: f64,
}

/// A rate multiplier over `[start_s, end_s)`: spikes, dips, steps of a ramp. Overlapping
/// multipliers multiply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Multiplier {
    pub start_s: f64,
    pub end_s: f64,
    pub factor: f64,
}

/// The arrival part of a scenario, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    #[serde(default)]
    pub process: ProcessKind,
    /// Requests per second, when `stages` is empty.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Coefficient of variation of the gaps, for `gamma` (1 is poisson; above 1 is bursty).
    #[serde(default)]
    pub cv: Option<f64>,
    /// Consecutive load stages; the arrivals end with the last stage.
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub multipliers: Vec<Multiplier>,
}

impl ArrivalSpec {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match (self.rate, self.stages.is_empty()) {
            (None, true) => out.push(("rate".into(), "set `rate` (requests/s) or `stages`".into())),
            (Some(_), false) => out.push(("rate".into(), "give `rate` or `stages`, not both".into())),
            (Some(rate), true) if !(rate > 0.0 && rate.is_finite()) => {
                out.push(("rate".into(), format!("rate must be a positive number of requests/s, got {rate}")))
            }
            _ => {}
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if !(stage.rate >= 0.0 && stage.rate.is_finite()) {
                out.push((format!("stages[{i}].rate"), format!("must be >= 0, got {}", stage.rate)));
            }
            if !(stage.duration_s > 0.0 && stage.duration_s.is_finite()) {
                out.push((format!("stages[{i}].duration_s"), format!("must be > 0, got {}", stage.duration_s)));
            }
        }
        for (i, m) in self.multipliers.iter().enumerate() {
            if !(m.factor >= 0.0 && m.factor.is_finite()) {
                out.push((format!("multipliers[{i}].factor"), format!("must be >= 0, got {}", m.factor)));
            }
            if !(m.start_s >= 0.0 && m.end_s > m.start_s && m.end_s.is_finite()) {
                out.push((
                    format!("multipliers[{i}]"),
                    format!("need 0 <= start_s < end_s, got {} .. {}", m.start_s, m.end_s),
                ));
            }
        }
        out.extend(self.rate_bound_problems());
        match (self.process, self.cv) {
            (ProcessKind::Gamma, None) => out.push(("cv".into(), "a gamma process needs `cv` (1.0 is poisson)".into())),
            (ProcessKind::Gamma, Some(cv)) if !(MIN_GAMMA_CV..=MAX_CV).contains(&cv) => out.push((
                "cv".into(),
                format!("cv must be within {MIN_GAMMA_CV:e}..{MAX_CV}, got {cv} (for regular gaps use process \"constant\")"),
            )),
            (ProcessKind::Poisson | ProcessKind::Constant, Some(_)) => out.push((
                "cv".into(),
                "`cv` only applies to process \"gamma\"; remove it or set process to gamma".into(),
            )),
            _ => {}
        }
        out
    }

    /// Rates a run cannot represent: a gap shorter than 100 ns floods the clock with arrivals,
    /// one of days on end runs the clock past its horizon.
    fn rate_bound_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let finite = |v: f64| v.is_finite() && v >= 0.0;
        if let Some(rate) = self.rate.filter(|&r| r > 0.0 && r.is_finite()) {
            if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                out.push((
                    "rate".into(),
                    format!("rate must be within {MIN_RATE:e}..{MAX_RATE:e} requests/s, got {rate}"),
                ));
            }
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.rate > 0.0 && !(MIN_RATE..=MAX_RATE).contains(&stage.rate) {
                out.push((
                    format!("stages[{i}].rate"),
                    format!("must be 0 or within {MIN_RATE:e}..{MAX_RATE:e} requests/s, got {}", stage.rate),
                ));
            }
            if stage.duration_s > MAX_SECONDS {
                out.push((format!("stages[{i}].duration_s"), format!("must be at most {MAX_SECONDS} s")));
            }
        }
        for (i, m) in self.multipliers.iter().enumerate() {
            if m.factor > MAX_FACTOR {
                out.push((
                    format!("multipliers[{i}].factor"),
                    format!("must be at most {MAX_FACTOR}, got {}", m.factor),
                ));
            }
            if m.end_s > MAX_SECONDS {
                out.push((format!("multipliers[{i}].end_s"), format!("must be at most {MAX_SECONDS} s")));
            }
        }
        let all_finite = self.rate.is_none_or(finite)
            && self.stages.iter().all(|s| finite(s.rate) && finite(s.duration_s))
            && self.multipliers.iter().all(|m| finite(m.factor) && finite(m.start_s) && finite(m.end_s));
        if out.is_empty() && all_finite {
            let peak = self.profile().peak_rate();
            if peak > MAX_RATE {
                out.push((
                    "multipliers".into(),
                    format!(
                        "overlapping multipliers raise the rate to {peak:e} requests/s, above {MAX_RATE:e}; lower them"
                    ),
                ));
            }
        }
        out
    }

    pub fn profile(&self) -> RateProfile {
        RateProfile::build(self)
    }
}

/// A piecewise-constant rate: `pieces[i] = (start_s, rate)` holds until the next start; the
/// last piece holds until `end_s` (infinite when there are no stages).
#[derive(Clone, Debug, PartialEq)]
pub struct RateProfile {
    pub pieces: Vec<(f64, f64)>,
    pub end_s: f64,
}

impl RateProfile {
    fn build(spec: &ArrivalSpec) -> RateProfile {
        let mut base = Vec::new();
        let end_s = if spec.stages.is_empty() {
            base.push((0.0, spec.rate.unwrap_or(0.0)));
            f64::INFINITY
        } else {
            let mut t = 0.0;
            for stage in &spec.stages {
                base.push((t, stage.rate));
                t += stage.duration_s;
            }
            t
        };
        let mut cuts: Vec<f64> = base.iter().map(|p| p.0).collect();
        for m in &spec.multipliers {
            cuts.push(m.start_s);
            cuts.push(m.end_s);
        }
        cuts.retain(|&c| c < end_s);
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let pieces = cuts
            .iter()
            .map(|&start| {
                let stage_rate = base.iter().rev().find(|p| p.0 <= start).map_or(0.0, |p| p.1);
                let factor: f64 = spec
                    .multipliers
                    .iter()
                    .filter(|m| m.start_s <= start && start < m.end_s)
                    .map(|m| m.factor)
                    .product();
                (start, stage_rate * factor)
            })
            .collect();
        RateProfile { pieces, end_s }
    }

    /// The rate in effect at `t_s`.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        if t_s >= self.end_s {
            return 0.0;
        }
        self.pieces.iter().rev().find(|p| p.0 <= t_s).map_or(0.0, |p| p.1)
    }

    /// The mean rate over the profile (over the first piece when it is infinite).
    pub fn peak_rate(&self) -> f64 {
        self.pieces.iter().map(|p| p.1).fold(0.0, f64::max)
    }
}

/// Generates arrival times one at a time.
#[derive(Debug)]
pub struct ArrivalProcess {
    kind: ProcessKind,
    gamma: Option<Gamma<f64>>,
    profile: RateProfile,
    rng: ChaCha8Rng,
    /// Current piece of the profile and the real time reached within it.
    piece: usize,
    t_s: f64,
    first: bool,
}

impl ArrivalProcess {
    pub fn new(spec: &ArrivalSpec, rng: ChaCha8Rng) -> Self {
        let gamma = match (spec.process, spec.cv) {
            // Gamma(shape k, scale theta) has mean k*theta and cv 1/sqrt(k): k = 1/cv^2,
            // theta = cv^2 gives mean 1 and the requested cv.
            (ProcessKind::Gamma, Some(cv)) => Some(Gamma::new(1.0 / (cv * cv), cv * cv).expect("validated")),
            _ => None,
        };
        ArrivalProcess { kind: spec.process, gamma, profile: spec.profile(), rng, piece: 0, t_s: 0.0, first: true }
    }

    fn unit_gap(&mut self) -> f64 {
        match self.kind {
            ProcessKind::Poisson => Exp1.sample(&mut self.rng),
            ProcessKind::Gamma => self.gamma.expect("gamma configured").sample(&mut self.rng),
            ProcessKind::Constant => 1.0,
        }
    }

    /// The next arrival time, or `None` once the profile has ended. The first arrival of a
    /// constant process is at the start of the first non-zero piece, as a benchmark client
    /// sends its first request at once.
    pub fn next_arrival(&mut self) -> Option<SimTime> {
        let mut work = if self.first && self.kind == ProcessKind::Constant { 0.0 } else { self.unit_gap() };
        self.first = false;
        loop {
            let (start, rate) = *self.profile.pieces.get(self.piece)?;
            let piece_end = self.profile.pieces.get(self.piece + 1).map_or(self.profile.end_s, |p| p.0);
            let t = self.t_s.max(start);
            if rate > 0.0 {
                let reach = t + work / rate;
                if reach < piece_end {
                    self.t_s = reach;
                    return Some(SimTime::from_secs_f64(reach));
                }
                work -= (piece_end - t) * rate;
            }
            if !piece_end.is_finite() {
                return None;
            }
            self.piece += 1;
            self.t_s = piece_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Stream, Streams};

    fn spec(process: ProcessKind, rate: f64, cv: Option<f64>) -> ArrivalSpec {
        ArrivalSpec { process, rate: Some(rate), cv, stages: vec![], multipliers: vec![] }
    }

    fn gaps(spec: &ArrivalSpec, n: usize) -> Vec<f64> {
        let mut process = ArrivalProcess::new(spec, Streams::new(11).get(Stream::Arrivals));
        let mut last = 0.0;
        (0..n)
            .map(|_| {
                let t = process.next_arrival().unwrap().as_secs_f64();
                let gap = t - last;
                last = t;
                gap
            })
            .collect()
    }

    fn mean_cv(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn poisson_gaps_have_mean_one_over_rate_and_cv_one() {
        let (mean, cv) = mean_cv(&gaps(&spec(ProcessKind::Poisson, 20.0, None), 100_000));
        assert!((mean * 20.0 - 1.0).abs() < 0.01, "mean {mean}");
        assert!((cv - 1.0).abs() < 0.02, "cv {cv}");
    }

    #[test]
    fn gamma_gaps_keep_their_cv() {
        let (mean, cv) = mean_cv(&gaps(&spec(ProcessKind::Gamma, 5.0, Some(3.0)), 200_000));
        assert!((mean * 5.0 - 1.0).abs() < 0.03, "mean {mean}");
        assert!((cv / 3.0 - 1.0).abs() < 0.05, "cv {cv}");
    }

    #[test]
    fn constant_arrivals_are_exact_and_start_at_zero() {
        let mut p = ArrivalProcess::new(&spec(ProcessKind::Constant, 4.0, None), Streams::new(1).get(Stream::Arrivals));
        let times: Vec<u64> = (0..4).map(|_| p.next_arrival().unwrap().0).collect();
        assert_eq!(times, vec![0, 250_000_000, 500_000_000, 750_000_000]);
    }

    #[test]
    fn stages_change_the_rate_and_end_the_arrivals() {
        let spec = ArrivalSpec {
            process: ProcessKind::Constant,
            rate: None,
            cv: None,
            stages: vec![Stage { duration_s: 1.0, rate: 2.0 }, Stage { duration_s: 1.0, rate: 4.0 }],
            multipliers: vec![],
        };
        let mut p = ArrivalProcess::new(&spec, Streams::new(1).get(Stream::Arrivals));
        let times: Vec<f64> = std::iter::from_fn(|| p.next_arrival()).map(|t| t.as_secs_f64()).collect();
        assert_eq!(times, vec![0.0, 0.5, 1.0, 1.25, 1.5, 1.75]);
    }

    #[test]
    fn a_spike_multiplies_the_rate_only_inside_its_window() {
        let spec = ArrivalSpec {
            process: ProcessKind::Poisson,
            rate: Some(10.0),
            cv: None,
            stages: vec![],
            multipliers: vec![Multiplier { start_s: 100.0, end_s: 200.0, factor: 5.0 }],
        };
        let profile = spec.profile();
        assert_eq!(profile.rate_at(50.0), 10.0);
        assert_eq!(profile.rate_at(150.0), 50.0);
        assert_eq!(profile.rate_at(250.0), 10.0);
        let mut p = ArrivalProcess::new(&spec, Streams::new(5).get(Stream::Arrivals));
        let mut counts = [0u32; 3];
        while let Some(t) = p.next_arrival() {
            let s = t.as_secs_f64();
            if s >= 300.0 {
                break;
            }
            counts[(s / 100.0) as usize] += 1;
        }
        // Expected 1000, 5000, 1000; a Poisson count has std sqrt(n).
        assert!((counts[0] as f64 - 1000.0).abs() < 120.0, "{counts:?}");
        assert!((counts[1] as f64 - 5000.0).abs() < 300.0, "{counts:?}");
        assert!((counts[2] as f64 - 1000.0).abs() < 120.0, "{counts:?}");
    }

    #[test]
    fn invalid_specs_are_reported() {
        assert!(!spec(ProcessKind::Poisson, -1.0, None).problems().is_empty());
        assert!(!spec(ProcessKind::Gamma, 1.0, None).problems().is_empty());
        assert!(!spec(ProcessKind::Poisson, 1.0, Some(2.0)).problems().is_empty());
        assert!(spec(ProcessKind::Gamma, 1.0, Some(2.0)).problems().is_empty());
    }
}
