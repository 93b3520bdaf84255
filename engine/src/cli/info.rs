//! `memory`, `list` and `trace-stats`: what fits, what the catalog holds, what a trace contains.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::hardware::hf_memory::CacheKind;
use crate::hardware::memory::{self, MemoryConfig};
use crate::hardware::{KvDtype, Quant};

use super::*;

/// `symbiote trace-stats`: the totals on stdout, as text or (`json`) as [`trace_stats`] gives them.
pub fn cmd_trace_stats(trace: &Path, format: Option<&str>, json: bool) -> Result<u8> {
    let stats = trace_stats(trace, format)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(EXIT_OK);
    }
    let number = |key: &str| stats[key].as_f64().unwrap_or(0.0);
    let count = |key: &str| stats[key].as_u64().unwrap_or(0);
    println!(
        "{}: {} rows over {:.3} s ({:.3} req/s)",
        trace.display(),
        count("rows"),
        number("span_s"),
        number("request_rate")
    );
    println!(
        "prompt tokens {} (mean {:.1}), output tokens {} (mean {:.1})",
        count("prompt_tokens"),
        number("mean_prompt_tokens"),
        count("output_tokens"),
        number("mean_output_tokens")
    );
    if count("blocks") > 0 {
        println!(
            "hash_ids: {} block references, {} hits with an unlimited prefix cache ({:.1}% of blocks, {:.1}% of prompt tokens)",
            count("blocks"),
            count("hit_blocks"),
            100.0 * number("block_hit_rate"),
            100.0 * number("prompt_token_hit_rate")
        );
    }
    if count("skipped_failed") > 0 {
        println!("skipped {} failed requests (zero response tokens)", count("skipped_failed"));
    }
    Ok(EXIT_OK)
}

/// A trace read through (`symbiote trace-stats`): rows, span and rate (rows after the first
/// over the span), token totals and means, and for Mooncake traces the prefix hits an
/// unlimited cache would see. `format` is azure, mooncake, burstgpt or generic (default: from
/// the file name).
pub fn trace_stats(trace: &Path, format: Option<&str>) -> Result<serde_json::Value> {
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
        stride: None,
        on_bad_row: crate::workload::trace::BadRows::Fail,
        keep_failed: false,
        columns: None,
    };
    let s = crate::workload::trace::stats(&spec, &dir)?;
    let span = (s.last_arrival_ns - s.first_arrival_ns) as f64 / 1e9;
    let rows = s.rows.max(1) as f64;
    Ok(serde_json::json!({
        "rows": s.rows,
        "span_s": span,
        "request_rate": if span > 0.0 { (s.rows.max(1) - 1) as f64 / span } else { 0.0 },
        "prompt_tokens": s.prompt_tokens,
        "output_tokens": s.output_tokens,
        "mean_prompt_tokens": s.prompt_tokens as f64 / rows,
        "mean_output_tokens": s.output_tokens as f64 / rows,
        "blocks": s.blocks,
        "hit_blocks": s.hit_blocks,
        "hit_tokens": s.hit_tokens,
        "block_hit_rate": if s.blocks > 0 { s.hit_blocks as f64 / s.blocks as f64 } else { 0.0 },
        "prompt_token_hit_rate": s.hit_tokens as f64 / s.prompt_tokens.max(1) as f64,
        "skipped_failed": s.skipped_failed,
    }))
}

/// Arguments of `symbiote memory`.
#[derive(Clone, Debug, clap::Args)]
pub struct MemoryArgs {
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub gpu: String,
    #[arg(long, value_enum, default_value = "fp16")]
    pub quant: Quant,
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_cache_dtype: KvDtype,
    #[arg(long, default_value_t = 1)]
    pub tp: u64,
    #[arg(long)]
    pub max_model_len: Option<u64>,
    #[arg(long, default_value_t = 0.9)]
    pub gpu_memory_utilization: f64,
    #[arg(long)]
    pub max_num_batched_tokens: Option<u64>,
    #[arg(long)]
    pub max_num_seqs: Option<u64>,
    /// With --output-len: the largest batch of such rows on the static engine and on vLLM.
    #[arg(long)]
    pub prompt_len: Option<u64>,
    #[arg(long)]
    pub output_len: Option<u64>,
    /// Print the result as JSON: the configuration, the itemised split (bytes), whether it fits,
    /// vLLM's start-up error and the largest batches.
    #[arg(long)]
    pub json: bool,
}

