//! `memory`, `plan`, the catalog, `validate` and `schema`: the CLI's commands of the same names,
//! returning the JSON their `--json` forms (or report files) hold.

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
    let scenario = match (path, text) {
        (Some(path), None) => cli::load_all(&[path]).map_err(|p| problems_err(&p))?.pop().expect("one scenario"),
        (None, Some(text)) => symbiote::scenario::parse_in(text, label, &base_dir)
            .map_err(|p| problems_err(&p.iter().map(|d| d.to_string()).collect::<Vec<_>>()))?,
        _ => return Err(InputError::new_err("give a scenario path or scenario text, not both")),
    };
    Ok((scenario.name.clone(), scenario.cases.len(), scenario.seeds.len()))
}

/// `symbiote schema`: the JSON Schema of scenario files.
#[pyfunction]
pub fn schema() -> String {
    symbiote::scenario::file::json_schema()
}
