//! The commands behind the CLI, returning text and exit codes so that `main` stays a thin
//! parse-call-print layer and the commands are testable.

use std::path::{Path, PathBuf};

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};

use crate::hardware::memory::{self, MemoryConfig};
use crate::hardware::{Catalog, KvDtype, Quant};
use crate::report::metrics::Capture;
use crate::report::{markdown, write::write_atomic, Report};
use crate::runner::{assemble, jobs, read_run, run_jobs, RunOptions};
use crate::scenario::{self, Scenario};

/// Exit codes: 0 ok, 1 an expectation or check failed, 2 bad input or internal error.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

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
}

fn print_problems(problems: &[String]) -> u8 {
    problems.iter().for_each(|p| eprintln!("error: {p}"));
    EXIT_BAD_INPUT
}

/// `symbiote run`.
pub fn cmd_run(paths: &[PathBuf], args: &RunArgs) -> Result<u8> {
    let files = scenario_files(paths)?;
    match load_all(&files) {
        Ok(scenarios) => run_loaded(scenarios, args),
        Err(problems) => Ok(print_problems(&problems)),
    }
}

fn run_loaded(mut scenarios: Vec<Scenario>, args: &RunArgs) -> Result<u8> {
    if let Some(jobs) = args.jobs {
        rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build_global()?;
    }
    if args.scale.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
        bail!("--scale must be a positive number");
    }
    let seeds = args.seeds.as_deref().map(parse_seeds).transpose()?;
    let flags = RunFlags {
        capture: Capture {
            requests: args.requests,
            timeline: args.timeline_ms.map(|ms| crate::sim::Nanos::from_millis(ms.max(1))),
            queue: None,
        },
        progress: !args.quiet && std::io::stdout().is_terminal(),
        resume: args.resume,
        shard: args.shard.as_deref().map(parse_shard).transpose()?,
    };
    let mut all_pass = true;
    let mut reports = Vec::new();
    for scenario in &mut scenarios {
        if let Some(seeds) = &seeds {
            scenario.seeds = seeds.clone();
        }
        if let Some(scale) = args.scale {
            scenario.scale(scale);
        }
        let Some(report) = run_and_write(scenario, &args.out, flags)? else {
            if !args.quiet {
                let (k, n) = flags.shard.expect("only shards return no report");
                println!("{}: shard {k}/{n} written under {}", scenario.name, args.out.join(&scenario.name).display());
            }
            continue;
        };
        all_pass &= report.all_expectations_pass();
        if !args.quiet {
            println!("{}\n{}", scenario.name, markdown::table(&report));
            if let Some(findings) = &report.findings {
                println!("{}\n", findings.headline);
            }
            println!("wrote {}\n", args.out.join(&scenario.name).display());
        }
        reports.push(report);
    }
    if reports.len() > 1 {
        write_index(&args.out, &reports)?;
    }
    Ok(if all_pass { EXIT_OK } else { EXIT_FAILED })
}

