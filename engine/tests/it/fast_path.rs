//! The replicas' fast path for runs of pure-decode steps (`serving::replica::decode_run`) must
//! not move a single byte: every phase, example and benchmark scenario, scaled down, gives the
//! same report, per-run files, timelines and request lists with it as step by step. Step by
//! step also registers every full KV block as it fills, so these tests hold as well that
//! deferring private blocks to a preemption (`serving::kv_cache`, issue 15) changes nothing.

use std::path::{Path, PathBuf};

use symbiote::report::metrics::Capture;
use symbiote::runner::{run_scenario, RunOptions};
use symbiote::scenario::load;
use symbiote::sim::Nanos;

/// Runs `file` scaled by `scale` with and without the fast path and compares everything the
/// runs write, byte for byte.
fn assert_same_both_ways(file: &Path, scale: f64) {
    let mut scenario = load(file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
    scenario.scale(scale);
    assert_scenario_same_both_ways(&scenario, &file.display().to_string(), scale);
}

fn assert_scenario_same_both_ways(scenario: &symbiote::scenario::Scenario, name: &str, scale: f64) {
    let capture = Capture { requests: true, timeline: Some(Nanos::from_millis(20)), ..Capture::default() };
    let run = |step_by_step: bool| {
        let mut scenario = scenario.clone();
        scenario.cases.iter_mut().for_each(|c| c.limits.step_by_step = step_by_step);
        let dir = tempfile::tempdir().unwrap();
        let options = RunOptions { dir: Some(dir.path().to_path_buf()), capture, ..RunOptions::default() };
        let report = run_scenario(&scenario, &options).unwrap();
        (report.to_json(), crate::files_under(dir.path()))
    };
    let (fast, fast_files) = run(false);
    let (slow, slow_files) = run(true);
    if fast != slow {
        let line = fast.lines().zip(slow.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{name} at scale {scale}: report.json differs from line {}:\n  fast path:    {}\n  step by step: {}",
            line + 1,
            fast.lines().nth(line).unwrap_or(""),
            slow.lines().nth(line).unwrap_or("")
        );
    }
    assert_eq!(fast_files.len(), slow_files.len(), "{name}: the runs wrote different files");
    for ((path, a), (other, b)) in fast_files.iter().zip(&slow_files) {
        assert_eq!(path, other, "{name}: the runs wrote different files");
        assert!(a == b, "{name} at scale {scale}: {path} differs between the fast path and step by step");
    }
}

fn scenarios(sub: &str, prefix: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(sub);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p.extension().is_some_and(|e| e == "json") && name.starts_with(prefix)
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no scenarios {prefix}* in {}", dir.display());
    found
}

// See: issue 15
#[test]
fn the_decode_fast_path_gives_the_phase_reports_byte_for_byte() {
    for file in scenarios("", "phase") {
        assert_same_both_ways(&file, 0.25);
    }
}

// See: issue 15
#[test]
fn the_decode_fast_path_gives_the_example_reports_byte_for_byte() {
    for file in scenarios("examples", "") {
        assert_same_both_ways(&file, 0.5);
    }
}

// See: issue 15
#[test]
fn the_decode_fast_path_gives_the_benchmark_reports_byte_for_byte() {
    for file in scenarios("bench", "") {
        // About a thousand requests each (the 1M run, 2,000).
        let requests = load(&file).unwrap().cases[0].workload.num_requests.unwrap_or(1000);
        assert_same_both_ways(&file, (1000.0 / requests as f64).max(0.002));
    }
}

/// What no committed scenario exercises: the kernel-table step model, async scheduling, tiny
/// KV pools with preemptions (with and without prefix caching), odd block sizes, requests cut
/// at max_model_len, no chunked prefill, few sequences, multi-turn chat,
/// a replayed trace with block hashes, and runs stopped by a time or event limit mid-run.
// See: issue 15
#[test]
fn the_decode_fast_path_gives_the_same_bytes_on_edge_cases() {
    let text = r#"{"name": "edges", "base": {"model": "llama-2-7b", "gpu": "a100-80gb",
        "workload": {"arrival": {"process": "poisson", "rate": 20}, "num_requests": 300,
          "prompt": {"dist": "lognormal", "mean": 300, "cv": 0.8, "max": 1500},
          "output": {"dist": "lognormal", "mean": 120, "cv": 0.8, "max": 600}}},
      "cases": [
        {"name": "kernels", "step_time": {"model": "kernels"}},
        {"name": "async", "engine.async_scheduling": true},
        {"name": "tiny pool", "engine.num_gpu_blocks_override": 120, "engine.max_model_len": 1900},
        {"name": "tiny pool no prefix cache", "engine.num_gpu_blocks_override": 120, "engine.max_model_len": 1900,
         "engine.enable_prefix_caching": false},
        {"name": "block 1", "engine.block_size": 1, "engine.num_gpu_blocks_override": 4000, "engine.max_model_len": 2048},
        {"name": "block 32", "engine.block_size": 32},
        {"name": "length capped", "engine.max_model_len": 400},
        {"name": "no chunking", "engine.enable_chunked_prefill": false, "engine.max_num_batched_tokens": 1600,
         "engine.max_model_len": 1600},
        {"name": "seq limit", "engine.max_num_seqs": 4},
        {"name": "time limit", "limits.max_sim_time_s": 7.3},
        {"name": "event limit", "limits.max_events": 2345},
        {"name": "constant", "step_time": {"model": "constant", "step_ms": 7, "token_us": 3}}
      ]}"#;
    let scenario = crate::scenario(text);
    assert_scenario_same_both_ways(&scenario, "edge cases", 1.0);
    let text = r#"{"name": "chat", "base": {"model": "llama-2-7b", "gpu": "a100-80gb",
        "workload": {"arrival": {"process": "poisson", "rate": 20}, "num_requests": 300,
          "shared_prefix": {"num_groups": 3, "num_prompts_per_group": 4, "system_prompt_len": 200,
            "question_len": 40, "output_len": 50, "enable_multi_turn_chat": true}}},
      "cases": [{"name": "roomy"}, {"name": "tiny pool", "engine.num_gpu_blocks_override": 150}]}"#;
    assert_scenario_same_both_ways(&crate::scenario(text), "multi-turn chat", 1.0);
    let traces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/traces");
    let text = r#"{"name": "trace", "base": {"model": "qwen2.5-0.5b", "gpu": "h100",
            "engine": {"num_gpu_blocks_override": 3000, "max_model_len": 32768},
            "workload": {"trace": {"path": "synthetic_trace.jsonl.gz", "limit": 400}}}}"#;
    let scenario = symbiote::scenario::parse_in(text, "t.json", &traces).unwrap();
    assert_scenario_same_both_ways(&scenario, "trace replay", 1.0);
}
