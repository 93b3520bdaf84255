//! vLLM's benchmark files at the command line: `--percentiles`, `--vllm-bench-json` (which
//! file each run goes to, and its `date`), and `check` against a `vllm bench serve` result.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::report::vllm_bench::{self, BenchExport};
use crate::scenario::Scenario;

/// Parses `--percentiles 50,90,95,99` (vLLM's `--metric-percentiles`): numbers within 0..100.
pub fn parse_percentiles(text: &str) -> Result<Vec<f64>> {
    let bad = || {
        anyhow::anyhow!("--percentiles takes numbers within 0..100 separated by commas, like 50,90,95,99; got `{text}`")
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let p: f64 = part.trim().parse().map_err(|_| bad())?;
        if !(0.0..=100.0).contains(&p) {
            return Err(bad());
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Where `--vllm-bench-json PATH` writes for these scenarios (seeds and scale applied): PATH
/// itself for a single (case, seed) run, else one file per run named after it
/// ([`BenchExport::path_for`]). Names that would coincide are refused before anything runs.
pub fn bench_export(path: &Path, scenarios: &[Scenario]) -> Result<BenchExport> {
    if path.as_os_str().is_empty() || path.is_dir() {
        bail!("--vllm-bench-json takes a file path like bench.json, got the folder `{}`", path.display());
    }
    let runs: usize = scenarios.iter().map(|s| s.cases.len() * s.seeds.len()).sum();
    let export = BenchExport {
        path: path.to_path_buf(),
        per_run: runs > 1,
        with_scenario: runs > 1 && scenarios.len() > 1,
        date: date(),
    };
    let mut seen = BTreeSet::new();
    for scenario in scenarios {
        for (case, seed) in crate::runner::jobs(scenario) {
            let file = export.path_for(&scenario.folder(), &scenario.cases[case].name, seed);
            if !seen.insert(file.clone()) {
                bail!(
                    "--vllm-bench-json: two runs would both write {}; rename a scenario or case so their names differ",
                    file.display()
                );
            }
        }
    }
    Ok(export)
}

/// vLLM's `date` field, `%Y%m%d-%H%M%S`: `SOURCE_DATE_EPOCH` (seconds, UTC) when set, so that
/// a rerun writes the same bytes, else the wall clock in UTC. Only this field of this opt-in
/// file ever sees the clock; report files never do.
pub fn date() -> String {
    let from_env = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<u64>().ok());
    #[allow(clippy::disallowed_methods)] // the date of a vLLM result file is the time it was written
    let seconds = from_env.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    });
    format_date(seconds)
}

/// UTC `%Y%m%d-%H%M%S` of a Unix time.
fn format_date(seconds: u64) -> String {
    let (year, month, day) = super::civil_date(seconds);
    let rest = seconds % 86_400;
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

/// What `check` compares with a `vllm bench serve` baseline when no `--metrics` are given:
/// the default metrics plus every mean, median and percentile of TTFT, TPOT, ITL and E2EL
/// the baseline holds, and the total token throughput.
pub fn default_metrics(baseline: &Value) -> Vec<String> {
    let mut metrics: Vec<String> = crate::report::check::DEFAULT_METRICS.iter().map(|m| m.to_string()).collect();
    let keys = baseline.as_object().into_iter().flat_map(|o| o.keys());
    for key in keys {
        let latency = ["ttft", "tpot", "itl", "e2el"].iter().any(|m| key.ends_with(&format!("_{m}_ms")));
        let statistic = key.starts_with("mean_")
            || key.starts_with("median_")
            || key.strip_prefix('p').and_then(|r| r.split('_').next()).is_some_and(|p| p.parse::<f64>().is_ok());
        if ((latency && statistic) || key == "total_token_throughput") && !metrics.contains(key) {
            metrics.push(key.clone());
        }
    }
    metrics
}

/// Prepares `scenario` for a check against a `vllm bench serve` result: one case, the
/// baseline's percentiles computed. Returns the baseline as a report value for that case and
/// a line saying what is compared.
pub fn prepare_check(baseline: &Value, scenario: &mut Scenario, file: &Path) -> Result<(Value, String)> {
    if scenario.cases.len() != 1 {
        bail!(
            "{} is a `vllm bench serve` result (one run); the scenario `{}` has {} cases: check it with a scenario of one case",
            file.display(),
            scenario.name,
            scenario.cases.len()
        );
    }
    let case = scenario.cases[0].name.clone();
    scenario.set_percentiles(&vllm_bench::percentiles_in(baseline));
    let text = |key: &str| baseline.get(key).and_then(Value::as_str).unwrap_or("?").to_string();
    let line = format!(
        "baseline: vllm bench serve result {} (model {}, date {}), compared with case `{case}` (mean over {} seeds)",
        file.display(),
        text("model_id"),
        text("date"),
        scenario.seeds.len()
    );
    Ok((vllm_bench::as_report(baseline, &case), line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_parse_like_vllms_metric_percentiles() {
        assert_eq!(parse_percentiles("50, 90,95,99.9").unwrap(), vec![50.0, 90.0, 95.0, 99.9]);
        assert_eq!(parse_percentiles("99,99").unwrap(), vec![99.0]);
        for bad in ["", "101", "-1", "p99", "50;90"] {
            assert!(parse_percentiles(bad).is_err(), "{bad}");
        }
    }

    /// Unix times against `date -u -d @T +%Y%m%d-%H%M%S`.
    #[test]
    fn dates_are_utc_in_vllms_format() {
        assert_eq!(format_date(0), "19700101-000000");
        assert_eq!(format_date(951_782_400), "20000229-000000");
        assert_eq!(format_date(1_735_689_599), "20241231-235959");
        assert_eq!(format_date(1_767_225_600), "20260101-000000");
    }

    #[test]
    fn a_vllm_baseline_adds_its_latency_statistics_to_the_compared_metrics() {
        let baseline = serde_json::json!({"mean_ttft_ms": 1.0, "median_itl_ms": 1.0, "std_itl_ms": 1.0,
            "p95_e2el_ms": 1.0, "p99.9_tpot_ms": 1.0, "total_token_throughput": 1.0, "ttfts": [], "date": "x"});
        let metrics = default_metrics(&baseline);
        assert_eq!(&metrics[..7], &crate::report::check::DEFAULT_METRICS.map(String::from));
        assert_eq!(&metrics[7..], ["median_itl_ms", "p95_e2el_ms", "p99.9_tpot_ms", "total_token_throughput"]);
    }
}
