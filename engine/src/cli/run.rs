//! `run`, `replay`, `merge`, `validate` and `check`: scenarios in, reports out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::hardware::Quant;
use crate::report::metrics::Capture;
use crate::report::{markdown, write::write_atomic, Report};
use crate::runner::{assemble, jobs, read_run, run_jobs, InvariantViolation, RunOptions};
use crate::scenario::{self, Scenario};

use super::*;

/// Options of `symbiote run` (and of `replay`, which runs a generated scenario).
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub out: PathBuf,
    pub seeds: Option<String>,
    pub jobs: Option<usize>,
    pub scale: Option<f64>,
    pub timeline_ms: Option<u64>,
    pub requests: bool,
    pub resume: bool,
    pub shard: Option<String>,
    pub quiet: bool,
    /// Also write each run as a `vllm bench serve` result file.
    pub vllm_bench_json: Option<PathBuf>,
    /// Percentiles added to the metrics, like vLLM's `--metric-percentiles` (`50,90,95,99`).
    pub percentiles: Option<String>,
    /// Prices per GPU-hour that replace the catalog's (`--prices FILE`, JSON or CSV).
    pub prices: Option<PathBuf>,
    /// Per-request latency samples kept whole per metric (`--exact-percentiles`); `None`: all.
    pub exact_percentiles: Option<u64>,
    /// Also write each report.html chart as `png/<chart>.png` (`--png`).
    pub png: bool,
}

/// `symbiote run`.
pub fn cmd_run(paths: &[PathBuf], args: &RunArgs) -> Result<u8> {
    let files = scenario_files(paths)?;
    match load_all(&files) {
        Ok(scenarios) => {
            let sources: Vec<(String, PathBuf)> = scenarios.iter().map(|s| s.name.clone()).zip(files).collect();
            run_loaded(scenarios, args).map_err(|e| {
                with_reproduce(e, |v| {
                    let file =
                        sources.iter().find(|(name, _)| *name == v.scenario).map(|(_, f)| f.display().to_string());
                    let scale = args.scale.map_or(String::new(), |s| format!(" --scale {s}"));
                    file.map(|f| format!("symbiote run {f} --seeds {}{scale}", v.seed))
                })
            })
        }
        Err(problems) => Ok(print_problems(&problems)),
    }
}

/// Adds the command that reproduces a run to an invariant violation (an internal error),
/// when `command` knows it; other errors pass through.
fn with_reproduce(error: anyhow::Error, command: impl Fn(&InvariantViolation) -> Option<String>) -> anyhow::Error {
    match error.downcast::<InvariantViolation>() {
        Ok(mut violation) => {
            violation.command = command(&violation).or(violation.command);
            violation.into()
        }
        Err(other) => other,
    }
}

/// The failed expectations of a report, one line each (an unexpected outcome included).
fn failure_lines(report: &Report) -> Vec<String> {
    let runs = report.cases.iter().flat_map(|c| c.runs.iter().map(move |r| (c, r)));
    runs.flat_map(|(c, r)| {
        r.expectations.iter().filter(|e| !e.pass).map(move |e| {
            format!(
                "{}: case `{}` seed {}: expected {}; {}",
                crate::text::clip(&report.scenario),
                crate::text::clip(&c.name),
                r.seed,
                e.what,
                e.detail
            )
        })
    })
    .collect()
}

/// Failed expectations printed per scenario before the rest are counted.
const MAX_FAILURE_LINES: usize = 20;

/// The longest timeline sampling interval; beyond it milliseconds overflow the clock's nanoseconds.
const MAX_TIMELINE_INTERVAL_MS: u64 = 3_600_000_000;

