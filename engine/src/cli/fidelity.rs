//! `fidelity` and `calibrate`: simulated against measured runs, and the fit of a GPU's step-time parameters.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::report::write::write_atomic;

use super::*;

/// What `symbiote fidelity` computes: report.md's name (`fidelity/<stem>.md`), its text, the
/// JSON beside it, and warnings on what the runs could not model.
#[derive(Clone, Debug)]
pub struct FidelityReport {
    pub stem: String,
    pub markdown: String,
    pub json: serde_json::Value,
    pub warnings: Vec<String>,
}

/// `symbiote fidelity`: simulates every measured run of `file` (a sim2real file or `vllm bench
/// serve` runs), prints the errors and writes them under `out/fidelity/`.
pub fn cmd_fidelity(
    file: &Path,
    out: &Path,
    cross_validate: bool,
    max_evaluations: u32,
    multi_turn: bool,
    step_model: StepModel,
    quiet: bool,
) -> Result<u8> {
    match fidelity_report(file, cross_validate, max_evaluations, multi_turn, step_model) {
        Ok(report) => {
            report.warnings.iter().for_each(|w| eprintln!("warning: {w}"));
            write_fidelity(out, &report.stem, &report.markdown, &report.json, quiet)
        }
        Err(problems) => Ok(print_problems(&problems)),
    }
}

/// [`cmd_fidelity`]'s report without printing or writing it (the Python package's
/// `fidelity`), or every problem of a bad file.
pub fn fidelity_report(
    file: &Path,
    cross_validate: bool,
    max_evaluations: u32,
    multi_turn: bool,
    step_model: StepModel,
) -> std::result::Result<FidelityReport, Vec<String>> {
    use crate::report::fidelity;
    let lines = |problems: Vec<crate::scenario::Diagnostic>| problems.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    match crate::scenario::bench_runs::read(file) {
        Ok((_, crate::scenario::bench_runs::Format::Sim2Real, _)) => {}
        Ok(_) => return super::bench_fidelity::fidelity_bench(file, cross_validate, max_evaluations, step_model),
        Err(problems) => return Err(lines(problems)),
    }
    let (mut experiments, hash) = crate::scenario::measurements::load(file, multi_turn).map_err(lines)?;
    for e in &mut experiments {
        step_model.apply(&mut e.case, &mut e.warnings);
    }
    let mut warnings: Vec<String> =
        experiments.iter().flat_map(|e| e.warnings.iter().map(move |w| format!("{}: {w}", e.key))).collect();
    warnings.dedup();
    let rows = fidelity::simulate_all(&experiments, None);
    let model = step_model.describe();
    let mut text =
        format!("# Fidelity: {}\n\nInput {} (FNV-1a {hash}); {model}.\n\n", file.display(), experiments.len());
    text.push_str(&fidelity::table(&rows));
    let mut json = serde_json::json!({"input_hash": hash, "rows": rows, "median_ape": fidelity::medians(&rows)});
    if cross_validate {
        let held_out_rows = fidelity::cross_validate(&experiments, max_evaluations);
        text.push_str("\n## Leave-one-model-out cross-validation\n\nEach model's experiments are predicted with parameters fitted on the other models only.\n\n");
        text.push_str(&fidelity::table(&held_out_rows));
        json["cross_validated_rows"] = serde_json::to_value(&held_out_rows).expect("rows serialize");
        json["cross_validated_median_ape"] =
            serde_json::to_value(fidelity::medians(&held_out_rows)).expect("medians serialize");
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("fidelity");
    let stem = if multi_turn { format!("{stem}_multi_turn") } else { stem.to_string() };
    Ok(FidelityReport { stem: step_model.stem(stem), markdown: text, json, warnings })
}

/// Prints a fidelity report and writes it as `fidelity/<stem>.md` and `.json` under `out`.
pub(super) fn write_fidelity(out: &Path, stem: &str, text: &str, json: &serde_json::Value, quiet: bool) -> Result<u8> {
    print!("{text}");
    let dir = out.join("fidelity");
    write_atomic(&dir.join(format!("{stem}.md")), text.as_bytes())?;
    let mut json_text = serde_json::to_string_pretty(json).expect("json");
    json_text.push('\n');
    write_atomic(&dir.join(format!("{stem}.json")), json_text.as_bytes())?;
    if !quiet {
        println!(
            "wrote {}: open it for the tables; {stem}.json has the numbers",
            dir.join(format!("{stem}.md")).display()
        );
    }
    Ok(EXIT_OK)
}

/// The step-time model `symbiote fidelity` prices steps with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StepModel {
    /// What scenarios use by default: the kernel tables where the GPU has them, the roofline
    /// elsewhere.
    #[default]
    Auto,
    /// The roofline with the GPU catalog's parameters.
    Roofline,
    /// The kernel tables (`"step_time": {"model": "kernels"}`), with the host profile.
    Kernels,
}

