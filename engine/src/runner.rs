//! Runs a validated scenario: every (case, seed) in parallel with rayon, each run
//! single-threaded and returning a value, results collected in input order, statistics over
//! seeds computed serially afterwards. Output does not depend on the thread count.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::report::expect;
use crate::report::metrics::Capture;
use crate::report::stats::seed_stats;
use crate::report::summary::{replica_summaries, summarize};
use crate::report::write::write_atomic;
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

/// A run broke one of the simulator's invariants (requests or KV blocks not conserved, time
/// going backwards): a bug in symbiote, not an outcome of the case. The CLI reports it as an
/// internal error (exit 2) with the command that reproduces it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "internal error (a bug in symbiote): scenario `{scenario}`, case `{case}`, seed {seed}: {}; reproduce with `{}`",
    violations.join("; "),
    command.clone().unwrap_or_else(|| format!("symbiote run <the file of scenario {scenario}> --seeds {seed}"))
)]
pub struct InvariantViolation {
    pub scenario: String,
    pub case: String,
    pub seed: u64,
    pub violations: Vec<String>,
    /// The command line that reruns this case with this seed, once the CLI has filled it in.
    pub command: Option<String>,
}

impl InvariantViolation {
    /// `Err` naming the case and seed when `result` broke an invariant.
    pub fn check(scenario: &Scenario, case: &Case, seed: u64, result: &RunResult) -> Result<(), InvariantViolation> {
        if result.violations.is_empty() {
            return Ok(());
        }
        Err(InvariantViolation {
            scenario: scenario.name.clone(),
            case: case.name.clone(),
            seed,
            violations: result.violations.clone(),
            command: None,
        })
    }
}

/// What to write beside the report, and where.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The scenario's report folder; `None` writes nothing (tests, `check`).
    pub dir: Option<PathBuf>,
    pub capture: Capture,
    /// Shows progress (runs done / total) on a terminal.
    pub progress: bool,
    /// Reuse finished runs already written under `dir` for the same scenario content.
    pub resume: bool,
    /// Run only shard `k` of `n` (1-based): the (case, seed) runs whose position modulo `n`
    /// is `k - 1`.
    pub shard: Option<(usize, usize)>,
    /// Also write each run as a `vllm bench serve` result file (`--vllm-bench-json`).
    pub vllm_bench: Option<crate::report::vllm_bench::BenchExport>,
}

/// The file stem of one (case, seed) run's files; validation refuses cases whose stems
/// would collide.
pub fn run_stem(case: &str, seed: u64) -> String {
    format!("{}__seed{seed}", crate::scenario::names::file_name(case))
}

/// What `runs/<case>__seed<N>.json` holds: the run and the content hash of its scenario.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RunFile {
    pub scenario_hash: String,
    pub run: RunReport,
}

/// Every (case, seed) of a scenario, in report order.
pub fn jobs(scenario: &Scenario) -> Vec<(usize, u64)> {
    (0..scenario.cases.len()).flat_map(|c| scenario.seeds.iter().map(move |&s| (c, s))).collect()
}

/// A finished run written earlier for the same scenario content, if any.
pub fn read_run(dir: &Path, scenario: &Scenario, case: usize, seed: u64) -> Option<RunReport> {
    let path = dir.join("runs").join(format!("{}.json", run_stem(&scenario.cases[case].name, seed)));
    let file: RunFile = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    (file.scenario_hash == scenario.content_hash && file.run.seed == seed).then_some(file.run)
}

/// The `timeline/` and `requests/` CSVs of each case's first seed under `dir`, where the runs
/// wrote them, parsed for report.html's time series and CDFs (`report::html::series`).
pub fn read_series(dir: &Path, report: &crate::report::Report) -> crate::report::html::RunSeries {
    use crate::report::html::{CaseSeries, Requests, Timeline};
    let cases = report.cases.iter().map(|case| {
        let Some(run) = case.runs.first() else { return CaseSeries::default() };
        let stem = run_stem(&case.name, run.seed);
        let read = |sub: &str| std::fs::read_to_string(dir.join(sub).join(format!("{stem}.csv"))).ok();
        CaseSeries {
            seed: run.seed,
            timeline: read("timeline").as_deref().and_then(Timeline::parse),
            requests: read("requests").as_deref().and_then(Requests::parse),
        }
    });
    crate::report::html::RunSeries { cases: cases.collect() }
}

/// Runs every case of `scenario` with every seed on the current rayon pool (or one shard of
/// them). Each run's files are written as soon as it finishes. Returns the runs in report
/// order; a shard returns only its own.
pub fn run_jobs(scenario: &Scenario, options: &RunOptions) -> Result<Vec<RunReport>> {
    let runs = run_jobs_keeping(scenario, options, |_, _, _| ())?;
    Ok(runs.into_iter().map(|(report, _)| report).collect())
}

