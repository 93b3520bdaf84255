#!/usr/bin/env python3
"""Leave-one-model-out cross-validation of an H100 calibration across load (issue 12).

A fit across load is what

    symbiote calibrate scenarios/validation/sim2real_trainval.json \
        scenarios/validation/gpustack_perf_lab.json --gpu h100-80gb --write DIR

makes (light-load sim2real runs and GPUStack's saturated runs, in stages: see
`report::bench_fidelity::calibrate_across_load`); the shipped H100 keeps its light-load fit
(README, Fidelity, says why). `symbiote fidelity sim2real_trainval.json --cross-validate` holds
each model out of a fit to the sim2real file alone; this script holds each sim2real model out of
the fit across load instead: per model, the calibration runs on the other models' sim2real runs
plus every GPUStack run, and the held-out model's runs are simulated with the result. It also
holds each Qwen3 model's GPUStack runs out, to see whether the saturated stage depends on the
model it saw.

    python3 scripts/cv_across_load.py --out DIR [--bin target/release/symbiote]

Everything it writes (split measurement files, fitted catalogs, fidelity reports) goes under
DIR. About 10 minutes on two cores (one calibration of about 100 s per fold).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM2REAL = os.path.join(ROOT, "scenarios/validation/sim2real_trainval.json")
GPUSTACK = os.path.join(ROOT, "scenarios/validation/gpustack_perf_lab.json")
GPU_FILE = os.path.join(ROOT, "models/gpu/h100-80gb.json")


def model_of(experiment):
    return experiment["model"].get("hf_id") or json.dumps(experiment["model"], sort_keys=True)


def run(*args):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr}")
    return done.stdout


def calibrate(binary, fold_dir, files):
    catalog = os.path.join(fold_dir, "catalog")
    os.makedirs(os.path.join(catalog, "gpu"), exist_ok=True)
    shutil.copy(GPU_FILE, os.path.join(catalog, "gpu"))
    run(binary, "calibrate", *files, "--gpu", "h100-80gb", "--write", catalog, "-q")
    return catalog


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for every file this script writes")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/release/symbiote"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    sim2real = json.load(open(SIM2REAL))
    held_out = []
    print("sim2real model held out: fitted matmul, step overhead, front end; held-out |error| of mean E2E per run")
    for i, model in enumerate(sorted({model_of(e) for e in sim2real["experiments"]})):
        fold = os.path.join(args.out, f"sim2real_fold{i}")
        os.makedirs(fold, exist_ok=True)
        train, test = dict(sim2real), dict(sim2real)
        train["experiments"] = [e for e in sim2real["experiments"] if model_of(e) != model]
        test["experiments"] = [e for e in sim2real["experiments"] if model_of(e) == model]
        train_file, test_file = os.path.join(fold, "train.json"), os.path.join(fold, "test.json")
        json.dump(train, open(train_file, "w"))
        json.dump(test, open(test_file, "w"))
        catalog = calibrate(args.bin, fold, [train_file, GPUSTACK])
        run(args.bin, "--catalog", catalog, "fidelity", test_file, "--out", fold, "-q")
        rows = json.load(open(os.path.join(fold, "fidelity", "test.json")))["rows"]
        p = json.load(open(os.path.join(catalog, "gpu", "h100-80gb.json")))["step_time"]
        errors = ", ".join("{:.1%}".format(r["ape"][0]) for r in rows)
        print(f"  {model}: matmul {p['matmul_efficiency']}, step {p['step_overhead_us']} us, front end "
              f"{p['frontend_overhead_us']} us; {errors}")
        held_out += rows
    e2e, ttft, itl = (statistics.median(r["ape"][k] for r in held_out) for k in (0, 3, 6))
    print(f"held-out medians over {len(held_out)} runs: mean E2E {e2e:.1%}, mean TTFT {ttft:.1%}, ITL {itl:.1%}")

    gpustack = json.load(open(GPUSTACK))
    print("GPUStack model held out (its H100 runs predicted): fitted matmul; median |error| of duration")
    for model in sorted({r["model"] for r in gpustack["runs"] if r["gpu"] == "h100-80gb"}):
        fold = os.path.join(args.out, f"gpustack_without_{model}")
        os.makedirs(fold, exist_ok=True)
        train, test = dict(gpustack), dict(gpustack)
        train["runs"] = [r for r in gpustack["runs"] if r["model"] != model]
        test["runs"] = [r for r in gpustack["runs"] if r["model"] == model and r["gpu"] == "h100-80gb"]
        train_file, test_file = os.path.join(fold, "train.json"), os.path.join(fold, "test.json")
        json.dump(train, open(train_file, "w"))
        json.dump(test, open(test_file, "w"))
        catalog = calibrate(args.bin, fold, [SIM2REAL, train_file])
        run(args.bin, "--catalog", catalog, "fidelity", test_file, "--out", fold, "-q")
        rows = [r for r in json.load(open(os.path.join(fold, "fidelity", "test.json")))["rows"] if r["simulated"]]
        p = json.load(open(os.path.join(catalog, "gpu", "h100-80gb.json")))["step_time"]
        duration = statistics.median(r["ape"]["duration"] for r in rows)
        print(f"  {model}: matmul {p['matmul_efficiency']}; {len(rows)} runs, duration {duration:.1%}")


if __name__ == "__main__":
    main()
