//! `fidelity` and `calibrate` on measured `vllm bench serve` runs (a bench-runs file such as
//! scenarios/validation/gpustack_perf_lab.json, or one `--save-result` file): the commands in
//! `cli/fidelity.rs` hand such files here after telling the formats apart.

use std::path::Path;

use super::*;
use crate::report::bench_fidelity;
use crate::scenario::bench_runs::{self, Format};

/// The format of a measurements file, or the exit code after printing why it has none.
pub(super) fn format_of(file: &Path) -> std::result::Result<Format, u8> {
    bench_runs::read(file)
        .map(|(_, format, _)| format)
        .map_err(|problems| print_problems(&problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()))
}

/// `symbiote fidelity` on `vllm bench serve` runs: every run simulated, its capacity and
/// latency errors, and the median errors per GPU; the problems of a bad file otherwise.
pub(super) fn fidelity_bench(
    file: &Path,
    cross_validate: bool,
    max_evaluations: u32,
    step_model: StepModel,
) -> std::result::Result<FidelityReport, Vec<String>> {
    let (mut experiments, hash) =
        bench_runs::load(file).map_err(|problems| problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())?;
    for e in &mut experiments {
        step_model.apply(&mut e.case, &mut e.warnings);
    }
    let warnings = experiments.iter().flat_map(|e| e.warnings.iter().map(move |w| format!("{}: {w}", e.key))).collect();
    let rows = bench_fidelity::simulate_all(&experiments, None);
    let model = step_model.describe();
    let mut text = format!(
        "# Fidelity: {}\n\nInput {} vllm bench serve runs (FNV-1a {hash}); {model}; seed 1.\n\n",
        file.display(),
        experiments.len()
    );
    text.push_str(&bench_fidelity::table(&rows));
    let medians: Vec<serde_json::Value> = bench_fidelity::medians_by_gpu(&rows)
        .into_iter()
        .map(|(gpu, m)| serde_json::json!({"gpu": gpu, "median_ape": m}))
        .collect();
    let mut json = serde_json::json!({"input_hash": hash, "rows": rows, "median_ape_by_gpu": medians});
    if cross_validate {
        let held_out = bench_fidelity::cross_validate_gpus(&experiments, max_evaluations);
        text.push_str("\n## Leave-one-GPU-out cross-validation\n\nEach GPU's runs priced by its kernel tables, with the host profile fitted (from the priors) to the runs on the other GPUs only: what a GPU without measured runs gets.\n\n");
        text.push_str(&bench_fidelity::table(&held_out));
        let by_gpu: Vec<serde_json::Value> = bench_fidelity::medians_by_gpu(&held_out)
            .into_iter()
            .map(|(gpu, m)| serde_json::json!({"gpu": gpu, "median_ape": m}))
            .collect();
        json["cross_validated_rows"] = serde_json::to_value(&held_out).expect("rows serialize");
        json["cross_validated_median_ape_by_gpu"] = serde_json::Value::Array(by_gpu);
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("fidelity");
    Ok(FidelityReport { stem: step_model.stem(stem.to_string()), markdown: text, json, warnings })
}
