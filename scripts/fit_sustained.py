#!/usr/bin/env python3
"""Fit each GPU's sustained compute fraction on saturated vLLM runs (issue 12, the knee).

`step_time.sustained_matmul_fraction` in models/gpu/<gpu>.json caps the FLOP rate of a step's
linear layers (engine/src/hardware/sustained.rs says why). This script fits it, per GPU, on
GPUStack's runs at request rate inf (scenarios/validation/gpustack_perf_lab.json) that are
bound by prefill compute and have exact lengths: the random dataset in 16-bit weights with
prompts of at least 1,024 tokens. The ShareGPT runs are left out because their per-request
lengths are not published (the simulation gives every request the mean, which shortens a
rate-inf run), the 128/4 runs because 1,000 tiny requests measure the API server's per-request
cost, which the fraction is not about (README, Fidelity).

The objective is the median absolute error of the simulated benchmark duration (the capacity
at rate inf) over the GPU's selected runs; the fraction is searched on a 0.05 grid from 0.20 to
1.00 and then on a 0.01 grid around the best. The GPU keeps the step-time model scenarios give
it by default (the H100 its calibrated roofline, the A100 its kernel tables).

It then checks the board-power transfer rule of sustained.rs by leaving one GPU out: the other
GPU's sustained TFLOPS per watt of TDP, times this GPU's TDP, gives a predicted fraction, and its
duration error is reported beside the fit's.

    python3 scripts/fit_sustained.py --out DIR [--bin target/release/symbiote]

Everything it writes (the selected runs, trial catalogs, fidelity reports, fit.json) goes under
DIR. About 2 minutes on two cores.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPUSTACK = os.path.join(ROOT, "scenarios/validation/gpustack_perf_lab.json")
GPUS = ["a100-80gb", "h100-80gb"]


def selected(run):
    """A prefill-bound run at rate inf with exact lengths, in 16-bit weights."""
    ds = run["dataset"]
    prompt = run["result"]["total_input_tokens"] / ds["num_prompts"]
    return (
        run["request_rate"] == "inf"
        and run.get("max_concurrency") is None
        and run["quantization"] in ("bf16", "fp16")
        and ds["name"] == "random"
        and prompt >= 1024
    )


def gpu_file(name):
    with open(os.path.join(ROOT, "models/gpu", f"{name}.json")) as f:
        return json.load(f)


def peak_tflops(spec):
    return spec["tflops"]["fp16_bf16"]


class Evaluator:
    def __init__(self, binary, out, gpu, runs_file):
        self.binary, self.out, self.gpu, self.runs_file = binary, out, gpu, runs_file
        self.cache = {}

    def errors(self, fraction):
        """Per run (key, simulated / measured duration) at this fraction (None: no cap)."""
        key = "none" if fraction is None else f"{fraction:.4f}"
        if key in self.cache:
            return self.cache[key]
        catalog = os.path.join(self.out, self.gpu, f"catalog-{key}")
        os.makedirs(os.path.join(catalog, "gpu"), exist_ok=True)
        spec = gpu_file(self.gpu)
        # No cap is a fraction of 1, not an absent one: a GPU without its own fraction would
        # borrow the built-in fit of its sibling (itself).
        spec["step_time"]["sustained_matmul_fraction"] = 1.0 if fraction is None else fraction
        with open(os.path.join(catalog, "gpu", f"{self.gpu}.json"), "w") as f:
            json.dump(spec, f, indent=2)
        report = os.path.join(self.out, self.gpu, f"fidelity-{key}")
        done = subprocess.run(
            [self.binary, "fidelity", self.runs_file, "--catalog", catalog, "--out", report, "-q"],
            capture_output=True,
            text=True,
        )
        if done.returncode not in (0, 1):
            sys.exit(f"symbiote fidelity failed ({done.returncode}):\n{done.stderr}")
        with open(os.path.join(report, "fidelity", os.path.basename(self.runs_file))) as f:
            rows = json.load(f)["rows"]
        ratios = [
            (r["key"], r["simulated"]["duration"] / r["measured"]["duration"])
            for r in rows
            if r["startup_error"] is None
        ]
        self.cache[key] = ratios
        return ratios

    def objective(self, fraction):
        return statistics.median(abs(ratio - 1.0) for _, ratio in self.errors(fraction))


def fit(ev):
    coarse = [round(0.20 + 0.05 * i, 2) for i in range(17)]
    best = min(coarse, key=ev.objective)
    fine = [round(best + 0.01 * i, 2) for i in range(-4, 5) if 0.05 <= best + 0.01 * i <= 1.0]
    return min(fine, key=lambda f: (ev.objective(f), f))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for every file this script writes")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/symbiote"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(GPUSTACK) as f:
        data = json.load(f)

    evaluators, fits = {}, {}
    for gpu in GPUS:
        runs = [r for r in data["runs"] if r["gpu"] == gpu and selected(r)]
        os.makedirs(os.path.join(args.out, gpu), exist_ok=True)
        runs_file = os.path.join(args.out, gpu, "gpustack_saturated.json")
        with open(runs_file, "w") as f:
            json.dump(dict(data, runs=runs), f, indent=1)
        ev = Evaluator(args.bin, args.out, gpu, runs_file)
        evaluators[gpu] = ev
        fits[gpu] = fit(ev)

    per_watt = {}
    for gpu in GPUS:
        spec = gpu_file(gpu)
        per_watt[gpu] = fits[gpu] * peak_tflops(spec) / spec["tdp_watts"]

    result = {"selection": "random dataset, rate inf, 16-bit weights, prompts >= 1024 tokens", "gpus": {}}
    print("| GPU | runs | fitted fraction | sustained TFLOPS | TFLOPS per W | median duration error: no cap | fitted | "
          "left out (fraction from the other GPU's TFLOPS per W) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for gpu in GPUS:
        spec = gpu_file(gpu)
        ev = evaluators[gpu]
        other = [g for g in GPUS if g != gpu][0]
        predicted = round(per_watt[other] * spec["tdp_watts"] / peak_tflops(spec), 4)
        row = {
            "runs": len(ev.errors(fits[gpu])),
            "fraction": fits[gpu],
            "sustained_tflops": fits[gpu] * peak_tflops(spec),
            "tflops_per_watt": per_watt[gpu],
            "median_duration_error_no_cap": ev.objective(None),
            "median_duration_error_fitted": ev.objective(fits[gpu]),
            "left_out_fraction": predicted,
            "median_duration_error_left_out": ev.objective(predicted),
            "duration_ratios_fitted": dict(ev.errors(fits[gpu])),
        }
        result["gpus"][gpu] = row
        print(
            f"| {gpu} | {row['runs']} | {fits[gpu]:.2f} | {row['sustained_tflops']:.0f} | {per_watt[gpu]:.3f} | "
            f"{100 * row['median_duration_error_no_cap']:.1f}% | {100 * row['median_duration_error_fitted']:.1f}% | "
            f"{predicted:.3f}: {100 * row['median_duration_error_left_out']:.1f}% |"
        )
    with open(os.path.join(args.out, "fit.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {os.path.join(args.out, 'fit.json')}")


if __name__ == "__main__":
    main()
