//! The six phase scenario files, run at reduced size: every file loads, every expectation in
//! it holds, and the properties any faithful model must show are there.

use std::path::Path;

use serde_json::Value;
use symbiote::report::Report;
use symbiote::runner::{run_scenario, RunOptions};
use symbiote::scenario::load;

fn run_phase(file: &str, scale: f64) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file);
    let mut scenario = load(&path).unwrap_or_else(|e| panic!("{file}: {e:?}"));
    scenario.scale(scale);
    let report = run_scenario(&scenario, &RunOptions::default()).unwrap();
    let failed: Vec<String> = report
        .cases
        .iter()
        .flat_map(|c| {
            c.runs.iter().flat_map(move |r| {
                r.expectations
                    .iter()
                    .filter(|e| !e.pass)
                    .map(move |e| format!("{} seed {}: {} ({})", c.name, r.seed, e.what, e.detail))
            })
        })
        .collect();
    assert!(failed.is_empty(), "{file} at scale {scale}: {failed:#?}");
    assert!(report.findings.is_some(), "{file} has no findings");
    report
}

fn metric(report: &Report, case: &str, key: &str) -> f64 {
    let case = report.cases.iter().find(|c| c.name == case).unwrap_or_else(|| panic!("no case {case}"));
    case.runs[0].metrics[key].as_f64().unwrap_or_else(|| panic!("{key} missing"))
}

#[test]
fn phase1_picks_a_configuration_that_met_the_slo() {
    let report = run_phase("phase1_config_matrix.json", 0.2);
    let findings = report.findings.unwrap();
    let best = findings.details["configurations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["slo_met"] == Value::Bool(true))
        .count();
    assert!(best > 0);
    assert!(findings.headline.starts_with("best within SLO: `"), "{}", findings.headline);
}

#[test]
fn phase2_a_10x_spike_queues_deeper_than_a_5x_spike() {
    let report = run_phase("phase2_burstiness.json", 0.5);
    assert!(metric(&report, "spike 10x", "peak_queue_depth") >= metric(&report, "spike 5x", "peak_queue_depth"));
    assert!(metric(&report, "spike 10x", "slo_violations_during_spikes") > 0.0);
}

#[test]
fn phase3_static_batches_run_out_of_memory_where_vllm_completes() {
    let report = run_phase("phase3_oom.json", 1.0);
    let outcome = |case: &str| report.cases.iter().find(|c| c.name == case).unwrap().runs[0].outcome.clone();
    assert_eq!(outcome("batch 8192 static"), "oom");
    assert_eq!(outcome("batch 8192 vllm"), "completed");
    assert_eq!(outcome("at the memory limit 134 static"), "completed");
    // The searched limit for the case's GPU is the batch the file runs at the limit.
    let limits = &report.findings.unwrap().details["safe_batch"];
    let a100 = limits.as_array().unwrap().iter().find(|l| l["gpu"] == "a100-80gb").unwrap();
    assert_eq!(a100["static_rows"], 134);
}

#[test]
fn phase4_prefix_hit_rate_falls_when_the_working_set_outgrows_the_cache() {
    let report = run_phase("phase4_kv_cache_stress.json", 0.5);
    let fits = metric(&report, "prefixes fit the cache", "prefix_cache_hit_rate");
    let thrash = metric(&report, "prefix thrash", "prefix_cache_hit_rate");
    assert!(fits > 0.8 && thrash < fits - 0.3, "fits {fits}, thrash {thrash}");
    assert!(metric(&report, "utilisation high", "kv_usage_mean") > metric(&report, "utilisation low", "kv_usage_mean"));
}

#[test]
fn phase5_int4_weights_are_about_an_eighth_of_fp32() {
    let report = run_phase("phase5_weight_storage.json", 1.0);
    let weights =
        |case: &str| report.cases.iter().find(|c| c.name == case).unwrap().runs[0].memory.weights_bytes as f64;
    let ratio = weights("model=llama-2-13b gpu=h100 quant=int4") / weights("model=llama-2-13b gpu=h100 quant=fp32");
    // An eighth for the linear layers, plus 16-bit embeddings and group scales.
    assert!(ratio > 0.125 && ratio < 0.15, "{ratio}");
    assert_eq!(
        report.cases.iter().find(|c| c.name == "model=llama-2-13b gpu=rtx-3090 quant=fp16").unwrap().runs[0].outcome,
        "oom"
    );
}

#[test]
fn phase6_chunking_lowers_p99_itl_when_long_prompts_meet_running_decodes() {
    let report = run_phase("phase6_chunked_prefill.json", 0.5);
    for model in ["qwen2.5-0.5b", "qwen2.5-7b"] {
        for prompt in [2048, 8192] {
            let suffix = format!("model={model} value={prompt}");
            let whole = metric(&report, &format!("no_chunking {suffix}"), "p99_itl_ms");
            let chunked = metric(&report, &format!("medium_chunks {suffix}"), "p99_itl_ms");
            assert!(chunked < whole, "{suffix}: medium chunks {chunked} ms vs no chunking {whole} ms");
        }
    }
}

/// The six phase reports are byte-identical to the committed baselines: a change meant to make
/// the simulator faster or safer must not move a single number. A change meant to move numbers
/// rewrites the baselines (`symbiote check FILE --baseline outputs/baselines/NAME.json --update`)
/// and says why in its commit.
// See: issue 15
#[test]
fn phase_reports_are_byte_identical_to_the_baselines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in [
        "phase1_config_matrix",
        "phase2_burstiness",
        "phase3_oom",
        "phase4_kv_cache_stress",
        "phase5_weight_storage",
        "phase6_chunked_prefill",
    ] {
        let scenario = load(&root.join(format!("scenarios/{name}.json"))).unwrap();
        let report = run_scenario(&scenario, &RunOptions::default()).unwrap();
        let baseline = std::fs::read_to_string(root.join(format!("outputs/baselines/{name}.json"))).unwrap();
        let now = report.to_json();
        if now != baseline {
            let line = now.lines().zip(baseline.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "{name}: report.json differs from outputs/baselines/{name}.json from line {}:\n  now:      {}\n  baseline: {}",
                line + 1,
                now.lines().nth(line).unwrap_or(""),
                baseline.lines().nth(line).unwrap_or("")
            );
        }
    }
}
