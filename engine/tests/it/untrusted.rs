//! Untrusted input end to end (issue 14): no panic, no hang, no silent wrong answer, and
//! nothing written or removed outside `--out`, whatever the scenario names or trace holds.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{files_under, symbiote, temp_dir};

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

/// A quick scenario named `name` with the given cases.
fn scenario_text(name: &str, cases: &[&str]) -> String {
    let cases: Vec<String> = cases.iter().map(|c| serde_json::json!({"name": c}).to_string()).collect();
    format!(
        r#"{{"name": {}, "base": {{"model": "qwen2.5-0.5b", "gpu": "a100-40gb",
            "workload": {{"arrival": {{"rate": 5}}, "num_requests": 10}}}}, "cases": [{}]}}"#,
        serde_json::Value::from(name),
        cases.join(", ")
    )
}

/// Every file and folder under `dir` except those under `skip`, as relative paths.
fn listing(dir: &Path, skip: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.starts_with(skip) {
                continue;
            }
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

// See: issue 14
#[test]
fn issue_14_odd_scenario_and_case_names_write_only_inside_out() {
    let root = temp_dir("odd-names");
    for sub in ["runs", "timeline", "requests"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
        std::fs::write(root.join(sub).join("keep.txt"), "not symbiote's").unwrap();
    }
    let out = root.join("out");
    let mut paths = Vec::new();
    for (i, name) in ["..", ".", "../../x", "/abs", "nul\u{0}byte"].iter().enumerate() {
        let path = root.join(format!("s{i}.json"));
        std::fs::write(&path, scenario_text(name, &["../c", "/etc/passwd", ".", "new\nline"])).unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let before = listing(&root, &out);
    let mut args = vec!["run", "--out", out.to_str().unwrap(), "--timeline", "--requests", "--quiet"];
    args.extend(paths.iter().map(String::as_str));
    let (code, stdout, stderr) = symbiote(&args);
    // Slashes are refused in scenario names; the rest runs.
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("without slashes"), "{stderr}");
    let (code, _, stderr) = symbiote(&[&args[..6], &[&paths[0], &paths[1], &paths[4]]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(listing(&root, &out), before, "nothing outside --out changed");
    let written: Vec<String> = files_under(&out).into_iter().map(|(p, _)| p).collect();
    for (folder, case) in [("_..", "_.._c"), ("_.", "_etc_passwd"), ("nul_byte", "new_line"), ("_.", "_.")] {
        for file in [
            format!("runs/{case}__seed1.json"),
            format!("timeline/{case}__seed1.csv"),
            format!("requests/{case}__seed1.csv"),
        ] {
            assert!(written.contains(&format!("{folder}/{file}")), "{folder}/{file} in {written:?}");
        }
        assert!(written.contains(&format!("{folder}/report.html")), "{written:?}");
    }
    assert!(std::fs::read_to_string(out.join("index.md")).unwrap().contains("](_../report.md)"));
    std::fs::remove_dir_all(root).unwrap();
}

// See: issue 14
#[test]
fn issue_14_scenarios_whose_folders_would_collide_are_refused_naming_both() {
    let root = temp_dir("folder-collision");
    std::fs::write(root.join("a.json"), scenario_text("a b", &["c"])).unwrap();
    std::fs::write(root.join("b.json"), scenario_text("a_b", &["c"])).unwrap();
    let out = root.join("out");
    let (code, _, stderr) = symbiote(&["run", root.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("scenarios `a b` and `a_b` would both write their reports to the folder `a_b`"),
        "{stderr}"
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(root).unwrap();
}

// See: issue 14
#[cfg(unix)]
#[test]
fn issue_14_a_symlinked_report_folder_is_neither_cleared_nor_written_through() {
    let root = temp_dir("symlinked-runs");
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep.txt"), "not symbiote's").unwrap();
    std::fs::write(root.join("s.json"), scenario_text("s", &["c"])).unwrap();
    let out = root.join("out");
    let scenario = root.join("s.json");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
        args.extend(extra);
        symbiote(&args)
    };
    // A link for a sub-folder, and a link for the whole scenario folder.
    std::fs::create_dir_all(out.join("s")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("s/runs")).unwrap();
    for extra in [&[][..], &["--resume"][..]] {
        let (code, _, stderr) = run(extra);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("runs is a symbolic link"), "{stderr}");
    }
    std::fs::remove_dir_all(out.join("s")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("s")).unwrap();
    let (code, _, stderr) = run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(listing(&elsewhere, &out), vec!["keep.txt"]);
    std::fs::remove_dir_all(root).unwrap();
}

// See: issue 14
#[test]
fn issue_14_a_huge_value_in_a_scenario_is_not_echoed_whole() {
    let dir = temp_dir("huge-value");
    let big = "x".repeat(1_000_000);
    let text =
        scenario_text("t", &["c"]).replace(r#""gpu": "a100-40gb""#, &format!(r#""gpu": "a100-40gb", "{big}": 1"#));
    std::fs::write(dir.join("s.json"), text).unwrap();
    let (code, _, stderr) = symbiote(&["validate", dir.join("s.json").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.len() < 1_000 && stderr.contains("unknown field `xxx") && stderr.contains("…(1000000 bytes)`"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
