//! Measured `vllm bench serve` runs, turned into cases that reproduce each benchmark: a file
//! of transcribed runs (`scenarios/validation/gpustack_perf_lab.json`, format
//! `symbiote-bench-runs/1`: a `runs` list, each with its serve and bench settings and a
//! `result` under vLLM's `--save-result` keys), or one plain `vllm bench serve --save-result`
//! file (with or without `--save-detailed`; its keys are listed in `report/vllm_bench.rs`).
//!
//! Each run becomes a case: the catalog model and GPU, the serve command's flags (vLLM's
//! defaults for the rest), and a workload that sends what the benchmark sent. Request rate
//! `inf` sends every prompt at t=0 (closed-loop users, one per prompt, no think time); with
//! `--max-concurrency N`, N users each send the next prompt when the last ends; a finite rate
//! is a Poisson (burstiness 1) or gamma process. Lengths are the measured means: vLLM's
//! `random` dataset has fixed lengths (range ratio 0), but outputs stop early at EOS unless
//! `--ignore-eos`, so the generated total, not `--random-output-len`, gives the output length.
//! What the files do not say becomes a warning naming the assumption.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::validate::{parse_in, Diagnostic};
use super::Case;
use crate::hardware::memory;

/// The format tag of a file of transcribed runs.
pub const FORMAT: &str = "symbiote-bench-runs/1";

/// The measured keys compared, in table order: the capacity at the benchmark's load
/// (duration, request and output throughput) and the latency statistics vLLM prints.
pub const METRICS: [&str; 15] = [
    "duration",
    "request_throughput",
    "output_throughput",
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "p99_itl_ms",
    "mean_e2el_ms",
    "median_e2el_ms",
    "p99_e2el_ms",
];

/// What kind of measurements a JSON file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The sim2real format (`experiments`), read by `scenario::measurements`.
    Sim2Real,
    /// Transcribed `vllm bench serve` runs (`runs`, format [`FORMAT`]).
    BenchRuns,
    /// One `vllm bench serve --save-result` file.
    VllmResult,
}

/// One measured benchmark and the case that reproduces it.
#[derive(Clone, Debug)]
pub struct BenchExperiment {
    pub key: String,
    /// The catalog name of the model.
    pub model: String,
    pub case: Case,
    /// The measured values of [`METRICS`] the run has (ms, s, per second).
    pub measured: BTreeMap<String, f64>,
    pub warnings: Vec<String>,
}

fn err(file: &str, path: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic { file: file.to_string(), path: path.to_string(), message: message.into() }
}

/// Which format a parsed file is, or why it is none of them.
pub fn detect(root: &Value, file: &str) -> Result<Format, Diagnostic> {
    if root.get("experiments").is_some() {
        return Ok(Format::Sim2Real);
    }
    if root.get("runs").is_some() {
        return match root["format"].as_str() {
            Some(FORMAT) => Ok(Format::BenchRuns),
            other => Err(err(
                file,
                "format",
                format!("a `runs` file needs \"format\": \"{FORMAT}\" (found {other:?}); see scenarios/validation/gpustack_perf_lab.json"),
            )),
        };
    }
    if root.get("duration").is_some() && root.get("completed").is_some() {
        return Ok(Format::VllmResult);
    }
    Err(err(
        file,
        "",
        "neither a sim2real measurements file (an `experiments` list), a bench-runs file (a `runs` list with \
         \"format\": \"symbiote-bench-runs/1\") nor a `vllm bench serve --save-result` file (`duration` and `completed`)",
    ))
}

/// Reads a file's JSON and its format. Returns the root, the format and the FNV-1a hash of the bytes.
pub fn read(path: &Path) -> Result<(Value, Format, String), Vec<Diagnostic>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![err(&file, "", format!("cannot read the file: {e}"))])?;
    let hash = format!("{:016x}", super::fnv1a(text.as_bytes()));
    let root: Value = serde_json::from_str(&text).map_err(|e| vec![err(&file, "", format!("not valid JSON: {e}"))])?;
    let format = detect(&root, &file).map_err(|d| vec![d])?;
    Ok((root, format, hash))
}

