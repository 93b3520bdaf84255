//! The service-level objective a plan must meet: latency targets at percentiles
//! (`p99_ttft_ms=2000,p99_itl_ms=100`) and an optional goodput floor (99% of requests within
//! every target). It turns into a [`WatchSpec`] for a workload's census, and judges a run.

use crate::report::attainment::{allowed_violations, SloMetric, WatchSpec, WatchTarget};
use crate::report::metrics::Metrics;
use crate::sim::run::{Outcome, RunResult};
use crate::sim::Nanos;

use super::traffic::Census;

/// One latency target: at least `percentile`% of samples at or under `threshold_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub metric: SloMetric,
    pub percentile: f64,
    pub threshold_ms: f64,
}

impl Target {
    /// The report key of the percentile this target bounds (`p99_ttft_ms`).
    pub fn key(&self) -> String {
        format!("{}_{}_ms", crate::report::summary::percentile_word(self.percentile), self.metric.key())
    }
}

/// The whole objective.
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    pub targets: Vec<Target>,
    /// Percent of requests that must meet every target (`--goodput 99`), if set.
    pub goodput_pct: Option<f64>,
}

impl Slo {
    /// Parses `p99_ttft_ms=2000,p90_itl_ms=100` (also `<=` for `=`); metrics ttft, tpot, itl,
    /// e2el (or e2e); percentiles from 1 to 100.
    pub fn parse(text: &str, goodput_pct: Option<f64>) -> Result<Slo, String> {
        let mut targets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why: &str| {
                format!("--slo item `{item}`: {why}; write items like p99_ttft_ms=2000 or p90_itl_ms=100 (metrics ttft, tpot, itl, e2el)")
            };
            let (key, value) = item.split_once("<=").or_else(|| item.split_once('=')).ok_or_else(|| bad("no `=`"))?;
            let rest = key.trim().strip_prefix('p').ok_or_else(|| bad("it must start with p and a percentile"))?;
            let (pct, metric) = rest.split_once('_').ok_or_else(|| bad("no metric"))?;
            let percentile: f64 = pct.replace('_', ".").parse().map_err(|_| bad("the percentile is not a number"))?;
            if !(1.0..=100.0).contains(&percentile) {
                return Err(bad("the percentile must be within 1..100"));
            }
            let metric = match metric.strip_suffix("_ms").ok_or_else(|| bad("the key must end in _ms"))? {
                "ttft" => SloMetric::Ttft,
                "tpot" => SloMetric::Tpot,
                "itl" => SloMetric::Itl,
                "e2el" | "e2e" => SloMetric::E2el,
                other => return Err(bad(&format!("unknown metric `{other}`"))),
            };
            let threshold_ms: f64 = value.trim().parse().map_err(|_| bad("the threshold is not a number of ms"))?;
            if !(threshold_ms > 0.0 && threshold_ms <= 1e9) {
                return Err(bad("the threshold must be a positive number of ms, at most 1e9"));
            }
            if targets.iter().any(|t: &Target| t.metric == metric && t.percentile == percentile) {
                return Err(bad("this percentile of this metric is already bounded"));
            }
            targets.push(Target { metric, percentile, threshold_ms });
        }
        if let Some(g) = goodput_pct {
            if !(g > 0.0 && g <= 100.0) {
                return Err(format!("--goodput is a percent of requests within (0, 100]; got {g}"));
            }
            if targets.is_empty() {
                return Err("--goodput counts requests within the --slo targets; give --slo too".into());
            }
        }
        if targets.is_empty() {
            return Err(
                "a plan needs an SLO: --slo p99_ttft_ms=2000,p99_itl_ms=100 (and optionally --goodput 99)".into()
            );
        }
        Ok(Slo { targets, goodput_pct })
    }

    /// The text form, as `parse` reads it.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> =
            self.targets.iter().map(|t| format!("{} <= {}", t.key(), t.threshold_ms)).collect();
        if let Some(g) = self.goodput_pct {
            parts.push(format!("goodput >= {g}% of requests within every target"));
        }
        parts.join(", ")
    }

    /// What a run of a workload with this census watches, stopping early when `stop_early`.
    pub fn watch(&self, census: &Census, stop_early: bool) -> WatchSpec {
        WatchSpec {
            targets: self
                .targets
                .iter()
                .map(|t| WatchTarget {
                    metric: t.metric,
                    threshold: Nanos::from_secs_f64(t.threshold_ms / 1000.0),
                    allowed: allowed_violations(samples(t.metric, census), t.percentile),
                })
                .collect(),
            allowed_bad_requests: self.goodput_pct.map(|g| allowed_violations(census.requests, g)),
            stop_early,
        }
    }

    /// Whether a finished run met every target, judged on the samples it actually has: every
    /// request must complete, and each target's violations be within its allowance.
    pub fn met(&self, result: &RunResult) -> bool {
        let m = &result.metrics;
        let Some(watch) = &m.watch else { return false };
        if result.outcome != Outcome::Completed || m.rejected_total() > 0 || m.unfinished > 0 {
            return false;
        }
        let within = self
            .targets
            .iter()
            .zip(&watch.violations)
            .all(|(t, &v)| v <= allowed_violations(observed(t.metric, m), t.percentile));
        within && self.goodput_pct.is_none_or(|g| watch.bad_requests <= allowed_violations(m.completed, g))
    }
}

