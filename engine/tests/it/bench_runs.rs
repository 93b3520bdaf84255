//! Measured `vllm bench serve` runs (scenarios/validation/gpustack_perf_lab.json): the file's
//! transcription checked against lines quoted from its sources and against itself, and every
//! run's model and GPU found in the catalog.
// See: issue 12 item 3, issue 16 item 1.

use std::path::{Path, PathBuf};

use serde_json::Value;
use symbiote::hardware::Catalog;
use symbiote::report::bench_fidelity::{medians_by_gpu, simulate, simulate_all};
use symbiote::scenario::bench_runs::load;

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

/// Two runs in the bench-runs format: 8 random prompts at rate inf whose outputs stopped
/// early (30 of 32 tokens on average), and ShareGPT with two in flight at a time.
const FIXTURE: &str = r#"{"format": "symbiote-bench-runs/1", "runs": [
  {"id": "inf", "gpu": "h100-80gb", "model": "qwen3-8b", "hf_model": "Qwen/Qwen3-8B", "quantization": "bf16",
   "tp": 1, "vllm_version": "0.11.0", "serve_command": "vllm serve Qwen/Qwen3-8B --max-num-seqs 4",
   "dataset": {"name": "random", "input_len": 256, "output_len": 32, "num_prompts": 8},
   "request_rate": "inf", "max_concurrency": null,
   "result": {"completed": 8, "duration": 2.0, "total_input_tokens": 2048, "total_output_tokens": 240,
              "request_throughput": 4.0, "output_throughput": 120.0, "mean_ttft_ms": 100.0, "p99_ttft_ms": 300.0,
              "mean_tpot_ms": 10.0, "median_itl_ms": 9.0}},
  {"id": "c2", "gpu": "a100-80gb", "model": "qwen3-8b", "quantization": "bf16", "vllm_version": "0.11.0",
   "serve_command": "vllm serve Qwen/Qwen3-8B",
   "dataset": {"name": "sharegpt", "num_prompts": 6}, "request_rate": "inf", "max_concurrency": 2,
   "result": {"completed": 6, "duration": 3.0, "total_input_tokens": 600, "total_output_tokens": 301,
              "mean_ttft_ms": 50.0, "mean_tpot_ms": 8.0}}]}"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_bench_runs_file_reads_into_cases_that_reproduce_each_benchmark() {
    let dir = crate::temp_dir("bench-runs-fixture");
    let (experiments, hash) = load(&write(&dir, "runs.json", FIXTURE)).unwrap();
    assert_eq!((experiments.len(), hash.len()), (2, 16));
    let inf = &experiments[0];
    // Rate inf: one closed-loop user per prompt, so all 8 leave at t=0.
    let w = &inf.case.workload;
    assert_eq!((w.clients.as_ref().unwrap().users, w.num_requests), (8, Some(8)));
    // Lengths from the measured totals: 2048 / 8 = 256 in, 240 / 8 = 30 out (EOS before 32).
    assert_eq!(serde_json::to_value(&w.prompt).unwrap(), serde_json::json!({"dist": "fixed", "value": 256}));
    assert_eq!(serde_json::to_value(&w.output).unwrap(), serde_json::json!({"dist": "fixed", "value": 30}));
    assert!(inf.warnings.iter().any(|x| x.contains("no --ignore-eos: 30.00 tokens generated")), "{:?}", inf.warnings);
    // The serve command's flags apply; the rest are vLLM v0.11's defaults for the H100.
    assert_eq!((inf.case.engine.max_num_seqs, inf.case.engine.max_num_batched_tokens), (4, 8192));
    assert!(!inf.case.engine.async_scheduling);
    assert_eq!(inf.measured.get("duration"), Some(&2.0));
    assert_eq!(inf.measured.get("median_itl_ms"), Some(&9.0));
    assert!(!inf.measured.contains_key("mean_itl_ms"), "only what the result has");
    let c2 = &experiments[1];
    assert_eq!((c2.case.workload.clients.as_ref().unwrap().users, c2.case.workload.num_requests), (2, Some(6)));
    assert_eq!(c2.case.engine.max_num_seqs, 256, "vLLM v0.11's A100 default");
    assert!(c2.warnings.iter().any(|x| x.contains("per-request lengths not published (sharegpt dataset)")));
    // 301 / 6 = 50.17 output tokens: rounded to 50.
    assert_eq!(
        serde_json::to_value(&c2.case.workload.output).unwrap(),
        serde_json::json!({"dist": "fixed", "value": 50})
    );
}