fn run_loaded(mut scenarios: Vec<Scenario>, args: &RunArgs) -> Result<u8> {
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build_global()?;
    }
    apply_run_args(&mut scenarios, args)?;
    let flags = run_flags(&scenarios, args)?;
    let mut all_pass = true;
    let mut reports = Vec::new();
    for scenario in &scenarios {
        for warning in warnings(scenario) {
            eprintln!("warning: {warning}");
        }
        crate::verbosity::detail(|| case_details(scenario).join("\n"));
        let Some(report) = run_and_write(scenario, &args.out, &flags)? else {
            if !args.quiet {
                let (k, n) = flags.shard.expect("only shards return no report");
                println!(
                    "{}: shard {k}/{n} written under {}",
                    scenario.name,
                    args.out.join(scenario.folder()).display()
                );
            }
            continue;
        };
        all_pass &= report.all_expectations_pass();
        if !args.quiet {
            println!("{}\n{}", scenario.name, markdown::table(&report));
            if let Some(table) = markdown::offload_table(&report) {
                println!("CPU KV offload (shares of admitted tokens by where they came from)\n{table}");
            }
            if let Some(findings) = &report.findings {
                println!("{}\n", findings.headline);
            }
            println!("{}", markdown::summary_line(&report));
            if let Some(line) = markdown::sureness_line(&report) {
                println!("{line}");
            }
            let dir = args.out.join(scenario.folder());
            println!(
                "wrote {}: open {} (charts), report.md (tables) or report.json (every number){}\n",
                dir.display(),
                dir.join("report.html").display(),
                if flags.png { format!("; the charts as PNG in {}", dir.join("png").display()) } else { String::new() }
            );
        }
        // Failures go to stderr even with --quiet: the exit code alone does not say which run.
        // A sweep may fail thousands of runs: the first few say enough, report.md has them all.
        let failures = failure_lines(&report);
        failures.iter().take(MAX_FAILURE_LINES).for_each(|line| eprintln!("failed: {line}"));
        if failures.len() > MAX_FAILURE_LINES {
            eprintln!(
                "failed: ... and {} more expectations; report.md under {} lists them all",
                failures.len() - MAX_FAILURE_LINES,
                args.out.join(scenario.folder()).display()
            );
        }
        reports.push(report);
    }
    if reports.len() > 1 {
        write_index(&args.out, &reports)?;
        if !args.quiet {
            println!("open {} for all {} reports", args.out.join("index.md").display(), reports.len());
        }
    }
    if let (Some(export), false) = (&flags.vllm_bench, args.quiet) {
        let what = if export.per_run { "results, one per run" } else { "result" };
        println!("vllm bench serve {what}: {}", export.pattern());
    }
    Ok(if all_pass { EXIT_OK } else { EXIT_FAILED })
}

/// What a run of `scenario` warns of before it starts: cases whose kernel-table step model
/// falls back to the roofline.
pub fn warnings(scenario: &Scenario) -> Vec<String> {
    let fallbacks = scenario.cases.iter().filter_map(|case| case.kernel_fallback().map(|why| (case, why)));
    fallbacks
        .map(|(case, why)| format!("{}: case {}: {why}; priced with the roofline", scenario.name, case.name))
        .collect()
}

/// What `-v` says of each case before it runs: model and GPU (and the catalog file each came
/// from when not built in), precision, replicas, and the step-time model that prices it with
/// its error band.
pub fn case_details(scenario: &Scenario) -> Vec<String> {
    let from = |origin: &Option<crate::hardware::user_catalog::Origin>| {
        origin.as_ref().map(|o| format!(" (from {})", o.file)).unwrap_or_default()
    };
    let mut lines = vec![format!(
        "{}: {} cases x {} seeds: {}",
        scenario.name,
        scenario.cases.len(),
        scenario.seeds.len(),
        scenario.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    )];
    lines.extend(scenario.cases.iter().map(|case| {
        let how_sure = match case.error_band() {
            Some(band) => format!(
                ", {}, error band {:.0}%",
                if case.step_time_calibrated() { "calibrated" } else { "UNCALIBRATED" },
                band * 100.0
            ),
            None => String::new(),
        };
        format!(
            "{}: case {}: model {}{}, gpu {}{}, {} tp {} x {} replicas; step time: {}{how_sure}",
            scenario.name,
            case.name,
            case.model.name,
            from(&case.model.origin),
            case.gpu.name,
            from(&case.gpu.origin),
            case.quant,
            case.tp,
            case.replicas,
            case.step_model_name()
        )
    }));
    lines
}