/// Reads a bench-runs or `--save-result` file into experiments (all problems at once), with
/// the FNV-1a hash of its bytes.
pub fn load(path: &Path) -> Result<(Vec<BenchExperiment>, String), Vec<Diagnostic>> {
    let file = path.display().to_string();
    let (root, format, hash) = read(path)?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let (runs, prefix): (Vec<Value>, &str) = match format {
        Format::BenchRuns => match root["runs"].as_array() {
            Some(runs) => (runs.clone(), "runs"),
            None => return Err(vec![err(&file, "runs", "must be a list of runs")]),
        },
        Format::VllmResult => (vec![from_save_result(&root, path)], ""),
        Format::Sim2Real => {
            return Err(vec![err(&file, "experiments", "a sim2real file: read it with scenario::measurements")])
        }
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let at = if prefix.is_empty() { String::new() } else { format!("{prefix}[{i}]") };
        match experiment(run, &file, &at, base_dir) {
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

/// A `--save-result` file as one run of the bench-runs format: its metrics are the result,
/// and what a result file cannot know (the GPU, the server's flags) comes from `--metadata`
/// keys (`gpu`, `vllm_args`, `quant`, `vllm_version`), which vLLM writes at the top level.
fn from_save_result(root: &Value, path: &Path) -> Value {
    let mut result = serde_json::Map::new();
    if let Value::Object(map) = root {
        for (k, v) in map {
            if v.is_number() {
                result.insert(k.clone(), v.clone());
            }
        }
    }
    let model = root["model_id"].clone();
    let detailed = root["input_lens"].is_array();
    json!({
        "id": path.file_stem().and_then(|s| s.to_str()).unwrap_or("vllm_bench"),
        "gpu": root["gpu"], "model": model, "hf_model": model, "quantization": root["quant"],
        "tp": Value::Null, "vllm_version": root["vllm_version"],
        "serve_command": root["vllm_args"],
        "dataset": {"name": if detailed { "detailed" } else { "unknown" }, "num_prompts": root["num_prompts"],
                    "input_lens": root["input_lens"], "output_lens": root["output_lens"]},
        "request_rate": root["request_rate"], "burstiness": root["burstiness"],
        "max_concurrency": root["max_concurrency"],
        "result": Value::Object(result),
    })
}

fn text<'a>(v: &'a Value, key: &str, file: &str, at: &str) -> Result<&'a str, Vec<Diagnostic>> {
    v[key].as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
        let hint = match key {
            "gpu" => {
                "; give the catalog name (`symbiote list gpus`), e.g. `--metadata gpu=h100-80gb` on `vllm bench serve`"
            }
            "model" => "; give the catalog name (`symbiote list models`) or the Hugging Face id",
            _ => "",
        };
        vec![err(file, &join(at, key), format!("missing or not a string{hint}"))]
    })
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn experiment(run: &Value, file: &str, at: &str, base_dir: &Path) -> Result<BenchExperiment, Vec<Diagnostic>> {
    let key = run["id"].as_str().unwrap_or("?").to_string();
    let mut warnings = Vec::new();
    let result = &run["result"];
    let result_at = join(at, "result");
    let count = |k: &str| -> Result<f64, Vec<Diagnostic>> {
        result[k]
            .as_f64()
            .filter(|x| *x > 0.0 && x.is_finite())
            .ok_or_else(|| vec![err(file, &join(&result_at, k), "missing or not a positive number")])
    };
    let completed = count("completed")?;
    let duration = count("duration")?;
    let (input_total, output_total) = (count("total_input_tokens")?, count("total_output_tokens")?);
    let mut measured = BTreeMap::new();
    for name in METRICS {
        match &result[name] {
            Value::Null => {}
            v => match v.as_f64().filter(|x| x.is_finite() && *x >= 0.0) {
                Some(x) => {
                    measured.insert(name.to_string(), x);
                }
                None => return Err(vec![err(file, &join(&result_at, name), "not a non-negative number")]),
            },
        }
    }
    measured.insert("duration".into(), duration);
    let model = text(run, "model", file, at)?;
    let gpu = text(run, "gpu", file, at)?;
    let quant = run["quantization"].as_str().unwrap_or("bf16");
    if run["quantization"].is_null() {
        warnings.push("quantization not recorded: assumes bf16 weights".into());
    }
    let version = run["vllm_version"].as_str().unwrap_or("");
    if version.is_empty() {
        warnings.push("vLLM version not recorded: assumes v0.11's defaults (async scheduling off)".into());
    }
    let (flags, max_model_len_given) = serve_flags(run["serve_command"].as_str().unwrap_or(""));
    let workload = workload(run, completed, input_total, output_total, &mut warnings);
    let mut base = json!({
        "model": model, "gpu": gpu, "quant": quant, "tp": run["tp"].as_u64().unwrap_or(1),
        "workload": workload,
    });
    if !flags.is_empty() {
        base["vllm_args"] = json!(flags);
    }
    let scenario = json!({"name": "bench", "base": base});
    let parsed = parse_in(&scenario.to_string(), &format!("{file} {at}"), base_dir)?;
    let mut case = parsed.cases.into_iter().next().expect("one case");
    case.name = key.clone();
    if !max_model_len_given {
        fit_max_model_len(&mut case, &mut warnings);
    }
    let sampling = &case.model.generation_config;
    if sampling.filters_logits() {
        warnings.push(format!(
            "`vllm bench serve` sends no sampling parameters by default, so {}'s generation_config applies (top_p {}, top_k {})",
            case.model.name,
            sampling.top_p.map_or("off".into(), |p| p.to_string()),
            sampling.top_k.map_or("off".into(), |k| k.to_string()),
        ));
    }
    Ok(BenchExperiment { key, model: case.model.name.clone(), case, measured, warnings })
}