#[test]
fn a_vllm_save_result_file_reads_with_its_metadata_and_detailed_lengths() {
    let dir = crate::temp_dir("bench-runs-save-result");
    // The keys `vllm bench serve --save-result --save-detailed --metadata gpu=l40s
    // vllm_args="--max-num-seqs 64"` writes (report/vllm_bench.rs lists them), trimmed.
    let text = r#"{"date": "20261201-120000", "endpoint_type": "vllm", "backend": "vllm", "label": null,
      "model_id": "qwen3-8b", "tokenizer_id": "Qwen/Qwen3-8B", "num_prompts": 4, "gpu": "l40s",
      "vllm_args": "--max-num-seqs 64", "request_rate": 2.0, "burstiness": 1.0, "max_concurrency": null,
      "duration": 3.5, "completed": 4, "failed": 0, "total_input_tokens": 400, "total_output_tokens": 200,
      "request_throughput": 1.14, "request_goodput": null, "output_throughput": 57.1, "total_token_throughput": 171.4,
      "input_lens": [50, 150, 100, 100], "output_lens": [50, 50, 50, 50], "ttfts": [0.1, 0.1, 0.1, 0.1],
      "mean_ttft_ms": 100.0, "median_ttft_ms": 100.0, "std_ttft_ms": 0.0, "p99_ttft_ms": 100.0,
      "mean_e2el_ms": 600.0, "median_e2el_ms": 600.0, "p99_e2el_ms": 610.0}"#;
    let (experiments, _) = load(&write(&dir, "measured.json", text)).unwrap();
    let e = &experiments[0];
    assert_eq!((e.key.as_str(), e.case.gpu.name.as_str(), e.case.engine.max_num_seqs), ("measured", "l40s", 64));
    let arrival = serde_json::to_value(e.case.workload.arrival.as_ref().unwrap()).unwrap();
    assert_eq!((arrival["process"].as_str(), arrival["rate"].as_f64()), (Some("poisson"), Some(2.0)));
    let prompt = serde_json::to_value(&e.case.workload.prompt).unwrap();
    assert_eq!(
        (prompt["dist"].as_str(), prompt["mean"].as_f64(), prompt["min"].as_u64()),
        (Some("lognormal"), Some(100.0), Some(50))
    );
    assert_eq!(
        serde_json::to_value(&e.case.workload.output).unwrap(),
        serde_json::json!({"dist": "fixed", "value": 50})
    );
    assert_eq!((e.measured.get("p99_e2el_ms"), e.measured.get("std_ttft_ms")), (Some(&610.0), None));
    assert!(e.warnings.iter().any(|w| w.contains("vLLM version not recorded")));
}