/// Applies `args` to the loaded scenarios as `symbiote run` does: `--seeds`, `--scale`,
/// `--percentiles` and `--prices` (checked first, with the flag named in the error).
pub fn apply_run_args(scenarios: &mut [Scenario], args: &RunArgs) -> Result<()> {
    // Beyond 1000x, scaled durations and row counts leave the ranges validation checked.
    if args.scale.is_some_and(|s| !(1e-6..=1e3).contains(&s)) {
        bail!("--scale must be a factor within 1e-6..1000");
    }
    if args.timeline_ms.is_some_and(|ms| ms > MAX_TIMELINE_INTERVAL_MS) {
        bail!("--timeline-interval-ms must be at most {MAX_TIMELINE_INTERVAL_MS} (1000 hours)");
    }
    let seeds = args.seeds.as_deref().map(parse_seeds).transpose()?;
    let percentiles = args.percentiles.as_deref().map(parse_percentiles).transpose()?.unwrap_or_default();
    let prices = match &args.prices {
        Some(path) => crate::hardware::PriceBook::with_file(path)?,
        None => crate::hardware::PriceBook::builtin(),
    };
    for scenario in scenarios.iter_mut() {
        scenario.set_prices(&prices);
        if let Some(seeds) = &seeds {
            scenario.seeds = seeds.clone();
        }
        if let Some(scale) = args.scale {
            scenario.scale(scale);
        }
        scenario.set_percentiles(&percentiles);
    }
    Ok(())
}

/// What `args` asks of a run beyond the scenarios themselves: what to capture, a progress bar
/// (only on a terminal, never with `quiet`), resume, shard and `vllm bench serve` files.
pub fn run_flags(scenarios: &[Scenario], args: &RunArgs) -> Result<RunFlags> {
    Ok(RunFlags {
        capture: Capture {
            requests: args.requests,
            timeline: args.timeline_ms.map(|ms| crate::sim::Nanos::from_millis(ms.max(1))),
            exact_samples: args.exact_percentiles,
            ..Capture::default()
        },
        progress: !args.quiet && std::io::stdout().is_terminal(),
        resume: args.resume,
        shard: args.shard.as_deref().map(parse_shard).transpose()?,
        vllm_bench: args.vllm_bench_json.as_deref().map(|path| bench_export(path, scenarios)).transpose()?,
        png: args.png,
    })
}

/// `symbiote validate`.
pub fn cmd_validate(paths: &[PathBuf], quiet: bool) -> Result<u8> {
    let files = scenario_files(paths)?;
    match load_all(&files) {
        Ok(scenarios) => {
            for s in scenarios.iter().filter(|_| !quiet) {
                println!("{}: {} cases x {} seeds", s.name, s.cases.len(), s.seeds.len());
            }
            Ok(EXIT_OK)
        }
        Err(problems) => Ok(print_problems(&problems)),
    }
}

/// What `symbiote merge` must know of how the shards ran.
#[derive(Clone, Debug, Default)]
pub struct MergeArgs {
    pub seeds: Option<String>,
    pub scale: Option<f64>,
    pub percentiles: Option<String>,
    pub quiet: bool,
}

/// `symbiote merge`.
pub fn cmd_merge(scenario: &Path, dirs: &[PathBuf], out: &Path, args: &MergeArgs) -> Result<u8> {
    let mut scenario = match crate::scenario::load(scenario) {
        Ok(s) => s,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    if let Some(seeds) = &args.seeds {
        scenario.seeds = parse_seeds(seeds)?;
    }
    if let Some(scale) = args.scale {
        if !(1e-6..=1e3).contains(&scale) {
            bail!("--scale must be a factor within 1e-6..1000");
        }
        scenario.scale(scale);
    }
    scenario.set_percentiles(&args.percentiles.as_deref().map(parse_percentiles).transpose()?.unwrap_or_default());
    let report = merge(&scenario, dirs, out)?;
    let dir = out.join(scenario.folder());
    if !args.quiet {
        println!(
            "merged {} runs into {}: open {}",
            report.cases.iter().map(|c| c.runs.len()).sum::<usize>(),
            dir.display(),
            dir.join("report.html").display()
        );
    }
    Ok(if report.all_expectations_pass() { EXIT_OK } else { EXIT_FAILED })
}

/// Arguments of `symbiote replay`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReplayArgs {
    pub trace: PathBuf,
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub gpu: String,
    #[arg(long, value_enum, default_value = "fp16")]
    pub quant: Quant,
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    #[arg(long, value_enum, default_value = "round-robin")]
    pub router: crate::serving::router::RouterPolicy,
    /// azure, mooncake, burstgpt (default: from the file name).
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long)]
    pub speedup: Option<f64>,
    #[arg(long)]
    pub start_s: Option<f64>,
    #[arg(long)]
    pub end_s: Option<f64>,
    #[arg(long)]
    pub limit: Option<u64>,
    /// Skip unreadable rows (counted in the report) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    #[arg(long)]
    pub max_model_len: Option<u32>,
}

