//! Runs one command of an input as a child process in a fresh folder, under a wall-clock
//! timeout (the child is killed) and a virtual-memory cap (`ulimit -v`, so that a runaway
//! allocation aborts instead of thrashing the machine), and classifies what happened.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::input::{CommandSpec, Input};
use crate::oracle;
use crate::Config;

/// How one execution ended, from least to most severe (an input counts under its worst).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Not run: the command before it did not exit 0.
    Skipped,
    /// Exit 0 or 1 and every check on the output held.
    Success,
    /// Exit 2 with a message on stderr and no panic.
    CleanError,
    /// Exit 0, 1 or 2, but a check failed: a file outside `--out`, requests not accounted for,
    /// a non-finite latency, a stalled run, a flood on stderr, ...
    Wrong,
    /// A Rust panic (exit 101 or `panicked` on stderr).
    Panic,
    /// Killed by a signal: abort, stack overflow, segfault, allocation failure.
    Abort,
    /// Still running at the timeout.
    Hang,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::CleanError,
        Outcome::Wrong,
        Outcome::Panic,
        Outcome::Abort,
        Outcome::Hang,
        Outcome::Skipped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Success => "success",
            Outcome::CleanError => "clean_error",
            Outcome::Wrong => "silently_wrong",
            Outcome::Panic => "panic",
            Outcome::Abort => "abort",
            Outcome::Hang => "hang",
        }
    }
}

/// The first bytes of a stream and its full length.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub head: Vec<u8>,
    pub total: u64,
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }
}

/// What the child did.
#[derive(Clone, Debug)]
pub struct Exec {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: Captured,
    pub stderr: Captured,
    pub wall: Duration,
    /// Where it hung or aborted, from gdb (`workload::prefixes::zipf_cdf`).
    pub site: Option<String>,
}

/// A check that failed, as a stable signature (for grouping) and the details.
#[derive(Clone, Debug)]
pub struct Problem {
    pub signature: String,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct Verdict {
    pub outcome: Outcome,
    pub problems: Vec<Problem>,
}

/// One command's result.
#[derive(Clone, Debug)]
pub struct CommandResult {
    pub command: String,
    pub spec: CommandSpec,
    pub exec: Option<Exec>,
    pub verdict: Verdict,
}

const KEEP: usize = 64 * 1024;

fn drain(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<Captured> {
    std::thread::spawn(move || {
        let mut captured = Captured::default();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = KEEP.saturating_sub(captured.head.len());
            captured.head.extend_from_slice(&buf[..n.min(room)]);
            captured.total += n as u64;
        }
        captured
    })
}

/// Runs `args` with `cwd` as working directory. `before_start` gets the child's process id
/// before the binary starts (the shell waits for a line on stdin, then `exec`s it, keeping
/// the id).
pub fn spawn(config: &Config, args: &[String], cwd: &Path, threads: u32, before_start: impl FnOnce(u32)) -> Exec {
    let timeout = config.timeout;
    let script = format!("ulimit -v {} 2>/dev/null; read _go; exec \"$0\" \"$@\"", config.mem_mb * 1024);
    let began = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&config.bin)
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning sh");
    before_start(child.id());
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"go\n");
    }
    let mut wait = Duration::from_millis(1);
    let mut site = None;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break (status, false);
        }
        if began.elapsed() >= timeout {
            if config.gdb {
                site = crate::backtrace::site(&crate::backtrace::attach(child.id()));
            }
            let _ = child.kill();
            break (child.wait().expect("reaping the killed child"), true);
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(20));
    };
    Exec {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        wall: began.elapsed(),
        site,
    }
}

/// The location of a panic (`file:line`), or its first line.
fn panic_site(stderr: &str) -> String {
    let line = stderr.lines().find(|l| l.contains("panicked")).unwrap_or("");
    match line.split_once("panicked at ") {
        Some((_, rest)) => {
            let site = rest.trim_end_matches(':');
            // Drop the column: the same line is the same bug.
            match site.rsplit_once(':') {
                Some((file_line, col)) if col.chars().all(|c| c.is_ascii_digit()) => file_line.to_string(),
                _ => site.to_string(),
            }
        }
        None => line.chars().take(80).collect(),
    }
}