/// The memory breakdown and vLLM's start-up lines, or its start-up error; `Err` for unknown
/// names. Returns the text and whether the model fits.
pub fn memory_report(args: &MemoryArgs) -> Result<(String, bool)> {
    let catalog = crate::hardware::active_catalog();
    let model =
        &crate::hardware::resolve_model(&args.model, std::path::Path::new("."), catalog).map_err(anyhow::Error::msg)?;
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
    if args.json {
        let largest = match (args.prompt_len, args.output_len) {
            (Some(prompt), Some(output)) => {
                let static_engine: Vec<serde_json::Value> = [CacheKind::Dynamic, CacheKind::Static]
                    .into_iter()
                    .map(|cache| {
                        let rows = memory::largest_static_batch(model, gpu, &config, cache, prompt, output);
                        serde_json::json!({"engine": "hf_generate", "cache": cache, "rows": rows})
                    })
                    .collect();
                serde_json::json!({
                "prompt_len": prompt, "output_len": output,
                "static_rows": memory::largest_static_batch(model, gpu, &config, CacheKind::Dynamic, prompt, output),
                "static_engine": static_engine,
                "vllm_sequences": plan.as_ref().map_or(0, |p| memory::largest_vllm_batch(p, prompt, output)),
                })
            }
            _ => serde_json::Value::Null,
        };
        let (breakdown, error) = match &plan {
            Ok(p) => (p.clone(), None),
            Err(f) => (f.breakdown.clone(), Some(f.message.clone())),
        };
        let out = serde_json::json!({
            "model": model.name, "gpu": gpu.name, "quant": args.quant, "kv_cache_dtype": args.kv_cache_dtype, "tp": args.tp,
            "max_num_batched_tokens": config.max_num_batched_tokens, "max_num_seqs": config.max_num_seqs,
            "max_model_len": config.max_model_len, "gpu_memory_utilization": config.gpu_memory_utilization,
            "fits": plan.is_ok(), "startup_error": error, "memory": breakdown, "largest_batch": largest,
        });
        return Ok((serde_json::to_string_pretty(&out)? + "\n", plan.is_ok()));
    }
    if let (Some(prompt), Some(output)) = (args.prompt_len, args.output_len) {
        let dynamic = memory::largest_static_batch(model, gpu, &config, CacheKind::Dynamic, prompt, output);
        let fixed = memory::largest_static_batch(model, gpu, &config, CacheKind::Static, prompt, output);
        let vllm_rows = plan.as_ref().map_or(0, |p| memory::largest_vllm_batch(p, prompt, output));
        text.push_str(&format!(
            "Largest batch of {prompt}-token prompts with {output} output tokens:\n  static engine, HF generate with DynamicCache (default): {dynamic} rows (PyTorch's caching allocator replayed, with reserved memory at least 1.55x allocated as measured under DynamicCache on an H200 with Llama-2-7B at 512 + 128 tokens; other shapes may fragment differently)\n  static engine, HF generate with cache_implementation=\"static\": {fixed} rows\n  vLLM (all resident in paged KV, no preemption): {vllm_rows} sequences\n\n"
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
pub fn list(what: &str, json: bool) -> Result<String> {
    let catalog = crate::hardware::active_catalog();
    if json {
        // The catalog entries as they are stored, sources and prices included.
        let value = match what {
            "models" => serde_json::to_value(&catalog.models)?,
            "gpus" => serde_json::to_value(&catalog.gpus)?,
            other => bail!("unknown list `{other}`; use `symbiote list models` or `symbiote list gpus`"),
        };
        return Ok(serde_json::to_string_pretty(&value)? + "\n");
    }
    let mut out = String::new();
    match what {
        "models" => {
            out.push_str(&format!(
                "{:<22} {:<42} {:>8} {:>7} {:>9}  {}\n",
                "name", "hugging face id", "params", "layers", "max len", "sampling defaults"
            ));
            for m in &catalog.models {
                let params = crate::hardware::shape::ParamBreakdown::of(m).total() as f64 / 1e9;
                let g = &m.generation_config;
                let mut sampling: Vec<String> = Vec::new();
                if let Some(t) = g.temperature {
                    sampling.push(format!("temperature {t}"));
                }
                if let Some(p) = g.top_p {
                    sampling.push(format!("top_p {p}"));
                }
                if let Some(k) = g.top_k {
                    sampling.push(format!("top_k {k}"));
                }
                if let Some(r) = g.repetition_penalty {
                    sampling.push(format!("repetition {r}"));
                }
                let sampling = if sampling.is_empty() { "-".to_string() } else { sampling.join(", ") };
                out.push_str(&format!(
                    "{:<22} {:<42} {:>7.2}B {:>7} {:>9}  {}\n",
                    m.name, m.hf_id, params, m.num_layers, m.max_position_embeddings, sampling
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
