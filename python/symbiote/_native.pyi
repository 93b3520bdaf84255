# Type stubs of the extension module built from python/src/ (pyo3). The public API is
# symbiote/__init__.py; these functions take the CLI's flags and return the text it writes.
from typing import Any, Dict, List, Optional, Tuple

class InputError(ValueError):
    """Bad input: a scenario, trace, flag or name symbiote cannot use; the message names the
    file, field and fix."""

class InternalError(RuntimeError):
    """A run broke one of the simulator's invariants: a bug in symbiote."""

# One run's captured data: case name, seed, timeline CSV, requests CSV.
_RunData = Tuple[str, int, Optional[str], Optional[str]]
# report.json, summary.csv, each run's data, the report folder (with out=), warnings.
_Output = Tuple[str, str, List[_RunData], Optional[str], List[str]]

def run_file(path: str, options: Dict[str, Any]) -> _Output: ...
def run_text(text: str, label: str, base_dir: str, options: Dict[str, Any]) -> _Output: ...
def replay(argv: List[str], options: Dict[str, Any]) -> _Output: ...
def memory(argv: List[str]) -> str: ...
def plan(
    argv: List[str], scenario: Optional[Tuple[str, str, str]], write: bool
) -> Tuple[str, str, Optional[str], Optional[str]]: ...
def catalog(what: str) -> str: ...
def validate(path: Optional[str], text: Optional[str], label: str, base_dir: str) -> Tuple[str, int, int]: ...
def schema() -> str: ...
def check(
    path: Optional[str],
    text: Optional[str],
    label: str,
    base_dir: str,
    baseline: str,
    tolerance: str,
    metrics: Optional[str],
    update: bool,
) -> Optional[str]: ...
def fidelity(
    measurements: str, cross_validate: bool, max_evaluations: int, multi_turn: bool, step_model: str
) -> Tuple[str, str, List[str]]: ...
def trace_stats(trace: str, format: Optional[str]) -> str: ...
