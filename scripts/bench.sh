#!/usr/bin/env bash
# The benchmark suite (issue 15): runs each benchmark scenario REPEAT times (default 3) with the
# release binary under GNU time and prints, per benchmark, the median CPU seconds (user + sys),
# simulated requests per CPU-second and the median peak resident memory. Timings on a shared
# machine vary; compare ratios within one run of this script.
#
#   bash scripts/bench.sh            # all benchmarks
#   REPEAT=5 bash scripts/bench.sh   # more repeats
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${REPEAT:-3}
for tool in /usr/bin/time bc; do
  command -v "$tool" >/dev/null || { echo "needs $tool (Debian packages time and bc)" >&2; exit 2; }
done
cargo build --release --locked -q
bin=target/release/symbiote
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# name | requests simulated per run (0: not reported) | arguments
benches=(
  "100k, 1 replica|100000|run scenarios/bench/llama2_7b_a100_100k.json"
  "1M, 1 replica|1000000|run scenarios/bench/llama2_7b_a100_1m.json"
  "200k, fleet of 1|200000|run scenarios/bench/fleet_1x_llama2_7b_a100_200k.json"
  "200k, fleet of 8|200000|run scenarios/bench/fleet_8x_llama2_7b_a100_200k.json"
  "200k, fleet of 64|200000|run scenarios/bench/fleet_64x_llama2_7b_a100_200k.json"
  "six phases|0|run scenarios/"
  "plan: 1,152 configurations, 100k requests|0|plan scenarios/bench/plan_llama31_8b_100k.json --gpus a100-80gb,h100-80gb,l40s,h200,a10g,l4 --quants fp16,fp8 --tp 1,2,4,8 --max-num-seqs 64,128,256,512 --max-num-batched-tokens 2048,4096,8192 --routers least_outstanding,round_robin --slo p99_ttft_ms=2000,p99_itl_ms=100"
)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '| benchmark | CPU s (median of %s) | requests per CPU-second | peak memory MiB |\n' "$repeat"
printf '|---|---:|---:|---:|\n'
for bench in "${benches[@]}"; do
  IFS='|' read -r name requests args <<<"$bench"
  cpu=() mem=()
  for _ in $(seq "$repeat"); do
    # shellcheck disable=SC2086
    /usr/bin/time -f '%U %S %M' -o "$out/time" "$bin" $args --out "$out/reports" --quiet >/dev/null 2>&1 || true
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
  printf '| %s | %.2f | %s | %.0f |\n' "$name" "$cpu_median" "$rate" "$(echo "$mem_median / 1024" | bc -l)"
done
