#!/usr/bin/env python3
"""Derives symbiote's kernel tables (models/kernels/<gpu>/) from the AIConfigurator tables in
../shared/reference/kernels/ (vLLM 0.14.0; Apache-2.0, see README.md and LICENSE here).

Usage, from the repository root:

    python3 models/kernels/derive.py ../shared/reference/kernels models/kernels

Standard library only. Rows are selected and laid out as grids, one line per curve; no value is
changed: every latency is the source CSV's text, byte for byte. Output is gzip level 9 with
mtime 0, so the bytes are the same on every run. See README.md for what is kept.
"""

import csv
import gzip
import io
import os
import sys

GPUS = ["a100_sxm", "h100_sxm", "h200_sxm", "l40s"]
# The GEMM m values every GPU was measured at (H200 has no 384 but more points, which are dropped),
# plus the H200's 16384 and 32768.
GEMM_M = [1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192,
          16384, 32768]
# n and k: the grid every GPU shares, less 32 and 64 (no per-rank layer of an LLM is that narrow;
# smaller shapes are priced at 128) and less the H200's extra 51200.
GEMM_NK = [128, 256, 512, 768, 1024, 1536, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240,
           12288, 16384, 65536]
GEMM_DTYPES = ["bfloat16", "fp8"]


def read(src, gpu, table):
    with gzip.open(f"{src}/{gpu}/vllm-0.14.0/{table}.csv.gz", "rt", newline="") as f:
        return list(csv.DictReader(f))


def write(path, text):
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as z:
            z.write(text.encode())


def grid(keys_header, axis_name, axis, cells):
    """cells: {(key tuple): {axis value: latency text}}; one line per key, empty where unmeasured."""
    out = io.StringIO()
    out.write(",".join(keys_header) + "," + ",".join(f"{axis_name}={a}" for a in axis) + "\n")
    for key in sorted(cells):
        row = cells[key]
        out.write(",".join(str(k) for k in key) + "," + ",".join(row.get(a, "") for a in axis) + "\n")
    return out.getvalue()


def first_wins(cells, key, x, value):
    """AIConfigurator keeps the first of duplicated rows; so do we."""
    cells.setdefault(key, {}).setdefault(x, value)


def derive(src, dst, gpu):
    os.makedirs(f"{dst}/{gpu}", exist_ok=True)
    kept = {}
    # GEMM: bfloat16 and fp8 (per-tensor) rows on the m, n, k grids above.
    cells = {}
    for r in read(src, gpu, "gemm_perf"):
        m, n, k = int(r["m"]), int(r["n"]), int(r["k"])
        if r["gemm_dtype"] in GEMM_DTYPES and m in GEMM_M and n in GEMM_NK and k in GEMM_NK:
            first_wins(cells, (GEMM_DTYPES.index(r["gemm_dtype"]), n, k), m, r["latency"])
    cells = {(GEMM_DTYPES[d], n, k): v for (d, n, k), v in cells.items()}
    ms = sorted({m for row in cells.values() for m in row})
    kept["gemm"] = sum(len(v) for v in cells.values())
    write(f"{dst}/{gpu}/gemm.csv.gz", grid(["gemm_dtype", "n", "k"], "m", ms, cells))
    # Attention: every row (head_dim is always 128), the first of each duplicated key.
    for table, axis_col, out_name in [
        ("context_attention_perf", "isl", "context_attention"),
        ("generation_attention_perf", "step", "generation_attention"),
    ]:
        cells = {}
        for r in read(src, gpu, table):
            assert r["head_dim"] == "128" and r["beam_width"] == "1"
            key = (r["kv_cache_dtype"], int(r["num_heads"]), int(r["num_key_value_heads"]), int(r["batch_size"]))
            first_wins(cells, key, int(r[axis_col]), r["latency"])
        axis = sorted({x for row in cells.values() for x in row})
        kept[out_name] = sum(len(v) for v in cells.values())
        header = ["kv_cache_dtype", "num_heads", "num_key_value_heads", "batch_size"]
        write(f"{dst}/{gpu}/{out_name}.csv.gz", grid(header, axis_col, axis, cells))
    # vLLM all-reduce: the CUDA-graph rows (AIConfigurator drops the eager ones).
    cells = {}
    for r in read(src, gpu, "custom_allreduce_perf"):
        if r["backend"] == "vllm_graph":
            first_wins(cells, (int(r["num_gpus"]),), int(r["message_size"]), r["latency"])
    axis = sorted({x for row in cells.values() for x in row})
    kept["custom_allreduce"] = sum(len(v) for v in cells.values())
    write(f"{dst}/{gpu}/custom_allreduce.csv.gz", grid(["num_gpus"], "message_size", axis, cells))
    return kept


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    for gpu in GPUS:
        print(gpu, derive(src, dst, gpu))
