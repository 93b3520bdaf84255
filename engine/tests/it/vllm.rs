//! vLLM in, vLLM out (issue 16): `vllm bench serve` result files written by `run` and read
//! back by `check`, vLLM's engine arguments in a case, `--percentiles`.

use serde_json::Value;

use crate::{symbiote, temp_dir};

// See: issue 16
const ONE_RUN: &str = r#"{"name": "bench_one", "base": {"model": "qwen2.5-0.5b", "gpu": "a100-40gb",
  "vllm_args": "--max-num-seqs 8 --max-model-len 1024 --no-enable-prefix-caching",
  "workload": {"arrival": {"process": "gamma", "rate": 20, "cv": 2}, "num_requests": 60,
    "prompt": {"dist": "uniform", "min": 200, "max": 1100}, "output": {"dist": "uniform", "min": 1, "max": 40}}}}"#;

fn run(dir: &std::path::Path, scenario: &str, extra: &[&str]) -> (i32, String, String) {
    std::fs::write(dir.join("s.json"), scenario).unwrap();
    let (file, out) = (dir.join("s.json"), dir.join("out"));
    let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    symbiote(&args)
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// numpy's percentile with linear interpolation, over an unsorted list (the oracle).
fn numpy_percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q / 100.0;
    let lo = h.floor() as usize;
    v[lo] + (h - h.floor()) * (v[(lo + 1).min(v.len() - 1)] - v[lo])
}

