//! Autoscaled fleets as a dimension of the plan (`--autoscale MIN-MAX,...`): Ray Serve's
//! default policy (`docs/autoscaling.md`) sizing a configuration's fleet between
//! `min_replicas` and `max_replicas`, beside the fixed fleets the search verified.
//!
//! An autoscaled fleet cannot be priced as replicas x price: what it holds follows the traffic.
//! So each (configuration, range) gets one run on the full traffic at the target rate, watched
//! against the SLO like any verification run, and a passing run is priced by the GPU-hours it
//! held (each replica from its scale-up decision until it leaves: cold starts and drains are
//! paid, as a cloud bill would). Fixed and autoscaled fleets are compared by one measure: the
//! mean cost per hour over the run, GPU-hours x price / run hours (for a fixed fleet, exactly
//! replicas x GPUs per replica x price).
//!
//! Which configurations: those whose fixed fleet was verified (the most promising of each GPU
//! type), because their verified replica count bounds the useful ranges and their screen gives
//! the load one replica carries within the SLO (the default `target_ongoing_requests`).

use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::search::{run_watched, Screen, Traffic, Verified, Work};
use super::space::{merged, Candidate};
use super::traffic::faster;
use crate::report::summary::summarize;
use crate::scenario::Case;

/// What `--autoscale` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscaleSpace {
    /// (min_replicas, max_replicas) pairs, in the order given.
    pub ranges: Vec<(u32, u32)>,
    /// Whether fixed fleets may be the answer too (`off` among the values).
    pub fixed: bool,
    /// `target_ongoing_requests` values to try, each with every range; `None`: each
    /// configuration's knee concurrency ([`Screen::knee_concurrency`]).
    pub targets: Vec<Option<f64>>,
    /// Where the targets come from, in words, for the report.
    pub target_source: String,
    /// The rest of Ray Serve's policy (delays, look-back, scaling factors), as
    /// `fleet.autoscaling_config` fields: the scenario's own, else empty (Ray's defaults).
    /// Never holds `min_replicas`, `max_replicas`, `initial_replicas` (the fleet starts at
    /// `min_replicas`, Ray's default) or `target_ongoing_requests`.
    pub policy: Map<String, Value>,
    /// `fleet.cold_start` from the scenario, if it has one (else the documented defaults).
    pub cold_start: Option<Value>,
}

/// One (configuration, range) and what its run showed.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscaledRun {
    /// Index into the plan's candidates.
    pub candidate: usize,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// The policy's target, when there was one to use.
    pub target_ongoing_requests: Option<f64>,
    pub outcome: Outcome,
    pub work: Work,
}

/// How an autoscaled fleet fared.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It met the SLO on the full traffic.
    Met(ScaledRun),
    /// It missed the SLO (the run stopped once a target could no longer be met): violations
    /// per target, and how many each allowed.
    Missed { violations: Vec<u64>, allowed: Vec<u64> },
    /// Not run, and why.
    Skipped(String),
}

/// The passing run of an autoscaled fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaledRun {
    /// The run's summary (report keys: `gpus`, `gpu_hours`, `peak_replicas`, `p99_ttft_ms` ...).
    pub summary: Map<String, Value>,
    pub violations: Vec<u64>,
    pub allowed: Vec<u64>,
    pub output_tokens: u64,
    /// From time 0 to the last completion, seconds.
    pub duration_s: f64,
    /// GPUs held, averaged over the run (replica-seconds held x TP / duration).
    pub mean_gpus: f64,
    pub gpu_hours: f64,
    pub peak_replicas: u64,
    pub scale_ups: u64,
    pub scale_downs: u64,
    /// From a scale-up decision to the new replica serving, seconds.
    pub cold_start_s: f64,
}

impl AutoscaledRun {
    /// `h100-80gb ... least_outstanding autoscaled 2-8 target 31.4`.
    pub fn label(&self, candidates: &[Candidate]) -> String {
        let target = self.target_ongoing_requests.map_or(String::new(), |t| format!(" target {t}"));
        format!("{} autoscaled {}-{}{target}", candidates[self.candidate].label(), self.min_replicas, self.max_replicas)
    }

    /// The passing run, if it met the SLO.
    pub fn met(&self) -> Option<&ScaledRun> {
        match &self.outcome {
            Outcome::Met(run) => Some(run),
            _ => None,
        }
    }

    /// Mean cost per hour over the run, US dollars: GPUs held on average x price per GPU-hour.
    pub fn cost_per_hour(&self, candidates: &[Candidate]) -> Option<f64> {
        Some(self.met()?.mean_gpus * candidates[self.candidate].usd_per_gpu_hour)
    }
}

/// `fleet` of an autoscaled fleet behind `router`: the scenario's policy with this range and
/// target, and its cold start.
pub fn fleet_json(space: &AutoscaleSpace, router: &str, range: (u32, u32), target: f64) -> Value {
    let mut config = space.policy.clone();
    config.insert("min_replicas".into(), range.0.into());
    config.insert("max_replicas".into(), range.1.into());
    config.insert("target_ongoing_requests".into(), target.into());
    let mut fleet = json!({"router": router, "autoscaling_config": config});
    if let Some(cold_start) = &space.cold_start {
        fleet["cold_start"] = cold_start.clone();
    }
    fleet
}

