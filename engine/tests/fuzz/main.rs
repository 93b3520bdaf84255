//! A deterministic mutation fuzzer for the `symbiote` binary (issue 14).
//!
//! Each input is a seed from `corpus/` (a scenario, a trace or a Hugging Face config.json)
//! mutated by a ChaCha stream that depends only on the fuzz seed and the input's index, then
//! fed to the release binary as a subprocess (`validate`, `run`, `replay`, `trace-stats`) in a
//! fresh folder, under a wall-clock timeout and a virtual-memory cap. Every execution is
//! classified (see `exec::Outcome`); panics, hangs, aborts and silently wrong results are
//! findings, saved with a reproducer under `target/fuzz-findings/`.
//!
//! Modes, by environment variable:
//!
//! - `cargo test --release --test fuzz`: the bounded CI mode, 300 inputs or 60 s, whichever
//!   comes first; exits non-zero on any finding. A debug build (plain `cargo test`) skips it
//!   unless a budget is set explicitly.
//! - `SYMBIOTE_FUZZ_INPUTS=20000 SYMBIOTE_FUZZ_SECONDS=0 cargo test --release --test fuzz`:
//!   the long run (0 seconds = no time budget).
//! - `SYMBIOTE_FUZZ_SEED` (default 0) picks the mutation streams, `SYMBIOTE_FUZZ_START` the
//!   first input index (to resume or shard), `SYMBIOTE_FUZZ_ONLY=17` replays input 17 alone,
//!   `SYMBIOTE_FUZZ_TIMEOUT_S` (default 10) and `SYMBIOTE_FUZZ_MEM_MB` (default 4096) bound
//!   each child, `SYMBIOTE_FUZZ_MINIMIZE=0` skips shrinking new findings,
//!   `SYMBIOTE_FUZZ_GDB=0` does without gdb (which names hangs and aborts by their stack),
//!   `SYMBIOTE_FUZZ_VERBOSE=1` prints every input's mutations and outcomes,
//!   `SYMBIOTE_FUZZ_BIN` runs another binary.
//! - `SYMBIOTE_FUZZ_RECHECK=engine/tests/fuzz/findings cargo test --release --test fuzz`
//!   reruns saved reproducers (each a folder with `args.json` and `in/`) and lists which
//!   still fail; `target/fuzz-findings` works too.

mod backtrace;
mod corpus;
mod exec;
mod findings;
mod input;
mod mutate_bytes;
mod mutate_json;
mod mutate_scenario;
mod oracle;
mod oracle_report;
mod recheck;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use exec::Outcome;

/// The knobs of one fuzzing session, read from the environment.
#[derive(Clone)]
pub struct Config {
    pub seed: u64,
    pub start: u64,
    pub inputs: u64,
    pub budget: Option<Duration>,
    pub timeout: Duration,
    pub mem_mb: u64,
    pub minimize: bool,
    pub verbose: bool,
    /// Name hangs and aborts by their stack (gdb attached or rerun).
    pub gdb: bool,
    pub bin: PathBuf,
    pub work: PathBuf,
    pub findings: PathBuf,
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(text.trim().parse().unwrap_or_else(|_| panic!("{name} takes a whole number; got `{text}`")))
}

impl Config {
    /// `None` when nothing asks for a fuzzing run (a debug `cargo test`).
    fn from_env() -> Option<Config> {
        let explicit = std::env::var_os("SYMBIOTE_FUZZ_INPUTS").is_some()
            || std::env::var_os("SYMBIOTE_FUZZ_RECHECK").is_some()
            || std::env::var_os("SYMBIOTE_FUZZ_SECONDS").is_some()
            || std::env::var_os("SYMBIOTE_FUZZ_ONLY").is_some();
        if cfg!(debug_assertions) && !explicit {
            return None;
        }
        let only = env_u64("SYMBIOTE_FUZZ_ONLY");
        let target =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").to_path_buf();
        Some(Config {
            seed: env_u64("SYMBIOTE_FUZZ_SEED").unwrap_or(0),
            start: only.or(env_u64("SYMBIOTE_FUZZ_START")).unwrap_or(0),
            inputs: if only.is_some() { 1 } else { env_u64("SYMBIOTE_FUZZ_INPUTS").unwrap_or(300) },
            budget: match env_u64("SYMBIOTE_FUZZ_SECONDS").unwrap_or(if only.is_some() { 0 } else { 60 }) {
                0 => None,
                s => Some(Duration::from_secs(s)),
            },
            timeout: Duration::from_secs(env_u64("SYMBIOTE_FUZZ_TIMEOUT_S").unwrap_or(10).max(1)),
            mem_mb: env_u64("SYMBIOTE_FUZZ_MEM_MB").unwrap_or(4096),
            minimize: env_u64("SYMBIOTE_FUZZ_MINIMIZE").unwrap_or(1) != 0,
            verbose: env_u64("SYMBIOTE_FUZZ_VERBOSE").unwrap_or(0) != 0,
            gdb: env_u64("SYMBIOTE_FUZZ_GDB").unwrap_or(1) != 0 && backtrace::available(),
            bin: std::env::var_os("SYMBIOTE_FUZZ_BIN")
                .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_symbiote")), PathBuf::from),
            work: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-work"),
            findings: target.join("fuzz-findings"),
        })
    }
}