fn digits_to_n(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Classifies the exit alone; the oracles add the checks on output.
pub fn classify_exit(command: &str, exec: &Exec) -> Verdict {
    let stderr = exec.stderr.text();
    let problem =
        |outcome, signature: String, detail: String| Verdict { outcome, problems: vec![Problem { signature, detail }] };
    let first = |s: &str| s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(200).collect::<String>();
    let at = exec.site.as_ref().map_or(String::new(), |s| format!(" @ {s}"));
    if exec.timed_out {
        return problem(
            Outcome::Hang,
            format!("hang: {command}{at}"),
            format!("still running after {:.1?}", exec.wall),
        );
    }
    if let Some(signal) = exec.signal {
        let what = if stderr.contains("overflowed its stack") {
            "stack overflow".to_string()
        } else if stderr.contains("memory allocation of") {
            "memory allocation failed (over the memory cap)".to_string()
        } else {
            format!("signal {signal}")
        };
        return problem(Outcome::Abort, format!("abort: {command}: {what}{at}"), first(&stderr));
    }
    if stderr.contains("panicked") || exec.code == Some(101) {
        let site = panic_site(&stderr);
        let message = stderr.lines().skip_while(|l| !l.contains("panicked")).nth(1).unwrap_or("");
        return problem(
            Outcome::Panic,
            format!("panic: {site}"),
            format!("{}; {}", digits_to_n(message).chars().take(160).collect::<String>(), first(&stderr)),
        );
    }
    match exec.code {
        Some(0) | Some(1) => Verdict { outcome: Outcome::Success, problems: Vec::new() },
        Some(2) if !stderr.trim().is_empty() => Verdict { outcome: Outcome::CleanError, problems: Vec::new() },
        Some(2) => problem(Outcome::Wrong, format!("exit 2 without a message: {command}"), String::new()),
        code => problem(Outcome::Wrong, format!("unexpected exit code {code:?}: {command}"), first(&stderr)),
    }
}

/// The folders of one command: `work/` holds `in/` (the input's files) and `cwd/` (the
/// child's working directory, with `--out out`).
pub struct Dirs {
    pub work: PathBuf,
    pub input: PathBuf,
    pub cwd: PathBuf,
}

/// Writes the input's files into a fresh `work/in/`, substituting the work-folder mark.
pub fn prepare(work: &Path, input: &Input) -> Dirs {
    let _ = std::fs::remove_dir_all(work);
    let dirs = Dirs { work: work.to_path_buf(), input: work.join("in"), cwd: work.join("cwd") };
    std::fs::create_dir_all(&dirs.input).unwrap();
    std::fs::create_dir_all(&dirs.cwd).unwrap();
    let absolute = std::fs::canonicalize(work).unwrap().display().to_string();
    for file in &input.files {
        let path = dirs.input.join(&file.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, substitute(&file.bytes, crate::mutate_json::WORK_MARK, &absolute)).unwrap();
    }
    dirs
}

pub fn substitute(bytes: &[u8], mark: &str, with: &str) -> Vec<u8> {
    let mark = mark.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(mark) {
            out.extend_from_slice(with.as_bytes());
            i += mark.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Runs every command of an input in order.
pub fn run_input(config: &Config, input: &Input) -> Vec<CommandResult> {
    let mut results: Vec<CommandResult> = Vec::new();
    let mut context = oracle::Context::default();
    for (k, spec) in input.commands.iter().enumerate() {
        let previous_ok = results.last().is_none_or(|r| r.exec.as_ref().is_some_and(|e| e.code == Some(0)));
        if spec.after_ok && !previous_ok {
            results.push(CommandResult {
                command: spec.name.to_string(),
                spec: spec.clone(),
                exec: None,
                verdict: Verdict { outcome: Outcome::Skipped, problems: Vec::new() },
            });
            continue;
        }
        let dirs = prepare(&config.work.join(format!("c{k}")), input);
        let (exec, verdict) = execute(config, input, spec, &dirs, &mut context);
        results.push(CommandResult { command: spec.name.to_string(), spec: spec.clone(), exec: Some(exec), verdict });
    }
    results
}

/// Runs one command in prepared folders and judges it.
pub fn execute(
    config: &Config,
    input: &Input,
    spec: &CommandSpec,
    dirs: &Dirs,
    context: &mut oracle::Context,
) -> (Exec, Verdict) {
    let before = oracle::snapshot(&dirs.input);
    let mut planted = oracle::Planted::default();
    let mut exec = spawn(config, &spec.args, &dirs.cwd, 1, |pid| {
        planted = oracle::plant_symlinks(input, spec, dirs, pid);
    });
    if exec.signal.is_some() && !exec.timed_out && config.gdb {
        // The same command again, under gdb, in a fresh copy of the folders.
        let again = prepare(&dirs.work.with_extension("gdb"), input);
        exec.site = crate::backtrace::site(&crate::backtrace::rerun(config, &spec.args, &again.cwd));
        let _ = std::fs::remove_dir_all(&again.work);
    }
    let mut verdict = classify_exit(spec.name, &exec);
    let problems = oracle::check(input, spec, dirs, &exec, &verdict, &before, &planted, context);
    if !problems.is_empty() && verdict.outcome < Outcome::Wrong {
        verdict.outcome = Outcome::Wrong;
    }
    verdict.problems.extend(problems);
    if verdict.outcome == Outcome::Success && planted.victim.is_none() && input.index % 8 == 3 {
        verdict.problems.extend(determinism(config, input, spec, dirs));
        if !verdict.problems.is_empty() {
            verdict.outcome = Outcome::Wrong;
        }
    }
    (exec, verdict)
}

/// Runs a successful `run` or `replay` again on two threads: the files it writes must be
/// byte for byte the same.
fn determinism(config: &Config, input: &Input, spec: &CommandSpec, dirs: &Dirs) -> Vec<Problem> {
    if spec.name != "run" && spec.name != "replay" {
        return Vec::new();
    }
    let again = prepare(&dirs.work.with_extension("again"), input);
    let exec = spawn(config, &spec.args, &again.cwd, 2, |_| {});
    let read = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        oracle::walk(root)
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| (p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap_or_default()))
            .collect()
    };
    let (first, second) = (read(&dirs.cwd), read(&again.cwd));
    let _ = std::fs::remove_dir_all(&again.work);
    if exec.code != Some(0) && exec.code != Some(1) {
        return vec![Problem {
            signature: format!("nondeterministic exit: {}", spec.name),
            detail: format!("exit {:?} on two threads after a success on one", exec.code),
        }];
    }
    let differing: Vec<String> = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.display().to_string())
        .chain((first.len() != second.len()).then(|| format!("{} files vs {}", first.len(), second.len())))
        .take(3)
        .collect();
    if differing.is_empty() {
        return Vec::new();
    }
    vec![Problem {
        signature: format!("output differs between 1 and 2 threads: {}", spec.name),
        detail: differing.join(", "),
    }]
}
