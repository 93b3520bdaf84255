"""`replay`, `memory`, `plan` and the catalog: the CLI's commands, the CLI's flags and defaults."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

import symbiote
from symbiote import _native
from conftest import REPO, cli_binary

TRACE = REPO / "scenarios" / "traces" / "AzureLLMInferenceTrace_code.csv"


def test_replay_takes_the_cli_flags(tmp_path):
    result = symbiote.replay(
        TRACE, model="llama-3.1-8b", gpu="h100", quant="fp8", replicas=2, router="least_outstanding", limit=300
    )
    (case,) = result.report["cases"]
    assert result.report["scenario"] == "replay_AzureLLMInferenceTrace_code"
    config = case["config"]
    assert (config["quant"], config["replicas"], config["router"], config["gpu"]) == ("fp8", 2, "least_outstanding", "h100-80gb")
    metrics = result.metrics()
    assert metrics["completed"] == 300 == len(result.requests)
    assert set(result.requests.replica) == {0, 1}
    binary = cli_binary()
    if binary is None:
        pytest.skip("no symbiote binary to compare with: cargo build --release, or set SYMBIOTE_BIN")
    symbiote.replay(TRACE, model="llama-3.1-8b", gpu="h100", quant="fp8", replicas=2, router="least_outstanding",
                    limit=300, out=tmp_path / "py")
    subprocess.run([binary, "replay", str(TRACE), "--model", "llama-3.1-8b", "--gpu", "h100", "--quant", "fp8",
                    "--replicas", "2", "--router", "least-outstanding", "--limit", "300", "--out", str(tmp_path / "cli"),
                    "--quiet"], check=True)
    name = "replay_AzureLLMInferenceTrace_code/report.json"
    assert (tmp_path / "cli" / name).read_text() == (tmp_path / "py" / name).read_text()


def test_memory_is_the_cli_json():
    fit = symbiote.memory("llama-3.1-8b", "h100", quant="fp8", prompt_len=512, output_len=128)
    assert fit["fits"] is True and fit["startup_error"] is None
    assert fit["quant"] == "fp8" and fit["tp"] == 1 and fit["gpu_memory_utilization"] == 0.9
    assert fit["largest_batch"]["vllm_sequences"] > fit["largest_batch"]["static_rows"] > 0
    too_big = symbiote.memory("llama-3.1-70b", "l4")
    assert too_big["fits"] is False and too_big["startup_error"]
    binary = cli_binary()
    if binary is None:
        pytest.skip("no symbiote binary to compare with: cargo build --release, or set SYMBIOTE_BIN")
    cli = subprocess.run([binary, "memory", "--model", "llama-3.1-8b", "--gpu", "h100", "--quant", "fp8",
                          "--prompt-len", "512", "--output-len", "128", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(cli.stdout) == fit


def test_plan_sizes_a_batch_job_against_a_deadline(tmp_path):
    job = {
        "name": "py_plan_job",
        "base": {
            "model": "llama-3.1-8b",
            "workload": {"prompt": {"dist": "fixed", "value": 400}, "output": {"dist": "fixed", "value": 100}},
            "batch": {"rows": 200_000, "batch_size": 64, "max_concurrent_batches": 4, "startup_s": 60, "load_gbps": 2},
        },
    }
    planned = symbiote.plan(job, deadline_h=1, gpus=["h100-80gb", "l40s"], quants=["fp8"], tp=[1], verify_rows=20_000,
                            out=tmp_path)
    winner = planned.report["winner"]
    assert winner is not None and planned.winner is not None
    assert planned.winner["base"]["gpu"] in ("h100-80gb", "l40s")
    assert (planned.out / "report.json").is_file() and (planned.out / "winner.json").is_file()
    assert json.loads((planned.out / "report.json").read_text()) == planned.report
    assert "Winner" in planned.markdown or "winner" in planned.markdown
    with pytest.raises(symbiote.InputError, match="deadline"):
        symbiote.plan(job, slo={"p99_ttft_ms": 2000})


def test_plan_tries_autoscaled_fleets_beside_fixed_ones():
    surge = REPO / "scenarios" / "plan" / "autoscale_surge.json"
    planned = symbiote.plan(surge, slo={"p99_ttft_ms": 2000, "p99_itl_ms": 100}, gpus=["h100-80gb"], quants=["fp16"],
                            tp=[1], autoscale=["off", "1-4"], autoscale_target=[32])
    winner = planned.report["winner"]
    assert winner["fleet"] == "autoscaled" and winner["min_replicas"] == 1 and winner["max_replicas"] == 4
    assert winner["cost_usd_per_hour"] < winner["fixed_cost_usd_per_hour"]
    assert planned.winner["base"]["fleet"]["autoscaling_config"]["target_ongoing_requests"] == 32
    with pytest.raises(symbiote.InputError, match="scale-to-zero"):
        symbiote.plan(surge, slo={"p99_ttft_ms": 2000}, gpus=["h100-80gb"], tp=[1], autoscale=["0-4"])


def test_the_catalog_and_the_schema():
    assert "llama-3.1-8b" in [m["name"] for m in symbiote.models()]
    h100 = next(g for g in symbiote.gpus() if g["name"] == "h100-80gb")
    assert h100["memory_gib"] == 80
    assert "properties" in symbiote.schema()


def test_the_type_stubs_cover_the_extension_module():
    stub = Path(symbiote.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    public = {name for name in dir(_native) if not name.startswith("_")}
    assert stubbed == public
    assert Path(symbiote.__file__).with_name("py.typed").is_file()
