//! End-to-end tests: one binary, one module per concern.

mod autoscaling;
mod bench_runs;
mod broken;
mod catalog;
mod cli;
mod determinism;
mod disagg;
mod docs;
mod engine;
mod fast_path;
mod fidelity;
mod fleet;
mod hf_config;
mod hostile;
mod html;
mod offload;
mod phases;
mod plan;
mod plan_autoscale;
mod sweeps;
mod traces;
mod untrusted;
mod vllm;

use symbiote::scenario::{parse, Scenario};

/// Parses a scenario written in a test, panicking with every diagnostic on failure.
pub fn scenario(text: &str) -> Scenario {
    parse(text, "test.json")
        .unwrap_or_else(|problems| panic!("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")))
}

/// The scenario's report.json text, run on a pool of `threads` threads (determinism tests).
pub fn report_at_threads(s: &Scenario, threads: usize) -> String {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| symbiote::runner::run_scenario(s, &symbiote::runner::RunOptions::default()).unwrap().to_json())
}

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("symbiote-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary: exit code, stdout, stderr.
pub fn symbiote(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_symbiote")).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Every file under `dir` (relative path, bytes), sorted by path.
pub fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}
