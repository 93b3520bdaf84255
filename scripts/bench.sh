#!/usr/bin/env bash
# The benchmark suite (issue 15): runs each benchmark with the release binary under GNU time and
# prints, per benchmark, the median CPU seconds (user + sys), simulated requests per CPU-second
# and the median peak resident memory. Timings on a shared machine vary; compare ratios within
# one run of this script.
#
# The Mooncake-format traces (100,000 and 10,000,000 rows) are generated on the fly into a
# temporary folder by `gen_trace` below (deterministic: awk with a fixed seed), never committed.
#
#   bash scripts/bench.sh                 # all benchmarks
#   REPEAT=5 bash scripts/bench.sh        # more repeats of the quick ones
#   BIG_REPEAT=3 bash scripts/bench.sh    # repeats of the 10M replay and the planner (default 1)
#   ONLY=10M bash scripts/bench.sh        # only benchmarks whose name contains this text
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${REPEAT:-3}
big_repeat=${BIG_REPEAT:-1}
only=${ONLY:-}
for tool in /usr/bin/time bc awk; do
  command -v "$tool" >/dev/null || { echo "needs $tool (Debian packages time, bc and gawk or mawk)" >&2; exit 2; }
done
cargo build --release --locked -q
bin=target/release/symbiote
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# gen_trace ROWS RATE FILE: a Mooncake JSONL trace of ROWS Poisson arrivals at RATE per second
# (integer ms timestamps), prompts of 256..1023 tokens whose first 512-token block is one of 16
# shared system prompts (popularity skewed towards the first) and the rest unique, outputs of
# 64..191 tokens.
gen_trace() {
  awk -v rows="$1" -v rate="$2" 'BEGIN {
    srand(15); t = 0; next_id = 16;
    for (i = 0; i < rows; i++) {
      # rand() in mawk can return 0 or 1: draw again rather than take log(0).
      u = rand(); while (u <= 0 || u >= 1) u = rand();
      t += -log(u) / rate * 1000;
      prompt = 256 + int(rand() * 768); output = 64 + int(rand() * 128);
      ids = int(rand() * rand() * 16);
      if (prompt > 512) { ids = ids ", " next_id; next_id++ }
      printf "{\"timestamp\": %.0f, \"input_length\": %d, \"output_length\": %d, \"hash_ids\": [%s]}\n", t, prompt, output, ids
    }
  }' >"$3"
}

needs_trace() { case "$1" in *mooncake_100k*) echo 100k ;; *mooncake_10m*) echo 10M ;; esac; }

# name | requests simulated per run (0: not reported) | repeats | arguments
model="--model llama-2-7b --gpu a100-80gb"
benches=(
  "100k, 1 replica|100000|$repeat|run scenarios/bench/llama2_7b_a100_100k.json"
  "1M, 1 replica|1000000|$repeat|run scenarios/bench/llama2_7b_a100_1m.json"
  "200k, fleet of 1|200000|$repeat|run scenarios/bench/fleet_1x_llama2_7b_a100_200k.json"
  "200k, fleet of 8|200000|$repeat|run scenarios/bench/fleet_8x_llama2_7b_a100_200k.json"
  "200k, fleet of 64|200000|$repeat|run scenarios/bench/fleet_64x_llama2_7b_a100_200k.json"
  "Mooncake 100k, 1 replica|100000|$repeat|replay \$out/mooncake_100k.jsonl $model --replicas 1"
  "Mooncake 100k, 8 replicas (8x speed-up)|100000|$repeat|replay \$out/mooncake_100k.jsonl $model --replicas 8 --router least-outstanding --speedup 8"
  "10M trace-stats|10000000|$big_repeat|trace-stats \$out/mooncake_10m.jsonl"
  "10M replay, 64 replicas|10000000|$big_repeat|replay \$out/mooncake_10m.jsonl $model --replicas 64 --router least-outstanding"
  "six phases|0|$repeat|run scenarios/"
  "plan: 1,152 configurations, 100k requests|0|$big_repeat|plan scenarios/bench/plan_llama31_8b_100k.json --gpus a100-80gb,h100-80gb,l40s,h200,a10g,l4 --quants fp16,fp8 --tp 1,2,4,8 --max-num-seqs 64,128,256,512 --max-num-batched-tokens 2048,4096,8192 --routers least_outstanding,round_robin --slo p99_ttft_ms=2000,p99_itl_ms=100"
)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '| benchmark | runs | CPU s (median) | requests per CPU-second | peak memory MiB |\n'
printf '|---|---:|---:|---:|---:|\n'
for bench in "${benches[@]}"; do
  IFS='|' read -r name requests runs args <<<"$bench"
  if [ -n "$only" ] && [[ "$name" != *"$only"* ]]; then
    continue
  fi
  case "$(needs_trace "$args")" in
    100k) [ -f "$out/mooncake_100k.jsonl" ] || gen_trace 100000 10 "$out/mooncake_100k.jsonl" ;;
    # 64 replicas at 10 requests/s each.
    10M) [ -f "$out/mooncake_10m.jsonl" ] || gen_trace 10000000 640 "$out/mooncake_10m.jsonl" ;;
  esac
  args=${args//\$out/$out}
  cpu=() mem=() failed=""
  for _ in $(seq "$runs"); do
    rm -rf "$out/reports"
    write_args=(--out "$out/reports" --quiet)
    [[ "$args" == trace-stats* ]] && write_args=()
    # shellcheck disable=SC2086
    /usr/bin/time -f '%U %S %M' -o "$out/time" "$bin" $args "${write_args[@]}" >"$out/log" 2>&1 || failed=" (FAILED: $(tail -1 "$out/log"))"
    read -r user sys rss <"$out/time"
    cpu+=("$(echo "$user + $sys" | bc)")
    mem+=("$rss")
  done
  cpu_median=$(printf '%s\n' "${cpu[@]}" | median)
  mem_median=$(printf '%s\n' "${mem[@]}" | median)
  rate="-"
  if [ "$requests" -gt 0 ]; then
    rate=$(echo "$requests / $cpu_median" | bc)
  fi
  printf '| %s%s | %s | %.2f | %s | %.0f |\n' "$name" "$failed" "$runs" "$cpu_median" "$rate" "$(echo "$mem_median / 1024" | bc -l)"
done