/// `symbiote trace-stats`.
pub fn cmd_trace_stats(trace: &Path, format: Option<&str>) -> Result<u8> {
    let dir = trace.parent().map_or_else(|| PathBuf::from("."), |p| p.to_path_buf());
    let file = trace.file_name().and_then(|f| f.to_str()).context("the trace path has no file name")?;
    let format = format
        .map(|f| serde_json::from_value(serde_json::Value::String(f.to_string())))
        .transpose()
        .map_err(|_| anyhow::anyhow!("unknown --format; use azure, mooncake, burstgpt or generic"))?;
    let spec = crate::workload::trace::TraceSpec {
        path: file.to_string(),
        format,
        speedup: None,
        start_s: None,
        end_s: None,
        limit: None,
        on_bad_row: crate::workload::trace::BadRows::Fail,
        keep_failed: false,
        columns: None,
    };
    let s = crate::workload::trace::stats(&spec, &dir)?;
    let span = (s.last_arrival_ns - s.first_arrival_ns) as f64 / 1e9;
    println!(
        "{}: {} rows over {span:.3} s ({:.3} req/s)",
        trace.display(),
        s.rows,
        if span > 0.0 { (s.rows.max(1) - 1) as f64 / span } else { 0.0 }
    );
    println!(
        "prompt tokens {} (mean {:.1}), output tokens {} (mean {:.1})",
        s.prompt_tokens,
        s.prompt_tokens as f64 / s.rows.max(1) as f64,
        s.output_tokens,
        s.output_tokens as f64 / s.rows.max(1) as f64
    );
    if s.blocks > 0 {
        println!(
            "hash_ids: {} block references, {} hits with an unlimited prefix cache ({:.1}% of blocks, {:.1}% of prompt tokens)",
            s.blocks,
            s.hit_blocks,
            100.0 * s.hit_blocks as f64 / s.blocks as f64,
            100.0 * s.hit_tokens as f64 / s.prompt_tokens.max(1) as f64
        );
    }
    if s.skipped_failed > 0 {
        println!("skipped {} failed requests (zero response tokens)", s.skipped_failed);
    }
    Ok(EXIT_OK)
}

/// `symbiote validate`.
pub fn cmd_validate(paths: &[PathBuf]) -> Result<u8> {
    let files = scenario_files(paths)?;
    match load_all(&files) {
        Ok(scenarios) => {
            for s in scenarios {
                println!("{}: {} cases x {} seeds", s.name, s.cases.len(), s.seeds.len());
            }
            Ok(EXIT_OK)
        }
        Err(problems) => Ok(print_problems(&problems)),
    }
}

/// `symbiote merge`.
pub fn cmd_merge(scenario: &Path, dirs: &[PathBuf], out: &Path, seeds: Option<&str>, scale: Option<f64>) -> Result<u8> {
    let mut scenario = match crate::scenario::load(scenario) {
        Ok(s) => s,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    if let Some(seeds) = seeds {
        scenario.seeds = parse_seeds(seeds)?;
    }
    if let Some(scale) = scale {
        scenario.scale(scale);
    }
    let report = merge(&scenario, dirs, out)?;
    println!(
        "merged {} runs into {}",
        report.cases.iter().map(|c| c.runs.len()).sum::<usize>(),
        out.join(&scenario.name).display()
    );
    Ok(if report.all_expectations_pass() { EXIT_OK } else { EXIT_FAILED })
}

/// Arguments of `symbiote replay`.
#[derive(Clone, Debug)]
pub struct ReplayArgs {
    pub trace: PathBuf,
    pub model: String,
    pub gpu: String,
    pub quant: Quant,
    pub tp: u32,
    pub replicas: u32,
    pub router: crate::serving::router::RouterPolicy,
    pub format: Option<String>,
    pub speedup: Option<f64>,
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub limit: Option<u64>,
    pub skip_bad_rows: bool,
    pub max_model_len: Option<u32>,
}

/// `symbiote replay`: a one-case scenario around a trace, run like any other.
pub fn cmd_replay(replay: &ReplayArgs, args: &RunArgs) -> Result<u8> {
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
            "model": replay.model, "gpu": replay.gpu, "quant": replay.quant, "tp": replay.tp,
            "fleet": {"replicas": replay.replicas, "router": replay.router},
            "engine": engine,
            "workload": {"trace": trace}
        }
    });
    match crate::scenario::parse_in(&scenario.to_string(), &replay.trace.display().to_string(), &dir) {
        Ok(scenario) => run_loaded(vec![scenario], args),
        Err(problems) => Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    }
}

/// Arguments of `symbiote check`.
#[derive(Clone, Debug)]
pub struct CheckArgs {
    pub scenario: PathBuf,
    pub baseline: PathBuf,
    pub tolerance: String,
    pub metrics: Option<String>,
    pub update: bool,
}

