//! The checks that make "it exited 0" mean something: nothing written outside `--out`, no
//! temp file left behind, no write through a planted symlink, every request accounted for,
//! latencies finite, ordered and not negative, per-run files not colliding, no stalled run
//! passed off as a success, no flood on stderr, no degenerate model accepted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::exec::{Dirs, Exec, Outcome, Problem, Verdict};
use crate::input::{CommandSpec, Input};

/// What earlier commands of the same input learnt (the rows `trace-stats` counted).
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub stats_rows: Option<u64>,
}

/// Symlinks planted at the report writer's predictable temp names, and where they point.
#[derive(Clone, Debug, Default)]
pub struct Planted {
    pub links: Vec<PathBuf>,
    pub victim: Option<PathBuf>,
}

/// Every path under `dir` (symlinks not followed), relative, with file sizes.
pub fn snapshot(dir: &Path) -> BTreeSet<(PathBuf, u64)> {
    walk(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), p.symlink_metadata().map_or(0, |m| m.len())))
        .collect()
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The scenario's name when it is a plain file name.
fn plain_name(input: &Input) -> Option<String> {
    let name = input.scenario.as_ref()?.get("name")?.as_str()?;
    let plain =
        !name.is_empty() && name.len() < 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then(|| name.to_string())
}

/// For one `run` in eight: plants `out/<name>/.<file>.tmp<pid>` symlinks to a file beside the
/// working folder, where the report writer would put its temp files.
pub fn plant_symlinks(input: &Input, spec: &CommandSpec, dirs: &Dirs, pid: u32) -> Planted {
    let Some(name) = plain_name(input).filter(|_| spec.name == "run" && input.index % 8 == 0) else {
        return Planted::default();
    };
    let dir = dirs.cwd.join("out").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let victim = dirs.work.join("victim");
    let links = ["report.json", "report.md", "report.html", "summary.csv"]
        .iter()
        .map(|file| {
            let link = dir.join(format!(".{file}.tmp{pid}"));
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            link
        })
        .collect();
    Planted { links, victim: Some(victim) }
}

fn problem(signature: impl Into<String>, detail: impl Into<String>) -> Problem {
    Problem { signature: signature.into(), detail: detail.into() }
}

fn listing(paths: &[PathBuf], root: &Path) -> String {
    let names: Vec<String> =
        paths.iter().take(5).map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string()).collect();
    format!(
        "{}{}",
        names.join(", "),
        if paths.len() > 5 { format!(" and {} more", paths.len() - 5) } else { String::new() }
    )
}

/// Every check on one execution; empty when all hold.
#[allow(clippy::too_many_arguments)]
pub fn check(
    input: &Input,
    spec: &CommandSpec,
    dirs: &Dirs,
    exec: &Exec,
    verdict: &Verdict,
    before: &BTreeSet<(PathBuf, u64)>,
    planted: &Planted,
    context: &mut Context,
) -> Vec<Problem> {
    let mut problems = file_system(spec, dirs, verdict, before, planted);
    let cmd = spec.name;
    if exec.stderr.total > 64 * 1024 {
        problems.push(problem(
            format!("stderr flood: {cmd} echoes a huge field of {}", flood_source(input)),
            format!("{} bytes on stderr: {}", exec.stderr.total, template(&exec.stderr.text())),
        ));
    }
    if exec.stdout.total > 1024 * 1024 {
        problems.push(problem(format!("stdout flood: {cmd}"), format!("{} bytes on stdout", exec.stdout.total)));
    }
    // A planted symlink sends every report file to the same victim: nothing left to read.
    if verdict.outcome != Outcome::Success || planted.victim.is_some() {
        return problems;
    }
    if cmd == "trace-stats" && !spec.args.iter().any(|a| a == "--format") {
        context.stats_rows = exec.stdout.text().split(": ").nth(1).and_then(|s| s.split(' ').next()?.parse().ok());
    }
    if let (Some(what), Some(0), true) = (&input.degenerate_config, exec.code, uses_config_json(input)) {
        problems.push(problem(
            format!("degenerate config.json accepted: {cmd}"),
            format!("config.json has {what}; {cmd} exited 0"),
        ));
    }
    if cmd == "run" || cmd == "replay" {
        let reports: Vec<PathBuf> =
            walk(&dirs.cwd).into_iter().filter(|p| p.file_name().is_some_and(|n| n == "report.json")).collect();
        if reports.is_empty() && !spec.args.iter().any(|a| a == "--shard") {
            problems.push(problem(format!("no report.json after a successful {cmd}"), String::new()));
        }
        for report in reports {
            problems.extend(crate::oracle_report::check_report(&report, input, spec, context));
        }
    }
    problems
}