fn samples(metric: SloMetric, c: &Census) -> u64 {
    match metric {
        SloMetric::Ttft | SloMetric::E2el => c.requests,
        SloMetric::Tpot => c.multi_token,
        SloMetric::Itl => c.gaps,
    }
}

fn observed(metric: SloMetric, m: &Metrics) -> u64 {
    match metric {
        SloMetric::Ttft | SloMetric::E2el => m.completed,
        SloMetric::Tpot => m.tpot_ns.len(),
        SloMetric::Itl => m.itl.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_goodput() {
        let slo = Slo::parse("p99_ttft_ms=2000, p99_itl_ms<=100,p99.9_e2e_ms=30000", Some(99.0)).unwrap();
        assert_eq!(slo.targets.len(), 3);
        assert_eq!(slo.targets[0], Target { metric: SloMetric::Ttft, percentile: 99.0, threshold_ms: 2000.0 });
        assert_eq!(slo.targets[2].metric, SloMetric::E2el);
        assert_eq!(slo.targets[2].percentile, 99.9);
        assert_eq!(slo.targets[1].key(), "p99_itl_ms");
        assert!(slo.describe().contains("goodput >= 99%"));
    }

    #[test]
    fn bad_items_say_how_to_write_them() {
        for (text, why) in [
            ("ttft=2", "start with p"),
            ("p99_ttft=2", "end in _ms"),
            ("p99_foo_ms=2", "unknown metric"),
            ("p0_ttft_ms=2", "within 1..100"),
            ("p99_ttft_ms=-1", "positive"),
            ("p99_ttft_ms=1,p99_ttft_ms=2", "already bounded"),
            ("", "needs an SLO"),
        ] {
            let err = Slo::parse(text, None).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
        assert!(Slo::parse("p99_ttft_ms=1", Some(0.0)).unwrap_err().contains("--goodput"));
    }

    #[test]
    fn allowances_come_from_the_census() {
        let slo = Slo::parse("p99_ttft_ms=2000,p90_itl_ms=50,p50_tpot_ms=20", Some(95.0)).unwrap();
        let census = Census {
            requests: 1000,
            multi_token: 900,
            gaps: 20_000,
            output_tokens: 21_000,
            input_tokens: 0,
            rate: 1.0,
            span_s: 999.0,
        };
        let watch = slo.watch(&census, true);
        let allowed: Vec<u64> = watch.targets.iter().map(|t| t.allowed).collect();
        assert_eq!(allowed, vec![10, 2000, 450]);
        assert_eq!(watch.allowed_bad_requests, Some(50));
        assert_eq!(watch.targets[0].threshold, Nanos(2_000_000_000));
    }
}