/// `symbiote replay`: a one-case scenario around a trace, run like any other.
pub fn cmd_replay(replay: &ReplayArgs, args: &RunArgs) -> Result<u8> {
    match replay_scenario(replay)? {
        Ok(scenario) => run_loaded(vec![scenario], args)
            .map_err(|e| with_reproduce(e, |v| Some(format!("{} --seeds {}", replay_command(replay), v.seed)))),
        Err(problems) => Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    }
}

/// The one-case scenario `symbiote replay` runs: the trace on the fleet `replay` describes.
/// The outer `Err` is a trace path without a file name; the inner one the scenario's problems.
pub fn replay_scenario(replay: &ReplayArgs) -> Result<std::result::Result<Scenario, Vec<crate::scenario::Diagnostic>>> {
    let dir = replay.trace.parent().map_or_else(|| PathBuf::from("."), |p| p.to_path_buf());
    let file = replay.trace.file_name().and_then(|f| f.to_str()).context("the trace path has no file name")?;
    let stem = file.split('.').next().unwrap_or("trace");
    let mut trace = serde_json::json!({"path": file, "on_bad_row": if replay.skip_bad_rows { "skip" } else { "fail" }});
    for (key, value) in [
        ("format", replay.format.clone().map(serde_json::Value::from)),
        ("speedup", replay.speedup.map(serde_json::Value::from)),
        ("start_s", replay.start_s.map(serde_json::Value::from)),
        ("end_s", replay.end_s.map(serde_json::Value::from)),
        ("limit", replay.limit.map(serde_json::Value::from)),
    ] {
        if let Some(value) = value {
            trace[key] = value;
        }
    }
    let mut engine = serde_json::json!({});
    if let Some(len) = replay.max_model_len {
        engine["max_model_len"] = len.into();
    }
    let scenario = serde_json::json!({
        "name": format!("replay_{stem}"),
        "description": format!("Replay of {file} on {} x {} ({} on {}, tp {}, router {:?}).", replay.replicas, replay.gpu, replay.model, replay.gpu, replay.tp, replay.router),
        "base": {
            "model": super::model_arg(&replay.model), "gpu": replay.gpu, "quant": replay.quant, "tp": replay.tp,
            "fleet": {"replicas": replay.replicas, "router": replay.router},
            "engine": engine,
            "workload": {"trace": trace}
        }
    });
    Ok(crate::scenario::parse_in(&scenario.to_string(), &replay.trace.display().to_string(), &dir))
}

/// The `symbiote replay` command line that `replay` stands for.
fn replay_command(replay: &ReplayArgs) -> String {
    use clap::ValueEnum;
    let name = |v: Option<clap::builder::PossibleValue>| v.map_or(String::new(), |v| v.get_name().to_string());
    let mut line = format!(
        "symbiote replay {} --model {} --gpu {} --quant {} --tp {} --replicas {} --router {}",
        replay.trace.display(),
        replay.model,
        replay.gpu,
        name(replay.quant.to_possible_value()),
        replay.tp,
        replay.replicas,
        name(replay.router.to_possible_value())
    );
    for (flag, value) in [
        ("format", replay.format.clone()),
        ("speedup", replay.speedup.map(|v| v.to_string())),
        ("start-s", replay.start_s.map(|v| v.to_string())),
        ("end-s", replay.end_s.map(|v| v.to_string())),
        ("limit", replay.limit.map(|v| v.to_string())),
        ("max-model-len", replay.max_model_len.map(|v| v.to_string())),
    ] {
        if let Some(value) = value {
            line.push_str(&format!(" --{flag} {value}"));
        }
    }
    if replay.skip_bad_rows {
        line.push_str(" --skip-bad-rows");
    }
    line
}

