"""`symbiote.run`: scenarios in three forms, the report as a dict, runs as tables; the same
numbers as the CLI, at any thread count, with the GIL released."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import symbiote
from conftest import cli_binary


def test_a_dict_gives_the_report_and_per_run_tables(small):
    result = symbiote.run(small)
    cases = result.report["cases"]
    assert [c["name"] for c in cases] == ["rate=8", "rate=40"]
    assert result.report["seeds"] == [1, 2]
    # summary.csv: one row per (case, seed) with the report's metrics.
    assert list(result.summary[["case", "seed"]].itertuples(index=False, name=None)) == [
        ("rate=8", 1), ("rate=8", 2), ("rate=40", 1), ("rate=40", 2)
    ]
    for case in cases:
        for run in case["runs"]:
            row = result.summary[(result.summary.case == case["name"]) & (result.summary.seed == run["seed"])]
            assert row["p99_ttft_ms"].item() == pytest.approx(run["metrics"]["p99_ttft_ms"])
            # One request row per completed request of that run.
            mine = result.requests[(result.requests.case == case["name"]) & (result.requests.seed == run["seed"])]
            assert len(mine) == run["metrics"]["completed"] == 200
            assert (mine.finish_s >= mine.first_token_s).all() and (mine.first_token_s >= mine.arrival_s).all()
            # The mean TTFT of the rows is the report's mean TTFT (to the CSV's microseconds).
            ttft_ms = (mine.first_token_s - mine.arrival_s).mean() * 1000
            assert ttft_ms == pytest.approx(run["metrics"]["mean_ttft_ms"], abs=0.01)
    assert list(result.requests.columns[:4]) == ["case", "seed", "id", "arrival_s"]
    assert list(result.timeline.columns[:3]) == ["case", "seed", "time_s"]
    assert set(result.timeline.case) == {"rate=8", "rate=40"}
    # Five times the rate keeps more sequences running at once.
    busy = result.timeline[result.timeline.case == "rate=40"].running.mean()
    quiet = result.timeline[result.timeline.case == "rate=8"].running.mean()
    assert busy > 2 * quiet
    assert result.out is None
    assert result.metrics("rate=40", 2) == cases[1]["runs"][1]["metrics"]


def test_a_path_json_text_and_a_dict_give_the_same_report(small, tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps(small))
    by_path = symbiote.run(path, requests=False, timeline=False)
    by_text = symbiote.run(json.dumps(small), requests=False, timeline=False)
    by_dict = symbiote.run(small, requests=False, timeline=False)
    assert by_path.report == by_text.report == by_dict.report
    assert by_path.requests.empty and by_path.timeline.empty


def test_out_writes_the_cli_report_folder_and_the_cli_agrees(small, tmp_path):
    path = tmp_path / "small.json"
    path.write_text(json.dumps(small))
    result = symbiote.run(path, out=tmp_path / "py", seeds="3..4", percentiles=[50, 95])
    folder = tmp_path / "py" / "py_small"
    assert result.out == folder
    written = (folder / "report.json").read_text()
    assert json.loads(written) == result.report
    assert "p95_ttft_ms" in result.metrics()
    assert result.report["seeds"] == [3, 4]
    assert (folder / "report.html").is_file() and (folder / "summary.csv").is_file()
    frame = pd.read_csv(folder / "requests" / "rate=40__seed4.csv")
    mine = result.requests[(result.requests.case == "rate=40") & (result.requests.seed == 4)]
    assert mine.drop(columns=["case", "seed"]).reset_index(drop=True).equals(frame)
    binary = cli_binary()
    if binary is None:
        pytest.skip("no symbiote binary to compare with: cargo build --release, or set SYMBIOTE_BIN")
    subprocess.run(
        [binary, "run", str(path), "--out", str(tmp_path / "cli"), "--seeds", "3..4", "--percentiles", "50,95",
         "--requests", "--timeline", "--quiet"],
        check=True,
    )
    # Byte for byte what the command line writes, report and per-run files alike.
    cli_folder = tmp_path / "cli" / "py_small"
    assert (cli_folder / "report.json").read_text() == written
    assert (cli_folder / "timeline" / "rate=8__seed3.csv").read_text() == (folder / "timeline" / "rate=8__seed3.csv").read_text()


def test_the_numbers_do_not_depend_on_the_thread_count(small):
    one = symbiote.run(small, jobs=1)
    two = symbiote.run(small, jobs=2)
    assert one.report == two.report
    assert one.requests.equals(two.requests)
    assert one.timeline.equals(two.timeline)


def test_records_tables_need_no_pandas(small):
    frames = symbiote.run(small, seeds=[1])
    records = symbiote.run(small, seeds=[1], tables="records")
    assert isinstance(records.requests, list) and isinstance(records.summary, list)
    assert len(records.requests) == len(frames.requests) == 400
    first = records.requests[0]
    assert first["case"] == "rate=8" and first["seed"] == 1 and isinstance(first["prompt_tokens"], int)
    assert isinstance(first["arrival_s"], float)
    assert records.summary[1]["p99_ttft_ms"] == pytest.approx(frames.summary.p99_ttft_ms[1])
    assert len(records.timeline) == len(frames.timeline)
    with pytest.raises(ValueError, match="tables must be"):
        symbiote.run(small, tables="parquet")


def test_the_gil_is_released_while_simulating(small):
    # Long enough (100,000 requests, about a second) that the main thread has many chances to run.
    small["base"]["workload"]["num_requests"] = 100_000
    small["cases"] = [{"name": "rate=40", "workload.arrival.rate": 40}]
    small["seeds"] = [1]
    span = {}

    def simulate():
        span["start"] = time.perf_counter()
        symbiote.run(small, jobs=1, requests=False, timeline=False)
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=simulate)
    ticks = []
    worker.start()
    while worker.is_alive():
        time.sleep(0.001)
        ticks.append(time.perf_counter())
    worker.join()
    duration = span["end"] - span["start"]
    assert duration > 0.2, f"the run took {duration:.3f} s, too short to tell"
    # Holding the GIL would freeze this thread for the whole run: no tick inside it.
    inside = [t for t in ticks if span["start"] + 0.05 < t < span["end"] - 0.05]
    assert len(inside) > 20, f"{len(inside)} ticks of the main thread during a {duration:.2f} s run"


def test_vllm_bench_json_writes_one_vllm_result_per_run(small, tmp_path):
    result = symbiote.run(small, seeds=[1], vllm_bench_json=tmp_path / "bench.json", requests=False, timeline=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bench__rate=40__seed1.json", "bench__rate=8__seed1.json"]
    bench = json.loads((tmp_path / "bench__rate=40__seed1.json").read_text())
    metrics = result.metrics("rate=40")
    assert bench["completed"] == metrics["completed"]
    assert bench["p99_ttft_ms"] == pytest.approx(metrics["p99_ttft_ms"])
    assert len(bench["ttfts"]) == metrics["completed"]
