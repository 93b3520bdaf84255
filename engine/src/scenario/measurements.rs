//! Measured serving runs in the format of `shared/reference/sim2real_trainval.json` (real vLLM
//! runs published by inference-sim/sim-to-real-accuracy-validation), turned into cases that
//! simulate each run: fleet, engine limits, the inference-perf shared-prefix workload and its
//! constant-rate stages. What cannot be modelled, or was not published, becomes a warning
//! naming what the simulation assumes instead.

use std::path::Path;

use serde_json::{json, Value};

use super::validate::{parse_in, Diagnostic};
use super::Case;

/// What one measured run reports (ms), as the file defines it: client-side latencies of
/// successful requests; `itl` is (mean E2E - mean TTFT) / (mean output tokens - 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub e2e_mean: f64,
    pub e2e_p90: f64,
    pub e2e_p99: f64,
    pub ttft_mean: f64,
    pub ttft_p90: f64,
    pub ttft_p99: f64,
    pub itl: f64,
    /// The mean output length the client counted (`derived_mean_output_tokens`), when given:
    /// the divisor of `itl`. It can fall short of what the server generated (see [`load`]).
    pub counted_output_tokens: Option<f64>,
}

/// One measured run and the case that simulates it.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub key: String,
    /// The catalog name of the model (the unit of leave-one-model-out validation).
    pub model: String,
    pub case: Case,
    pub measured: Measured,
    pub warnings: Vec<String>,
}

fn err(file: &str, path: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic { file: file.to_string(), path: path.to_string(), message: message.into() }
}

/// Reads a measurements file. Returns the experiments and the FNV-1a hash of the file's bytes
/// (recorded with calibrated parameters).
/// `multi_turn: false` (the default of `symbiote fidelity`) replays every shared-prefix workload
/// single-turn: each prompt is a system prompt plus one question. The runs' own inference-perf
/// summaries show why: for the Llama-2-7B `general` run, 16,800 prompts of 559 to 592 tokens
/// (mean 575) and no failures, so conversations did not grow with each turn in these runs.
/// `multi_turn: true` applies inference-perf's documented multi-turn semantics instead.
pub fn load(path: &Path, multi_turn: bool) -> Result<(Vec<Experiment>, String), Vec<Diagnostic>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![err(&file, "", format!("cannot read the file: {e}"))])?;
    let hash = format!("{:016x}", super::fnv1a(text.as_bytes()));
    let root: Value = serde_json::from_str(&text).map_err(|e| vec![err(&file, "", format!("not valid JSON: {e}"))])?;
    let experiments = root["experiments"].as_array().ok_or_else(|| {
        vec![err(&file, "experiments", "missing the `experiments` list; is this a sim2real measurements file?")]
    })?;
    let templates = &root["workload_templates"];
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in experiments.iter().enumerate() {
        match experiment(e, templates, &file, &format!("experiments[{i}]"), multi_turn) {
            Ok(x) => out.push(x),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok((out, hash))
    } else {
        Err(problems)
    }
}

fn num(v: &Value, key: &str, file: &str, path: &str) -> Result<f64, Vec<Diagnostic>> {
    v[key].as_f64().ok_or_else(|| vec![err(file, &format!("{path}.{key}"), "missing or not a number")])
}