/// [`run_jobs`], also returning what `keep` takes from each run's result while it is still in
/// memory (the Python package keeps the timeline and request CSVs this way instead of reading
/// files back); `None` for a run reused from disk by `resume`.
pub fn run_jobs_keeping<T: Send>(
    scenario: &Scenario,
    options: &RunOptions,
    keep: impl Fn(&Case, u64, &RunResult) -> T + Sync,
) -> Result<Vec<(RunReport, Option<T>)>> {
    let all = jobs(scenario);
    let mine: Vec<(usize, u64)> = match options.shard {
        Some((k, n)) => all.iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, j)| *j).collect(),
        None => all,
    };
    let bar = options.progress.then(|| progress_bar(&scenario.name, mine.len() as u64));
    let mut capture = options.capture;
    if let Some(analysis) = scenario.analysis {
        let needs = analysis.capture();
        capture.requests |= needs.requests;
        capture.queue = capture.queue.or(needs.queue);
    }
    capture.request_detail |= options.vllm_bench.is_some();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(RunReport, Option<T>)>> = mine
        .par_iter()
        .map(|&(case_index, seed)| {
            let started = std::time::Instant::now();
            let resumed = match (&options.dir, options.resume) {
                (Some(dir), true) => read_run(dir, scenario, case_index, seed),
                _ => None,
            };
            let run = match resumed {
                Some(report) => (report, None),
                None => {
                    let case = &scenario.cases[case_index];
                    let result = run_case(case, seed, capture);
                    InvariantViolation::check(scenario, case, seed, &result)?;
                    let report = run_report(case, seed, &result, scenario);
                    if let Some(dir) = &options.dir {
                        write_run_files(dir, options.capture, scenario, case, seed, &report, &result)?;
                    }
                    if let Some(export) = &options.vllm_bench {
                        write_bench_file(export, scenario, case, seed, &report, &result)?;
                    }
                    let kept = keep(case, seed, &result);
                    (report, Some(kept))
                }
            };
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            // `-v`: one line per finished run on stderr, in the order runs finish (logs only).
            crate::verbosity::detail(|| {
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let completed = run.0.metrics.get("completed").and_then(Value::as_u64).unwrap_or(0);
                let how = if run.1.is_some() {
                    format!("{:.2} s wall", started.elapsed().as_secs_f64())
                } else {
                    "reused (--resume)".into()
                };
                format!(
                    "{}: [{n}/{}] case {} seed {seed}: {}, {completed} completed ({how})",
                    scenario.name,
                    mine.len(),
                    scenario.cases[case_index].name,
                    run.0.outcome
                )
            });
            Ok(run)
        })
        .collect();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    results.into_iter().collect()
}

/// Runs a whole scenario and assembles its report.
pub fn run_scenario(scenario: &Scenario, options: &RunOptions) -> Result<Report> {
    let runs = run_jobs(scenario, &RunOptions { shard: None, ..options.clone() })?;
    Ok(assemble(scenario, runs))
}

/// The report of a scenario from all its runs in report order: per-case statistics over
/// seeds, then the phase findings. Serial and pure, so any way of producing the runs
/// (threads, shards, resumed sweeps) gives the same bytes.
pub fn assemble(scenario: &Scenario, runs: Vec<RunReport>) -> Report {
    let mut runs = runs.into_iter();
    let cases: Vec<CaseReport> = scenario
        .cases
        .iter()
        .map(|case| {
            let runs: Vec<RunReport> = runs.by_ref().take(scenario.seeds.len()).collect();
            CaseReport {
                name: case.name.clone(),
                config: case_config(case),
                over_seeds: over_seeds(&runs),
                measured: case.expect.measured.clone(),
                runs,
            }
        })
        .collect();
    let mut report = Report {
        format_version: FORMAT_VERSION,
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seeds: scenario.seeds.clone(),
        percentile_method: crate::report::percentile_methods(cases.iter().flat_map(|c| &c.runs)),
        cases,
        findings: None,
    };
    report.findings = scenario.analysis.map(|a| crate::report::phases::conclude(a, scenario, &report));
    report
}