/// Arguments of `symbiote check`.
#[derive(Clone, Debug)]
pub struct CheckArgs {
    pub scenario: PathBuf,
    pub baseline: PathBuf,
    pub tolerance: String,
    pub metrics: Option<String>,
    pub update: bool,
    /// Print the comparison as JSON (`{"scenario", "tolerance", "rows", "regressed"}`).
    pub json: bool,
    /// `-q`: only the rows that regressed or went missing, and the verdict line.
    pub quiet: bool,
}

/// What a check found: the rows compared and how many regressed or went missing; or that the
/// baseline was rewritten (`--update`).
#[derive(Clone, Debug)]
pub enum CheckOutcome {
    Updated,
    Compared(CheckResult),
}

/// The comparison of a rerun with its baseline.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub scenario: String,
    pub tolerance: f64,
    pub rows: Vec<crate::report::check::Row>,
    /// Rows that regressed beyond the tolerance or are missing from the rerun.
    pub bad: usize,
    /// For a `vllm bench serve` baseline: the line saying which run it is compared as.
    pub vllm_line: Option<String>,
}

impl CheckResult {
    /// What `check --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"scenario": self.scenario, "tolerance": self.tolerance, "comparisons": self.rows.len(),
                           "regressed_or_missing": self.bad, "rows": self.rows})
    }
}

/// `symbiote check`: 0 when no metric got worse beyond the tolerance, 1 when one did, 2 on
/// bad input. The baseline is a symbiote report.json or a `vllm bench serve` result file
/// (told apart by their keys), which a scenario of one case is compared with.
pub fn cmd_check(args: &CheckArgs) -> Result<u8> {
    let scenario = match crate::scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    let result = match check_scenario(scenario, args)? {
        CheckOutcome::Updated => {
            if !args.quiet {
                println!("baseline {} updated", args.baseline.display());
            }
            return Ok(EXIT_OK);
        }
        CheckOutcome::Compared(result) => result,
    };
    let code = if result.bad == 0 { EXIT_OK } else { EXIT_FAILED };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result.to_json())?);
        return Ok(code);
    }
    if let (Some(line), false) = (&result.vllm_line, args.quiet) {
        println!("{line}");
    }
    let shown: Vec<crate::report::check::Row> = result
        .rows
        .iter()
        .filter(|r| {
            !args.quiet
                || matches!(r.status, crate::report::check::Status::Regressed | crate::report::check::Status::Missing)
        })
        .cloned()
        .collect();
    if !shown.is_empty() {
        print!("{}", crate::report::check::table(&shown));
    }
    println!(
        "\n{}: {} comparisons, {} regressed or missing (tolerance {:.2}%)",
        result.scenario,
        result.rows.len(),
        result.bad,
        result.tolerance * 100.0
    );
    Ok(code)
}