impl StepModel {
    /// Sets `case` to price its steps with this model, noting in `warnings` a fallback from
    /// the kernel tables asked for by name.
    pub(super) fn apply(self, case: &mut crate::scenario::Case, warnings: &mut Vec<String>) {
        case.step_time = match self {
            StepModel::Auto => crate::scenario::StepTimeChoice::Auto,
            StepModel::Roofline => crate::scenario::StepTimeChoice::Roofline,
            StepModel::Kernels => crate::scenario::StepTimeChoice::Kernels,
        };
        if let Some(why) = case.kernel_fallback() {
            warnings.push(format!("{why}; priced with the roofline"));
        }
    }

    /// The model in words, for the report's first lines.
    pub(super) fn describe(self) -> &'static str {
        match self {
            StepModel::Auto => "each GPU's default step-time model (the roofline where the GPU's own parameters were calibrated, the kernel tables with the host profile of models/host.json where the GPU has tables, the roofline with efficiencies read off its generation's tables elsewhere)",
            StepModel::Roofline => "the roofline step-time model with each GPU's parameters",
            StepModel::Kernels => "the kernel-table step-time model (models/kernels) with the host profile of models/host.json",
        }
    }

    /// The output file stem for a measurements file's stem.
    pub(super) fn stem(self, stem: String) -> String {
        match self {
            StepModel::Auto => stem,
            StepModel::Roofline => format!("{stem}_roofline"),
            StepModel::Kernels => format!("{stem}_kernels"),
        }
    }
}