fn experiment(
    e: &Value,
    templates: &Value,
    file: &str,
    path: &str,
    multi_turn: bool,
) -> Result<Experiment, Vec<Diagnostic>> {
    let key = e["key"].as_str().unwrap_or("?").to_string();
    let gt = &e["ground_truth"]["summary"];
    let gt_path = format!("{path}.ground_truth.summary");
    let measured = Measured {
        e2e_mean: num(gt, "e2e_mean_ms", file, &gt_path)?,
        e2e_p90: num(gt, "e2e_p90_ms", file, &gt_path)?,
        e2e_p99: num(gt, "e2e_p99_ms", file, &gt_path)?,
        ttft_mean: num(gt, "ttft_mean_ms", file, &gt_path)?,
        ttft_p90: num(gt, "ttft_p90_ms", file, &gt_path)?,
        ttft_p99: num(gt, "ttft_p99_ms", file, &gt_path)?,
        itl: num(gt, "tpot_from_means_ms", file, &gt_path)?,
        counted_output_tokens: gt["derived_mean_output_tokens"].as_f64(),
    };
    let mut warnings = Vec::new();
    let s = &e["serving_config"];
    let model =
        e["model"]["hf_id"].as_str().ok_or_else(|| vec![err(file, &format!("{path}.model.hf_id"), "missing")])?;
    let quant = match e["model"]["precision"].as_str().unwrap_or("FP16").to_ascii_lowercase().as_str() {
        "fp8" => "fp8",
        "bf16" => "bf16",
        "fp32" => "fp32",
        _ => "fp16",
    };
    let gpu = match e["hardware"]["gpu"].as_str().unwrap_or("H100") {
        "H100" => "h100",
        "A100" => "a100-80gb",
        "L40S" => "l40s",
        other => other,
    };
    let mut engine = json!({});
    for field in [
        "max_num_batched_tokens",
        "max_num_seqs",
        "max_model_len",
        "gpu_memory_utilization",
        "enable_prefix_caching",
        "enable_chunked_prefill",
    ] {
        if !s[field].is_null() {
            engine[field] = s[field].clone();
        }
    }
    if s["max_model_len"].is_null() {
        // vLLM's default is the model's own limit (`_get_and_verify_max_len`), looked up the way
        // the case will resolve the model (a --catalog entry, a Hugging Face folder), so a
        // 16,384-token CodeLlama gets 16,384. Past 32,768 the run must have set a smaller one:
        // vLLM would not have started with the KV cache unable to hold one 1M-token (Mistral-Nemo)
        // or 10M-token (Llama 4 Scout) sequence, so 32,768 is assumed and said.
        let model_max = crate::hardware::resolve_model(model, Path::new("."), crate::hardware::active_catalog())
            .map_or(32768, |m| m.max_position_embeddings);
        let len = model_max.min(32768);
        engine["max_model_len"] = json!(len);
        warnings.push(format!("max_model_len not published: assumes {len} (the model's limit, capped at 32,768)"));
    }
    if let Some(tokens) = s["gpu_kv_cache_tokens"].as_u64() {
        let block = s["kv_block_size_tokens"].as_u64().unwrap_or(16);
        engine["num_gpu_blocks_override"] = json!(tokens / block);
    }
    // vLLM enables async scheduling by default since PR #27614 (late 2025); the runs' TTFTs show it:
    // mean TTFT is ~8 ms plus 2.2 to 2.8 mean inter-token times in every non-reasoning run,
    // the running step, the step already planned and the request's own.
    engine["async_scheduling"] = json!(true);
    if !s["engine"].as_str().unwrap_or("").contains("v0.1") {
        warnings.push("vLLM version not stated: assumes v0.15.1 (the file's) with async scheduling on".into());
    }
    // Expert parallelism: the serving config's flag where a file has one; the sim2real file
    // records it only in the MoE runs' notes ("Expert parallelism auto-enabled (EP = TP x DP)").
    let expert_parallel = s["enable_expert_parallel"].as_bool().unwrap_or_else(|| {
        e["model"]["architecture"].as_str() == Some("moe")
            && e["note"].as_str().is_some_and(|n| n.to_ascii_lowercase().contains("expert parallelism auto-enabled"))
    });
    if expert_parallel {
        engine["enable_expert_parallel"] = json!(true);
        if s["enable_expert_parallel"].is_null() {
            warnings
                .push("expert parallelism taken from the run's note: experts spread whole over the TP ranks".into());
        }
        if s["data_parallel_size"].as_u64().unwrap_or(1) > 1 {
            warnings
                .push("EP across data-parallel ranks (all-to-all) is not modelled: EP = TP within each replica".into());
        }
    }
    if s["cpu_kv_offload"].as_bool() == Some(true) {
        // The tier's size as the run recorded it: a number of GiB, or the GiB figure in its
        // details ("8 GiB CPU KV tier via vLLM OffloadingConnector ...").
        match s["cpu_kv_offload_gib"].as_f64().or_else(|| offload_gib(s["cpu_kv_offload_details"].as_str())) {
            Some(gib) => {
                engine["kv_offloading_size"] = json!(gib);
                warnings.push(format!(
                    "CPU KV offload modelled as vLLM's OffloadingConnector with a {gib} GiB CPU tier (the run's serving config); \
                     stores do not hold finished requests' GPU blocks, and the 'recompute' failure policy never triggers"
                ));
            }
            None => warnings.push(
                "CPU KV offload (OffloadingConnector) on but its size is not stated: not modelled, assumes the GPU KV cache alone"
                    .into(),
            ),
        }
    }
    let (workload, mut assumed) = workload(e, templates, multi_turn);
    warnings.append(&mut assumed);
    let tp = s["tensor_parallel_size"].as_u64().unwrap_or(1);
    let replicas = s["data_parallel_size"].as_u64().unwrap_or(1);
    let scenario = json!({
        "name": "fidelity",
        "base": {
            "model": model, "gpu": gpu, "quant": quant, "tp": tp,
            "fleet": {"replicas": replicas, "router": "round_robin"},
            "engine": engine,
            "workload": workload
        }
    });
    let parsed = parse_in(&scenario.to_string(), &format!("{file} {path}"), Path::new("."))?;
    let mut case = parsed.cases.into_iter().next().expect("one case");
    case.name = key.clone();
    let model = case.model.name.clone();
    // inference-perf's completion request carries no sampling parameters (model, prompt,
    // max_tokens, ignore_eos, stream: inference_perf/apis/completion.py), so vLLM applies the
    // model's generation_config defaults.
    let sampling = &case.model.generation_config;
    if sampling.filters_logits() {
        warnings.push(format!(
            "requests set no sampling parameters, so {model}'s generation_config applies (top_p {}, top_k {}): \
             the sampler sorts every sequence's logits each step",
            sampling.top_p.map_or("off".into(), |p| p.to_string()),
            sampling.top_k.map_or("off".into(), |k| k.to_string()),
        ));
    }
    if case.engine.max_model_len as u64 > case.model.max_position_embeddings {
        case.engine.max_model_len = case.model.max_position_embeddings as u32;
    }
    Ok(Experiment { key, model, case, measured, warnings })
}