/// The case of `candidate` autoscaled over `range`, through the scenario validator (so the
/// cold start is priced from the model's weights as in a scenario file).
pub fn autoscaled_case(
    base: &Value,
    base_dir: &Path,
    space: &AutoscaleSpace,
    candidate: &Candidate,
    range: (u32, u32),
    target: f64,
) -> Result<Case, String> {
    let mut case_json = merged(base, &candidate.config.overrides(false));
    case_json["fleet"] = fleet_json(space, &super::space::router_name(candidate.config.router), range, target);
    let scenario = json!({"name": "plan", "base": case_json});
    let mut parsed =
        crate::scenario::parse_in(&scenario.to_string(), "the plan's base case", base_dir).map_err(|problems| {
            let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            format!("autoscaling {} over {}-{}: {}", candidate.label(), range.0, range.1, all.join("; "))
        })?;
    Ok(parsed.cases.remove(0))
}

/// The target a configuration's fleets aim at: the one given, else its knee concurrency
/// (rounded to 0.1 request so the report and winner.json read it as run).
fn target_for(target: Option<f64>, screen: &Screen) -> Option<f64> {
    target.or_else(|| screen.knee_concurrency.map(|c| ((c * 10.0).round() / 10.0).max(0.1)))
}

/// Every (configuration with a verified fixed fleet, range, target) run on the full traffic,
/// in candidate, then range, then target order, in parallel; the result does not depend on the
/// thread count.
pub fn run_all(
    base: &Value,
    base_dir: &Path,
    space: &AutoscaleSpace,
    candidates: &[Candidate],
    screens: &[Screen],
    verified: &[Option<Verified>],
    traffic: &Traffic,
) -> Result<Vec<AutoscaledRun>, String> {
    // (candidate, its fixed fleet's replicas, range, target asked for)
    type Job = (usize, u32, (u32, u32), Option<f64>);
    let mut jobs: Vec<Job> = Vec::new();
    for (i, v) in verified.iter().enumerate() {
        if let Some(fixed) = v.as_ref().and_then(|v| v.run.as_ref()) {
            for &range in &space.ranges {
                jobs.extend(space.targets.iter().map(|&target| (i, fixed.replicas, range, target)));
            }
        }
    }
    let runs: Vec<Result<AutoscaledRun, String>> = jobs
        .par_iter()
        .map(|&(i, fixed_replicas, range, target)| {
            let target = target_for(target, &screens[i]);
            let skipped = |why: String| AutoscaledRun {
                candidate: i,
                min_replicas: range.0,
                max_replicas: range.1,
                target_ongoing_requests: target,
                outcome: Outcome::Skipped(why),
                work: Work::default(),
            };
            if range.0 >= fixed_replicas {
                return Ok(skipped(format!(
                    "min_replicas {} is at least the {fixed_replicas} replica(s) of this configuration's fixed fleet, which meets the SLO: it holds as many GPUs all the time, so it cannot cost less",
                    range.0
                )));
            }
            let Some(target) = target else {
                return Ok(skipped(
                    "its screen recorded no concurrency at the knee to aim at; give --autoscale-target".into(),
                ));
            };
            let case = autoscaled_case(base, base_dir, space, &candidates[i], range, target)?;
            run_one(case, i, range, target, &candidates[i], traffic)
        })
        .collect();
    runs.into_iter().collect()
}

/// One autoscaled fleet on the full traffic at the target rate.
fn run_one(
    case: Case,
    candidate_index: usize,
    range: (u32, u32),
    target: f64,
    candidate: &Candidate,
    traffic: &Traffic,
) -> Result<AutoscaledRun, String> {
    let cold_start_s = case.autoscaling.map_or(0.0, |a| a.cold_start().as_secs_f64());
    let workload = faster(&traffic.full, traffic.target_rate / traffic.full_census.rate);
    let what = format!("{} autoscaled {}-{}", candidate.label(), range.0, range.1);
    let result = run_watched(case, &what, &workload, &traffic.full_census, traffic)?;
    let m = &result.metrics;
    let work = Work { simulations: 1, requests: m.arrivals };
    let violations = m.watch.as_ref().map(|w| w.violations.clone()).unwrap_or_default();
    let allowed: Vec<u64> =
        m.watch.as_ref().map(|w| w.spec.targets.iter().map(|t| t.allowed).collect()).unwrap_or_default();
    let outcome = if traffic.slo.met(&result) {
        let summary = summarize(m, candidate.case.tp);
        let number = |key: &str| summary.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        let count = |key: &str| summary.get(key).and_then(Value::as_u64).unwrap_or(0);
        Outcome::Met(ScaledRun {
            violations,
            allowed,
            output_tokens: m.total_output_tokens,
            duration_s: m.last_finish.as_secs_f64(),
            mean_gpus: number("gpus"),
            gpu_hours: number("gpu_hours"),
            peak_replicas: count("peak_replicas"),
            scale_ups: count("scale_ups"),
            scale_downs: count("scale_downs"),
            cold_start_s,
            summary,
        })
    } else {
        Outcome::Missed { violations, allowed }
    };
    Ok(AutoscaledRun {
        candidate: candidate_index,
        min_replicas: range.0,
        max_replicas: range.1,
        target_ongoing_requests: Some(target),
        outcome,
        work,
    })
}

