//! The commands behind the CLI, returning text and exit codes so that `main` stays a thin
//! parse-call-print layer and the commands are testable.

use anyhow::{bail, Result};

/// Exit codes: 0 ok, 1 an expectation or check failed, 2 bad input or internal error.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

fn print_problems(problems: &[String]) -> u8 {
    // Problems quote the files they come from; a huge field must not flood the terminal.
    problems.iter().for_each(|p| eprintln!("error: {}", crate::text::clip_message(p)));
    EXIT_BAD_INPUT
}

/// Reads the catalog folders of `--catalog` (or, without it, `SYMBIOTE_CATALOG`) and makes
/// them the catalog of this process, announcing on stderr each built-in entry they replace.
/// Returns the exit code when a file is bad, after printing every problem.
pub fn install_catalog(flag: Option<&std::ffi::OsStr>) -> Option<u8> {
    use crate::hardware::user_catalog;
    let env = std::env::var_os(user_catalog::ENV_VAR);
    let folders = user_catalog::folders(flag, env.as_deref());
    if folders.is_empty() {
        crate::verbosity::detail(|| catalog_lines(user_catalog::active()).join("\n"));
        return None;
    }
    match user_catalog::load(&folders) {
        Ok(loaded) => {
            loaded.overrides.iter().for_each(|line| eprintln!("{line}"));
            crate::verbosity::detail(|| catalog_lines(&loaded.catalog).join("\n"));
            user_catalog::install(loaded.catalog);
            None
        }
        Err(problems) => {
            let from = if flag.is_some() { "--catalog" } else { user_catalog::ENV_VAR };
            let lines: Vec<String> =
                problems.iter().map(|p| format!("{p} (a catalog folder named by {from})")).collect();
            Some(print_problems(&lines))
        }
    }
}

/// What `-v` says of the catalog in use: how many entries, and each file read at run time.
fn catalog_lines(catalog: &crate::hardware::Catalog) -> Vec<String> {
    let mut lines = vec![format!(
        "catalog: {} models and {} GPUs (built in from models/ unless a file is named below)",
        catalog.models.len(),
        catalog.gpus.len()
    )];
    let gpus = catalog.gpus.iter().filter_map(|g| g.origin.as_ref().map(|o| ("gpu", &g.name, o)));
    let models = catalog.models.iter().filter_map(|m| m.origin.as_ref().map(|o| ("model", &m.name, o)));
    lines.extend(
        gpus.chain(models).map(|(kind, name, o)| format!("catalog: {kind} {name} from {} (fnv1a {})", o.file, o.fnv1a)),
    );
    lines
}

/// A `--model` as the scenario built from it must name it: a path that exists from the current
/// folder (a Hugging Face folder or config.json) made absolute, since the scenario's relative
/// paths start at the trace's or scenario's folder; a catalog name unchanged.
fn model_arg(model: &str) -> String {
    let path = std::path::Path::new(model);
    match std::path::absolute(path) {
        Ok(absolute) if path.is_relative() && path.exists() => absolute.display().to_string(),
        _ => model.to_string(),
    }
}

/// The UTC (year, month, day) of a Unix time (Howard Hinnant's `civil_from_days`).
fn civil_date(unix_seconds: u64) -> (i64, i64, i64) {
    let z = (unix_seconds / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (month <= 2) as i64, month, day)
}

/// `5%` or `0.05`.
pub fn parse_tolerance(text: &str) -> Result<f64> {
    let value = match text.trim().strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| anyhow::anyhow!("--tolerance takes a percentage like 5% or a fraction like 0.05; got `{text}`"))?;
    if !(value >= 0.0 && value.is_finite()) {
        bail!("--tolerance must not be negative");
    }
    Ok(value)
}

/// Parses `--seeds`: `1..32` (inclusive) or `1,2,5`.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let bad = || anyhow::anyhow!("--seeds takes a range like 1..32 or a list like 1,2,5; got `{text}`");
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..") {
        let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        if b < a || b - a >= 10_000 {
            return Err(bad());
        }
        (a..=b).collect()
    } else {
        text.split(',').map(|s| s.trim().parse().map_err(|_| bad())).collect::<Result<_>>()?
    };
    let mut unique = seeds.clone();
    unique.sort_unstable();
    unique.dedup();
    if seeds.is_empty() || unique.len() != seeds.len() {
        return Err(bad());
    }
    Ok(seeds)
}

/// Parses `--shard K/N` (1 <= K <= N).
pub fn parse_shard(text: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard takes K/N with 1 <= K <= N, like 2/8; got `{text}`");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

mod bench_fidelity;
mod fidelity;
mod info;
mod plan;
mod run;
mod vllm;

pub use fidelity::*;
pub use info::*;
pub use plan::*;
pub use run::*;
pub use vllm::*;