/// The model is the config.json in the input, in every case.
fn uses_config_json(input: &Input) -> bool {
    let Some(doc) = &input.scenario else { return false };
    let overridden = |v: Option<&Value>| v.and_then(Value::as_object).is_some_and(|m| m.keys().any(|k| k == "model"));
    doc.pointer("/base/model").and_then(Value::as_str) == Some("config.json")
        && !overridden(doc.get("matrix"))
        && !doc.get("cases").and_then(Value::as_array).is_some_and(|cases| cases.iter().any(|c| overridden(Some(c))))
}

fn file_system(
    spec: &CommandSpec,
    dirs: &Dirs,
    verdict: &Verdict,
    before: &BTreeSet<(PathBuf, u64)>,
    planted: &Planted,
) -> Vec<Problem> {
    let cmd = spec.name;
    let mut problems = Vec::new();
    if let Some(victim) = &planted.victim {
        if victim.symlink_metadata().is_ok() {
            problems.push(problem(
                "report written through a symlink planted at its temp name (.<file>.tmp<pid>)",
                format!("{} was created through out/<name>/.report.json.tmp<pid>", victim.display()),
            ));
        }
    }
    for link in &planted.links {
        let _ = std::fs::remove_file(link);
    }
    let beside: Vec<PathBuf> = walk(&dirs.work)
        .into_iter()
        .filter(|p| p.parent() == Some(dirs.work.as_path()))
        .filter(|p| *p != dirs.input && *p != dirs.cwd && Some(p) != planted.victim.as_ref())
        .collect();
    if !beside.is_empty() {
        problems.push(problem(format!("wrote outside its working folder: {cmd}"), listing(&beside, &dirs.work)));
    }
    if snapshot(&dirs.input) != *before {
        problems
            .push(problem(format!("changed the input folder: {cmd}"), "files beside the scenario or trace changed"));
    }
    let in_cwd: Vec<PathBuf> = walk(&dirs.cwd).into_iter().filter(|p| p.parent() == Some(dirs.cwd.as_path())).collect();
    let allowed = |p: &PathBuf| (cmd == "run" || cmd == "replay") && p.file_name().is_some_and(|n| n == "out");
    let outside: Vec<PathBuf> = in_cwd.into_iter().filter(|p| !allowed(p)).collect();
    if !outside.is_empty() {
        let what = if cmd == "run" || cmd == "replay" { "wrote outside --out" } else { "wrote files" };
        problems.push(problem(format!("{what}: {cmd}"), listing(&outside, &dirs.cwd)));
    }
    if matches!(verdict.outcome, Outcome::Success | Outcome::CleanError | Outcome::Wrong) {
        let temps: Vec<PathBuf> = walk(&dirs.cwd)
            .into_iter()
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') && n.contains(".tmp"))
            })
            .collect();
        if !temps.is_empty() {
            problems.push(problem(format!("temp file left behind: {cmd}"), listing(&temps, &dirs.cwd)));
        }
    }
    problems
}

/// The input file a flood of stderr comes from: the one holding a huge field (a long run of
/// one byte), or a gzip trace, whose runs do not show compressed.
fn flood_source(input: &Input) -> &'static str {
    let huge = |bytes: &[u8]| {
        let mut run = 0usize;
        bytes.windows(2).any(|w| {
            run = if w[0] == w[1] { run + 1 } else { 0 };
            run >= 10_000
        })
    };
    match input.files.iter().find(|f| huge(&f.bytes)).map(|f| f.name.as_str()) {
        Some(crate::input::SCENARIO) => "the scenario",
        Some(name) if name.ends_with("config.json") => "config.json",
        Some(_) => "the trace",
        None if input.files.iter().any(|f| f.name.ends_with(".gz")) => "the trace",
        None => "its input",
    }
}

/// The shape of an error message: its first line with the input's file names, numbers and
/// long runs of one character (a huge echoed field) folded.
fn template(stderr: &str) -> String {
    let line = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out = String::new();
    let mut run = 0;
    let mut words = Vec::new();
    for word in line.split(' ') {
        words.push(if word.contains("../in/") { "FILE" } else { word });
    }
    for c in words.join(" ").chars() {
        let c = if c.is_ascii_digit() { 'N' } else { c };
        run = if out.ends_with(c) { run + 1 } else { 0 };
        if run < 3 {
            out.push(c);
        }
        if out.chars().count() >= 70 {
            break;
        }
    }
    out
}