fn main() -> ExitCode {
    let Some(config) = Config::from_env() else {
        println!(
            "fuzz: skipped in a debug build; run `cargo test --release --test fuzz` (see engine/tests/fuzz/main.rs)"
        );
        return ExitCode::SUCCESS;
    };
    if let Some(dir) = std::env::var_os("SYMBIOTE_FUZZ_RECHECK") {
        let failing = recheck::recheck(&config, std::path::Path::new(&dir));
        let _ = std::fs::remove_dir_all(&config.work);
        println!("fuzz: {failing} reproducers still fail");
        return if failing == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let corpus = corpus::Corpus::load();
    let _ = std::fs::remove_dir_all(&config.work);
    let _ = std::fs::remove_dir_all(&config.findings);
    println!(
        "fuzz: {} inputs from index {} (seed {}), budget {}, timeout {:?} per command, memory cap {} MiB, binary {}",
        config.inputs,
        config.start,
        config.seed,
        config.budget.map_or("none".into(), |b| format!("{b:?}")),
        config.timeout,
        config.mem_mb,
        config.bin.display()
    );
    let began = Instant::now();
    let mut store = findings::Store::new(&config);
    let mut per_command: BTreeMap<String, BTreeMap<Outcome, u64>> = BTreeMap::new();
    let mut per_input: BTreeMap<Outcome, u64> = BTreeMap::new();
    let mut done = 0u64;
    for index in config.start..config.start.saturating_add(config.inputs) {
        if config.budget.is_some_and(|b| began.elapsed() >= b) {
            break;
        }
        let input = input::generate(&corpus, config.seed, index);
        let results = exec::run_input(&config, &input);
        let mut worst = Outcome::Skipped;
        if config.verbose {
            println!("input {index} {}: {} | {}", input.origin, input.notes.join("; "), describe(&results));
        }
        for result in &results {
            *per_command.entry(result.command.clone()).or_default().entry(result.verdict.outcome).or_default() += 1;
            worst = worst.max(result.verdict.outcome);
            store.record(&config, &input, result);
        }
        *per_input.entry(worst).or_default() += 1;
        done += 1;
        if done % 100 == 0 {
            println!("fuzz: {done} inputs in {:.0?}, {} distinct findings", began.elapsed(), store.len());
        }
    }
    if config.minimize {
        store.minimize_all(&config);
    }
    let _ = std::fs::remove_dir_all(&config.work);
    print_table(&per_command, &per_input, done, began.elapsed());
    store.print();
    if store.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!(
            "fuzz: FAILED with {} distinct findings; reproducers under {}",
            store.len(),
            config.findings.display()
        );
        ExitCode::FAILURE
    }
}

/// Each command's outcome, with the first line of a clean error's message.
fn describe(results: &[exec::CommandResult]) -> String {
    let line = |r: &exec::CommandResult| match (&r.exec, r.verdict.outcome) {
        (Some(exec), Outcome::CleanError) => {
            let text = exec.stderr.text();
            format!(" ({})", text.lines().next().unwrap_or("").chars().take(160).collect::<String>())
        }
        _ => String::new(),
    };
    results
        .iter()
        .map(|r| format!("{} {}{}", r.command, r.verdict.outcome.name(), line(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_table(
    per_command: &BTreeMap<String, BTreeMap<Outcome, u64>>,
    per_input: &BTreeMap<Outcome, u64>,
    done: u64,
    took: Duration,
) {
    let outcomes = Outcome::ALL;
    let mut header = format!("\n{:<14}", "command");
    for o in outcomes {
        header.push_str(&format!("{:>16}", o.name()));
    }
    println!("{header}");
    let mut rows: Vec<(String, &BTreeMap<Outcome, u64>)> = per_command.iter().map(|(k, v)| (k.clone(), v)).collect();
    rows.push((format!("inputs ({done})"), per_input));
    for (name, counts) in rows {
        let mut line = format!("{name:<14}");
        for o in outcomes {
            line.push_str(&format!("{:>16}", counts.get(&o).copied().unwrap_or(0)));
        }
        println!("{line}");
    }
    println!("(an input counts once, under its worst outcome; {done} inputs in {took:.1?})\n");
}
