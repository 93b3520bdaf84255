"""Shared fixtures: the repository root and a small scenario that runs in well under a second."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]

# Two cases x two seeds of Llama-3.1-8B on one H100 at moderate Poisson rates: 200 requests
# each, enough for queueing at the higher rate and a timeline of a few dozen samples.
SMALL: Dict[str, Any] = {
    "name": "py_small",
    "description": "A small scenario for the Python tests.",
    "seeds": [1, 2],
    "base": {
        "model": "llama-3.1-8b",
        "gpu": "h100-80gb",
        "workload": {
            "arrival": {"process": "poisson", "rate": 8},
            "num_requests": 200,
            "prompt": {"dist": "lognormal", "mean": 512, "cv": 0.5, "max": 4096},
            "output": {"dist": "fixed", "value": 64},
        },
    },
    "cases": [{"name": "rate=8"}, {"name": "rate=40", "workload.arrival.rate": 40}],
}


@pytest.fixture
def small() -> Dict[str, Any]:
    return copy.deepcopy(SMALL)


@pytest.fixture
def repo() -> Path:
    return REPO


def cli_binary() -> Optional[str]:
    """The `symbiote` binary to compare with: $SYMBIOTE_BIN (set by .ci/run), else the release
    build of this checkout, else one on PATH."""
    candidates = [os.environ.get("SYMBIOTE_BIN"), str(REPO / "target" / "release" / "symbiote"), shutil.which("symbiote")]
    return next((c for c in candidates if c and Path(c).is_file()), None)
