//! The replicas' fast path for runs of pure-decode steps (`serving::replica::decode_run`) must
//! not move a single byte: every phase, example and benchmark scenario, scaled down, gives the
//! same report, per-run files, timelines and request lists with it as step by step.

use std::path::{Path, PathBuf};

use symbiote::report::metrics::Capture;
use symbiote::runner::{run_scenario, RunOptions};
use symbiote::scenario::load;
use symbiote::sim::Nanos;

/// Every file under `dir` with its bytes, by path relative to `dir`, in sorted order.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Runs `file` scaled by `scale` with and without the fast path and compares everything the
/// runs write, byte for byte.
fn assert_same_both_ways(file: &Path, scale: f64) {
    let mut scenario = load(file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
    scenario.scale(scale);
    let capture = Capture { requests: true, timeline: Some(Nanos::from_millis(20)), ..Capture::default() };
    let run = |step_by_step: bool| {
        let mut scenario = scenario.clone();
        scenario.cases.iter_mut().for_each(|c| c.limits.step_by_step = step_by_step);
        let dir = tempfile::tempdir().unwrap();
        let options = RunOptions { dir: Some(dir.path().to_path_buf()), capture, ..RunOptions::default() };
        let report = run_scenario(&scenario, &options).unwrap();
        (report.to_json(), files(dir.path()))
    };
    let (fast, fast_files) = run(false);
    let (slow, slow_files) = run(true);
    let name = file.display();
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
        assert!(a == b, "{name} at scale {scale}: {} differs between the fast path and step by step", path.display());
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
