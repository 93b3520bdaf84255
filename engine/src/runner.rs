//! Runs a validated scenario: every (case, seed) in parallel with rayon, each run
//! single-threaded and returning a value, results collected in input order, statistics over
//! seeds computed serially afterwards. Output does not depend on the thread count.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::report::expect;
use crate::report::stats::seed_stats;
use crate::report::summary::summarize;
use crate::report::{CaseReport, Report, RunReport, FORMAT_VERSION};
use crate::scenario::{Case, Scenario};
use crate::sim::run::{run_case, RunResult};

/// Metrics summarised over seeds in `over_seeds`.
pub const KEY_METRICS: [&str; 10] = [
    "request_throughput",
    "output_throughput",
    "mean_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "p99_itl_ms",
    "p99_e2el_ms",
    "preemptions",
];

/// Runs every case of `scenario` with every seed on the current rayon pool.
pub fn run_scenario(scenario: &Scenario) -> Report {
    let jobs: Vec<(usize, u64)> =
        (0..scenario.cases.len()).flat_map(|c| scenario.seeds.iter().map(move |&s| (c, s))).collect();
    let results: Vec<RunReport> = jobs
        .par_iter()
        .map(|&(case, seed)| {
            let case = &scenario.cases[case];
            run_report(case, seed, &run_case(case, seed, false), scenario)
        })
        .collect();
    let mut results = results.into_iter();
    let cases = scenario
        .cases
        .iter()
        .map(|case| {
            let runs: Vec<RunReport> = results.by_ref().take(scenario.seeds.len()).collect();
            CaseReport { name: case.name.clone(), config: case_config(case), over_seeds: over_seeds(&runs), runs }
        })
        .collect();
    Report {
        format_version: FORMAT_VERSION,
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seeds: scenario.seeds.clone(),
        cases,
    }
}

pub fn run_report(case: &Case, seed: u64, result: &RunResult, scenario: &Scenario) -> RunReport {
    let metrics = summarize(&result.metrics);
    let outcome = result.outcome.name().to_string();
    let mut expectations = expect::check(&case.expect, scenario.slo.as_ref(), &outcome, &metrics);
    if let Some(slo) = &scenario.slo {
        if case.expect.slo_met.is_none() {
            if let Some(met) = expect::slo_met(slo, &metrics) {
                expectations.push(expect::ExpectationResult {
                    what: "slo (informational)".into(),
                    pass: true,
                    detail: format!("slo_met was {met}"),
                });
            }
        }
    }
    RunReport {
        seed,
        outcome,
        startup_error: result.startup_failure.as_ref().map(|f| f.message.clone()),
        memory: result.memory.clone(),
        metrics,
        rejections: result.metrics.rejected.clone(),
        first_rejection: result.metrics.first_rejection.clone(),
        expectations,
    }
}

fn case_config(case: &Case) -> Map<String, Value> {
    let e = &case.engine;
    let mut m = Map::new();
    m.insert("model".into(), case.model.name.clone().into());
    m.insert("gpu".into(), case.gpu.name.clone().into());
    m.insert("quant".into(), case.quant.name().into());
    m.insert("tp".into(), case.tp.into());
    m.insert("replicas".into(), case.replicas.into());
    m.insert("max_num_batched_tokens".into(), e.max_num_batched_tokens.into());
    m.insert("max_num_seqs".into(), e.max_num_seqs.into());
    m.insert("max_model_len".into(), e.max_model_len.into());
    m.insert("block_size".into(), e.block_size.into());
    m.insert("gpu_memory_utilization".into(), serde_json::json!(e.gpu_memory_utilization));
    m.insert("enable_prefix_caching".into(), e.enable_prefix_caching.into());
    m.insert("enable_chunked_prefill".into(), e.enable_chunked_prefill.into());
    m.insert("long_prefill_token_threshold".into(), e.long_prefill_token_threshold.into());
    m
}

fn over_seeds(runs: &[RunReport]) -> BTreeMap<String, crate::report::stats::SeedStats> {
    KEY_METRICS
        .iter()
        .filter_map(|&key| {
            let values: Vec<f64> = runs.iter().filter_map(|r| r.metrics.get(key).and_then(Value::as_f64)).collect();
            seed_stats(&values).map(|s| (key.to_string(), s))
        })
        .collect()
}
