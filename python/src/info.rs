//! `memory`, `plan`, the catalog, `validate`, `schema`, `check`, `fidelity` and `trace-stats`: the
//! CLI's commands of the same names, returning the JSON their `--json` forms (or report files) hold.

use std::path::PathBuf;

use pyo3::prelude::*;
use symbiote::cli;

use crate::{problems_err, to_py_err, InputError};

/// `symbiote memory --json` with `argv` the flags after `memory`: the configuration, the
/// itemised split, whether it fits, vLLM's start-up error and the largest batches.
#[pyfunction]
pub fn memory(argv: Vec<String>) -> PyResult<String> {
    let mut args: cli::MemoryArgs = crate::args::parse("memory", argv)?;
    args.json = true;
    cli::memory_report(&args).map(|(json, _fits)| json).map_err(to_py_err)
}

/// A scenario given as text to `plan`: its JSON, the label that names it in messages and the
/// folder its relative paths start at.
type ScenarioText = (String, String, PathBuf);

/// `symbiote plan` with `argv` its flags (a scenario path, or `--trace`); `scenario` instead
/// gives the scenario as text. Returns report.json's text, report.md's, the winner's scenario
/// (JSON, or None when nothing meets the objective) and the report folder, written only when
/// `write` is set.
#[pyfunction]
#[pyo3(signature = (argv, scenario, write))]
pub fn plan(
    py: Python<'_>,
    argv: Vec<String>,
    scenario: Option<ScenarioText>,
    write: bool,
) -> PyResult<(String, String, Option<String>, Option<String>)> {
    let args: cli::PlanArgs = crate::args::parse("plan", argv)?;
    let outputs = py
        .detach(|| {
            let base = match &scenario {
                Some((text, label, dir)) => cli::scenario_base(&args, text, label, dir.clone())?,
                None => cli::plan_base(&args)?,
            };
            let outputs = cli::plan_outputs(&args, base)?;
            if write {
                cli::write_plan(&outputs)?;
            }
            anyhow::Ok(outputs)
        })
        .map_err(to_py_err)?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("JSON values serialize");
    Ok((
        pretty(&outputs.json),
        outputs.markdown.clone(),
        outputs.winner.as_ref().map(pretty),
        write.then(|| outputs.dir.display().to_string()),
    ))
}

/// `symbiote list models|gpus --json`: the catalog entries with their sources and prices.
#[pyfunction]
pub fn catalog(what: &str) -> PyResult<String> {
    cli::list(what, true).map_err(to_py_err)
}

/// `symbiote validate` on a file or on JSON text: (name, cases, seeds), or `InputError` with
/// every problem.
#[pyfunction]
#[pyo3(signature = (path, text, label, base_dir))]
pub fn validate(
    path: Option<PathBuf>,
    text: Option<&str>,
    label: &str,
    base_dir: PathBuf,
) -> PyResult<(String, usize, usize)> {
    let scenario = load(path, text, label, &base_dir)?;
    Ok((scenario.name.clone(), scenario.cases.len(), scenario.seeds.len()))
}

/// `symbiote schema`: the JSON Schema of scenario files.
#[pyfunction]
pub fn schema() -> String {
    symbiote::scenario::file::json_schema()
}

/// `symbiote check --json` on a file or on JSON text: reruns the scenario and compares it with
/// `baseline` (a report.json or a `vllm bench serve` result); the JSON `check --json` prints,
/// or `None` when `update` rewrote the baseline. Runs with the GIL released.
#[pyfunction]
#[pyo3(signature = (path, text, label, base_dir, baseline, tolerance, metrics, update))]
#[allow(clippy::too_many_arguments)]
pub fn check(
    py: Python<'_>,
    path: Option<PathBuf>,
    text: Option<&str>,
    label: &str,
    base_dir: PathBuf,
    baseline: PathBuf,
    tolerance: String,
    metrics: Option<String>,
    update: bool,
) -> PyResult<Option<String>> {
    let scenario = load(path.clone(), text, label, &base_dir)?;
    let args = cli::CheckArgs {
        scenario: path.unwrap_or_else(|| PathBuf::from(label)),
        baseline,
        tolerance,
        metrics,
        update,
        json: true,
        quiet: true,
    };
    let outcome = py.detach(|| cli::check_scenario(scenario, &args)).map_err(to_py_err)?;
    Ok(match outcome {
        cli::CheckOutcome::Updated => None,
        cli::CheckOutcome::Compared(result) => {
            Some(serde_json::to_string_pretty(&result.to_json()).expect("JSON values serialize"))
        }
    })
}

/// `symbiote fidelity` without writing files: (report.md's text, its JSON, warnings). Runs with
/// the GIL released.
#[pyfunction]
#[pyo3(signature = (measurements, cross_validate, max_evaluations, multi_turn, step_model))]
pub fn fidelity(
    py: Python<'_>,
    measurements: PathBuf,
    cross_validate: bool,
    max_evaluations: u32,
    multi_turn: bool,
    step_model: &str,
) -> PyResult<(String, String, Vec<String>)> {
    let step_model = <cli::StepModel as clap::ValueEnum>::from_str(step_model, false).map_err(|_| {
        InputError::new_err(format!("unknown step_model `{step_model}`; use auto, roofline or kernels"))
    })?;
    let report = py
        .detach(|| cli::fidelity_report(&measurements, cross_validate, max_evaluations, multi_turn, step_model))
        .map_err(|problems| problems_err(&problems))?;
    let json = serde_json::to_string_pretty(&report.json).expect("JSON values serialize");
    Ok((report.markdown, json, report.warnings))
}

/// `symbiote trace-stats --json`: a trace's rows, span, rate, token totals and prefix hits.
#[pyfunction]
#[pyo3(signature = (trace, format))]
pub fn trace_stats(py: Python<'_>, trace: PathBuf, format: Option<String>) -> PyResult<String> {
    let stats = py.detach(|| cli::trace_stats(&trace, format.as_deref())).map_err(to_py_err)?;
    Ok(serde_json::to_string_pretty(&stats).expect("JSON values serialize"))
}

/// A scenario from a file (the CLI's loader) or from JSON text.
fn load(
    path: Option<PathBuf>,
    text: Option<&str>,
    label: &str,
    base_dir: &std::path::Path,
) -> PyResult<symbiote::scenario::Scenario> {
    match (path, text) {
        (Some(path), None) => Ok(cli::load_all(&[path]).map_err(|p| problems_err(&p))?.pop().expect("one scenario")),
        (None, Some(text)) => symbiote::scenario::parse_in(text, label, base_dir)
            .map_err(|p| problems_err(&p.iter().map(|d| d.to_string()).collect::<Vec<_>>())),
        _ => Err(InputError::new_err("give a scenario path or scenario text, not both")),
    }
}
