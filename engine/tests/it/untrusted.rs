//! Untrusted input end to end (issue 14): no panic, no hang, no silent wrong answer, and
//! nothing written or removed outside `--out`, whatever the scenario names or trace holds.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{files_under, temp_dir};

/// Runs the binary, killing it and failing the test when it runs past `limit`.
fn symbiote_within(limit: Duration, args: &[&str]) -> (i32, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_symbiote"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`symbiote {}` still runs after {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A Mooncake trace of `rows` rows, gzipped, cut in the middle.
fn write_cut_trace(path: &Path, rows: u32) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..rows {
        writeln!(
            encoder,
            r#"{{"timestamp": {}, "input_length": 600, "output_length": 20, "hash_ids": [{i}, 1]}}"#,
            i * 10
        )
        .unwrap();
    }
    let bytes = encoder.finish().unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

// See: issue 14
#[test]
fn issue_14_a_cut_gz_trace_with_bad_rows_skipped_fails_validate_and_replay_instead_of_hanging() {
    let dir = temp_dir("cut-trace");
    let trace = dir.join("cut.jsonl.gz");
    write_cut_trace(&trace, 20_000);
    let scenario = dir.join("cut.json");
    std::fs::write(
        &scenario,
        r#"{"name": "cut", "base": {"model": "llama-2-7b", "gpu": "a100-80gb",
            "workload": {"trace": {"path": "cut.jsonl.gz", "on_bad_row": "skip"}}}}"#,
    )
    .unwrap();
    let limit = Duration::from_secs(60);
    let (code, _, stderr) = symbiote_within(limit, &["validate", scenario.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cut.jsonl.gz:") && stderr.contains("cannot read the trace past byte"), "{stderr}");
    let out = dir.join("out");
    let (code, _, stderr) = symbiote_within(
        limit,
        &[
            "replay",
            trace.to_str().unwrap(),
            "--model",
            "llama-2-7b",
            "--gpu",
            "a100-80gb",
            "--skip-bad-rows",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read the trace past byte"), "{stderr}");
    assert!(!out.exists() || files_under(&out).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}