/// `symbiote calibrate --gpu`: fits `gpu`'s step-time parameters to the runs on it in every
/// file (sim2real experiments and `vllm bench serve` runs alike: light and saturated load,
/// weighted by runs) and, with `write_to`, stores them in that catalog folder's GPU file with
/// their provenance.
pub fn cmd_calibrate(
    files: &[std::path::PathBuf],
    gpu: &str,
    max_evaluations: u32,
    write_to: Option<&Path>,
    quiet: bool,
) -> Result<u8> {
    use crate::report::{bench_fidelity, fidelity};
    let gpu_spec = crate::hardware::active_catalog().gpu(gpu)?;
    let Measurements { sim2real, mut bench, hashes } = match read_measurements(files) {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let sim2real: Vec<_> = sim2real.into_iter().filter(|e| e.case.gpu.name == gpu_spec.name).collect();
    bench.retain(|e| e.case.gpu.name == gpu_spec.name);
    for e in &mut bench {
        StepModel::Roofline.apply(&mut e.case, &mut e.warnings);
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if sim2real.is_empty() && bench.is_empty() {
        bail!("{} has no run on {}; nothing to fit", names.join(", "), gpu_spec.name);
    }
    let start = fidelity::uncalibrated(&gpu_spec.step_time);
    let fitted = bench_fidelity::calibrate_across_load(&sim2real, &bench, &start, max_evaluations);
    let fit = fitted.fit;
    let objective = match (sim2real.is_empty(), bench.is_empty()) {
        (false, true) => "mean |ln(sim/measured)| of mean E2E, mean TTFT, ITL".to_string(),
        (true, false) => "mean |ln(sim/measured)| of duration, mean TTFT, mean TPOT".to_string(),
        _ => format!(
            "light load: mean |ln(sim/measured)| of mean E2E, mean TTFT, ITL; the matmul efficiency fitted to the saturated runs alone, whose objective (duration, mean TTFT, mean TPOT) went {:.4} -> {:.4}",
            fitted.saturated_before, fitted.saturated_after
        ),
    };
    let runs = sim2real.len() + bench.len();
    report_fit(files, gpu_spec, runs, &fit, &objective, &hashes.join(", "), write_to, quiet)
}

/// Prints a fit and, with `write_to`, stores it in that catalog folder's GPU file with its provenance.
#[allow(clippy::too_many_arguments)]
pub(super) fn report_fit(
    files: &[std::path::PathBuf],
    gpu_spec: &crate::hardware::GpuSpec,
    experiments: usize,
    fit: &crate::report::fidelity::Fit,
    objective: &str,
    hash: &str,
    write_to: Option<&Path>,
    quiet: bool,
) -> Result<u8> {
    let p = &fit.params;
    println!(
        "{}: {} experiments, {} evaluations; objective ({objective}) {:.4} -> {:.4}",
        gpu_spec.name, experiments, fit.evaluations, fit.objective_before, fit.objective_after
    );
    println!(
        "matmul_efficiency {}, bandwidth_efficiency {}, kv_bandwidth_efficiency {:?}, moe_bandwidth_efficiency {:?}, step_overhead_us {}, per_sequence_overhead_us {}, allreduce_efficiency {}, allreduce_latency_us {}, frontend_overhead_us {}",
        p.matmul_efficiency, p.bandwidth_efficiency, p.kv_bandwidth_efficiency, p.moe_bandwidth_efficiency, p.step_overhead_us, p.per_sequence_overhead_us, p.allreduce_efficiency, p.allreduce_latency_us, p.frontend_overhead_us
    );
    if let Some(dir) = write_to {
        let path = dir.join("gpu").join(format!("{}.json", gpu_spec.name));
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let mut params = serde_json::to_value(p).expect("params serialize");
        params["provenance"] = serde_json::json!(format!(
            "calibrated by `symbiote calibrate {} --gpu {}` on {} experiments (input FNV-1a {hash}, {}); objective {:.4} before, {:.4} after",
            files.iter().map(|f| f.file_name().and_then(|f| f.to_str()).unwrap_or("?")).collect::<Vec<_>>().join(" "),
            gpu_spec.name,
            experiments,
            today(),
            fit.objective_before,
            fit.objective_after
        ) + &if files.len() > 1 { format!(" ({objective})") } else { String::new() });
        value["step_time"] = params;
        let mut out = serde_json::to_string_pretty(&value).expect("json");
        out.push('\n');
        write_atomic(&path, out.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        if !quiet {
            println!("wrote {} (rebuild to embed it, or pass --catalog {})", path.display(), dir.display());
        }
    }
    Ok(EXIT_OK)
}

/// `symbiote calibrate --host`: fits the shared host profile to every run of `files` (sim2real
/// files and `vllm bench serve` runs alike: light and saturated load) on a GPU with kernel
/// tables, priced by the tables; the objective is each file's calibration objective, weighted
/// by its runs. With `write_to`, stores the profile in that catalog folder's host.json with
/// its provenance.
pub fn cmd_calibrate_host(
    files: &[std::path::PathBuf],
    max_evaluations: u32,
    write_to: Option<&Path>,
    quiet: bool,
) -> Result<u8> {
    use crate::report::{bench_fidelity, fidelity};
    let Measurements { sim2real, bench, hashes } = match read_measurements(files) {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let sim2real = kernel_priced(sim2real, |e| (&mut e.case, &e.key));
    let bench = kernel_priced(bench, |e| (&mut e.case, &e.key));
    let runs = sim2real.len() + bench.len();
    if runs == 0 {
        bail!("no run the kernel tables can price; nothing to fit");
    }
    let shortened = fidelity::for_calibration(&sim2real);
    let evaluate = |h: &crate::hardware::HostParams| {
        let a = if shortened.is_empty() { 0.0 } else { fidelity::host_objective(&shortened, h) };
        let b = if bench.is_empty() {
            0.0
        } else {
            bench_fidelity::objective(&bench_fidelity::simulate_all_with(&bench, None, Some(h)))
        };
        (a * shortened.len() as f64 + b * bench.len() as f64) / runs as f64
    };
    // From the priors, whatever host.json holds now, so that the command reproduces its result.
    let start = fidelity::uncalibrated_host(crate::hardware::HostParams::shipped());
    let fit = fidelity::search_host(&start, max_evaluations, evaluate);
    let mut gpus: Vec<&str> = sim2real
        .iter()
        .map(|e| e.case.gpu.name.as_str())
        .chain(bench.iter().map(|e| e.case.gpu.name.as_str()))
        .collect();
    gpus.sort();
    gpus.dedup();
    println!(
        "host profile: {runs} runs on {}, {} evaluations; objective (per file's calibration objective, weighted by runs) {:.4} -> {:.4}",
        gpus.join(", "),
        fit.evaluations,
        fit.objective_before,
        fit.objective_after
    );
    let h = &fit.host;
    println!(
        "step_overhead_us {}, per_sequence_overhead_us {}, frontend_overhead_us {}",
        h.step_overhead_us, h.per_sequence_overhead_us, h.frontend_overhead_us
    );
    if let Some(dir) = write_to {
        let path = dir.join("host.json");
        let mut host = h.clone();
        let names: Vec<&str> = files.iter().map(|f| f.file_name().and_then(|f| f.to_str()).unwrap_or("?")).collect();
        host.provenance = format!(
            "calibrated by `symbiote calibrate {} --host` on {runs} runs on {} priced by the kernel tables (inputs FNV-1a {}, {}); objective {:.4} before, {:.4} after",
            names.join(" "),
            gpus.join(", "),
            hashes.join(", "),
            today(),
            fit.objective_before,
            fit.objective_after
        );
        let mut out = serde_json::to_string_pretty(&host).expect("host serializes");
        out.push('\n');
        write_atomic(&path, out.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        if !quiet {
            println!("wrote {} (rebuild to embed it)", path.display());
        }
    }
    Ok(EXIT_OK)
}

/// The experiments the kernel tables can price, each set to them; the others are left out
/// with a warning naming why. `parts` gives an experiment's case and key.
/// The measured runs of several files for a calibration, by kind, with each file's input hash.
struct Measurements {
    sim2real: Vec<crate::scenario::measurements::Experiment>,
    bench: Vec<crate::scenario::bench_runs::BenchExperiment>,
    hashes: Vec<String>,
}

/// Reads every file (a sim2real file or `vllm bench serve` runs, told apart by their keys);
/// the exit code after printing a bad file's problems otherwise.
fn read_measurements(files: &[std::path::PathBuf]) -> std::result::Result<Measurements, u8> {
    let problems =
        |p: Vec<crate::scenario::Diagnostic>| print_problems(&p.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    let mut m = Measurements { sim2real: Vec::new(), bench: Vec::new(), hashes: Vec::new() };
    for file in files {
        if super::bench_fidelity::format_of(file)? == crate::scenario::bench_runs::Format::Sim2Real {
            let (experiments, hash) = crate::scenario::measurements::load(file, false).map_err(problems)?;
            m.hashes.push(hash);
            m.sim2real.extend(experiments);
        } else {
            let (experiments, hash) = crate::scenario::bench_runs::load(file).map_err(problems)?;
            m.hashes.push(hash);
            m.bench.extend(experiments);
        }
    }
    Ok(m)
}

fn kernel_priced<E>(experiments: Vec<E>, parts: impl Fn(&mut E) -> (&mut crate::scenario::Case, &String)) -> Vec<E> {
    let mut kept = Vec::new();
    for mut e in experiments {
        let (case, key) = parts(&mut e);
        case.step_time = crate::scenario::StepTimeChoice::Kernels;
        match case.kernel_fallback() {
            None => kept.push(e),
            Some(why) => eprintln!("warning: {key}: left out ({why})"),
        }
    }
    kept
}

/// Today's date (UTC) for provenance lines in catalog files; never written to reports.
#[allow(clippy::disallowed_methods)]
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_date(secs);
    format!("{y:04}-{m:02}-{d:02}")
}
