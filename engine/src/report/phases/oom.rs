//! Phase 3: out-of-memory outcomes and the largest safe batch per GPU.

use serde_json::json;

use super::*;
use crate::hardware::hf_memory::CacheKind;
use crate::hardware::memory;
use crate::report::Report;
use crate::scenario::Scenario;

pub(super) fn oom(scenario: &Scenario, report: &Report) -> Findings {
    let case0 = &scenario.cases[0];
    let prompt = fixed_len(&case0.workload.prompt).unwrap_or(512);
    let output = fixed_len(&case0.workload.output).unwrap_or(128);
    let catalog = crate::hardware::active_catalog();
    let mut limits = Vec::new();
    let mut markdown = format!(
        "Largest safe batch of {prompt}-token prompts with {output} output tokens for {} ({}), found by binary search on the memory model: the static engine's batch must fit whole (Hugging Face `generate`: weights, KV of the padded batch, the prefill's activations over all rows, the CUDA context, with PyTorch's caching allocator replayed over the run), with HF's default DynamicCache and with `cache_implementation=\"static\"`; vLLM's figure is how many such sequences stay resident without preemption (more only queue or preempt).\n\n| GPU | static engine (DynamicCache) | static engine (static cache) | vLLM resident |\n|---|---:|---:|---:|\n",
        case0.model.display_name, case0.quant
    );
    for gpu_name in ["rtx-3090", "rtx-4090", "l40", "a100-40gb", "a100-80gb", "h100"] {
        let gpu = catalog.gpu(gpu_name).expect("catalog GPU");
        let mut cfg = case0.memory_config();
        cfg.max_model_len = cfg.max_model_len.min(case0.model.max_position_embeddings);
        let static_rows = memory::largest_static_batch(&case0.model, gpu, &cfg, CacheKind::Dynamic, prompt, output);
        let static_cache_rows =
            memory::largest_static_batch(&case0.model, gpu, &cfg, CacheKind::Static, prompt, output);
        let vllm_rows =
            memory::plan(&case0.model, gpu, &cfg).map_or(0, |p| memory::largest_vllm_batch(&p, prompt, output));
        markdown.push_str(&format!("| {gpu_name} | {static_rows} | {static_cache_rows} | {vllm_rows} |\n"));
        limits.push(json!({"gpu": gpu_name, "static_rows": static_rows, "static_cache_rows": static_cache_rows, "vllm_resident": vllm_rows}));
    }
    let mut first_static_oom: Option<String> = None;
    markdown.push_str("\n| case | outcome | preemptions | mean queueing ms | rows/s |\n|---|---|---:|---:|---:|\n");
    for (i, case) in report.cases.iter().enumerate() {
        let outcome = case.runs.first().map_or("-", |r| r.outcome.as_str());
        if outcome == "oom" && first_static_oom.is_none() {
            first_static_oom = Some(case.name.clone());
        }
        let cell = |k: &str, d: usize| mean_over_seeds(report, i, k).map_or("-".into(), |x| format!("{x:.d$}"));
        markdown.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            case.name,
            outcome,
            cell("preemptions", 0),
            cell("mean_queue_ms", 0),
            cell("rows_per_s", 1)
        ));
    }
    let ooms: Vec<&str> =
        report.cases.iter().filter(|c| c.runs.iter().any(|r| r.outcome == "oom")).map(|c| c.name.as_str()).collect();
    let home = limits
        .iter()
        .find(|l| l["gpu"] == case0.gpu.name.as_str())
        .map_or(0, |l| l["static_rows"].as_u64().unwrap_or(0));
    let headline = format!(
        "{} of {} cases ran out of memory; largest safe static batch on {}: {home}",
        ooms.len(),
        report.cases.len(),
        case0.gpu.name
    );
    let summary = format!(
        "Each batch size runs on the static engine (padded, KV reserved up front) and on vLLM (paged KV, continuous batching). Out of memory: {}. vLLM never runs out of memory at run time: beyond its resident capacity it queues and preempts instead. The largest static batch that fits on {} is {home} rows. The static engine is priced as eager Hugging Face `generate` runs (issue 12): every elementwise op its own kernel, a CPU launch per kernel with no CUDA graph, DynamicCache copying the whole KV cache every step, finished rows computed until the batch ends; its memory counts the padded batch's prefill activations and the CUDA context, and the run is replayed through PyTorch's caching allocator, which fails on reserved memory: blocks cached by the prefill and by DynamicCache's growing copies are too small for the next request, so fewer rows fit than the live tensors alone allow; under DynamicCache PyTorch is taken to reserve at least 1.55x what it allocates, the ratio measured on an H200 (Llama-2-7B, 512 + 128 tokens; the replay alone finds 1.26 and let batches through that failed there), which lowers the DynamicCache limits (issue 12). It is slower than vLLM at the same batch.",
        if ooms.is_empty() { "none".to_string() } else { ooms.join(", ") },
        case0.gpu.display_name
    );
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"safe_batch": limits, "oom_cases": ooms}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}
