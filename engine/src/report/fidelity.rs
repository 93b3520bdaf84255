//! Fidelity: simulated against measured, per experiment and metric, with the absolute
//! percentage error (APE) and the median over experiments; and the calibration of a GPU's
//! step-time parameters to measured runs by a deterministic pattern search.

use rayon::prelude::*;
use serde::Serialize;

use super::metrics::Capture;
use super::summary::{mean_std, percentile_sorted};
use crate::hardware::catalog::StepTimeParams;
use crate::scenario::measurements::{Experiment, Measured};
use crate::sim::run::run_case;

/// The metrics compared, in table order, with their names.
pub const METRICS: [&str; 7] = ["e2e_mean", "e2e_p90", "e2e_p99", "ttft_mean", "ttft_p90", "ttft_p99", "itl"];

fn as_array(m: &Measured) -> [f64; 7] {
    [m.e2e_mean, m.e2e_p90, m.e2e_p99, m.ttft_mean, m.ttft_p90, m.ttft_p99, m.itl]
}

/// One experiment: measured and simulated values (ms) and their APE.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub key: String,
    pub model: String,
    pub measured: [f64; 7],
    pub simulated: [f64; 7],
    pub ape: [f64; 7],
    pub completed: u64,
    pub rejected: u64,
    pub warnings: Vec<String>,
}

/// Simulates one experiment with `params` as its GPU's step-time parameters (seed 1) and
/// computes the metrics as the measurements file defines them.
pub fn simulate(experiment: &Experiment, params: Option<&StepTimeParams>) -> Row {
    let mut case = experiment.case.clone();
    if let Some(p) = params {
        case.gpu.step_time = p.clone();
    }
    let result = run_case(&case, 1, Capture::default());
    let m = &result.metrics;
    let ms = |ns: &[u64]| {
        let mut v: Vec<f64> = ns.iter().map(|&x| x as f64 / 1e6).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (e2e, ttft) = (ms(&m.e2el_ns), ms(&m.ttft_ns));
    let mean = |v: &[f64]| mean_std(v).map_or(f64::NAN, |s| s.0);
    let pct = |v: &[f64], q: f64| percentile_sorted(v, q).unwrap_or(f64::NAN);
    let mean_output = if m.completed > 0 { m.total_output_tokens as f64 / m.completed as f64 } else { f64::NAN };
    let itl = (mean(&e2e) - mean(&ttft)) / (mean_output - 1.0);
    let simulated =
        [mean(&e2e), pct(&e2e, 90.0), pct(&e2e, 99.0), mean(&ttft), pct(&ttft, 90.0), pct(&ttft, 99.0), itl];
    let measured = as_array(&experiment.measured);
    let mut ape = [0.0; 7];
    for i in 0..7 {
        ape[i] = ((simulated[i] - measured[i]) / measured[i]).abs();
    }
    Row {
        key: experiment.key.clone(),
        model: experiment.model.clone(),
        measured,
        simulated,
        ape,
        completed: m.completed,
        rejected: m.rejected.values().sum(),
        warnings: experiment.warnings.clone(),
    }
}

/// Simulates every experiment in parallel; rows in input order.
pub fn simulate_all(experiments: &[Experiment], params: Option<&StepTimeParams>) -> Vec<Row> {
    experiments.par_iter().map(|e| simulate(e, params)).collect()
}

/// Median APE per metric over rows.
pub fn medians(rows: &[Row]) -> [f64; 7] {
    let mut out = [f64::NAN; 7];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut v: Vec<f64> = rows.iter().map(|r| r.ape[i]).filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        *slot = percentile_sorted(&v, 50.0).unwrap_or(f64::NAN);
    }
    out
}

/// The fidelity table in Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| experiment | metric | measured ms | simulated ms | APE |\n|---|---|---:|---:|---:|\n");
    for r in rows {
        for (i, metric) in METRICS.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {metric} | {:.1} | {:.1} | {:.1}% |\n",
                r.key.trim_start_matches("trainval/"),
                r.measured[i],
                r.simulated[i],
                100.0 * r.ape[i]
            ));
        }
    }
    let m = medians(rows);
    out.push_str("\n| median APE | ");
    out.push_str(&METRICS.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" | "));
    out.push_str(" |\n|---|");
    out.push_str(&"---:|".repeat(7));
    out.push_str("\n| all experiments |");
    for x in m {
        out.push_str(&format!(" {:.1}% |", 100.0 * x));
    }
    out.push('\n');
    out
}

/// The calibration objective: the mean over experiments of the absolute log-ratio of
/// simulated to measured mean E2E, mean TTFT and ITL (symmetric in over- and under-prediction,
/// and smooth enough for a pattern search).
pub fn objective(rows: &[Row]) -> f64 {
    let mut total = 0.0;
    let mut n = 0.0;
    for r in rows {
        for i in [0, 3, 6] {
            let ratio = r.simulated[i] / r.measured[i];
            total += if ratio.is_finite() && ratio > 0.0 { ratio.ln().abs() } else { 10.0 };
            n += 1.0;
        }
    }
    if n > 0.0 {
        total / n
    } else {
        0.0
    }
}