/// `symbiote check`: 0 when no metric got worse beyond the tolerance, 1 when one did, 2 on
/// bad input.
pub fn cmd_check(args: &CheckArgs) -> Result<u8> {
    let scenario = match crate::scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    let tolerance = parse_tolerance(&args.tolerance)?;
    let report = crate::runner::run_scenario(&scenario, &RunOptions::default())?;
    if args.update {
        write_atomic(&args.baseline, report.to_json().as_bytes())
            .with_context(|| format!("writing {}", args.baseline.display()))?;
        println!("baseline {} updated", args.baseline.display());
        return Ok(EXIT_OK);
    }
    let text = std::fs::read_to_string(&args.baseline)
        .with_context(|| format!("reading the baseline {}; create it with --update", args.baseline.display()))?;
    let baseline: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a report.json", args.baseline.display()))?;
    if baseline["scenario"] != scenario.name.as_str() {
        bail!("{} is the baseline of `{}`, not of `{}`", args.baseline.display(), baseline["scenario"], scenario.name);
    }
    let metrics: Vec<String> = match &args.metrics {
        Some(list) => list.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
        None => crate::report::check::DEFAULT_METRICS.iter().map(|m| m.to_string()).collect(),
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
    print!("{}", crate::report::check::table(&rows));
    let bad = rows
        .iter()
        .filter(|r| matches!(r.status, crate::report::check::Status::Regressed | crate::report::check::Status::Missing))
        .count();
    println!(
        "\n{}: {} comparisons, {bad} regressed or missing (tolerance {:.2}%)",
        scenario.name,
        rows.len(),
        tolerance * 100.0
    );
    Ok(if bad == 0 { EXIT_OK } else { EXIT_FAILED })
}

/// `5%` or `0.05`.
pub fn parse_tolerance(text: &str) -> Result<f64> {
    let value = match text.trim().strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| anyhow::anyhow!("--tolerance takes a percentage like 5% or a fraction like 0.05; got `{text}`"))?;
    if !(value >= 0.0 && value.is_finite()) {
        bail!("--tolerance must not be negative");
    }
    Ok(value)
}