/// The flags of a `vllm serve MODEL ...` command (the model itself comes from the run's
/// `model` field), and whether `--max-model-len` is among them.
fn serve_flags(command: &str) -> (String, bool) {
    let mut words = command.split_whitespace().peekable();
    if words.peek() == Some(&"vllm") {
        words.next();
        if words.peek() == Some(&"serve") {
            words.next();
        }
    }
    if words.peek().is_some_and(|w| !w.starts_with('-')) {
        words.next();
    }
    let flags: Vec<&str> = words.collect();
    let given = flags.iter().any(|f| f.replace('_', "-").starts_with("--max-model-len"));
    (flags.join(" "), given)
}

/// The workload the benchmark sent: arrivals from the request rate and concurrency, lengths
/// from the dataset and the measured totals.
fn workload(run: &Value, completed: f64, input_total: f64, output_total: f64, warnings: &mut Vec<String>) -> Value {
    let prompts = run["dataset"]["num_prompts"].as_f64().unwrap_or(completed).max(completed) as u64;
    let rate = match &run["request_rate"] {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::Null => f64::INFINITY,
        v => v.as_f64().unwrap_or(f64::INFINITY),
    };
    let concurrency = run["max_concurrency"].as_u64();
    let mut w = json!({"num_requests": prompts});
    if rate.is_infinite() {
        // Rate inf: every prompt leaves the client at t=0, at most `concurrency` in flight.
        w["clients"] = json!({"users": concurrency.unwrap_or(prompts).min(prompts)});
    } else {
        let burstiness = run["burstiness"].as_f64().unwrap_or(1.0);
        w["arrival"] = if (burstiness - 1.0).abs() < 1e-12 {
            json!({"process": "poisson", "rate": rate})
        } else {
            json!({"process": "gamma", "rate": rate, "cv": 1.0 / burstiness.sqrt()})
        };
        if concurrency.is_some() {
            warnings.push("a finite request rate with --max-concurrency: the concurrency cap is not modelled".into());
        }
    }
    let dataset = run["dataset"]["name"].as_str().unwrap_or("unknown");
    let input_mean = input_total / completed;
    let output_mean = output_total / completed;
    let fixed = |x: f64| json!({"dist": "fixed", "value": (x.round() as u64).max(1)});
    w["prompt"] = fixed(input_mean);
    w["output"] = fixed(output_mean);
    match dataset {
        "random" => {
            let nominal = run["dataset"]["output_len"].as_f64().unwrap_or(output_mean);
            if (nominal - output_mean).abs() >= 0.5 {
                warnings.push(format!(
                    "no --ignore-eos: {output_mean:.2} tokens generated per request on average (of --random-output-len {nominal}); simulates {} each",
                    output_mean.round()
                ));
            }
            let nominal_in = run["dataset"]["input_len"].as_f64().unwrap_or(input_mean);
            if (nominal_in - input_mean).abs() >= 0.5 {
                warnings.push(format!(
                    "the client counted {input_mean:.2} prompt tokens per request (of --random-input-len {nominal_in}: vLLM re-tokenizes random prompts); simulates {}",
                    input_mean.round()
                ));
            }
        }
        "detailed" => detailed_lengths(run, &mut w, warnings),
        _ => warnings.push(format!(
            "per-request lengths not published ({dataset} dataset): every request has the measured means, {} prompt and {} output tokens; the spread of real lengths (and so tail latencies) is not reproduced",
            input_mean.round(),
            output_mean.round()
        )),
    }
    w
}

