//! Findings grouped by signature (a panic's file and line, a check's name), each with up to
//! three reproducers saved under `target/fuzz-findings/<signature>/` and, for all but hangs,
//! a minimized one (members, array elements and trace lines removed while the same signature
//! still shows).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::exec::{self, CommandResult, Outcome, Problem};
use crate::input::{CommandSpec, Input, InputFile, SCENARIO};
use crate::mutate_json::{self, WORK_MARK};
use crate::Config;

const SAVED_PER_GROUP: usize = 3;
const MINIMIZE_BUDGET: usize = 150;

pub struct Group {
    pub outcome: Outcome,
    pub count: u64,
    pub detail: String,
    pub saved: Vec<PathBuf>,
    pub minimized: Option<PathBuf>,
    /// The first input that showed it, and the command.
    pub sample: (Input, CommandSpec),
}

pub struct Store {
    groups: BTreeMap<String, Group>,
    root: PathBuf,
    seed: u64,
}

fn slug(text: &str) -> String {
    let s: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let mut out = String::new();
    for c in s.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').chars().take(90).collect()
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

impl Store {
    pub fn new(config: &Config) -> Store {
        Store { groups: BTreeMap::new(), root: config.findings.clone(), seed: config.seed }
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn record(&mut self, config: &Config, input: &Input, result: &CommandResult) {
        for p in &result.verdict.problems {
            let group = self.groups.entry(p.signature.clone()).or_insert_with(|| {
                println!(
                    "fuzz: NEW {} [{}] at input {}: {}",
                    p.signature,
                    result.verdict.outcome.name(),
                    input.index,
                    p.detail
                );
                Group {
                    outcome: result.verdict.outcome,
                    count: 0,
                    detail: p.detail.clone(),
                    saved: Vec::new(),
                    minimized: None,
                    sample: (input.clone(), result.spec.clone()),
                }
            });
            group.count += 1;
            if group.saved.len() < SAVED_PER_GROUP {
                let dir = self.root.join(slug(&p.signature)).join(format!("input-{}-{}", input.index, result.command));
                save(&dir, config, self.seed, input, &result.spec, p, result.exec.as_ref());
                group.saved.push(dir);
            }
        }
    }

    /// Shrinks the first reproducer of every group, without gdb; a hang with a 3 s timeout
    /// and fewer tries (each failed try costs the whole timeout).
    pub fn minimize_all(&mut self, config: &Config) {
        for (signature, group) in self.groups.iter_mut() {
            let (input, spec) = &group.sample;
            let mut quick = Config { gdb: false, ..config.clone() };
            let budget = if group.outcome == Outcome::Hang {
                quick.timeout = quick.timeout.min(std::time::Duration::from_secs(3));
                30
            } else {
                MINIMIZE_BUDGET
            };
            println!("fuzz: minimizing {signature}");
            let small = minimize(&quick, input, spec, signature, budget);
            let dir = self.root.join(slug(signature)).join("minimized");
            let p = Problem { signature: signature.clone(), detail: group.detail.clone() };
            save(&dir, config, self.seed, &small, spec, &p, None);
            group.minimized = Some(dir);
        }
    }

    pub fn print(&self) {
        if self.groups.is_empty() {
            println!("fuzz: no findings");
            return;
        }
        println!("{:<16} {:>6}  signature", "outcome", "count");
        for (signature, g) in &self.groups {
            println!("{:<16} {:>6}  {signature}", g.outcome.name(), g.count);
            println!("{:<24}{}", "", g.detail.chars().take(200).collect::<String>());
            let shown = g.minimized.as_ref().or(g.saved.first());
            if let Some(dir) = shown {
                println!("{:<24}reproduce: sh {}", "", dir.join("repro.sh").display());
            }
        }
    }
}

/// Writes a reproducer folder: `in/` with the input's files, `repro.sh`, and `notes.txt`
/// (the mutations, the problem and the start of stderr).
fn save(
    dir: &Path,
    config: &Config,
    seed: u64,
    input: &Input,
    spec: &CommandSpec,
    p: &Problem,
    exec: Option<&exec::Exec>,
) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let absolute = std::fs::canonicalize(dir).unwrap().display().to_string();
    for file in &input.files {
        let path = dir.join("in").join(&file.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, exec::substitute(&file.bytes, WORK_MARK, &absolute)).unwrap();
    }
    let args: Vec<String> = spec.args.iter().map(|a| quote(a)).collect();
    let script = format!(
        "#!/bin/sh\n# {}\n# input {} of SYMBIOTE_FUZZ_SEED={seed} ({}); regenerate with SYMBIOTE_FUZZ_ONLY={}\n\
         cd \"$(dirname \"$0\")\" || exit 2\nrm -rf cwd && mkdir cwd && cd cwd || exit 2\nulimit -v {}\n\
         exec \"${{SYMBIOTE:-{}}}\" {}\n",
        p.signature,
        input.index,
        input.origin,
        input.index,
        config.mem_mb * 1024,
        config.bin.display(),
        args.join(" ")
    );
    std::fs::write(dir.join("repro.sh"), script).unwrap();
    let args =
        serde_json::json!({"command": spec.name, "args": spec.args, "index": input.index, "signature": p.signature});
    std::fs::write(dir.join("args.json"), format!("{args:#}\n")).unwrap();
    let mut notes = format!(
        "{}\n{}\n\norigin: {}\ncommand: symbiote {}\nmutations:\n",
        p.signature,
        p.detail,
        input.origin,
        spec.args.join(" ")
    );
    input.notes.iter().for_each(|n| notes.push_str(&format!("  - {n}\n")));
    if let Some(exec) = exec {
        let stderr = exec.stderr.text();
        notes.push_str(&format!(
            "\nexit code {:?}, signal {:?}, timed out {}, {:.1?}\nstderr ({} bytes):\n{}\n",
            exec.code,
            exec.signal,
            exec.timed_out,
            exec.wall,
            exec.stderr.total,
            stderr.chars().take(4000).collect::<String>()
        ));
    }
    std::fs::write(dir.join("notes.txt"), notes).unwrap();
}

/// Whether `input` still shows `signature` in the command named like `spec`. Without gdb
/// (each try would run it), a hang or an abort matches by what it is, not where.
fn reproduces(config: &Config, input: &Input, spec: &CommandSpec, signature: &str) -> bool {
    let coarse = signature.split(" @ ").next().unwrap();
    exec::run_input(config, input)
        .iter()
        .any(|r| r.command == spec.name && r.verdict.problems.iter().any(|p| p.signature == coarse))
}

fn with_file(input: &Input, name: &str, bytes: Vec<u8>) -> Input {
    let mut next = input.clone();
    next.files = input
        .files
        .iter()
        .map(|f| if f.name == name { InputFile { name: f.name.clone(), bytes: bytes.clone() } } else { f.clone() })
        .collect();
    if name == SCENARIO {
        next.scenario = serde_json::from_slice(&bytes).ok();
    }
    if name == "config.json" {
        next.degenerate_config = serde_json::from_slice(&bytes).ok().and_then(|c| crate::input::degenerate(&c));
    }
    next
}

fn minimize(config: &Config, input: &Input, spec: &CommandSpec, signature: &str, budget: usize) -> Input {
    let mut best = input.clone();
    let mut tries = 0usize;
    for name in input.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>() {
        let bytes = best.files.iter().find(|f| f.name == name).unwrap().bytes.clone();
        if let Ok(doc) = serde_json::from_slice::<Value>(&bytes) {
            best = shrink_json(config, best, spec, signature, &name, doc, (&mut tries, budget));
        } else if !name.ends_with(".gz") {
            best = shrink_lines(config, best, spec, signature, &name, (&mut tries, budget));
        }
    }
    best.notes.push(format!("minimized in {tries} tries"));
    best
}

fn shrink_json(
    config: &Config,
    mut best: Input,
    spec: &CommandSpec,
    signature: &str,
    name: &str,
    mut doc: Value,
    (tries, budget): (&mut usize, usize),
) -> Input {
    let protected = |path: &[mutate_json::Seg]| mutate_json::show(path).contains("limits");
    let mut i = 1;
    loop {
        let paths = mutate_json::paths(&doc);
        if i >= paths.len() || *tries >= budget {
            return best;
        }
        let path = &paths[i];
        let mut candidate = doc.clone();
        if protected(path) || !mutate_json::remove(&mut candidate, path) {
            i += 1;
            continue;
        }
        *tries += 1;
        let next = with_file(&best, name, mutate_json::to_text(&candidate, true).into_bytes());
        if reproduces(config, &next, spec, signature) {
            doc = candidate;
            best = next;
        } else {
            i += 1;
        }
    }
}

fn shrink_lines(
    config: &Config,
    mut best: Input,
    spec: &CommandSpec,
    signature: &str,
    name: &str,
    (tries, budget): (&mut usize, usize),
) -> Input {
    let bytes = best.files.iter().find(|f| f.name == name).unwrap().bytes.clone();
    let mut lines: Vec<Vec<u8>> = bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let mut chunk = lines.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < lines.len() && *tries < budget {
            let mut candidate = lines.clone();
            candidate.drain(start..(start + chunk).min(lines.len()));
            *tries += 1;
            let next = with_file(&best, name, candidate.concat());
            if reproduces(config, &next, spec, signature) {
                lines = candidate;
                best = next;
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    best
}
