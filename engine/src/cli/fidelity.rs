//! `fidelity` and `calibrate`: simulated against measured runs, and the fit of a GPU's step-time parameters.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::report::write::write_atomic;

use super::*;

/// `symbiote fidelity`: simulated against measured for every experiment of a measurements
/// file, with the shipped (or given) step-time parameters; with `cross_validate`, also the
/// leave-one-model-out errors (fit on the other models, predict the held-out one).
pub fn cmd_fidelity(
    file: &Path,
    out: &Path,
    cross_validate: bool,
    max_evaluations: u32,
    multi_turn: bool,
    step_model: StepModel,
    quiet: bool,
) -> Result<u8> {
    use crate::report::fidelity;
    let (mut experiments, hash) = match crate::scenario::measurements::load(file, multi_turn) {
        Ok(x) => x,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    if step_model == StepModel::Kernels {
        for e in &mut experiments {
            e.case.step_time = crate::scenario::StepTimeChoice::Kernels;
            if let Some(why) = e.case.kernel_fallback() {
                e.warnings.push(format!("{why}; priced with the roofline"));
            }
        }
    }
    let mut warnings: Vec<String> =
        experiments.iter().flat_map(|e| e.warnings.iter().map(move |w| format!("{}: {w}", e.key))).collect();
    warnings.dedup();
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let rows = fidelity::simulate_all(&experiments, None);
    let model = match step_model {
        StepModel::Roofline => "the roofline step-time model with its parameters as shipped in the GPU catalog",
        StepModel::Kernels => {
            "the kernel-table step-time model (models/kernels) with the host overheads as shipped in the GPU catalog"
        }
    };
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
    print!("{text}");
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("fidelity");
    let stem = if multi_turn { format!("{stem}_multi_turn") } else { stem.to_string() };
    let stem = if step_model == StepModel::Kernels { format!("{stem}_kernels") } else { stem };
    let dir = out.join("fidelity");
    write_atomic(&dir.join(format!("{stem}.md")), text.as_bytes())?;
    let mut json_text = serde_json::to_string_pretty(&json).expect("json");
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
    /// The roofline with the GPU catalog's parameters (what scenarios use by default).
    #[default]
    Roofline,
    /// The kernel tables (`"step_time": {"model": "kernels"}`); cross-validation then fits the
    /// host overheads and, for MoE models, the expert-read efficiency this model borrows from
    /// the roofline; the other fitted parameters have no effect on it.
    Kernels,
}

/// `symbiote calibrate`: fits `gpu`'s step-time parameters to the experiments run on it and,
/// with `write_to`, stores them in that catalog folder's GPU file with their provenance.
pub fn cmd_calibrate(file: &Path, gpu: &str, max_evaluations: u32, write_to: Option<&Path>, quiet: bool) -> Result<u8> {
    use crate::report::fidelity;
    let (experiments, hash) = match crate::scenario::measurements::load(file, false) {
        Ok(x) => x,
        Err(problems) => return Ok(print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    };
    let gpu_spec = crate::hardware::active_catalog().gpu(gpu)?;
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
        if !quiet {
            println!("wrote {} (rebuild to embed it, or pass --catalog {})", path.display(), dir.display());
        }
    }
    Ok(EXIT_OK)
}

/// Today's date (UTC) for provenance lines in catalog files; never written to reports.
#[allow(clippy::disallowed_methods)]
fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_date(secs);
    format!("{y:04}-{m:02}-{d:02}")
}
