//! `symbiote._native`: the Python extension module. It calls the same library functions as the
//! `symbiote` command line (`symbiote::cli`, `symbiote::runner`), never a copy of them, and hands
//! results back as text the CLI would have written (report.json, the CSVs), which the Python
//! package (`python/symbiote/__init__.py`) turns into dicts and DataFrames.
//!
//! Every simulation runs with the GIL released (`Python::detach`) on a rayon pool of its own,
//! so other Python threads go on meanwhile and the answer does not depend on the thread count.
//! Errors become `symbiote.InputError` (what the CLI reports as bad input, exit 2) or
//! `symbiote.InternalError` (a broken simulator invariant), carrying the CLI's message.

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

mod args;
mod info;
mod simulate;

create_exception!(
    _native,
    InputError,
    PyValueError,
    "Bad input: a scenario, trace, flag or name symbiote cannot use; the message names the file, field and fix."
);
create_exception!(
    _native,
    InternalError,
    PyRuntimeError,
    "A run broke one of the simulator's invariants: a bug in symbiote; the message says how to reproduce it."
);

/// The Python exception for an error the CLI would print as `error: {e:#}`.
fn to_py_err(error: anyhow::Error) -> PyErr {
    let message = format!("{error:#}");
    if error.downcast_ref::<symbiote::runner::InvariantViolation>().is_some() {
        InternalError::new_err(message)
    } else {
        InputError::new_err(message)
    }
}

/// The Python exception for a list of problems (a scenario's diagnostics), one per line as the
/// CLI prints them.
fn problems_err(problems: &[String]) -> PyErr {
    let lines: Vec<String> = problems.iter().map(|p| symbiote::text::clip_message(p)).collect();
    InputError::new_err(lines.join("\n"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("InternalError", m.py().get_type::<InternalError>())?;
    m.add_function(wrap_pyfunction!(simulate::run_file, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::run_text, m)?)?;
    m.add_function(wrap_pyfunction!(simulate::replay, m)?)?;
    m.add_function(wrap_pyfunction!(info::memory, m)?)?;
    m.add_function(wrap_pyfunction!(info::plan, m)?)?;
    m.add_function(wrap_pyfunction!(info::catalog, m)?)?;
    m.add_function(wrap_pyfunction!(info::validate, m)?)?;
    m.add_function(wrap_pyfunction!(info::schema, m)?)?;
    m.add_function(wrap_pyfunction!(info::check, m)?)?;
    m.add_function(wrap_pyfunction!(info::fidelity, m)?)?;
    m.add_function(wrap_pyfunction!(info::trace_stats, m)?)?;
    Ok(())
}