/// `symbiote fidelity`: simulated against measured for every experiment of a measurements
/// file, with the shipped (or given) step-time parameters; with `cross_validate`, also the
/// leave-one-model-out errors (fit on the other models, predict the held-out one).
pub fn cmd_fidelity(
    file: &Path,
    out: &Path,
    cross_validate: bool,
    max_evaluations: u32,
    multi_turn: bool,
) -> Result<u8> {
    use crate::report::fidelity;
    let (experiments, hash) = match crate::scenario::measurements::load(file, multi_turn) {
        Ok(x) => x,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    let mut warnings: Vec<String> =
        experiments.iter().flat_map(|e| e.warnings.iter().map(move |w| format!("{}: {w}", e.key))).collect();
    warnings.dedup();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let rows = fidelity::simulate_all(&experiments, None);
    let mut text = format!(
        "# Fidelity: {}\n\nInput {} (FNV-1a {hash}); step-time parameters as shipped in the GPU catalog.\n\n",
        file.display(),
        experiments.len()
    );
    text.push_str(&fidelity::table(&rows));
    let mut json = serde_json::json!({"input_hash": hash, "rows": rows, "median_ape": fidelity::medians(&rows)});
    if cross_validate {
        let mut models: Vec<String> = experiments.iter().map(|e| e.model.clone()).collect();
        models.sort();
        models.dedup();
        let mut held_out_rows = Vec::new();
        for model in &models {
            let train: Vec<_> = experiments.iter().filter(|e| &e.model != model).cloned().collect();
            let test: Vec<_> = experiments.iter().filter(|e| &e.model == model).cloned().collect();
            let start = test[0].case.gpu.step_time.clone();
            let fit = fidelity::calibrate(&train, &start, max_evaluations);
            held_out_rows.extend(fidelity::simulate_all(&test, Some(&fit.params)));
        }
        text.push_str("\n## Leave-one-model-out cross-validation\n\nEach model's experiments are predicted with parameters fitted on the other models only.\n\n");
        text.push_str(&fidelity::table(&held_out_rows));
        json["cross_validated_rows"] = serde_json::to_value(&held_out_rows).expect("rows serialize");
        json["cross_validated_median_ape"] =
            serde_json::to_value(fidelity::medians(&held_out_rows)).expect("medians serialize");
    }
    print!("{text}");
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("fidelity");
    let stem = if multi_turn { format!("{stem}_multi_turn") } else { stem.to_string() };
    let dir = out.join("fidelity");
    write_atomic(&dir.join(format!("{stem}.md")), text.as_bytes())?;
    let mut json_text = serde_json::to_string_pretty(&json).expect("json");
    json_text.push('\n');
    write_atomic(&dir.join(format!("{stem}.json")), json_text.as_bytes())?;
    Ok(EXIT_OK)
}

/// `symbiote calibrate`: fits `gpu`'s step-time parameters to the experiments run on it and,
/// with `write_to`, stores them in that catalog folder's GPU file with their provenance.
pub fn cmd_calibrate(file: &Path, gpu: &str, max_evaluations: u32, write_to: Option<&Path>) -> Result<u8> {
    use crate::report::fidelity;
    let (experiments, hash) = match crate::scenario::measurements::load(file, false) {
        Ok(x) => x,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    let gpu_spec = Catalog::builtin().gpu(gpu)?;
    let mine: Vec<_> = experiments.into_iter().filter(|e| e.case.gpu.name == gpu_spec.name).collect();
    if mine.is_empty() {
        bail!("{} has no experiment on {}; nothing to fit", file.display(), gpu_spec.name);
    }
    let fit = fidelity::calibrate(&mine, &fidelity::uncalibrated(&gpu_spec.step_time), max_evaluations);
    let p = &fit.params;
    println!(
        "{}: {} experiments, {} evaluations; objective (mean |ln(sim/measured)| of mean E2E, mean TTFT, ITL) {:.4} -> {:.4}",
        gpu_spec.name,
        mine.len(),
        fit.evaluations,
        fit.objective_before,
        fit.objective_after
    );
    println!(
        "matmul_efficiency {}, bandwidth_efficiency {}, kv_bandwidth_efficiency {:?}, step_overhead_us {}, per_sequence_overhead_us {}, allreduce_efficiency {}, frontend_overhead_us {}",
        p.matmul_efficiency, p.bandwidth_efficiency, p.kv_bandwidth_efficiency, p.step_overhead_us, p.per_sequence_overhead_us, p.allreduce_efficiency, p.frontend_overhead_us
    );
    if let Some(dir) = write_to {
        let path = dir.join("gpu").join(format!("{}.json", gpu_spec.name));
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut params = serde_json::to_value(p).expect("params serialize");
        params["provenance"] = serde_json::json!(format!(
            "calibrated by `symbiote calibrate {} --gpu {}` on {} experiments (input FNV-1a {hash}, {}); objective {:.4} before, {:.4} after",
            file.file_name().and_then(|f| f.to_str()).unwrap_or("?"),
            gpu_spec.name,
            mine.len(),
            today(),
            fit.objective_before,
            fit.objective_after
        ));
        value["step_time"] = params;
        let mut out = serde_json::to_string_pretty(&value).expect("json");
        out.push('\n');
        write_atomic(&path, out.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {} (rebuild to embed it)", path.display());
    }
    Ok(EXIT_OK)
}

/// Today's date (UTC) for provenance lines in catalog files; never written to reports.
#[allow(clippy::disallowed_methods)]
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    // Howard Hinnant's civil_from_days.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
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
    let mut names = std::collections::BTreeSet::new();
    for s in &scenarios {
        if !names.insert(s.name.clone()) {
            problems.push(format!("two scenario files are both named `{}`; their reports would collide", s.name));
        }
    }
    if problems.is_empty() {
        Ok(scenarios)
    } else {
        Err(problems)
    }
}

/// What `symbiote run` does beyond running: capture, resume, shard.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunFlags {
    pub capture: Capture,
    pub progress: bool,
    pub resume: bool,
    pub shard: Option<(usize, usize)>,
}

/// Runs one scenario and writes `out/<name>/`: `report.json`, `report.md`, `summary.csv`, and
/// per run `runs/<case>__seed<N>.json` (plus `timeline/` and `requests/` CSVs when captured).
/// A shard writes only its runs (`symbiote merge` assembles the report); returns `None` then.
pub fn run_and_write(scenario: &Scenario, out: &Path, flags: RunFlags) -> Result<Option<Report>> {
    let dir = out.join(&scenario.name);
    if !flags.resume && flags.shard.is_none() {
        for sub in ["runs", "timeline", "requests"] {
            let stale = dir.join(sub);
            if stale.is_dir() {
                std::fs::remove_dir_all(&stale).with_context(|| format!("clearing {}", stale.display()))?;
            }
        }
    }
    let options = RunOptions {
        dir: Some(dir.clone()),
        capture: flags.capture,
        progress: flags.progress,
        resume: flags.resume,
        shard: flags.shard,
    };
    if flags.shard.is_some() {
        run_jobs(scenario, &options)?;
        return Ok(None);
    }
    let report = assemble(scenario, run_jobs(scenario, &options)?);
    write_reports(&dir, &report)?;
    Ok(Some(report))
}

/// Writes a scenario's report files into its folder.
pub fn write_reports(dir: &Path, report: &Report) -> Result<()> {
    let files = [
        ("report.json", report.to_json()),
        ("report.md", markdown::render(report)),
        ("summary.csv", crate::report::csv::summary(report)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `symbiote merge`: assembles the report of `scenario` from the runs that shards wrote
/// under `dirs` (each a `--out` folder), into `out/<name>/`, byte for byte what an unsharded
/// run writes. Every run must be present, written for the same scenario content.
pub fn merge(scenario: &Scenario, dirs: &[PathBuf], out: &Path) -> Result<Report> {
    let target = out.join(&scenario.name);
    let mut runs = Vec::new();
    for (case, seed) in jobs(scenario) {
        let found = dirs.iter().find_map(|d| {
            let dir = d.join(&scenario.name);
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
    write_reports(&target, &report)?;
    Ok(report)
}

/// Parses `--seeds`: `1..32` (inclusive) or `1,2,5`.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let bad = || anyhow::anyhow!("--seeds takes a range like 1..32 or a list like 1,2,5; got `{text}`");
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..") {
        let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        if b < a || b - a >= 10_000 {
            return Err(bad());
        }
        (a..=b).collect()
    } else {
        text.split(',').map(|s| s.trim().parse().map_err(|_| bad())).collect::<Result<_>>()?
    };
    let mut unique = seeds.clone();
    unique.sort_unstable();
    unique.dedup();
    if seeds.is_empty() || unique.len() != seeds.len() {
        return Err(bad());
    }
    Ok(seeds)
}

/// Parses `--shard K/N` (1 <= K <= N).
pub fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard takes K/N with 1 <= K <= N, like 2/8; got `{text}`");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
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
        text.push_str(&format!("- [{}]({}/report.md): {headline}{status}\n", report.scenario, report.scenario));
    }
    let path = out.join("index.md");
    write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Arguments of `symbiote memory`.
#[derive(Clone, Debug)]
pub struct MemoryArgs {
    pub model: String,
    pub gpu: String,
    pub quant: Quant,
    pub kv_cache_dtype: KvDtype,
    pub tp: u64,
    pub max_model_len: Option<u64>,
    pub gpu_memory_utilization: f64,
    pub max_num_batched_tokens: Option<u64>,
    pub max_num_seqs: Option<u64>,
    /// With `output_len`: also report the largest batch of such rows each engine holds.
    pub prompt_len: Option<u64>,
    pub output_len: Option<u64>,
}

/// The memory breakdown and vLLM's start-up lines, or its start-up error; `Err` for unknown
/// names. Returns the text and whether the model fits.
pub fn memory_report(args: &MemoryArgs) -> Result<(String, bool)> {
    let catalog = Catalog::builtin();
    let model = catalog.model(&args.model)?;
    let gpu = catalog.gpu(&args.gpu)?;
    let big = gpu.memory_gib >= 70.0 && !gpu.name.contains("a100");
    let batched = args.max_num_batched_tokens.unwrap_or(if big { 8192 } else { 2048 });
    let config = MemoryConfig {
        quant: args.quant,
        kv_dtype: args.kv_cache_dtype,
        tp: args.tp,
        gpu_memory_utilization: args.gpu_memory_utilization,
        max_num_batched_tokens: batched,
        max_num_seqs: args.max_num_seqs.unwrap_or(if big { 1024 } else { 256 }).min(batched),
        max_model_len: args.max_model_len.unwrap_or(model.max_position_embeddings),
        block_size: 16,
        num_gpu_blocks_override: None,
    };
    let mut text = format!(
        "{} ({}) on {} x{} (tp {}), max_num_batched_tokens {}, max_num_seqs {}\n\n",
        model.display_name,
        args.quant,
        gpu.display_name,
        args.tp,
        args.tp,
        config.max_num_batched_tokens,
        config.max_num_seqs
    );
    let plan = memory::plan(model, gpu, &config);
    if let (Some(prompt), Some(output)) = (args.prompt_len, args.output_len) {
        let static_rows = memory::largest_static_batch(model, gpu, &config, prompt, output);
        let vllm_rows = plan.as_ref().map_or(0, |p| memory::largest_vllm_batch(p, prompt, output));
        text.push_str(&format!(
            "Largest batch of {prompt}-token prompts with {output} output tokens:\n  static engine (padded, KV reserved up front): {static_rows} rows\n  vLLM (all resident in paged KV, no preemption): {vllm_rows} sequences\n\n"
        ));
    }
    match plan {
        Ok(plan) => {
            text.push_str(&plan.table());
            text.push_str(&format!("KV blocks                 {:>9}\n\n", plan.num_gpu_blocks));
            for line in plan.startup_lines() {
                text.push_str(&line);
                text.push('\n');
            }
            Ok((text, true))
        }
        Err(failure) => {
            text.push_str(&failure.breakdown.table());
            text.push_str(&format!("\nstart-up fails: {}\n", failure.message));
            Ok((text, false))
        }
    }
}

/// `symbiote list models|gpus`.
pub fn list(what: &str) -> Result<String> {
    let catalog = Catalog::builtin();
    let mut out = String::new();
    match what {
        "models" => {
            out.push_str(&format!(
                "{:<16} {:<40} {:>8} {:>7} {:>9}\n",
                "name", "hugging face id", "params", "layers", "max len"
            ));
            for m in &catalog.models {
                let params = crate::hardware::shape::ParamBreakdown::of(m).total() as f64 / 1e9;
                out.push_str(&format!(
                    "{:<16} {:<40} {:>7.2}B {:>7} {:>9}\n",
                    m.name, m.hf_id, params, m.num_layers, m.max_position_embeddings
                ));
            }
        }
        "gpus" => {
            out.push_str(&format!(
                "{:<12} {:<34} {:>8} {:>10} {:>11}\n",
                "name", "device", "memory", "bandwidth", "fp16 dense"
            ));
            for g in &catalog.gpus {
                out.push_str(&format!(
                    "{:<12} {:<34} {:>5} GB {:>6} GB/s {:>6} TFLOPS\n",
                    g.name, g.display_name, g.memory_gib, g.hbm_bandwidth_gbps, g.tflops.fp16_bf16
                ));
            }
        }
        other => {
            bail!("unknown list `{other}`; use `symbiote list models` or `symbiote list gpus`")
        }
    }
    Ok(out)
}
