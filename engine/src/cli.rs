//! The commands behind the CLI, returning text and exit codes so that `main` stays a thin
//! parse-call-print layer and the commands are testable.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::hardware::memory::{self, MemoryConfig};
use crate::hardware::{Catalog, KvDtype, Quant};
use crate::report::metrics::Capture;
use crate::report::{markdown, write::write_atomic, Report};
use crate::runner::{run_scenario, RunOptions};
use crate::scenario::{self, Scenario};

/// Exit codes: 0 ok, 1 an expectation or check failed, 2 bad input or internal error.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

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

/// Runs one scenario and writes `out/<name>/`: `report.json`, `report.md`, `summary.csv`, and
/// per run `runs/<case>__seed<N>.json` (plus `timeline/` and `requests/` CSVs when captured).
pub fn run_and_write(scenario: &Scenario, out: &Path, capture: Capture, progress: bool) -> Result<Report> {
    let dir = out.join(&scenario.name);
    for sub in ["runs", "timeline", "requests"] {
        let stale = dir.join(sub);
        if stale.is_dir() {
            std::fs::remove_dir_all(&stale).with_context(|| format!("clearing {}", stale.display()))?;
        }
    }
    let options = RunOptions { dir: Some(dir.clone()), capture, progress };
    let report = run_scenario(scenario, &options)?;
    let files = [
        ("report.json", report.to_json()),
        ("report.md", markdown::render(&report)),
        ("summary.csv", crate::report::csv::summary(&report)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
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
