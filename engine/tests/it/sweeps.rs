//! Seed sweeps, resume, shards and regression checks, through the binary.

use std::path::Path;

use crate::{files_under, symbiote, temp_dir};

const SWEEP: &str = r#"{"name": "sweep", "seeds": [1],
  "base": {"model": "qwen2.5-0.5b", "gpu": "l4", "engine": {"max_model_len": 4096},
    "workload": {"arrival": {"process": "poisson", "rate": 20}, "num_requests": 120,
      "prompt": {"dist": "lognormal", "mean": 300, "cv": 1}, "output": {"dist": "lognormal", "mean": 80, "cv": 1, "max": 500}}},
  "cases": [{"name": "a"}, {"name": "b", "engine.max_num_seqs": 4}, {"name": "c", "workload.arrival.rate": 40}]}"#;

fn run(dir: &Path, out: &str, extra: &[&str]) -> i32 {
    let file = dir.join("s.json");
    let out = dir.join(out);
    let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--seeds", "1..4", "--quiet"];
    args.extend_from_slice(extra);
    let (code, _, stderr) = symbiote(&args);
    assert!(code == 0 || code == 1, "{stderr}");
    code
}

fn assert_same(a: &Path, b: &Path) {
    let (fa, fb) = (files_under(a), files_under(b));
    assert_eq!(fa.iter().map(|f| &f.0).collect::<Vec<_>>(), fb.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs");
    }
}

#[test]
fn seeds_override_the_file_and_give_statistics_over_seeds() {
    let dir = temp_dir("seeds");
    std::fs::write(dir.join("s.json"), SWEEP).unwrap();
    run(&dir, "out", &[]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/sweep/report.json")).unwrap()).unwrap();
    assert_eq!(report["seeds"], serde_json::json!([1, 2, 3, 4]));
    let ttft = &report["cases"][0]["over_seeds"]["p99_ttft_ms"];
    assert_eq!(ttft["n"], 4);
    assert!(ttft["ci95"].as_f64().unwrap() > 0.0);
}

#[test]
fn shards_merge_into_the_unsharded_report_byte_for_byte() {
    let dir = temp_dir("shards");
    std::fs::write(dir.join("s.json"), SWEEP).unwrap();
    run(&dir, "whole", &[]);
    for k in 1..=3 {
        run(&dir, &format!("shard{k}"), &["--shard", &format!("{k}/3")]);
    }
    assert!(!dir.join("shard1/sweep/report.json").exists(), "a shard writes only its runs");
    let scenario = dir.join("s.json");
    let merged = dir.join("merged");
    let mut args = vec!["merge", scenario.to_str().unwrap()];
    let shard_dirs: Vec<String> = (1..=3).map(|k| dir.join(format!("shard{k}")).display().to_string()).collect();
    args.extend(shard_dirs.iter().map(|s| s.as_str()));
    args.extend(["--out", merged.to_str().unwrap(), "--seeds", "1..4"]);
    let (code, _, stderr) = symbiote(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_same(&dir.join("whole"), &merged);
    // A missing shard is an error that names what is missing.
    let (code, _, stderr) =
        symbiote(&["merge", scenario.to_str().unwrap(), &shard_dirs[0], "--out", dir.join("m2").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no shard holds case"), "{stderr}");
}

#[test]
fn an_interrupted_and_resumed_sweep_equals_an_uninterrupted_one() {
    let dir = temp_dir("resume");
    std::fs::write(dir.join("s.json"), SWEEP).unwrap();
    run(&dir, "whole", &[]);
    // "Interrupt": a first pass that only finished shard 1 of 2, then resume.
    run(&dir, "resumed", &["--shard", "1/2"]);
    run(&dir, "resumed", &["--resume"]);
    assert_same(&dir.join("whole"), &dir.join("resumed"));
    // A run written for other scenario content is not reused.
    std::fs::write(dir.join("s.json"), SWEEP.replace("\"workload.arrival.rate\": 40", "\"workload.arrival.rate\": 41"))
        .unwrap();
    run(&dir, "resumed", &["--resume"]);
    let changed = std::fs::read(dir.join("resumed/sweep/runs/c__seed1.json")).unwrap();
    let before = std::fs::read(dir.join("whole/sweep/runs/c__seed1.json")).unwrap();
    assert!(changed != before, "a run of the old scenario content was reused");
}

/// check: 0 against its own baseline, 1 against a baseline with better latencies, 2 on bad input.
#[test]
fn check_exit_codes() {
    let dir = temp_dir("check");
    std::fs::write(dir.join("s.json"), SWEEP).unwrap();
    let scenario = dir.join("s.json");
    let baseline = dir.join("baseline.json");
    let s = scenario.to_str().unwrap();
    let b = baseline.to_str().unwrap();
    assert_eq!(symbiote(&["check", s, "--baseline", b, "--update"]).0, 0);
    let (code, stdout, _) = symbiote(&["check", s, "--baseline", b]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("| a | p99_ttft_ms |") && stdout.contains("0 regressed or missing"));
    // A baseline 20% faster on every TTFT: the rerun regresses.
    let text = std::fs::read_to_string(&baseline).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in value["cases"].as_array_mut().unwrap() {
        for run in case["runs"].as_array_mut().unwrap() {
            let ttft = run["metrics"]["p99_ttft_ms"].as_f64().unwrap();
            run["metrics"]["p99_ttft_ms"] = serde_json::json!(ttft * 0.8);
        }
    }
    std::fs::write(&baseline, serde_json::to_string(&value).unwrap()).unwrap();
    let (code, stdout, _) = symbiote(&["check", s, "--baseline", b, "--tolerance", "10%"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("REGRESSED"));
    // The same comparison for machines (issue 16): same exit code, rows as JSON.
    let (code, stdout, _) = symbiote(&["check", s, "--baseline", b, "--tolerance", "10%", "--json"]);
    assert_eq!(code, 1, "{stdout}");
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(out["comparisons"].as_u64(), Some(rows.len() as u64));
    assert!(rows.iter().any(|r| r["metric"] == "p99_ttft_ms" && r["status"] == "regressed"), "{stdout}");
    assert!(out["regressed_or_missing"].as_u64().unwrap() >= 1);
    // Within a wide tolerance it passes.
    assert_eq!(symbiote(&["check", s, "--baseline", b, "--tolerance", "30%"]).0, 0);
    // Bad input: no such baseline, an unknown metric, a bad tolerance.
    assert_eq!(symbiote(&["check", s, "--baseline", dir.join("none.json").to_str().unwrap()]).0, 2);
    let (code, _, stderr) = symbiote(&["check", s, "--baseline", b, "--metrics", "p99_ttft_msec"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown metric `p99_ttft_msec`"), "{stderr}");
    assert_eq!(symbiote(&["check", s, "--baseline", b, "--tolerance", "lots"]).0, 2);
}