/// [`cmd_check`] on a loaded scenario, printing nothing (the Python package's `check`): reruns
/// it and compares it with `args.baseline`, or rewrites the baseline with `args.update`.
pub fn check_scenario(mut scenario: Scenario, args: &CheckArgs) -> Result<CheckOutcome> {
    let tolerance = parse_tolerance(&args.tolerance)?;
    let baseline = match (args.update, args.baseline.exists()) {
        (true, false) => None,
        _ => Some(read_baseline(&args.baseline)?),
    };
    let vllm = baseline.as_ref().filter(|b| crate::report::vllm_bench::is_bench_result(b));
    if args.update && vllm.is_some() {
        bail!(
            "{} is a `vllm bench serve` result; --update would replace it with a symbiote report, so give --update another path",
            args.baseline.display()
        );
    }
    let vllm = vllm.map(|b| prepare_check(b, &mut scenario, &args.baseline)).transpose()?;
    crate::verbosity::detail(|| case_details(&scenario).join("\n"));
    let report = crate::runner::run_scenario(&scenario, &RunOptions::default()).map_err(|e| {
        with_reproduce(e, |v| Some(format!("symbiote run {} --seeds {}", args.scenario.display(), v.seed)))
    })?;
    if args.update {
        write_atomic(&args.baseline, report.to_json().as_bytes())
            .with_context(|| format!("writing {}", args.baseline.display()))?;
        return Ok(CheckOutcome::Updated);
    }
    let baseline = baseline.expect("read above unless updating");
    let (baseline, defaults, vllm_line) = match vllm {
        Some((as_report, line)) => {
            let defaults = crate::cli::default_metrics(&baseline);
            (as_report, defaults, Some(line))
        }
        None => {
            if baseline.get("cases").is_none() {
                bail!(
                    "{} is neither a symbiote report.json (no `cases`) nor a `vllm bench serve` result (no `completed`, `duration` and metrics)",
                    args.baseline.display()
                );
            }
            if baseline["scenario"] != scenario.name.as_str() {
                bail!(
                    "{} is the baseline of `{}`, not of `{}`",
                    args.baseline.display(),
                    baseline["scenario"],
                    scenario.name
                );
            }
            (baseline, crate::report::check::DEFAULT_METRICS.iter().map(|m| m.to_string()).collect(), None)
        }
    };
    let metrics: Vec<String> = match &args.metrics {
        Some(list) => list.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
        None => defaults,
    };
    let now = serde_json::to_value(&report).expect("report serializes");
    let known = report.cases.first().and_then(|c| c.runs.first()).map(|r| r.metrics.clone()).unwrap_or_default();
    if let Some(unknown) = metrics.iter().find(|m| !known.contains_key(m.as_str())) {
        bail!(
            "unknown metric `{unknown}`; report metrics are: {}",
            known.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let rows = crate::report::check::compare(&baseline, &now, &metrics, tolerance);
    let bad = rows
        .iter()
        .filter(|r| matches!(r.status, crate::report::check::Status::Regressed | crate::report::check::Status::Missing))
        .count();
    Ok(CheckOutcome::Compared(CheckResult { scenario: scenario.name.clone(), tolerance, rows, bad, vllm_line }))
}

/// A baseline file as JSON: a report.json or a `vllm bench serve` result.
fn read_baseline(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the baseline {}; create it with --update", path.display()))?;
    let values: Vec<serde_json::Value> =
        serde_json::Deserializer::from_str(&text).into_iter().collect::<Result<_, _>>().with_context(|| {
            format!("{} is neither a report.json nor a `vllm bench serve` result (not JSON)", path.display())
        })?;
    match values.len() {
        1 => Ok(values.into_iter().next().expect("one value")),
        0 => bail!("{} is empty; create a baseline with --update", path.display()),
        n => bail!(
            "{} holds {n} JSON values (`vllm bench serve --append-result` appends one per run); keep the one to compare with",
            path.display()
        ),
    }
}

/// Scenario files named on the command line: files as given, directories as their `*.json`
/// files in name order.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                bail!("{} holds no .json scenario files", path.display());
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} does not exist; give a scenario file or a directory of them", path.display());
        }
    }
    Ok(files)
}

/// Loads and validates every file; all problems of all files are returned together.
pub fn load_all(files: &[PathBuf]) -> std::result::Result<Vec<Scenario>, Vec<String>> {
    let mut scenarios = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match scenario::load(file) {
            Ok(s) => scenarios.push(s),
            Err(diags) => problems.extend(diags.iter().map(|d| d.to_string())),
        }
    }
    let mut folders: std::collections::BTreeMap<String, &Scenario> = std::collections::BTreeMap::new();
    for s in &scenarios {
        let Some(first) = folders.insert(scenario::names::collision_key(&s.name), s) else { continue };
        let clip = crate::text::clip;
        if first.name == s.name {
            problems
                .push(format!("two scenario files are both named `{}`; their reports would collide", clip(&s.name)));
        } else {
            problems.push(format!(
                "scenarios `{}` and `{}` would both write their reports to the folder `{}`; rename one (folder names keep letters, digits and `-_.=`, turn the rest into `_` and ignore case)",
                clip(&first.name),
                clip(&s.name),
                clip(&s.folder())
            ));
        }
    }
    if std::env::var_os("SYMBIOTE_STEP_BY_STEP").is_some_and(|v| v == "1") {
        // Turns off the decode fast path, to compare its results with the full path's.
        for case in scenarios.iter_mut().flat_map(|s| s.cases.iter_mut()) {
            case.limits.step_by_step = true;
        }
    }
    if problems.is_empty() {
        Ok(scenarios)
    } else {
        Err(problems)
    }
}

/// What `symbiote run` does beyond running: capture, resume, shard, vLLM result files.
#[derive(Clone, Debug, Default)]
pub struct RunFlags {
    pub capture: Capture,
    pub progress: bool,
    pub resume: bool,
    pub shard: Option<(usize, usize)>,
    pub vllm_bench: Option<crate::report::vllm_bench::BenchExport>,
    /// Write report.html's charts as PNGs too.
    pub png: bool,
}

