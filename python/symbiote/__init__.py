"""symbiote from Python: a deterministic simulator of LLM inference serving (vLLM + Ray Data).

The functions mirror the command line and call the same Rust code (the extension module
`symbiote._native`, built from the `symbiote` crate with pyo3):

- `run(scenario)`: a scenario file, JSON text or a dict, as `symbiote run FILE`;
- `replay(trace, model=..., gpu=...)`: a trace on a fleet, as `symbiote replay`;
- `memory(model, gpu)`: the start-up memory split, as `symbiote memory --json`;
- `plan(scenario or trace=...)`: the cheapest fleet for an SLO or a batch deadline, as `symbiote plan`;
- `check(scenario, baseline)`: a rerun compared with a report.json or `vllm bench serve` result,
  as `symbiote check --json`;
- `fidelity(measurements)`: measured vLLM runs simulated, with the errors, as `symbiote fidelity`;
- `trace_stats(trace)`: a trace's totals, as `symbiote trace-stats --json`;
- `models()`, `gpus()`, `validate(scenario)`, `schema()`.

`run` and `replay` return a `Result`: the report (report.json as a dict), and summary, per-request
and timeline tables (pandas DataFrames when pandas is importable, else lists of dicts;
`tables="arrow"` gives pyarrow Tables). The GIL is
released while simulating. Bad input raises `InputError` with the message the CLI prints (file,
field, fix); a broken simulator invariant raises `InternalError`.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _convert, _native
from ._native import InputError, InternalError

__all__ = [
    "InputError",
    "InternalError",
    "Plan",
    "Result",
    "check",
    "fidelity",
    "gpus",
    "memory",
    "models",
    "plan",
    "replay",
    "run",
    "schema",
    "trace_stats",
    "validate",
]

#: A scenario: a path to a scenario file, the file's JSON text, or the parsed JSON as a dict.
Scenario = Union[str, "os.PathLike[str]", Mapping[str, Any]]
#: How tables come back: "auto" (pandas if importable), "pandas", "arrow" (pyarrow Tables), or
#: "records" (lists of dicts).
Tables = str


@dataclass(frozen=True)
class Result:
    """What `run` and `replay` return.

    report: report.json as a dict (every case and seed, mean and CI over seeds, findings).
    summary: summary.csv as a table: one row per (case, seed), every metric a column.
    requests: every finished request of every run (requests.csv), `case` and `seed` first;
        empty when `requests=False`.
    timeline: the engine state sampled every `timeline_interval_ms` (timeline.csv), `case` and
        `seed` first; empty when `timeline=False`.
    out: the report folder written under `out=`, or None when nothing was written.
    """

    report: Dict[str, Any]
    summary: Any
    requests: Any
    timeline: Any
    out: Optional[Path]

    def metrics(self, case: Optional[str] = None, seed: Optional[int] = None) -> Dict[str, Any]:
        """The metrics of one run (vLLM bench keys: `p99_ttft_ms`, `output_throughput`, ...);
        the first case and seed unless named."""
        for c in self.report["cases"]:
            if case is None or c["name"] == case:
                for r in c["runs"]:
                    if seed is None or r["seed"] == seed:
                        return dict(r["metrics"])
        raise KeyError(f"no run of case {case!r} with seed {seed!r} in the report")


@dataclass(frozen=True)
class Plan:
    """What `plan` returns: report.json as a dict, report.md's text, the winner as a scenario
    dict for `run` (None when nothing meets the objective) and the folder written under `out=`."""

    report: Dict[str, Any]
    markdown: str
    winner: Optional[Dict[str, Any]]
    out: Optional[Path]


def run(
    scenario: Scenario,
    *,
    seeds: Union[None, int, str, Sequence[int]] = None,
    scale: Optional[float] = None,
    percentiles: Union[None, str, Sequence[float]] = None,
    prices: Union[None, str, "os.PathLike[str]"] = None,
    jobs: Optional[int] = None,
    timeline: bool = True,
    timeline_interval_ms: int = 1000,
    requests: bool = True,
    out: Union[None, str, "os.PathLike[str]"] = None,
    vllm_bench_json: Union[None, str, "os.PathLike[str]"] = None,
    base_dir: Union[None, str, "os.PathLike[str]"] = None,
    tables: Tables = "auto",
) -> Result:
    """Runs every case and seed of a scenario, as `symbiote run FILE` does.

    scenario: a path, JSON text (starting with `{`) or a dict; relative trace paths in text or a
        dict start at `base_dir` (default: the current folder), in a file at the file's folder.
    seeds, scale, percentiles, prices, jobs, out, vllm_bench_json: the CLI's `--seeds` (an int,
        a list, or `"1..8"`), `--scale`, `--percentiles` (`[50, 90, 99]`), `--prices FILE`,
        `--jobs` (default all cores; the numbers do not depend on it), `--out` (write the report
        folder there too; default: write nothing) and `--vllm-bench-json`.
    timeline, timeline_interval_ms, requests: what to keep per run for `Result.timeline` and
        `Result.requests` (the CLI's `--timeline`, `--timeline-interval-ms`, `--requests`).
    """
    options = _options(seeds, scale, percentiles, prices, jobs, timeline, timeline_interval_ms, requests, out, vllm_bench_json)
    if isinstance(scenario, Mapping):
        raw = _native.run_text(json.dumps(scenario), "scenario dict", _dir(base_dir), options)
    elif isinstance(scenario, str) and scenario.lstrip().startswith("{"):
        raw = _native.run_text(scenario, "scenario JSON", _dir(base_dir), options)
    else:
        raw = _native.run_file(os.fspath(scenario), options)
    return _result(raw, tables)


def replay(
    trace: Union[str, "os.PathLike[str]"],
    *,
    model: str,
    gpu: str,
    quant: Optional[str] = None,
    tp: Optional[int] = None,
    replicas: Optional[int] = None,
    router: Optional[str] = None,
    format: Optional[str] = None,
    speedup: Optional[float] = None,
    start_s: Optional[float] = None,
    end_s: Optional[float] = None,
    limit: Optional[int] = None,
    skip_bad_rows: bool = False,
    max_model_len: Optional[int] = None,
    seeds: Union[None, int, str, Sequence[int]] = None,
    scale: Optional[float] = None,
    percentiles: Union[None, str, Sequence[float]] = None,
    prices: Union[None, str, "os.PathLike[str]"] = None,
    jobs: Optional[int] = None,
    timeline: bool = True,
    timeline_interval_ms: int = 1000,
    requests: bool = True,
    out: Union[None, str, "os.PathLike[str]"] = None,
    vllm_bench_json: Union[None, str, "os.PathLike[str]"] = None,
    tables: Tables = "auto",
) -> Result:
    """Replays a trace (Azure CSV, Mooncake JSONL, BurstGPT CSV; .gz accepted) on a fleet, as
    `symbiote replay TRACE --model M --gpu G ...` does; arguments left as None take the CLI's
    defaults (fp16, tp 1, 1 replica, round-robin). Run options are those of `run`."""
    argv = _convert.flags(
        {
            "model": model,
            "gpu": gpu,
            "quant": quant,
            "tp": tp,
            "replicas": replicas,
            # Scenario files spell routers least_outstanding, the CLI least-outstanding.
            "router": router.replace("_", "-") if router else None,
            "format": format,
            "speedup": speedup,
            "start_s": start_s,
            "end_s": end_s,
            "limit": limit,
            "skip_bad_rows": skip_bad_rows,
            "max_model_len": max_model_len,
        }
    )
    argv += ["--", os.fspath(trace)]
    options = _options(seeds, scale, percentiles, prices, jobs, timeline, timeline_interval_ms, requests, out, vllm_bench_json)
    return _result(_native.replay(argv, options), tables)


def memory(
    model: str,
    gpu: str,
    *,
    quant: Optional[str] = None,
    kv_cache_dtype: Optional[str] = None,
    tp: Optional[int] = None,
    max_model_len: Optional[int] = None,
    gpu_memory_utilization: Optional[float] = None,
    max_num_batched_tokens: Optional[int] = None,
    max_num_seqs: Optional[int] = None,
    prompt_len: Optional[int] = None,
    output_len: Optional[int] = None,
) -> Dict[str, Any]:
    """The start-up memory split of `model` on `gpu` as vLLM computes it (`symbiote memory
    --json`): the configuration, `memory` (bytes per item), `fits`, `startup_error` and, with
    `prompt_len` and `output_len`, the largest batches on the static engine and on vLLM."""
    argv = _convert.flags(
        {
            "model": model,
            "gpu": gpu,
            "quant": quant,
            "kv_cache_dtype": kv_cache_dtype,
            "tp": tp,
            "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_num_batched_tokens": max_num_batched_tokens,
            "max_num_seqs": max_num_seqs,
            "prompt_len": prompt_len,
            "output_len": output_len,
        }
    )
    result: Dict[str, Any] = json.loads(_native.memory(argv))
    return result


def plan(
    scenario: Optional[Scenario] = None,
    *,
    trace: Union[None, str, "os.PathLike[str]"] = None,
    model: Optional[str] = None,
    slo: Union[None, str, Mapping[str, float]] = None,
    goodput: Optional[float] = None,
    rate: Optional[float] = None,
    speedup: Optional[float] = None,
    gpus: Optional[Sequence[str]] = None,
    quants: Optional[Sequence[str]] = None,
    tp: Optional[Sequence[int]] = None,
    max_num_seqs: Optional[Sequence[int]] = None,
    max_num_batched_tokens: Optional[Sequence[int]] = None,
    chunked_prefill: Optional[Sequence[bool]] = None,
    routers: Optional[Sequence[str]] = None,
    autoscale: Optional[Sequence[str]] = None,
    autoscale_target: Optional[Sequence[Union[str, float]]] = None,
    prices: Union[None, str, "os.PathLike[str]"] = None,
    max_replicas: Optional[int] = None,
    screen_requests: Optional[int] = None,
    precision: Optional[float] = None,
    verify_per_gpu: Optional[int] = None,
    seed: Optional[int] = None,
    jobs: Optional[int] = None,
    deadline_h: Optional[float] = None,
    rows: Optional[int] = None,
    objective: Optional[str] = None,
    verify_rows: Optional[int] = None,
    out: Union[None, str, "os.PathLike[str]"] = None,
    base_dir: Union[None, str, "os.PathLike[str]"] = None,
) -> Plan:
    """Finds the cheapest deployment for a workload, as `symbiote plan` does: online serving
    against an `slo` (`{"p99_ttft_ms": 2000}`), or a batch job (a scenario whose `base` has
    `batch`) against `deadline_h`. The workload is a scenario (path, JSON text or dict) or a
    `trace` with `model`. Lists give the search space; None takes the CLI's defaults.
    `autoscale=["off", "1-4"]` adds Ray Serve autoscaled fleets (`--autoscale`, docs/plan.md),
    `autoscale_target=["knee", 32]` their targets. Writes the report folder only under `out=`."""
    flag_values = {
        "trace": trace,
        "model": model,
        "slo": _convert.slo(slo),
        "goodput": goodput,
        "rate": rate,
        "speedup": speedup,
        "gpus": gpus,
        "quants": quants,
        "tp": tp,
        "max_num_seqs": max_num_seqs,
        "max_num_batched_tokens": max_num_batched_tokens,
        "chunked_prefill": chunked_prefill,
        "routers": [r.replace("_", "-") for r in routers] if routers else None,
        "autoscale": autoscale,
        "autoscale_target": autoscale_target,
        "prices": prices,
        "max_replicas": max_replicas,
        "screen_requests": screen_requests,
        "precision": precision,
        "verify_per_gpu": verify_per_gpu,
        "seed": seed,
        "jobs": jobs,
        "deadline_h": deadline_h,
        "rows": rows,
        "objective": objective,
        "verify_rows": verify_rows,
        "out": out,
    }
    argv = _convert.flags(flag_values)
    text = None
    if isinstance(scenario, Mapping):
        text = (json.dumps(scenario), "scenario dict", _dir(base_dir))
    elif isinstance(scenario, str) and scenario.lstrip().startswith("{"):
        text = (scenario, "scenario JSON", _dir(base_dir))
    elif scenario is not None:
        argv += ["--", os.fspath(scenario)]
    report, markdown, winner, folder = _native.plan(argv, text, out is not None)
    return Plan(
        report=json.loads(report),
        markdown=markdown,
        winner=json.loads(winner) if winner is not None else None,
        out=Path(folder) if folder is not None else None,
    )


def models() -> List[Dict[str, Any]]:
    """The model catalog (`symbiote list models --json`), each entry with its sources."""
    result: List[Dict[str, Any]] = json.loads(_native.catalog("models"))
    return result


def gpus() -> List[Dict[str, Any]]:
    """The GPU catalog (`symbiote list gpus --json`): specs, prices and their sources."""
    result: List[Dict[str, Any]] = json.loads(_native.catalog("gpus"))
    return result


def validate(scenario: Scenario, *, base_dir: Union[None, str, "os.PathLike[str]"] = None) -> Dict[str, Any]:
    """Checks a scenario without running it (`symbiote validate`): its name and how many cases
    and seeds it runs, or `InputError` listing every problem."""
    if isinstance(scenario, Mapping):
        found = _native.validate(None, json.dumps(scenario), "scenario dict", _dir(base_dir))
    elif isinstance(scenario, str) and scenario.lstrip().startswith("{"):
        found = _native.validate(None, scenario, "scenario JSON", _dir(base_dir))
    else:
        found = _native.validate(os.fspath(scenario), None, "", _dir(base_dir))
    name, cases, seeds = found
    return {"name": name, "cases": cases, "seeds": seeds}


def check(
    scenario: Scenario,
    baseline: Union[str, "os.PathLike[str]"],
    *,
    tolerance: Union[str, float] = "5%",
    metrics: Optional[Sequence[str]] = None,
    update: bool = False,
    base_dir: Union[None, str, "os.PathLike[str]"] = None,
) -> Optional[Dict[str, Any]]:
    """Reruns a scenario and compares it with `baseline`, as `symbiote check --json` does.

    baseline: a symbiote report.json, or a `vllm bench serve --save-result` file (a scenario of
        one case is compared with it on its means, medians and percentiles).
    tolerance: the change allowed in the bad direction: "5%" or 0.05. metrics: report keys
        (default: p99 TTFT/TPOT/ITL/E2EL, mean TTFT, throughputs).
    Returns `{"scenario", "tolerance", "comparisons", "regressed_or_missing", "rows"}` (each row:
    case, metric, baseline, now, change, status), with `passed` added (nothing regressed or
    missing, the CLI's exit 0); None when `update=True` rewrote the baseline instead.
    """
    metric_list = ",".join(metrics) if metrics is not None else None
    path, text, label = _scenario_source(scenario)
    found = _native.check(path, text, label, _dir(base_dir), os.fspath(baseline), str(tolerance), metric_list, update)
    if found is None:
        return None
    result: Dict[str, Any] = json.loads(found)
    result["passed"] = result["regressed_or_missing"] == 0
    return result


def fidelity(
    measurements: Union[str, "os.PathLike[str]"],
    *,
    cross_validate: bool = False,
    max_evaluations: int = 800,
    multi_turn: bool = False,
    step_model: str = "auto",
) -> Dict[str, Any]:
    """Simulates every measured vLLM run of a file (the sim2real format, a bench-runs collection
    or one `vllm bench serve --save-result` file) and reports the errors, as `symbiote fidelity`
    does, without writing files. Returns fidelity/<stem>.json as a dict (`rows` with measured,
    simulated and absolute percentage error per metric, the median errors) with `markdown`, the
    report's text, added. Warnings on what the runs could not model are issued as Python warnings.
    """
    markdown, found, messages = _native.fidelity(
        os.fspath(measurements), cross_validate, max_evaluations, multi_turn, step_model
    )
    for message in messages:
        warnings.warn(message, stacklevel=2)
    result: Dict[str, Any] = json.loads(found)
    result["markdown"] = markdown
    return result


def trace_stats(trace: Union[str, "os.PathLike[str]"], *, format: Optional[str] = None) -> Dict[str, Any]:
    """A trace read through, as `symbiote trace-stats --json`: rows, span_s, request_rate,
    token totals and means, and for Mooncake traces the prefix-cache hits an unlimited cache
    would see. `format`: azure, mooncake, burstgpt or generic (default: from the file name)."""
    result: Dict[str, Any] = json.loads(_native.trace_stats(os.fspath(trace), format))
    return result


def _scenario_source(scenario: Scenario) -> "tuple[Optional[str], Optional[str], str]":
    """(path, text, label) of a scenario given as a path, JSON text or a dict."""
    if isinstance(scenario, Mapping):
        return None, json.dumps(scenario), "scenario dict"
    if isinstance(scenario, str) and scenario.lstrip().startswith("{"):
        return None, scenario, "scenario JSON"
    return os.fspath(scenario), None, ""


def schema() -> Dict[str, Any]:
    """The JSON Schema of scenario files (`symbiote schema`)."""
    result: Dict[str, Any] = json.loads(_native.schema())
    return result


def _dir(base_dir: Union[None, str, "os.PathLike[str]"]) -> str:
    return os.fspath(base_dir) if base_dir is not None else os.getcwd()


def _options(
    seeds: Union[None, int, str, Sequence[int]],
    scale: Optional[float],
    percentiles: Union[None, str, Sequence[float]],
    prices: Union[None, str, "os.PathLike[str]"],
    jobs: Optional[int],
    timeline: bool,
    timeline_interval_ms: int,
    requests: bool,
    out: Union[None, str, "os.PathLike[str]"],
    vllm_bench_json: Union[None, str, "os.PathLike[str]"],
) -> Dict[str, Any]:
    """The run options as the extension module takes them (every key present)."""
    return {
        "seeds": _convert.seeds(seeds),
        "scale": scale,
        "percentiles": _convert.percentiles(percentiles),
        "prices": os.fspath(prices) if prices is not None else None,
        "jobs": jobs,
        "timeline_interval_ms": timeline_interval_ms if timeline else None,
        "requests": requests,
        "out": os.fspath(out) if out is not None else None,
        "vllm_bench_json": os.fspath(vllm_bench_json) if vllm_bench_json is not None else None,
    }


def _result(raw: Any, tables: Tables) -> Result:
    report, summary, runs, folder, messages = raw
    for message in messages:
        warnings.warn(message, stacklevel=3)
    return Result(
        report=json.loads(report),
        summary=_convert.table(summary, tables),
        requests=_convert.runs_table([(case, seed, requests) for case, seed, _, requests in runs], tables),
        timeline=_convert.runs_table([(case, seed, timeline) for case, seed, timeline, _ in runs], tables),
        out=Path(folder) if folder is not None else None,
    )
