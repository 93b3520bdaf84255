//! Phase 5: weights, activation peak, KV room and a recommendation per model.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::hardware::memory::GIB;
use crate::report::Report;
use crate::scenario::Scenario;

/// One (GPU, quantization) configuration of a model in the weight-storage phase.
struct StorageRow {
    gpu: String,
    quant: String,
    gpu_memory_gib: f64,
    max_concurrency: f64,
    fits: bool,
    weights_bytes: f64,
}

/// Concurrent 4,096-token sequences a configuration must hold to be recommended.
const MIN_CONCURRENCY: f64 = 8.0;

pub(super) fn weight_storage(scenario: &Scenario, report: &Report) -> Findings {
    let mut by_model: BTreeMap<String, Vec<StorageRow>> = BTreeMap::new();
    let mut markdown = String::from("| case | weights GiB | activation GiB | KV room tokens | max concurrency | fits |\n|---|---:|---:|---:|---:|---|\n");
    for (i, case) in scenario.cases.iter().enumerate() {
        let Some(run) = report.cases[i].runs.first() else { continue };
        let m = &run.memory;
        let fits = run.outcome == "completed";
        markdown.push_str(&format!(
            "| {} | {:.2} | {:.2} | {} | {:.1}x | {} |\n",
            case.name,
            m.weights_bytes as f64 / GIB,
            m.activation_peak_bytes as f64 / GIB,
            m.kv_cache_tokens,
            m.max_concurrency,
            if fits { "yes" } else { "no" }
        ));
        by_model.entry(case.model.display_name.clone()).or_default().push(StorageRow {
            gpu: case.gpu.name.clone(),
            quant: case.quant.name().to_string(),
            gpu_memory_gib: case.gpu.memory_gib,
            max_concurrency: m.max_concurrency,
            fits,
            weights_bytes: m.weights_bytes as f64,
        });
    }
    let precision_rank = |q: &str| match q {
        "fp16" | "bf16" => 0,
        "int8" | "fp8" => 1,
        "int4" => 2,
        _ => 3,
    };
    let mut recommendations = Vec::new();
    let mut lines = Vec::new();
    for (model, configs) in &by_model {
        let best = configs.iter().filter(|c| c.fits && c.max_concurrency >= MIN_CONCURRENCY).min_by(|a, b| {
            a.gpu_memory_gib.total_cmp(&b.gpu_memory_gib).then(precision_rank(&a.quant).cmp(&precision_rank(&b.quant)))
        });
        let fp32 = configs.iter().find(|c| c.quant == "fp32").map(|c| c.weights_bytes);
        let int4 = configs.iter().find(|c| c.quant == "int4").map(|c| c.weights_bytes);
        let ratio = match (fp32, int4) {
            (Some(a), Some(b)) if a > 0.0 => format!("; int4 weights are {:.1}% of fp32", 100.0 * b / a),
            _ => String::new(),
        };
        let line = match best {
            Some(c) => format!(
                "{model}: {} at {} ({:.1}x concurrency at 4,096 tokens){ratio}",
                c.gpu, c.quant, c.max_concurrency
            ),
            None => {
                format!("{model}: no configuration holds {MIN_CONCURRENCY:.0} concurrent 4,096-token sequences{ratio}")
            }
        };
        recommendations.push(json!({"model": model, "recommendation": best.map(|c| json!({"gpu": c.gpu, "quant": c.quant, "max_concurrency": number(c.max_concurrency)}))}));
        lines.push(line);
    }
    let fitting = report.cases.iter().filter(|c| c.runs.iter().all(|r| r.outcome == "completed")).count();
    let headline = format!("{fitting} of {} configurations fit", report.cases.len());
    let summary = format!(
        "Three models on five GPUs in four precisions: weights, vLLM's profiled activation peak, the KV room left and the concurrency it allows at 4,096 tokens, as vLLM computes them at start-up. {fitting} of {} configurations fit. Recommended (the smallest GPU that holds at least {MIN_CONCURRENCY:.0} concurrent 4,096-token sequences, preferring higher precision): {}.",
        report.cases.len(),
        lines.join("; ")
    );
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"recommendations": recommendations}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}
