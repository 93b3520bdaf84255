//! Measured `vllm bench serve` runs (scenarios/validation/gpustack_perf_lab.json): the file's
//! transcription checked against lines quoted from its sources and against itself, and every
//! run's model and GPU found in the catalog.
// See: issue 12 item 3, issue 16 item 1.

use std::path::{Path, PathBuf};

use serde_json::Value;
use symbiote::hardware::Catalog;

fn gpustack_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validation/gpustack_perf_lab.json")
}

fn runs() -> Vec<Value> {
    let text = std::fs::read_to_string(gpustack_file()).unwrap();
    let root: Value = serde_json::from_str(&text).unwrap();
    root["runs"].as_array().unwrap().clone()
}

fn run(id: &str) -> Value {
    runs().into_iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("no run {id}"))
}

/// Lines of the result blocks as the source files print them (gpustack/gpustack at the
/// commit each run names), and the key they were transcribed to.
#[test]
fn quoted_source_lines_match_the_transcription() {
    let quotes = [
        // docs/performance-lab/qwen3-14b/a100.md, 1. Choosing the Inference Engine, vLLM
        ("gpustack/qwen3-14b/a100/sharegpt/baseline", "Benchmark duration (s):                  106.82", "duration"),
        (
            "gpustack/qwen3-14b/a100/sharegpt/baseline",
            "Mean TTFT (ms):                          41875.09",
            "mean_ttft_ms",
        ),
        // docs/performance-lab/qwen3-14b/h100.md, Other Benchmark Cases, random 128 input
        (
            "gpustack/qwen3-14b/h100/random-128-4/baseline",
            "Median ITL (ms):                         581.28",
            "median_itl_ms",
        ),
        // docs/performance-lab/qwen3-32b/a100.md, Other Benchmark Cases, random 4K input
        (
            "gpustack/qwen3-32b/a100/random-4000-200/baseline",
            "P99 TTFT (ms):                           1116945.95",
            "p99_ttft_ms",
        ),
        // docs/performance-lab/qwen3-32b/h100.md, Other Benchmark Cases, random 32K input
        (
            "gpustack/qwen3-32b/h100/random-32000-100/baseline",
            "Total generated tokens:                  7681",
            "total_output_tokens",
        ),
        // docs/performance-lab/qwen3-8b/h100-latency.md, Other Benchmark Cases, BS=8
        (
            "gpustack/qwen3-8b/h100-latency/sharegpt-c8/baseline",
            "Mean TPOT (ms):                          7.71",
            "mean_tpot_ms",
        ),
        (
            "gpustack/qwen3-8b/h100-latency/sharegpt-c8/baseline",
            "Maximum request concurrency:             8",
            "max_concurrency",
        ),
    ];
    for (id, line, key) in quotes {
        let printed: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let r = run(id);
        let value = if key == "max_concurrency" { &r[key] } else { &r["result"][key] };
        assert_eq!(value.as_f64(), Some(printed), "{id}: `{line}` transcribed as {value}");
    }
}

/// The throughputs vLLM prints are counts over the duration, so a mistyped count, duration or
/// throughput shows up as a mismatch (the duration is printed to 0.01 s, hence the tolerance).
#[test]
fn every_runs_throughputs_agree_with_its_counts_and_duration() {
    let all = runs();
    assert_eq!(all.len(), 28);
    for r in &all {
        let x = &r["result"];
        let f = |k: &str| x[k].as_f64().unwrap_or_else(|| panic!("{}: no {k}", r["id"]));
        let duration = f("duration");
        let slack = |value: f64| value * 0.006 / duration + 0.011;
        let checks = [
            ("request_throughput", f("completed") / duration),
            ("output_throughput", f("total_output_tokens") / duration),
            ("total_token_throughput", (f("total_input_tokens") + f("total_output_tokens")) / duration),
        ];
        for (key, computed) in checks {
            assert!(
                (computed - f(key)).abs() <= slack(computed),
                "{}: {key} {} but counts give {computed}",
                r["id"],
                f(key)
            );
        }
        assert_eq!(f("completed"), r["dataset"]["num_prompts"].as_f64().unwrap(), "{}", r["id"]);
    }
}

#[test]
fn every_runs_model_and_gpu_are_in_the_catalog() {
    let catalog = Catalog::builtin();
    for r in runs() {
        let model = catalog.model(r["model"].as_str().unwrap()).unwrap();
        assert_eq!(model.hf_id, r["hf_model"].as_str().unwrap().trim_end_matches("-FP8").trim_end_matches("-AWQ"));
        catalog.gpu(r["gpu"].as_str().unwrap()).unwrap();
    }
}