/// The cheapest passing autoscaled fleet (index into `runs`) if it costs strictly less than
/// `fixed_cost` (a tie goes to the fixed fleet: same money, no cold-start risk); ties among
/// autoscaled fleets go to the earlier configuration, then the earlier range.
pub fn cheapest(runs: &[AutoscaledRun], candidates: &[Candidate], fixed_cost: Option<f64>) -> Option<usize> {
    let costs: Vec<Option<f64>> = runs.iter().map(|r| r.cost_per_hour(candidates)).collect();
    cheapest_of(&costs, fixed_cost)
}

/// [`cheapest`] on the runs' costs per hour (`None`: did not pass).
fn cheapest_of(costs: &[Option<f64>], fixed_cost: Option<f64>) -> Option<usize> {
    let best = costs
        .iter()
        .enumerate()
        .filter_map(|(k, c)| c.map(|c| (k, c)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?;
    (best.1 < fixed_cost.unwrap_or(f64::INFINITY)).then_some(best.0)
}

/// Parses `--autoscale` values: `off` (fixed fleets) and `MIN-MAX` ranges; errors name the
/// value and the fix, with the scenario layer's own words for a bad range.
pub fn parse_ranges(values: &[String]) -> Result<(bool, Vec<(u32, u32)>), String> {
    let mut fixed = false;
    let mut ranges = Vec::new();
    for value in values {
        let word = value.trim();
        if word == "off" {
            fixed = true;
            continue;
        }
        let parsed = word.split_once('-').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        let Some((min, max)) = parsed else {
            return Err(format!("--autoscale: `{word}` is neither `off` nor MIN-MAX replicas (like off,1-4,2-8)"));
        };
        if let Some((field, message)) = crate::scenario::autoscaling::range_problems(min, max).into_iter().next() {
            return Err(format!("--autoscale {word}: {field}: {message}"));
        }
        if !ranges.contains(&(min, max)) {
            ranges.push((min, max));
        }
    }
    Ok((fixed, ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ones_say_why_in_the_scenario_layers_words() {
        let words = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(parse_ranges(&words("off,1-4,2-8,1-4")), Ok((true, vec![(1, 4), (2, 8)])));
        assert_eq!(parse_ranges(&words("2-8")), Ok((false, vec![(2, 8)])));
        let zero = parse_ranges(&words("0-4")).unwrap_err();
        assert!(
            zero.starts_with("--autoscale 0-4: min_replicas: scale-to-zero (min_replicas 0) is not modelled"),
            "{zero}"
        );
        let inverted = parse_ranges(&words("8-2")).unwrap_err();
        assert_eq!(
            inverted,
            "--autoscale 8-2: min_replicas: min_replicas (8) is above max_replicas (2); lower min_replicas or raise max_replicas (Ray's default max_replicas is 1)"
        );
        let huge = parse_ranges(&words("1-5000")).unwrap_err();
        assert!(huge.contains("max_replicas: need 1 to 2048 replicas, got 5000"), "{huge}");
        let word = parse_ranges(&words("two-eight")).unwrap_err();
        assert!(word.contains("`two-eight` is neither `off` nor MIN-MAX"), "{word}");
    }

    #[test]
    fn the_cheapest_autoscaled_fleet_wins_only_when_strictly_cheaper_than_the_fixed_one() {
        let costs = [None, Some(5.0), Some(4.0), Some(4.0)];
        // The earlier of two equal costs.
        assert_eq!(cheapest_of(&costs, Some(5.38)), Some(2));
        // A tie with the fixed fleet goes to the fixed fleet.
        assert_eq!(cheapest_of(&costs, Some(4.0)), None);
        assert_eq!(cheapest_of(&costs, Some(3.9)), None);
        // Fixed fleets not offered (or none verified): the cheapest passing one.
        assert_eq!(cheapest_of(&costs, None), Some(2));
        assert_eq!(cheapest_of(&[None, None], None), None);
    }

    #[test]
    fn the_fleet_carries_the_range_the_target_and_the_scenarios_policy() {
        let mut policy = Map::new();
        policy.insert("downscale_delay_s".into(), 60.into());
        let space = AutoscaleSpace {
            ranges: vec![(1, 4)],
            fixed: true,
            targets: vec![None],
            target_source: "knee".into(),
            policy,
            cold_start: Some(json!({"engine_startup_s": 30})),
        };
        let fleet = fleet_json(&space, "least_outstanding", (2, 6), 12.5);
        assert_eq!(
            fleet,
            json!({"router": "least_outstanding",
                   "autoscaling_config": {"downscale_delay_s": 60, "min_replicas": 2, "max_replicas": 6,
                                          "target_ongoing_requests": 12.5},
                   "cold_start": {"engine_startup_s": 30}})
        );
    }
}