/// Runs one scenario and writes `out/<folder>/` ([`Scenario::folder`]): `report.json`,
/// `report.md`, `summary.csv`, and per run `runs/<case>__seed<N>.json` (plus `timeline/` and
/// `requests/` CSVs when captured).
/// A shard writes only its runs (`symbiote merge` assembles the report); returns `None` then.
pub fn run_and_write(scenario: &Scenario, out: &Path, flags: &RunFlags) -> Result<Option<Report>> {
    Ok(run_and_write_keeping(scenario, out, flags, |_, _, _| ())?.map(|(report, _)| report))
}

/// [`run_and_write`], also returning what `keep` takes from each run's result, in report order
/// ([`crate::runner::run_jobs_keeping`]).
pub fn run_and_write_keeping<T: Send>(
    scenario: &Scenario,
    out: &Path,
    flags: &RunFlags,
    keep: impl Fn(&crate::scenario::Case, u64, &crate::sim::run::RunResult) -> T + Sync,
) -> Result<Option<(Report, Vec<Option<T>>)>> {
    let dir = out.join(scenario.folder());
    prepare_folder(out, &dir, !flags.resume && flags.shard.is_none())?;
    let options = RunOptions {
        dir: Some(dir.clone()),
        capture: flags.capture,
        progress: flags.progress,
        resume: flags.resume,
        shard: flags.shard,
        vllm_bench: flags.vllm_bench.clone(),
    };
    if flags.shard.is_some() {
        run_jobs(scenario, &options)?;
        return Ok(None);
    }
    let (runs, kept) = crate::runner::run_jobs_keeping(scenario, &options, keep)?.into_iter().unzip();
    let report = assemble(scenario, runs);
    write_reports(&dir, &report, scenario.slo.as_ref(), flags.png)?;
    Ok(Some((report, kept)))
}

/// Checks that a scenario's report folder and its `runs/`, `timeline/` and `requests/`
/// folders, where they exist, are real folders inside `out`, and with `clear` removes the
/// last three (what a previous run left).
fn prepare_folder(out: &Path, dir: &Path, clear: bool) -> Result<()> {
    if !real_folder_inside(out, dir)? {
        return Ok(());
    }
    for sub in ["runs", "timeline", "requests"] {
        let stale = dir.join(sub);
        if real_folder_inside(out, &stale)? && clear {
            std::fs::remove_dir_all(&stale).with_context(|| format!("clearing {}", stale.display()))?;
        }
    }
    Ok(())
}

/// Whether `path` is a folder (false when it is absent or a file). A symlink, or a folder
/// whose real path is outside `out`'s, is an error: writing or clearing through it would
/// touch files outside `--out`.
fn real_folder_inside(out: &Path, path: &Path) -> Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if meta.file_type().is_symlink() {
        bail!(
            "{} is a symbolic link; symbiote writes and clears report folders only inside --out, so remove the link or choose another --out",
            path.display()
        );
    }
    if !meta.is_dir() {
        return Ok(false);
    }
    let real_out = out.canonicalize().with_context(|| format!("resolving --out {}", out.display()))?;
    let real = path.canonicalize().with_context(|| format!("resolving {}", path.display()))?;
    if !real.starts_with(&real_out) {
        bail!(
            "{} resolves to {}, outside --out {}; remove the link on the way or choose another --out",
            path.display(),
            real.display(),
            real_out.display()
        );
    }
    Ok(true)
}