/// The fitted parameters: name, lower bound, upper bound.
const FITTED: [(&str, f64, f64); 7] = [
    ("bandwidth_efficiency", 0.2, 1.0),
    ("kv_bandwidth_efficiency", 0.2, 1.0),
    ("matmul_efficiency", 0.1, 1.0),
    ("step_overhead_us", 0.0, 20_000.0),
    ("per_sequence_overhead_us", 0.0, 500.0),
    ("allreduce_efficiency", 0.05, 1.0),
    ("frontend_overhead_us", 0.0, 100_000.0),
];

fn get(p: &StepTimeParams, name: &str) -> f64 {
    match name {
        "bandwidth_efficiency" => p.bandwidth_efficiency,
        "kv_bandwidth_efficiency" => p.kv_bandwidth_efficiency.unwrap_or(p.bandwidth_efficiency),
        "matmul_efficiency" => p.matmul_efficiency,
        "step_overhead_us" => p.step_overhead_us,
        "per_sequence_overhead_us" => p.per_sequence_overhead_us,
        "allreduce_efficiency" => p.allreduce_efficiency,
        "frontend_overhead_us" => p.frontend_overhead_us,
        other => unreachable!("not a fitted parameter: {other}"),
    }
}

fn set(p: &mut StepTimeParams, name: &str, v: f64) {
    match name {
        "bandwidth_efficiency" => p.bandwidth_efficiency = v,
        "kv_bandwidth_efficiency" => p.kv_bandwidth_efficiency = Some(v),
        "matmul_efficiency" => p.matmul_efficiency = v,
        "step_overhead_us" => p.step_overhead_us = v,
        "per_sequence_overhead_us" => p.per_sequence_overhead_us = v,
        "allreduce_efficiency" => p.allreduce_efficiency = v,
        "frontend_overhead_us" => p.frontend_overhead_us = v,
        other => unreachable!("not a fitted parameter: {other}"),
    }
}

/// The starting point of every calibration: the uncalibrated defaults, whatever the catalog
/// holds now, so that the command reproduces its own result.
pub fn uncalibrated(current: &StepTimeParams) -> StepTimeParams {
    StepTimeParams {
        matmul_efficiency: 0.6,
        attention_efficiency: 0.5,
        bandwidth_efficiency: 0.8,
        kv_bandwidth_efficiency: None,
        step_overhead_us: 400.0,
        per_sequence_overhead_us: 2.0,
        allreduce_efficiency: 0.7,
        allreduce_latency_us: 8.0,
        frontend_overhead_us: 0.0,
        provenance: current.provenance.clone(),
        sources: current.sources.clone(),
    }
}

/// How much of each run's duration calibration simulates.
pub const CALIBRATION_SCALE: f64 = 0.25;

/// Evaluation budget of `symbiote calibrate` by default (the shipped H100 fit used it).
pub const DEFAULT_EVALUATIONS: u32 = 400;

/// The result of a calibration.
#[derive(Clone, Debug)]
pub struct Fit {
    pub params: StepTimeParams,
    pub objective_before: f64,
    pub objective_after: f64,
    pub evaluations: u32,
}

/// Fits the step-time parameters to `experiments` by a compass search: each parameter in turn
/// is moved up and down by its step (relative, then rounded to 4 significant digits so the
/// result is stable text), the best improvement is kept, and steps halve when nothing
/// improves, down to 1/64 of the start. Deterministic: same inputs, same parameters.
pub fn calibrate(experiments: &[Experiment], start: &StepTimeParams, max_evaluations: u32) -> Fit {
    // Fit on shortened runs (every stage a quarter as long): the means that the objective
    // uses settle within minutes of simulated time, and the search runs four times faster.
    let shortened: Vec<Experiment> = experiments
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(arrival) = &mut e.case.workload.arrival {
                arrival.stages.iter_mut().for_each(|s| s.duration_s *= CALIBRATION_SCALE);
            }
            e
        })
        .collect();
    let evaluate = |p: &StepTimeParams| objective(&simulate_all(&shortened, Some(p)));
    let mut best = start.clone();
    let mut best_value = evaluate(&best);
    let before = best_value;
    let mut evaluations = 1;
    let mut step = 0.25;
    while step >= 0.25 / 64.0 && evaluations < max_evaluations {
        let mut improved = false;
        for (name, lo, hi) in FITTED {
            for dir in [1.0, -1.0] {
                let current = get(&best, name);
                let base = if current == 0.0 { (hi - lo) * 0.01 } else { current };
                let candidate = round4((current + dir * step * base).clamp(lo, hi));
                if candidate == current {
                    continue;
                }
                let mut trial = best.clone();
                set(&mut trial, name, candidate);
                let value = evaluate(&trial);
                evaluations += 1;
                if value < best_value - 1e-12 {
                    best = trial;
                    best_value = value;
                    improved = true;
                }
                if evaluations >= max_evaluations {
                    break;
                }
            }
        }
        if !improved {
            step /= 2.0;
        }
    }
    Fit { params: best, objective_before: before, objective_after: best_value, evaluations }
}

/// Rounds to 4 significant digits.
fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * magnitude).round() / magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round4_keeps_four_significant_digits() {
        assert_eq!(round4(0.123456), 0.1235);
        assert_eq!(round4(1234.56), 1235.0);
        assert_eq!(round4(0.0), 0.0);
    }
}
