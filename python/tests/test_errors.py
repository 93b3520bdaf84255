"""Bad input raises `symbiote.InputError` with the message the CLI prints: file, field, fix."""

from __future__ import annotations

import json
import subprocess

import pytest

import symbiote
from conftest import cli_binary


def test_an_unknown_field_names_the_place_and_the_known_fields(small):
    small["base"]["max_num_seq"] = 3
    with pytest.raises(symbiote.InputError) as error:
        symbiote.run(small)
    text = str(error.value)
    assert text.startswith("scenario dict: at base: unknown field `max_num_seq`")
    assert "known fields:" in text and "engine" in text
    # It is also a ValueError, for callers that catch those.
    assert isinstance(error.value, ValueError)


def test_every_problem_of_a_file_is_listed_as_the_cli_lists_them(small, tmp_path):
    del small["cases"]
    small["base"]["gpu"] = "h1000"
    small["base"]["workload"]["arrival"]["rate"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(small))
    with pytest.raises(symbiote.InputError) as error:
        symbiote.run(path)
    lines = str(error.value).splitlines()
    assert len(lines) == 2, lines
    assert "unknown gpu `h1000`; known: " in lines[0] and "rate must be a positive number" in lines[1]
    assert all(line.startswith(f"{path}: at ") for line in lines), lines
    binary = cli_binary()
    if binary is None:
        pytest.skip("no symbiote binary to compare with: cargo build --release, or set SYMBIOTE_BIN")
    cli = subprocess.run([binary, "run", str(path), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert cli.returncode == 2
    assert cli.stderr.splitlines() == [f"error: {line}" for line in lines]


def test_a_missing_file_and_bad_flags_say_what_to_do(small, tmp_path):
    with pytest.raises(symbiote.InputError, match="cannot read the file"):
        symbiote.run(tmp_path / "nope.json")
    with pytest.raises(symbiote.InputError, match="--seeds takes a range like 1..32"):
        symbiote.run(small, seeds="3..1")
    with pytest.raises(symbiote.InputError, match="--scale must be a factor"):
        symbiote.run(small, scale=1e9)
    with pytest.raises(symbiote.InputError, match="unknown model"):
        symbiote.memory("llama-9", "h100")
    with pytest.raises(symbiote.InputError, match="invalid value 'fp9' for '--quant"):
        symbiote.memory("llama-3.1-8b", "h100", quant="fp9")


def test_validate_counts_cases_and_seeds_or_lists_problems(small):
    assert symbiote.validate(small) == {"name": "py_small", "cases": 2, "seeds": 2}
    small["cases"][0]["workload.arrival.rte"] = 3
    with pytest.raises(symbiote.InputError, match="rte"):
        symbiote.validate(small)