fn floats(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn issue_16_a_run_writes_a_vllm_bench_serve_result_with_per_request_lists() {
    let dir = temp_dir("vllm-one");
    let bench = dir.join("bench.json");
    let (code, stdout, stderr) =
        run(&dir, ONE_RUN, &["--vllm-bench-json", bench.to_str().unwrap(), "--percentiles", "50,90,95,99.9"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("vllm bench serve result: {}", bench.display())), "{stdout}");
    let b = read(&bench);
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    let vllm_keys = [
        "date",
        "endpoint_type",
        "backend",
        "label",
        "model_id",
        "tokenizer_id",
        "num_prompts",
        "request_rate",
        "burstiness",
        "max_concurrency",
        "duration",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_throughput",
        "request_goodput",
        "output_throughput",
        "total_token_throughput",
        "input_lens",
        "output_lens",
        "ttfts",
        "itls",
        "latencies",
        "start_times",
        "queue_times",
        "generated_texts",
        "errors",
        "max_output_tokens_per_s",
        "max_concurrent_requests",
        "rtfx",
    ];
    let positions: Vec<usize> = vllm_keys.iter().map(|k| keys.iter().position(|x| x == k).expect(k)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "vLLM's key order: {keys:?}");
    for metric in ["ttft", "tpot", "itl", "e2el"] {
        for stat in ["mean", "median", "std", "p50", "p90", "p95", "p99.9"] {
            assert!(b[format!("{stat}_{metric}_ms")].is_number(), "{stat}_{metric}_ms");
        }
    }
    assert_eq!((b["request_rate"].as_f64(), b["burstiness"].as_f64()), (Some(20.0), Some(0.25)));
    assert!(b["request_goodput"].is_null() && b["max_concurrency"].is_null());
    assert_eq!(b["model_id"], "Qwen/Qwen2.5-0.5B");
    // Prompts of 1024 tokens or more are refused as `vllm serve` refuses them: failed requests.
    let n = b["num_prompts"].as_u64().unwrap() as usize;
    let (completed, failed) = (b["completed"].as_u64().unwrap(), b["failed"].as_u64().unwrap());
    assert!(failed > 0 && completed > 0 && completed + failed == n as u64, "{completed} + {failed} != {n}");
    for list in ["input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times", "errors"] {
        assert_eq!(b[list].as_array().unwrap().len(), n, "{list}");
    }
    let errors = b["errors"].as_array().unwrap();
    assert_eq!(errors.iter().filter(|e| e.as_str() != Some("")).count() as u64, failed);
    for i in 0..n {
        let gaps = b["itls"][i].as_array().unwrap().len() as u64;
        let output = b["output_lens"][i].as_u64().unwrap();
        assert_eq!(gaps, output.saturating_sub(1), "request {i}");
    }
    // Exact percentiles over the lists it wrote, as numpy computes them (ITL included).
    let ok: Vec<usize> = (0..n).filter(|&i| errors[i] == "").collect();
    let ttfts: Vec<f64> = ok.iter().map(|&i| b["ttfts"][i].as_f64().unwrap() * 1e3).collect();
    let itls: Vec<f64> = ok.iter().flat_map(|&i| floats(&b["itls"][i])).map(|s| s * 1e3).collect();
    for (q, key) in [(99.9, "p99.9"), (50.0, "p50")] {
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(near(b[format!("{key}_ttft_ms")].as_f64().unwrap(), numpy_percentile(&ttfts, q)), "{key} ttft");
        assert!(near(b[format!("{key}_itl_ms")].as_f64().unwrap(), numpy_percentile(&itls, q)), "{key} itl");
    }
    // The same run's report.json: failed = rejected, max_concurrent_requests, no goodput.
    let m = &read(&dir.join("out/bench_one/report.json"))["cases"][0]["runs"][0]["metrics"];
    assert_eq!(m["failed"], m["rejected"]);
    assert_eq!(m["failed"].as_u64(), Some(failed));
    assert_eq!(m["max_concurrent_requests"], b["max_concurrent_requests"]);
    assert!(m.get("request_goodput").is_none() && m["p99.9_e2el_ms"].is_number());

    // Read back by `check`: the scenario against its own vLLM-format result passes ...
    let scenario = dir.join("s.json");
    let (code, stdout, _) = symbiote(&["check", scenario.to_str().unwrap(), "--baseline", bench.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("baseline: vllm bench serve result"), "{stdout}");
    assert!(stdout.contains("| base | p99.9_ttft_ms |") && stdout.contains("| total_token_throughput |"), "{stdout}");
    // ... and a faster measured TTFT makes it a regression.
    let mut faster = b.clone();
    faster["p99.9_ttft_ms"] = (b["p99.9_ttft_ms"].as_f64().unwrap() / 2.0).into();
    std::fs::write(dir.join("faster.json"), faster.to_string()).unwrap();
    let baseline = dir.join("faster.json");
    let (code, stdout, _) = symbiote(&["check", scenario.to_str().unwrap(), "--baseline", baseline.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("| p99.9_ttft_ms |") && stdout.contains("REGRESSED"), "{stdout}");
    // --update refuses to overwrite a vLLM file.
    let (code, _, stderr) =
        symbiote(&["check", scenario.to_str().unwrap(), "--baseline", bench.to_str().unwrap(), "--update"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is a `vllm bench serve` result; --update would replace it"), "{stderr}");
}

/// A result file as `vllm bench serve --save-result` writes it without `--save-detailed` and
/// with its default percentiles (99, no E2EL): only the keys it has are compared.
#[test]
fn issue_16_check_reads_a_result_file_written_by_vllm() {
    let dir = temp_dir("vllm-real");
    std::fs::write(dir.join("s.json"), ONE_RUN).unwrap();
    let scenario = dir.join("s.json");
    let bench = dir.join("bench.json");
    let (code, _, stderr) = symbiote(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
        "--quiet",
        "--vllm-bench-json",
        bench.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let ours = read(&bench);
    let mut vllm = serde_json::json!({"date": "20250612-101500", "endpoint_type": "openai", "backend": "openai",
        "label": null, "model_id": "Qwen/Qwen2.5-0.5B", "tokenizer_id": "Qwen/Qwen2.5-0.5B", "num_prompts": 60,
        "request_rate": "inf", "burstiness": 1.0, "max_concurrency": null, "request_goodput": null, "rtfx": 0.0});
    for key in [
        "duration",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
        "max_output_tokens_per_s",
        "max_concurrent_requests",
        "mean_ttft_ms",
        "median_ttft_ms",
        "std_ttft_ms",
        "p99_ttft_ms",
        "mean_tpot_ms",
        "median_tpot_ms",
        "std_tpot_ms",
        "p99_tpot_ms",
        "mean_itl_ms",
        "median_itl_ms",
        "std_itl_ms",
        "p99_itl_ms",
    ] {
        vllm[key] = ours[key].clone();
    }
    std::fs::write(&bench, serde_json::to_string(&vllm).unwrap()).unwrap();
    let (code, stdout, stderr) =
        symbiote(&["check", scenario.to_str().unwrap(), "--baseline", bench.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("| median_itl_ms |") && !stdout.contains("_e2el_ms"), "{stdout}");
    assert!(stdout.ends_with("bench_one: 12 comparisons, 0 regressed or missing (tolerance 5.00%)\n"), "{stdout}");
    // A scenario of several cases cannot be compared with one run.
    let two = ONE_RUN.replace("}}}}", r#"}}}, "cases": [{"name": "a"}, {"name": "b"}]}"#);
    std::fs::write(&scenario, two).unwrap();
    let (code, _, stderr) = symbiote(&["check", scenario.to_str().unwrap(), "--baseline", bench.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("has 2 cases: check it with a scenario of one case"), "{stderr}");
}

#[test]
fn issue_16_several_runs_write_one_file_each_named_after_the_run() {
    let dir = temp_dir("vllm-many");
    let bench = dir.join("b.json");
    let many =
        ONE_RUN.replace("}}}}", r#"}}}, "cases": [{"name": "tp 1"}, {"name": "eight", "vllm.max_num_seqs": 4}]}"#);
    let (code, stdout, stderr) = run(&dir, &many, &["--seeds", "1,2", "--vllm-bench-json", bench.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr
            .contains("`vllm.max_num_seqs` and `--max-num-seqs 8` in vllm_args set `engine.max_num_seqs` differently"),
        "{stderr}"
    );
    let many = many.replace(r#""vllm.max_num_seqs": 4"#, r#""vllm_args": "--max-num-seqs 4 --max-model-len 1024""#);
    let (code, stdout, stderr) = run(&dir, &many, &["--seeds", "1,2", "--vllm-bench-json", bench.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let pattern = dir.join("b__<case>__seed<N>.json");
    assert!(stdout.contains(&format!("vllm bench serve results, one per run: {}", pattern.display())), "{stdout}");
    for (case, seed) in [("tp_1", 1), ("tp_1", 2), ("eight", 1), ("eight", 2)] {
        let b = read(&dir.join(format!("b__{case}__seed{seed}.json")));
        assert_eq!(b["seed"], seed.to_string());
    }
    assert!(!bench.exists());
}

#[test]
fn issue_16_run_without_a_path_explains_itself_and_every_run_says_what_to_open() {
    let (code, stdout, stderr) = symbiote(&["run"]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("Usage: symbiote run [OPTIONS] <FILE|DIR>...") && stderr.contains("Examples:"), "{stderr}");
    let dir = temp_dir("vllm-open");
    let (code, stdout, _) = run(&dir, ONE_RUN, &[]);
    assert_eq!(code, 0);
    let report = dir.join("out/bench_one/report.html");
    assert!(stdout.contains(&format!("open {} (charts)", report.display())), "{stdout}");
    let (code, stdout, _) = run(&dir, ONE_RUN, &["-q"]);
    assert_eq!((code, stdout.as_str()), (0, ""));
    let md = std::fs::read_to_string(dir.join("out/bench_one/report.md")).unwrap();
    assert!(md.contains("TTFT, TPOT, ITL, E2E and queueing percentiles are exact"), "{md}");
}

#[test]
fn issue_16_replay_writes_a_vllm_bench_serve_result_too() {
    let azure =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/traces/AzureLLMInferenceTrace_code.csv");
    let dir = temp_dir("vllm-replay");
    let bench = dir.join("replay.json");
    let (code, stdout, stderr) = symbiote(&[
        "replay",
        azure.to_str().unwrap(),
        "--model",
        "llama-3.1-8b",
        "--gpu",
        "h100",
        "--limit",
        "50",
        "--max-model-len",
        "16384",
        "--out",
        dir.join("out").to_str().unwrap(),
        "--vllm-bench-json",
        bench.to_str().unwrap(),
        "--percentiles",
        "95",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let b = read(&bench);
    assert_eq!((b["num_prompts"].as_u64(), b["completed"].as_u64()), (Some(50), Some(50)));
    // A trace has no single rate.
    assert!(b["request_rate"].is_null() && b["p95_itl_ms"].is_number() && b["p99_itl_ms"].is_null());
    let m = &read(&dir.join("out/replay_AzureLLMInferenceTrace_code/report.json"))["cases"][0]["runs"][0]["metrics"];
    assert!(m["p95_ttft_ms"].is_number() && m["p99_ttft_ms"].is_number());
}

// See: issue 16
/// report.json's ITL percentiles are exact: equal to the last bit to numpy's over every
/// per-token gap the `vllm bench serve` file lists (its `itls`, pooled as vLLM pools them), for
/// the default keys and `--percentiles`; mean and std agree up to summation order. Below the
/// exact-sample limit, percentile_method says `exact`; with `--exact-percentiles 2` the ITL
/// pairs go to the histogram and the report says so.
#[test]
fn issue_16_itl_percentiles_are_numpys_over_every_gap() {
    let dir = temp_dir("vllm-itl");
    let bench = dir.join("bench.json");
    let (code, stdout, stderr) =
        run(&dir, ONE_RUN, &["--vllm-bench-json", bench.to_str().unwrap(), "--percentiles", "25,50,95,99.9", "-q"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = read(&dir.join("out/bench_one/report.json"));
    let m = &report["cases"][0]["runs"][0]["metrics"];
    let gaps_ms: Vec<f64> =
        read(&bench)["itls"].as_array().unwrap().iter().flat_map(floats).map(|s| s * 1000.0).collect();
    assert!(gaps_ms.len() > 500, "{} gaps", gaps_ms.len());
    for (key, q) in [
        ("median_itl_ms", 50.0),
        ("p90_itl_ms", 90.0),
        ("p99_itl_ms", 99.0),
        ("p25_itl_ms", 25.0),
        ("p99.9_itl_ms", 99.9),
    ] {
        let want = numpy_percentile(&gaps_ms, q);
        let got = m[key].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-9 * want, "{key}: {got} vs numpy {want}");
    }
    let mean = gaps_ms.iter().sum::<f64>() / gaps_ms.len() as f64;
    let std = (gaps_ms.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps_ms.len() as f64).sqrt();
    assert!((m["mean_itl_ms"].as_f64().unwrap() - mean).abs() <= 1e-9 * mean);
    assert!((m["std_itl_ms"].as_f64().unwrap() - std).abs() <= 1e-9 * std);
    assert_eq!(report["percentile_method"]["itl"], "exact");

    let (code, _, stderr) = run(&dir, ONE_RUN, &["--exact-percentiles", "2", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let report = read(&dir.join("out/bench_one/report.json"));
    assert!(
        report["percentile_method"]["itl"].as_str().unwrap().starts_with("streaming"),
        "{}",
        report["percentile_method"]
    );
    assert!(report["cases"][0]["runs"][0]["streamed_percentiles"].as_array().unwrap().contains(&"itl".into()));
    let p99 = report["cases"][0]["runs"][0]["metrics"]["p99_itl_ms"].as_f64().unwrap();
    let nearest = {
        let mut v = gaps_ms.clone();
        v.sort_by(f64::total_cmp);
        v[((0.99 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
    };
    assert!((p99 - nearest).abs() <= 1e-3 * nearest, "streamed p99 {p99} vs nearest-rank {nearest}");
    std::fs::remove_dir_all(dir).unwrap();
}
