//! `run` and `replay`: a scenario (file, JSON text, or the one `symbiote replay` builds around a
//! trace) is prepared and run by the CLI's own functions (`cli::apply_run_args`,
//! `cli::run_flags`, `runner::run_jobs_keeping` or `cli::run_and_write_keeping`), with the GIL
//! released; each run's timeline and requests are kept as the CSV text the CLI writes.

use std::path::PathBuf;

use anyhow::Result;
use pyo3::prelude::*;
use symbiote::cli::{self, RunArgs, RunFlags};
use symbiote::report::{csv, Report};
use symbiote::runner::{self, RunOptions};
use symbiote::scenario::{Case, Scenario};
use symbiote::sim::run::RunResult;

use crate::{problems_err, to_py_err};

/// The options of `symbiote run` that make sense from Python, as the package passes them (a
/// dict with every key). `--resume` and `--shard` are left out: a Python caller gets the whole
/// report back from one call.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Options {
    seeds: Option<String>,
    scale: Option<f64>,
    percentiles: Option<String>,
    prices: Option<PathBuf>,
    jobs: Option<usize>,
    timeline_interval_ms: Option<u64>,
    requests: bool,
    out: Option<PathBuf>,
    vllm_bench_json: Option<PathBuf>,
}

/// One run's captured data: case name, seed, timeline CSV, requests CSV.
type RunData = (String, u64, Option<String>, Option<String>);

/// What a simulation hands back: report.json, summary.csv, each run's data in report order,
/// the report folder when `out` was given, and warnings the CLI would print first.
type Output = (String, String, Vec<RunData>, Option<String>, Vec<String>);

/// `symbiote run FILE`.
#[pyfunction]
pub fn run_file(py: Python<'_>, path: PathBuf, options: Options) -> PyResult<Output> {
    // The CLI's loader: the same checks and messages as `symbiote run FILE`.
    let mut scenarios = cli::load_all(std::slice::from_ref(&path)).map_err(|p| problems_err(&p))?;
    simulate(py, scenarios.pop().expect("one file, one scenario"), options)
}

/// `symbiote run` on scenario JSON text; `label` names it in messages and relative paths in it
/// start at `base_dir`.
#[pyfunction]
pub fn run_text(py: Python<'_>, text: &str, label: &str, base_dir: PathBuf, options: Options) -> PyResult<Output> {
    let scenario = symbiote::scenario::parse_in(text, label, &base_dir)
        .map_err(|p| problems_err(&p.iter().map(|d| d.to_string()).collect::<Vec<_>>()))?;
    simulate(py, scenario, options)
}

/// `symbiote replay TRACE --model ... ` with `argv` the replay flags after `replay`.
#[pyfunction]
pub fn replay(py: Python<'_>, argv: Vec<String>, options: Options) -> PyResult<Output> {
    let replay: cli::ReplayArgs = crate::args::parse("replay", argv)?;
    let scenario = cli::replay_scenario(&replay)
        .map_err(to_py_err)?
        .map_err(|p| problems_err(&p.iter().map(|d| d.to_string()).collect::<Vec<_>>()))?;
    simulate(py, scenario, options)
}

fn simulate(py: Python<'_>, scenario: Scenario, options: Options) -> PyResult<Output> {
    py.detach(|| simulate_detached(scenario, options)).map_err(to_py_err)
}

/// Runs `scenario` as `symbiote run` does, on a pool of `jobs` threads (default: all cores).
fn simulate_detached(scenario: Scenario, o: Options) -> Result<Output> {
    let args = RunArgs {
        out: o.out.clone().unwrap_or_default(),
        seeds: o.seeds,
        jobs: o.jobs,
        scale: o.scale,
        timeline_ms: o.timeline_interval_ms,
        requests: o.requests,
        resume: false,
        shard: None,
        quiet: true,
        vllm_bench_json: o.vllm_bench_json,
        percentiles: o.percentiles,
        prices: o.prices,
        // The CLI's default: exact percentiles up to a million samples per metric.
        exact_percentiles: None,
        png: false,
    };
    let mut scenarios = vec![scenario];
    cli::apply_run_args(&mut scenarios, &args)?;
    let flags = cli::run_flags(&scenarios, &args)?;
    let scenario = scenarios.pop().expect("one scenario");
    let warnings = cli::warnings(&scenario);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.map_or(0, |j| j.max(1))).build()?;
    let (report, kept) = pool.install(|| run(&scenario, &flags, &args, o.out.as_ref()))?;
    let dir = o.out.map(|out| out.join(scenario.folder()).display().to_string());
    Ok((report.to_json(), csv::summary(&report), kept, dir, warnings))
}

/// The report and every run's data, writing the report folder under `out` when given.
fn run(scenario: &Scenario, flags: &RunFlags, args: &RunArgs, out: Option<&PathBuf>) -> Result<(Report, Vec<RunData>)> {
    let keep = |case: &Case, seed: u64, result: &RunResult| -> RunData {
        let timeline = flags.capture.timeline.map(|_| csv::timeline(&result.metrics.timeline));
        // Phase analyses capture requests for themselves; hand them back only when asked.
        let requests = result.metrics.records.as_ref().filter(|_| args.requests).map(|r| csv::requests(r));
        (case.name.clone(), seed, timeline, requests)
    };
    let (report, kept) = match out {
        Some(out) => cli::run_and_write_keeping(scenario, out, flags, keep)?.expect("no shard, so a report"),
        None => {
            let options = RunOptions {
                dir: None,
                capture: flags.capture,
                progress: false,
                resume: false,
                shard: None,
                vllm_bench: flags.vllm_bench.clone(),
            };
            let (runs, kept): (Vec<_>, Vec<_>) =
                runner::run_jobs_keeping(scenario, &options, keep)?.into_iter().unzip();
            (runner::assemble(scenario, runs), kept)
        }
    };
    // Nothing is resumed from disk, so every run was kept.
    Ok((report, kept.into_iter().flatten().collect()))
}