/// Writes a scenario's report files into its folder.
/// With `png`, also each chart of report.html as `png/<chart id>.png` (`report::png`).
pub fn write_reports(
    dir: &Path,
    report: &Report,
    slo: Option<&crate::scenario::file::SloFile>,
    png: bool,
) -> Result<()> {
    let html = crate::report::html::render(report, &crate::runner::read_series(dir, report), slo);
    if png {
        let charts = crate::report::png::charts(&html)
            .map_err(|e| anyhow::anyhow!("drawing the charts of {} as PNG: {e}", dir.join("report.html").display()))?;
        for chart in charts {
            // Chart ids are the page's own constants (`cdf-ttft`, `bars-0`), never user input.
            let path = dir.join("png").join(format!("{}.png", chart.id));
            write_atomic(&path, &chart.png).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let files = [
        ("report.json", report.to_json()),
        ("report.md", markdown::render(report)),
        ("report.html", html),
        ("summary.csv", crate::report::csv::summary(report)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `symbiote merge`: assembles the report of `scenario` from the runs that shards wrote
/// under `dirs` (each a `--out` folder), into `out/<folder>/`, byte for byte what an unsharded
/// run writes. Every run must be present, written for the same scenario content.
pub fn merge(scenario: &Scenario, dirs: &[PathBuf], out: &Path) -> Result<Report> {
    let target = out.join(scenario.folder());
    prepare_folder(out, &target, false)?;
    let mut runs = Vec::new();
    for (case, seed) in jobs(scenario) {
        let found = dirs.iter().find_map(|d| {
            let dir = d.join(scenario.folder());
            read_run(&dir, scenario, case, seed).map(|run| (dir, run))
        });
        let Some((dir, run)) = found else {
            anyhow::bail!(
                "no shard holds case `{}` seed {seed} for this scenario's content; run the missing shard (or the same scenario file) first",
                scenario.cases[case].name
            );
        };
        let stem = crate::runner::run_stem(&scenario.cases[case].name, seed);
        for (sub, ext) in [("runs", "json"), ("timeline", "csv"), ("requests", "csv")] {
            let from = dir.join(sub).join(format!("{stem}.{ext}"));
            let to = target.join(sub).join(format!("{stem}.{ext}"));
            if from.is_file() && from != to {
                let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
                write_atomic(&to, &bytes).with_context(|| format!("writing {}", to.display()))?;
            }
        }
        runs.push(run);
    }
    let report = assemble(scenario, runs);
    write_reports(&target, &report, scenario.slo.as_ref(), false)?;
    Ok(report)
}

/// `out/index.md`: one line per scenario run, linking its report, with its headline.
pub fn write_index(out: &Path, reports: &[Report]) -> Result<()> {
    let mut text = String::from("# symbiote reports\n\n");
    for report in reports {
        let failed: usize =
            report.cases.iter().flat_map(|c| &c.runs).map(|r| r.expectations.iter().filter(|e| !e.pass).count()).sum();
        let headline = match &report.findings {
            Some(f) => f.headline.clone(),
            None => format!("{} cases x {} seeds", report.cases.len(), report.seeds.len()),
        };
        let status = if failed == 0 { String::new() } else { format!(" ({failed} expectations failed)") };
        let folder = scenario::names::file_name(&report.scenario);
        text.push_str(&format!("- [{}]({folder}/report.md): {headline}{status}\n", report.scenario));
    }
    let path = out.join("index.md");
    write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 14
    /// The CLI completes an invariant violation with the command line that reruns the run, and
    /// leaves other errors alone.
    #[test]
    fn issue_14_an_invariant_violation_names_the_command_that_reproduces_it() {
        let violation = InvariantViolation {
            scenario: "s".into(),
            case: "c".into(),
            seed: 3,
            violations: vec!["KV blocks not conserved".into()],
            command: None,
        };
        let error = with_reproduce(violation.into(), |v| Some(format!("symbiote run s.json --seeds {}", v.seed)));
        assert!(error.to_string().ends_with("reproduce with `symbiote run s.json --seeds 3`"), "{error}");
        assert_eq!(with_reproduce(anyhow::anyhow!("plain"), |_| Some("x".into())).to_string(), "plain");
        let replay = ReplayArgs {
            trace: PathBuf::from("traces/t.csv"),
            model: "llama-3.1-8b".into(),
            gpu: "a100-40gb".into(),
            quant: Quant::Fp16,
            tp: 1,
            replicas: 2,
            router: crate::serving::router::RouterPolicy::LeastKv,
            format: None,
            speedup: None,
            start_s: None,
            end_s: None,
            limit: Some(100),
            skip_bad_rows: true,
            max_model_len: Some(4096),
        };
        assert_eq!(
            replay_command(&replay),
            "symbiote replay traces/t.csv --model llama-3.1-8b --gpu a100-40gb --quant fp16 --tp 1 --replicas 2 \
             --router least-kv --limit 100 --max-model-len 4096 --skip-bad-rows"
        );
    }
}
