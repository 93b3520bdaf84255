//! `SYMBIOTE_FUZZ_RECHECK=DIR`: runs every saved reproducer under DIR again (a folder with
//! `args.json` and `in/`, as `target/fuzz-findings/` and `findings/` hold them) through the
//! same checks, and says which still fail: the way to see a fix land.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::exec::{self, Outcome};
use crate::input::{CommandSpec, Input, InputFile, SCENARIO};
use crate::mutate_json::WORK_MARK;
use crate::Config;

/// Reproducer folders under `root`, in name order.
fn reproducers(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = crate::oracle::walk(root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "args.json"))
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    dirs.sort();
    dirs
}

/// The input a reproducer folder holds, with its absolute path turned back into the mark.
fn load(dir: &Path) -> (Input, String) {
    let args: Value = serde_json::from_slice(&std::fs::read(dir.join("args.json")).unwrap()).unwrap();
    let absolute = std::fs::canonicalize(dir).unwrap().display().to_string();
    let root = dir.join("in");
    let files: Vec<InputFile> = crate::oracle::walk(&root)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.strip_prefix(&root).unwrap().display().to_string();
            let bytes = repeat(exec::substitute(&std::fs::read(&p).unwrap(), &absolute, WORK_MARK));
            match name.strip_suffix(".hex") {
                // Binary files (a damaged gzip) are kept as hex text.
                Some(stem) => InputFile { name: stem.to_string(), bytes: from_hex(&bytes) },
                None => InputFile { name, bytes },
            }
        })
        .collect();
    let text =
        |name: &str| files.iter().find(|f| f.name == name).and_then(|f| serde_json::from_slice::<Value>(&f.bytes).ok());
    let name = args["command"].as_str().unwrap_or("run");
    let command = ["validate", "run", "replay", "trace-stats"].into_iter().find(|c| *c == name).unwrap_or("run");
    let input = Input {
        index: args["index"].as_u64().unwrap_or(1),
        origin: dir.display().to_string(),
        notes: Vec::new(),
        scenario: text(SCENARIO),
        degenerate_config: text("config.json").and_then(|c| crate::input::degenerate(&c)),
        commands: vec![CommandSpec {
            name: command,
            args: args["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect(),
            after_ok: false,
        }],
        files,
    };
    (input, args["signature"].as_str().unwrap_or("").to_string())
}

/// Reruns every reproducer; returns how many still show a finding.
pub fn recheck(config: &Config, root: &Path) -> usize {
    let mut failing = 0;
    for dir in reproducers(root) {
        let (input, was) = load(&dir);
        let result = exec::run_input(config, &input).remove(0);
        let now: Vec<&str> = result.verdict.problems.iter().map(|p| p.signature.as_str()).collect();
        let status = if result.verdict.outcome >= Outcome::Wrong { "STILL FAILS" } else { "passes" };
        failing += usize::from(result.verdict.outcome >= Outcome::Wrong);
        println!(
            "{status:<12} {:<15} {}",
            result.verdict.outcome.name(),
            dir.strip_prefix(root).unwrap_or(&dir).display()
        );
        println!("{:<28}was: {was}", "");
        if !now.is_empty() {
            println!("{:<28}now: {}", "", now.join("; "));
        }
    }
    failing
}

fn from_hex(text: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = text.iter().copied().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex digits"))
        .collect()
}

/// Expands `@REPEAT(c,n)@` into `n` copies of the character `c`, so that a huge field is a
/// few bytes in the repository.
fn repeat(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let Some(start) = text.find("@REPEAT(") else { return bytes };
    let rest = &text[start + "@REPEAT(".len()..];
    let end = rest.find(")@").expect("@REPEAT(c,n)@ is closed");
    let (c, n) = rest[..end].split_once(',').expect("@REPEAT(c,n)@ has a comma");
    let expanded = format!("{}{}{}", &text[..start], c.repeat(n.trim().parse().expect("a count")), &rest[end + 2..]);
    repeat(expanded.into_bytes())
}