/// The workload of an experiment: its own spec when exact, else its type's template; the
/// parts not published become assumptions.
fn workload(e: &Value, templates: &Value, multi_turn: bool) -> (Value, Vec<String>) {
    let w = &e["workload"];
    let kind = w["type"].as_str().unwrap_or("general");
    let mut warnings = Vec::new();
    let base_kind = kind.trim_end_matches("-lite");
    let template = &templates[base_kind];
    let shared = if !w["shared_prefix_effective_config_dump"].is_null() {
        w["shared_prefix_effective_config_dump"].clone()
    } else if !template["effective_shared_prefix_in_inference_perf_config_dump"].is_null() {
        template["effective_shared_prefix_in_inference_perf_config_dump"].clone()
    } else {
        let t = &templates[kind]["shared_prefix"];
        json!({"num_groups": t["num_unique_system_prompts"], "num_prompts_per_group": t["num_users_per_system_prompt"],
               "system_prompt_len": t["system_prompt_len"], "question_len": t["question_len"], "output_len": t["output_len"]})
    };
    let mut shared = shared;
    shared["enable_multi_turn_chat"] = json!(multi_turn);
    if multi_turn {
        warnings.push(
            "replayed multi-turn (contexts grow turn by turn); the runs' own prompt lengths suggest they did not"
                .into(),
        );
    }
    // The server generates output_len tokens for every request (the runs set ignore_eos), even
    // where the client counted fewer: the Llama-2-7B `general` run counted 209 of 248 on average
    // and a minimum of 0, yet its fastest request took 1,694 ms end to end, i.e. ~248 decode
    // steps. inference-perf counts output tokens by re-tokenizing the streamed text
    // (inference_perf/apis/completion.py), so tokens that decode to nothing (a base model's EOS
    // and special tokens past ignore_eos) go uncounted. So the simulation generates
    // output_len; the counted mean only divides the ITL.
    if let Some(counted) = e["ground_truth"]["summary"]["derived_mean_output_tokens"].as_f64() {
        let configured = shared["output_len"].as_f64().unwrap_or(counted);
        if configured - counted >= 1.0 {
            warnings.push(format!(
                "output_len {configured} configured but the client counted {counted:.1} on average: simulates \
                 {configured} generated tokens (ignore_eos) and divides ITL by the counted {counted:.1} - 1"
            ));
        }
    }
    let stages: Value = if let Some(stages) = w["stages"].as_array() {
        json!(stages.iter().map(|s| json!({"duration_s": s["duration_s"], "rate": s["rate_rps"]})).collect::<Vec<_>>())
    } else {
        match kind {
            "general-lite" => {
                warnings.push("general-lite stages not published: assumes 600 s at 3 req/s then 600 s at the documented 6 req/s peak".into());
                json!([{"duration_s": 600, "rate": 3}, {"duration_s": 600, "rate": 6}])
            }
            "reasoning-lite" => {
                warnings
                    .push("reasoning-lite duration not published: assumes 1,200 s at the documented 1 req/s".into());
                json!([{"duration_s": 1200, "rate": 1}])
            }
            _ => json!(template["stages"]
                .as_array()
                .map(|st| st
                    .iter()
                    .map(|s| json!({"duration_s": s["duration_s"], "rate": s["rate_rps"]}))
                    .collect::<Vec<_>>())
                .unwrap_or_default()),
        }
    };
    if w["spec_status"].as_str() == Some("template") {
        warnings.push(format!("workload spec not published for this run: uses the `{kind}` template"));
    }
    (json!({"arrival": {"process": "constant", "stages": stages}, "shared_prefix": shared}), warnings)
}

/// The GiB figure of a serving config's offload description ("8 GiB CPU KV tier ...").
fn offload_gib(details: Option<&str>) -> Option<f64> {
    let words: Vec<&str> = details?.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].eq_ignore_ascii_case("GiB"))
        .and_then(|w| w[0].parse().ok())
        .filter(|g: &f64| *g > 0.0)
}

#[cfg(test)]
mod tests {
    use super::offload_gib;

    #[test]
    fn the_offload_size_is_read_from_the_runs_details() {
        let details = "8 GiB CPU KV tier via vLLM OffloadingConnector, 'recompute' failure policy";
        assert_eq!(offload_gib(Some(details)), Some(8.0));
        assert_eq!(offload_gib(Some("a CPU tier")), None);
        assert_eq!(offload_gib(None), None);
    }
}