fn progress_bar(name: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

fn write_run_files(
    dir: &Path,
    capture: Capture,
    scenario: &Scenario,
    case: &Case,
    seed: u64,
    report: &RunReport,
    result: &RunResult,
) -> Result<()> {
    let stem = run_stem(&case.name, seed);
    let write = |sub: &str, ext: &str, text: String| -> Result<()> {
        let path = dir.join(sub).join(format!("{stem}.{ext}"));
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    };
    let file = RunFile { scenario_hash: scenario.content_hash.clone(), run: report.clone() };
    let mut json = serde_json::to_string_pretty(&file).expect("run report serializes");
    json.push('\n');
    write("runs", "json", json)?;
    if capture.timeline.is_some() {
        write("timeline", "csv", crate::report::csv::timeline(&result.metrics.timeline))?;
    }
    if let Some(records) = &result.metrics.records {
        write("requests", "csv", crate::report::csv::requests(records))?;
    }
    Ok(())
}

/// One run as a `vllm bench serve` result file, written as soon as the run finishes.
fn write_bench_file(
    export: &crate::report::vllm_bench::BenchExport,
    scenario: &Scenario,
    case: &Case,
    seed: u64,
    report: &RunReport,
    result: &RunResult,
) -> Result<()> {
    use crate::report::vllm_bench::{render, BenchRun};
    let text = render(&BenchRun {
        scenario: &scenario.name,
        case,
        seed,
        outcome: &report.outcome,
        metrics: &result.metrics,
        percentiles: &scenario.percentiles,
        date: &export.date,
    });
    let path = export.path_for(&scenario.folder(), &case.name, seed);
    write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

pub fn run_report(case: &Case, seed: u64, result: &RunResult, scenario: &Scenario) -> RunReport {
    let mut metrics = summarize(&result.metrics, case.tp);
    if case.disagg.is_some() {
        disagg_fleet_keys(case, result, &mut metrics);
    } else if let Some(price) = &case.price {
        let batch = case.batch.is_some();
        crate::report::summary::add_cost(&mut metrics, &result.metrics, case.tp, batch, price.usd_per_gpu_hour);
    }
    crate::report::summary::add_percentiles(&mut metrics, &result.metrics, &scenario.percentiles);
    if let Some(analysis) = scenario.analysis {
        crate::report::phases::run_extras(analysis, case, &result.metrics, &mut metrics);
    }
    let outcome = result.outcome.name().to_string();
    let expectations = expect::check(&case.expect, scenario.slo.as_ref(), &outcome, &metrics);
    let slo_met = scenario.slo.as_ref().and_then(|slo| expect::slo_met(slo, &metrics));
    RunReport {
        seed,
        outcome,
        startup_error: result.startup_failure.as_ref().map(|f| f.message.clone()),
        memory: result.memory.clone(),
        metrics,
        slo_met,
        replicas: replica_summaries(&result.metrics),
        static_batch: result.startup_failure.as_ref().and_then(|f| f.static_batch.clone()),
        rejections: result.metrics.rejected.clone(),
        first_rejection: result.metrics.first_rejection.clone(),
        expectations,
        streamed_percentiles: result.metrics.streamed_percentiles(),
        disaggregation: result.metrics.disagg.as_ref().map(|d| crate::report::disagg::summarize(&result.metrics, d)),
    }
}

/// A disaggregated fleet's GPUs are its pools' (each with its own TP size and price).
fn disagg_fleet_keys(case: &Case, result: &RunResult, metrics: &mut Map<String, Value>) {
    let Some(d) = &case.disagg else { return };
    let gpus = (d.prefill.replicas as u64 * d.prefill.tp + d.decode.replicas as u64 * d.decode.tp) as f64;
    let duration = result.metrics.last_finish.as_secs_f64();
    metrics.insert("gpus".into(), serde_json::json!(gpus));
    metrics.insert("gpu_hours".into(), serde_json::json!(duration * gpus / 3600.0));
    if let Some((_, usd_per_hour)) = case.fleet_usd_per_hour() {
        let m = &result.metrics;
        let c = crate::report::summary::cost(1.0, duration, m.total_output_tokens, usd_per_hour);
        metrics.insert("cost_usd_per_hour".into(), serde_json::json!(c.usd_per_hour));
        metrics.insert("cost_usd_per_million_output_tokens".into(), serde_json::json!(c.usd_per_million_output_tokens));
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
    m.insert("router".into(), serde_json::to_value(case.router).expect("router serializes"));
    if let Some(a) = &case.autoscaling {
        // Ray Serve's names, every default resolved, and the cold start it implies.
        let secs = |n: crate::sim::Nanos| serde_json::json!(n.as_secs_f64());
        m.insert(
            "autoscaling_config".into(),
            serde_json::json!({
                "min_replicas": a.min_replicas,
                "max_replicas": a.max_replicas,
                "initial_replicas": a.initial_replicas,
                "target_ongoing_requests": a.target_ongoing_requests,
                "upscale_delay_s": secs(a.upscale_delay),
                "downscale_delay_s": secs(a.downscale_delay),
                "metrics_interval_s": secs(a.metrics_interval),
                "look_back_period_s": secs(a.look_back_period),
                "upscaling_factor": a.upscaling_factor,
                "downscaling_factor": a.downscaling_factor,
            }),
        );
        m.insert("weights_load_s".into(), secs(a.weights_load));
        m.insert("engine_startup_s".into(), secs(a.engine_startup));
        m.insert("cold_start_s".into(), secs(a.cold_start()));
    }
    m.insert("engine".into(), serde_json::to_value(case.engine.kind).expect("kind serializes"));
    m.insert("max_num_batched_tokens".into(), e.max_num_batched_tokens.into());
    m.insert("max_num_seqs".into(), e.max_num_seqs.into());
    m.insert("max_model_len".into(), e.max_model_len.into());
    m.insert("block_size".into(), e.block_size.into());
    m.insert("gpu_memory_utilization".into(), serde_json::json!(e.gpu_memory_utilization));
    m.insert("enable_prefix_caching".into(), e.enable_prefix_caching.into());
    m.insert("enable_chunked_prefill".into(), e.enable_chunked_prefill.into());
    m.insert("long_prefill_token_threshold".into(), e.long_prefill_token_threshold.into());
    m.insert("async_scheduling".into(), e.async_scheduling.into());
    m.insert("enable_expert_parallel".into(), e.enable_expert_parallel.into());
    m.insert("generation_config".into(), serde_json::to_value(e.generation_config).expect("enum serializes"));
    // How sure the latencies are: the model that priced the steps, whether it rests on
    // measurements of this GPU, and its error band (a constant step time has none).
    m.insert("step_time_model".into(), case.step_model_name().into());
    if let Some(band) = case.error_band() {
        m.insert("step_time_calibrated".into(), case.step_time_calibrated().into());
        m.insert("error_band".into(), serde_json::json!(band));
        // What caps compute-bound steps in a saturated vLLM server, and where it comes from.
        let vllm = case.engine.kind == crate::scenario::file::EngineKind::Vllm;
        if let Some(s) = crate::hardware::sustained::sustained(&case.gpu).filter(|_| vllm) {
            m.insert("sustained_matmul_fraction".into(), serde_json::json!(s.fraction));
            m.insert("sustained_basis".into(), s.describe().into());
        }
    }
    if let Some(price) = &case.price {
        m.insert("usd_per_gpu_hour".into(), serde_json::json!(price.usd_per_gpu_hour));
        m.insert("price_basis".into(), price.basis.clone().into());
    }
    // Where a model or GPU read at run time came from (--catalog, a Hugging Face config.json),
    // with the hash of the file, so the result can be reproduced; absent for built-in entries.
    if let Some(origin) = &case.model.origin {
        m.insert("model_file".into(), origin.to_json());
    }
    if let Some(origin) = &case.gpu.origin {
        m.insert("gpu_file".into(), origin.to_json());
    }
    if let Some(d) = &case.disagg {
        let pool = |p: &crate::scenario::Pool| {
            serde_json::json!({"gpu": p.gpu.name, "tp": p.tp, "replicas": p.replicas,
                "router": serde_json::to_value(p.router).expect("router serializes"),
                "usd_per_gpu_hour": p.price.as_ref().map(|x| x.usd_per_gpu_hour)})
        };
        m.insert(
            "disaggregation".into(),
            serde_json::json!({"prefill": pool(&d.prefill), "decode": pool(&d.decode), "link": d.link_name,
                "link_gb_per_s": d.link.bytes_per_s / 1e9, "link_latency_us": d.link.latency_s * 1e6}),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 14
    /// A run that breaks an invariant is not reported as an outcome: it becomes an internal
    /// error that names the scenario, the case, the seed and how to rerun it.
    #[test]
    fn issue_14_a_broken_invariant_is_an_internal_error_naming_case_seed_and_command() {
        let text = r#"{"name": "s", "base": {"model": "qwen2.5-0.5b", "gpu": "a100-40gb",
            "step_time": {"model": "constant", "step_ms": 1}, "workload": {"arrival": {"rate": 5}, "num_requests": 3}}}"#;
        let scenario = crate::scenario::parse(text, "s.json").expect("a valid scenario");
        let case = &scenario.cases[0];
        let mut result = run_case(case, 7, Capture::default());
        assert_eq!(InvariantViolation::check(&scenario, case, 7, &result), Ok(()));
        result.violations.push("time went backwards".into());
        let text = InvariantViolation::check(&scenario, case, 7, &result).unwrap_err().to_string();
        assert_eq!(
            text,
            "internal error (a bug in symbiote): scenario `s`, case `base`, seed 7: time went backwards; \
             reproduce with `symbiote run <the file of scenario s> --seeds 7`"
        );
    }
}