/// A `--save-detailed` file's per-request lengths, as a log-normal of their mean and
/// coefficient of variation clamped to their range (fixed when they do not vary).
fn detailed_lengths(run: &Value, w: &mut Value, warnings: &mut Vec<String>) {
    for (list, field) in [("input_lens", "prompt"), ("output_lens", "output")] {
        let values: Vec<f64> =
            run["dataset"][list].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        let Some((mean, std)) = crate::report::summary::mean_std(&values) else { continue };
        let (lo, hi) = values.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        if mean < 0.5 {
            continue;
        }
        w[field] = if std / mean < 0.01 {
            json!({"dist": "fixed", "value": mean.round().max(1.0) as u64})
        } else {
            json!({"dist": "lognormal", "mean": mean, "cv": std / mean, "min": lo.max(1.0) as u64, "max": hi.max(1.0) as u64})
        };
    }
    warnings.push("per-request lengths replaced by a log-normal of their mean and CV, clamped to their range".into());
}

/// A serve command without `--max-model-len` runs at the model's own limit; where symbiote's
/// memory model says that limit does not fit, vLLM would refuse to start, yet the run did
/// start, so the command as published cannot be complete. The case then gets the longest
/// length that fits, if its longest request fits in it; otherwise it stays a start-up failure.
fn fit_max_model_len(case: &mut Case, warnings: &mut Vec<String>) {
    let Err(failure) = memory::plan(&case.model, &case.gpu, &case.memory_config()) else { return };
    let b = &failure.breakdown;
    let fits = b.num_gpu_blocks * b.block_size;
    let longest = longest_request(&case.workload);
    if fits > 0 && longest.is_some_and(|l| l <= fits) {
        warnings.push(format!(
            "symbiote's memory model cannot hold one {}-token request (vLLM would refuse to start with this serve command); the run started, so assumes --max-model-len {fits} (what fits)",
            case.engine.max_model_len
        ));
        case.engine.max_model_len = fits as u32;
    }
}

/// The most tokens (prompt plus output) one request of the workload can hold, when bounded.
fn longest_request(w: &crate::workload::WorkloadSpec) -> Option<u64> {
    use crate::workload::lengths::LengthDist;
    let most = |d: &Option<LengthDist>| match d {
        Some(LengthDist::Fixed { value }) => Some(*value as u64),
        Some(LengthDist::Lognormal { max: Some(max), .. }) => Some(*max as u64),
        _ => None,
    };
    Some(most(&w.prompt)? + most(&w.output)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_flags_drop_the_command_and_model_and_notice_max_model_len() {
        assert_eq!(
            serve_flags("vllm serve Qwen/Qwen3-32B --max-model-len 32768"),
            ("--max-model-len 32768".into(), true)
        );
        assert_eq!(serve_flags("vllm serve Qwen/Qwen3-14B"), (String::new(), false));
        assert_eq!(serve_flags("--max_model_len=4096 -tp 2"), ("--max_model_len=4096 -tp 2".into(), true));
    }

    #[test]
    fn formats_are_told_apart_by_their_keys() {
        assert_eq!(detect(&json!({"experiments": []}), "f"), Ok(Format::Sim2Real));
        assert_eq!(detect(&json!({"format": FORMAT, "runs": []}), "f"), Ok(Format::BenchRuns));
        assert_eq!(detect(&json!({"duration": 1.0, "completed": 3}), "f"), Ok(Format::VllmResult));
        assert!(detect(&json!({"runs": []}), "f").unwrap_err().message.contains(FORMAT));
        assert!(detect(&json!({}), "f").unwrap_err().message.contains("neither"));
    }
}
