//! The binary's exit codes and messages: 0 ok, 1 an expectation failed, 2 bad input.

use std::path::PathBuf;
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("symbiote-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn symbiote(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_symbiote")).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const OK: &str = r#"{"name": "cli_ok", "base": {"model": "qwen2.5-0.5b", "gpu": "a100-40gb",
  "workload": {"arrival": {"rate": 5}, "num_requests": 20}},
  "cases": [{"name": "c", "expect": {"outcome": "completed"}}]}"#;

#[test]
fn a_passing_run_exits_0_and_writes_the_reports() {
    let dir = temp_dir("ok");
    std::fs::write(dir.join("s.json"), OK).unwrap();
    let out = dir.join("out");
    let (code, stdout, _) = symbiote(&["run", dir.join("s.json").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(out.join("cli_ok/report.json").is_file());
    assert!(std::fs::read_to_string(out.join("cli_ok/report.md")).unwrap().contains("| c | 1 | completed |"));
}

#[test]
fn a_failed_expectation_exits_1() {
    let dir = temp_dir("fail");
    std::fs::write(dir.join("s.json"), OK.replace(r#""outcome": "completed""#, r#""outcome": "oom""#)).unwrap();
    let out = dir.join("out");
    let (code, _, _) = symbiote(&["run", dir.join("s.json").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    let md = std::fs::read_to_string(out.join("cli_ok/report.md")).unwrap();
    assert!(md.contains("expected outcome == oom; outcome was completed"), "{md}");
}

#[test]
fn a_bad_file_exits_2_naming_the_path_and_the_fix() {
    let dir = temp_dir("bad");
    std::fs::write(dir.join("s.json"), OK.replace(r#""gpu": "a100-40gb""#, r#""gpu": "a100""#)).unwrap();
    let (code, _, stderr) = symbiote(&["validate", dir.join("s.json").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("at cases[0].gpu: unknown gpu `a100`; known: "), "{stderr}");
    assert!(stderr.contains("a100-80gb"), "{stderr}");
}

#[test]
fn memory_prints_vllms_startup_lines() {
    let (code, stdout, _) =
        symbiote(&["memory", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--max-num-batched-tokens", "8192"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("GPU KV cache size: 118,464 tokens"), "{stdout}");
    assert!(stdout.contains("Maximum concurrency for 4,096 tokens per request: 28.92x"), "{stdout}");
    let (code, stdout, _) = symbiote(&["memory", "--model", "llama-2-13b", "--gpu", "rtx-3090"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("No available memory for the cache blocks"), "{stdout}");
    let (code, _, stderr) = symbiote(&["memory", "--model", "llama-9", "--gpu", "rtx-3090"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown model `llama-9`; known: "), "{stderr}");
}