#[test]
fn bad_bench_input_is_refused_naming_the_field() {
    let dir = crate::temp_dir("bench-runs-bad");
    let no_gpu = FIXTURE.replacen(r#""gpu": "h100-80gb", "#, "", 1);
    let problems = load(&write(&dir, "no_gpu.json", &no_gpu)).unwrap_err();
    let text = problems[0].to_string();
    assert!(text.contains("runs[0].gpu") && text.contains("--metadata gpu="), "{text}");
    let no_duration = FIXTURE.replacen(r#""duration": 2.0, "#, "", 1);
    let text = load(&write(&dir, "no_duration.json", &no_duration)).unwrap_err()[0].to_string();
    assert!(text.contains("runs[0].result.duration") && text.contains("positive number"), "{text}");
    let text = load(&write(&dir, "format.json", r#"{"runs": []}"#)).unwrap_err()[0].to_string();
    assert!(text.contains("symbiote-bench-runs/1"), "{text}");
    let save_result_no_gpu = r#"{"model_id": "qwen3-8b", "duration": 1.0, "completed": 1, "total_input_tokens": 5, "total_output_tokens": 5}"#;
    let text = load(&write(&dir, "no_metadata.json", save_result_no_gpu)).unwrap_err()[0].to_string();
    assert!(text.contains("gpu") && text.contains("--metadata gpu=h100-80gb"), "{text}");
    // Neither format: one error from the CLI, exit 2, saying what each format needs.
    let other = write(&dir, "other.json", r#"{"title": "not measurements"}"#);
    let (code, _, stderr) = crate::symbiote(&["fidelity", other.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("neither a sim2real measurements file") && stderr.contains("--save-result"), "{stderr}");
}

/// The fidelity rows take each measured value from the run's own result, the simulated ones
/// from the same keys of the simulated run, and the per-GPU medians from the rows of that GPU
/// (not an accuracy target: the numbers are what the model gives today).
#[test]
fn gpustack_fidelity_compares_the_right_fields() {
    let (experiments, _) = load(&gpustack_file()).unwrap();
    assert_eq!(experiments.len(), 28);
    let pick = |id: &str| experiments.iter().find(|e| e.key == id).unwrap().clone();
    let chosen = [
        pick("gpustack/qwen3-14b/a100/random-2000-100/baseline"),
        pick("gpustack/qwen3-14b/h100/random-128-4/baseline"),
        pick("gpustack/qwen3-8b/h100-latency/sharegpt-c2/baseline"),
    ];
    let rows = simulate_all(&chosen, None);
    for (row, e) in rows.iter().zip(&chosen) {
        let source = &run(&e.key)["result"];
        assert!(row.startup_error.is_none(), "{}", row.key);
        for (key, measured) in &row.measured {
            assert_eq!(Some(*measured), source[key].as_f64(), "{} {key}", row.key);
        }
        assert_eq!(row.measured.len(), 12, "duration, two throughputs and nine latency statistics");
        // Capacity: the simulated request throughput is its completed requests over its duration.
        let (sim_rate, sim_duration) = (row.simulated["request_throughput"], row.simulated["duration"]);
        assert!((sim_rate - row.completed as f64 / sim_duration).abs() < 1e-9, "{}", row.key);
        assert_eq!(row.completed as f64, source["completed"].as_f64().unwrap());
        let ape = (sim_duration - row.measured["duration"]).abs() / row.measured["duration"];
        assert_eq!(row.ape["duration"], ape);
    }
    // 2000-token prompts, 100 outputs on the A100: 500 requests all at t=0.
    assert_eq!(chosen[0].case.workload.clients.as_ref().unwrap().users, 500);
    let by_gpu = medians_by_gpu(&rows);
    let names: Vec<&str> = by_gpu.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(names, ["a100-80gb", "h100-80gb", "all"]);
    // One A100 row: its median is its own error; two H100 rows: the mean of theirs.
    assert_eq!(by_gpu[0].1["mean_ttft_ms"], rows[0].ape["mean_ttft_ms"]);
    let h100 = (rows[1].ape["p99_itl_ms"] + rows[2].ape["p99_itl_ms"]) / 2.0;
    assert!((by_gpu[1].1["p99_itl_ms"] - h100).abs() < 1e-12);
    // Same input, same row (seed 1).
    let again = simulate(&chosen[1], None);
    assert_eq!(again.simulated, rows[1].simulated);
}

#[test]
fn fidelity_on_the_gpustack_file_prints_errors_per_gpu() {
    let out = crate::temp_dir("bench-runs-cli");
    let file = gpustack_file();
    let (code, stdout, stderr) = crate::symbiote(&["fidelity", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Median APE per GPU") && stdout.contains("| a100-80gb | ") && stdout.contains("| all | "),
        "{stdout}"
    );
    assert!(stderr.contains("per-request lengths not published (sharegpt dataset)"), "{stderr}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("fidelity/gpustack_perf_lab.json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 28);
    assert_eq!(json["median_ape_by_gpu"][2]["gpu"], "all");
}

// See: issue 12 item 3 ("cross-validate ... by leaving one GPU out"). Dividing the A100's
// measured values by 3 must not move its held-out predictions (its host profile is fitted on the
// H100 runs only) and must move the H100's (fitted on the A100 runs).
#[test]
fn leave_one_gpu_out_never_sees_the_held_out_gpu() {
    use symbiote::report::bench_fidelity::cross_validate_gpus;
    let (all, _) = load(&gpustack_file()).unwrap();
    let mut runs: Vec<_> = all.into_iter().filter(|e| e.key.contains("random-128-4")).collect();
    for e in &mut runs {
        e.case.step_time = symbiote::scenario::StepTimeChoice::Kernels;
    }
    assert_eq!(runs.len(), 4, "two short-prompt runs per GPU");
    let simulated = |rows: &[symbiote::report::bench_fidelity::Row], gpu: &str| {
        rows.iter().filter(|r| r.gpu == gpu).map(|r| r.simulated.clone()).collect::<Vec<_>>()
    };
    let before = cross_validate_gpus(&runs, 6);
    for e in runs.iter_mut().filter(|e| e.case.gpu.name == "a100-80gb") {
        e.measured.values_mut().for_each(|v| *v /= 3.0);
    }
    let after = cross_validate_gpus(&runs, 6);
    assert_eq!(simulated(&before, "a100-80gb"), simulated(&after, "a100-80gb"));
    assert_ne!(simulated(&before, "h100-80gb"), simulated(&after, "h100-80gb"));
    assert_eq!(before.len(), 4);
}

/// The short-request caveat's ranges (`report::caveats`) are what the model gives today on the
/// GPUStack runs they name: measured over simulated duration of the four `random-128-4` runs
/// and of the four bf16 ShareGPT runs of 1,000 prompts. A model change that moves them out
/// fails here, so the sentence the reports print cannot go stale.
#[test]
fn short_request_caveat_matches_the_gpustack_runs() {
    use symbiote::report::caveats::{SHAREGPT_SLOWDOWN, SHORT_REQUEST_TOKENS, TINY_REQUEST_SLOWDOWN};
    let (experiments, _) = load(&gpustack_file()).unwrap();
    let ratios = |suffix: &str| -> Vec<f64> {
        let chosen: Vec<_> = experiments.iter().filter(|e| e.key.ends_with(suffix)).cloned().collect();
        assert_eq!(chosen.len(), 4, "{suffix}");
        simulate_all(&chosen, None).iter().map(|row| row.measured["duration"] / row.simulated["duration"]).collect()
    };
    for (suffix, (lo, hi)) in
        [("/random-128-4/baseline", TINY_REQUEST_SLOWDOWN), ("/sharegpt/baseline", SHAREGPT_SLOWDOWN)]
    {
        let r = ratios(suffix);
        assert!(r.iter().all(|&x| x >= lo && x <= hi), "{suffix}: measured/simulated {r:?} outside {lo}-{hi}");
        // The range is tight: its ends are within 0.1 of the runs' extremes.
        let (min, max) = r.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(min - lo < 0.1 && hi - max < 0.1, "{suffix}: {r:?} against {lo}-{hi}");
    }
    // Both kinds of run are short by the caveat's threshold; the 2,000 + 100-token runs are not.
    let tokens = |id: &str| {
        let r = run(id)["result"].clone();
        (r["total_input_tokens"].as_f64().unwrap() + r["total_output_tokens"].as_f64().unwrap())
            / r["completed"].as_f64().unwrap()
    };
    assert!(tokens("gpustack/qwen3-14b/h100/random-128-4/baseline") < SHORT_REQUEST_TOKENS);
    assert!(tokens("gpustack/qwen3-14b/h100/sharegpt/baseline") < SHORT_REQUEST_TOKENS);
    assert!(tokens("gpustack/qwen3-14b/h100/random-2000-100/baseline") > SHORT_REQUEST_TOKENS);
}

/// The weight-only caveat's ranges (`report::caveats`): GPUStack's A100-80GB ShareGPT runs with
/// FP8 and AWQ weights over the bf16 run of the same model, measured and as simulated today.
#[test]
fn weight_only_caveat_matches_the_gpustack_runs() {
    use symbiote::report::caveats::{WEIGHT_ONLY_MEASURED_VS_BF16, WEIGHT_ONLY_SIMULATED_VS_BF16};
    let (experiments, _) = load(&gpustack_file()).unwrap();
    let catalog = Catalog::builtin();
    let a100 = catalog.gpu("a100-80gb").unwrap();
    let (mut measured, mut simulated) = (Vec::new(), Vec::new());
    for model in ["qwen3-14b", "qwen3-32b"] {
        let pick = |q: &str| {
            experiments.iter().find(|e| e.key == format!("gpustack/{model}/a100/sharegpt/{q}")).unwrap().clone()
        };
        let rows = simulate_all(&[pick("baseline"), pick("fp8"), pick("awq")], None);
        for (row, e) in rows.iter().zip([pick("baseline"), pick("fp8"), pick("awq")]).skip(1) {
            assert!(e.case.quant.weight_only(a100), "{}: {} is weight-only on the A100", row.key, e.case.quant);
            measured.push(row.measured["duration"] / rows[0].measured["duration"]);
            simulated.push(row.simulated["duration"] / rows[0].simulated["duration"]);
        }
    }
    for (what, r, (lo, hi)) in [
        ("measured", &measured, WEIGHT_ONLY_MEASURED_VS_BF16),
        ("simulated", &simulated, WEIGHT_ONLY_SIMULATED_VS_BF16),
    ] {
        let (min, max) = r.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert!(min >= lo && max <= hi && min - lo < 0.1 && hi - max < 0.1, "{what}: {r:?} against {lo}-{hi}");
    }
    // The H100 has FP8 tensor cores: its FP8 is not weight-only; INT4 is everywhere.
    let h100 = catalog.gpu("h100-80gb").unwrap();
    assert!(!symbiote::hardware::Quant::Fp8.weight_only(h100));
    assert!(symbiote::hardware::Quant::Int4.weight_only(h100));
}
