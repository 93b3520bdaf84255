//! What the numbers mean: metrics as `vllm bench serve` defines them, under its result keys,
//! plus the engine statistics a capacity planner needs.
//!
//! - TTFT, E2EL and queueing delay are per request; TPOT is per request with more than one
//!   output token, `(e2el - ttft) / (output_tokens - 1)`; their percentiles use numpy's default
//!   linear interpolation over the exact samples, and std is numpy's (ddof 0), up to the run's
//!   exact-sample limit; beyond it they come from a histogram (`report::samples`).
//! - ITL is every gap between consecutive tokens of a request, pooled over requests as vLLM
//!   pools them; its percentiles are numpy's over every gap, kept as (gap, count) pairs per
//!   step up to the same exact-sample limit (`report::token_gaps`).
//! - `--percentiles 50,95` adds `p50_<metric>_ms` and `p95_<metric>_ms` for TTFT, TPOT, ITL
//!   and E2EL, named as `vllm bench serve --metric-percentiles` names them.
//! - `request_goodput` is present only when the scenario's `slo` sets a per-request threshold
//!   (`vllm bench serve` writes it only with `--goodput`); `failed` is `rejected` under vLLM's
//!   name; `max_concurrent_requests` is the most requests in flight at once (arrival to last
//!   token, completed requests only), as vLLM's sweep over `[start, end)` counts it.
//! - Throughputs divide by `duration`, from the start of the run to the last completion.
//! - Every request is accounted for: `num_prompts` (arrivals) = `completed` + `rejected` (by
//!   reason in the run's `rejections`) + `unfinished` (queued, running or parked when the run
//!   ended). `length_capped` counts the completed requests vLLM stopped at `max_model_len`
//!   before their `max_tokens` (finish reason "length", offline entrypoint only).

use serde_json::{Map, Value};

use super::metrics::Metrics;
use super::samples::{Samples, SummaryMs};

/// numpy `percentile(samples, q)` with linear interpolation; `samples` must be sorted.
pub fn percentile_sorted(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let rank = q / 100.0 * (samples.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(samples[lo] + (samples[hi] - samples[lo]) * (rank - lo as f64))
}

/// Mean and population standard deviation (numpy's defaults).
pub fn mean_std(samples: &[f64]) -> Option<(f64, f64)> {
    if samples.is_empty() {
        return None;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

pub(crate) fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, number)
}

/// Adds `mean_`, `median_`, `std_`, `p90_` and `p99_` keys for one latency, in ms, from its
/// summary at the 50th, 90th and 99th percentiles.
fn latency_keys(out: &mut Map<String, Value>, name: &str, summary: Option<SummaryMs>) {
    let at = |i: usize| summary.as_ref().and_then(|s| s.percentiles[i]);
    out.insert(format!("mean_{name}_ms"), opt(summary.as_ref().map(|s| s.mean)));
    out.insert(format!("median_{name}_ms"), opt(at(0)));
    out.insert(format!("std_{name}_ms"), opt(summary.as_ref().map(|s| s.std)));
    out.insert(format!("p90_{name}_ms"), opt(at(1)));
    out.insert(format!("p99_{name}_ms"), opt(at(2)));
}

/// The metrics object of one run, keys in a fixed order. `gpus_per_replica` is the tensor
/// parallel size (for GPU-hours).
pub fn summarize(m: &Metrics, gpus_per_replica: u64) -> Map<String, Value> {
    let mut out = Map::new();
    let duration = m.last_finish.as_secs_f64();
    let per_s = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
    out.insert("duration".into(), number(duration));
    out.insert("completed".into(), m.completed.into());
    out.insert("rejected".into(), m.rejected.values().sum::<u64>().into());
    // vLLM's name for requests that did not succeed.
    out.insert("failed".into(), m.rejected.values().sum::<u64>().into());
    // The accounting: num_prompts == completed + rejected + unfinished, checked at the end of
    // every run (`sim::run`). length_capped counts completed requests cut at max_model_len.
    out.insert("num_prompts".into(), m.arrivals.into());
    out.insert("unfinished".into(), m.unfinished.into());
    out.insert("length_capped".into(), m.length_capped.into());
    out.insert("total_input_tokens".into(), m.total_input_tokens.into());
    out.insert("total_output_tokens".into(), m.total_output_tokens.into());
    out.insert("request_throughput".into(), number(per_s(m.completed as f64)));
    if m.goodput_slo().is_some() {
        out.insert("request_goodput".into(), number(per_s(m.good as f64)));
    }
    out.insert("input_throughput".into(), number(per_s(m.total_input_tokens as f64)));
    out.insert("output_throughput".into(), number(per_s(m.total_output_tokens as f64)));
    out.insert("total_token_throughput".into(), number(per_s((m.total_input_tokens + m.total_output_tokens) as f64)));
    const QS: [f64; 3] = [50.0, 90.0, 99.0];
    latency_keys(&mut out, "ttft", m.ttft_ns.summary_ms(&QS));
    latency_keys(&mut out, "tpot", m.tpot_ns.summary_ms(&QS));
    latency_keys(&mut out, "itl", m.itl.summary_ms(&QS));
    latency_keys(&mut out, "e2el", m.e2el_ns.summary_ms(&QS));
    latency_keys(&mut out, "queue", m.queue_ns.summary_ms(&QS));
    out.insert("preemptions".into(), m.preemptions.into());
    out.insert("requests_preempted".into(), m.requests_preempted.into());
    out.insert("recomputed_tokens".into(), m.recomputed_tokens.into());
    if m.trace_rows_skipped + m.trace_failed_skipped > 0 {
        out.insert("trace_rows_skipped".into(), m.trace_rows_skipped.into());
        out.insert("trace_failed_requests_skipped".into(), m.trace_failed_skipped.into());
    }
    // vLLM's definition: hit tokens over queried tokens, over every lookup (preempted
    // requests' lookups included), as `vllm:prefix_cache_hits / vllm:prefix_cache_queries`.
    let queries = m.prefix_queries as f64;
    out.insert(
        "prefix_cache_hit_rate".into(),
        number(if queries > 0.0 { m.prefix_hits as f64 / queries } else { 0.0 }),
    );
    out.insert("prefix_cache_queries".into(), m.prefix_queries.into());
    out.insert("prefix_cache_hits".into(), m.prefix_hits.into());
    out.insert("cached_prompt_tokens".into(), m.cached_prompt_tokens.into());
    if let Some(tier) = &m.offload {
        offload_keys(&mut out, tier);
    }
    let busy = m.busy_ns as f64;
    out.insert("kv_usage_mean".into(), number(if busy > 0.0 { m.kv_usage_weighted / busy } else { 0.0 }));
    out.insert("kv_usage_peak".into(), number(m.kv_usage_peak));
    out.insert(
        "mean_running_batch".into(),
        number(if m.steps > 0 { m.running_sum as f64 / m.steps as f64 } else { 0.0 }),
    );
    out.insert("max_running_batch".into(), m.running_max.into());
    out.insert("max_concurrent_requests".into(), m.concurrency.peak().into());
    out.insert("peak_waiting".into(), m.waiting_peak.into());
    out.insert("steps".into(), m.steps.into());
    out.insert(
        "mean_tokens_per_step".into(),
        number(if m.steps > 0 { m.scheduled_tokens as f64 / m.steps as f64 } else { 0.0 }),
    );
    let replicas = mean_replicas(m);
    out.insert("busy_fraction".into(), number(if duration > 0.0 { busy / 1e9 / duration / replicas } else { 0.0 }));
    let gpus = replicas * gpus_per_replica as f64;
    out.insert("gpus".into(), number(gpus));
    out.insert("gpu_hours".into(), number(duration * gpus / 3600.0));
    if let Some(s) = &m.scaling {
        out.insert("scale_ups".into(), s.scale_ups.into());
        out.insert("scale_downs".into(), s.scale_downs.into());
        out.insert("replicas_started".into(), s.replicas_started.into());
        out.insert("replicas_stopped".into(), s.replicas_stopped.into());
        out.insert("peak_replicas".into(), s.peak_replicas.into());
    }
    if !m.batches.is_empty() {
        batch_keys(&mut out, m, duration);
    }
    out
}

/// Replicas held on average over the run's duration: the fleet's size, or for an autoscaled
/// fleet its replica-seconds held (cold starts and drains included: the GPUs are allocated to
/// the replica then) up to the last completion, over the duration. `gpus` and `gpu_hours`,
/// and so the cost, follow from it; with a fixed fleet it is the replica count.
fn mean_replicas(m: &Metrics) -> f64 {
    let end = m.last_finish;
    match &m.scaling {
        Some(s) if end.0 > 0 => crate::serving::scaled_fleet::held_ns(&s.held, end) as f64 / end.0 as f64,
        Some(s) => s.held.iter().filter(|p| p.0 == crate::sim::SimTime::ZERO).count().max(1) as f64,
        None => m.replicas.len().max(1) as f64,
    }
}

/// CPU KV offload: where admitted requests' tokens came from (GPU prefix cache, CPU tier,
/// neither), over every admission (re-admissions after preemption included), and the bytes
/// moved over the host link (all tensor-parallel ranks).
fn offload_keys(out: &mut Map<String, Value>, t: &crate::serving::cpu_tier::TierStats) {
    let tokens = (t.gpu_hit_tokens + t.cpu_hit_tokens + t.miss_tokens) as f64;
    let rate = |x: u64| number(if tokens > 0.0 { x as f64 / tokens } else { 0.0 });
    out.insert("offload_gpu_hit_rate".into(), rate(t.gpu_hit_tokens));
    out.insert("offload_cpu_hit_rate".into(), rate(t.cpu_hit_tokens));
    out.insert("offload_miss_rate".into(), rate(t.miss_tokens));
    out.insert("offload_gpu_hit_tokens".into(), t.gpu_hit_tokens.into());
    out.insert("offload_cpu_hit_tokens".into(), t.cpu_hit_tokens.into());
    out.insert("offload_miss_tokens".into(), t.miss_tokens.into());
    out.insert("offload_loads".into(), t.loads.into());
    out.insert("offload_loaded_bytes".into(), (t.loaded_blocks * t.bytes_per_block).into());
    out.insert("offload_stored_bytes".into(), (t.stored_blocks * t.bytes_per_block).into());
    out.insert("offload_evicted_blocks".into(), t.evicted_blocks.into());
    out.insert("offload_stores_refused".into(), t.stores_refused.into());
    out.insert("offload_cpu_blocks".into(), t.cpu_blocks.into());
}

/// What a run cost at one price per GPU-hour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    /// GPUs (replicas x tensor-parallel size) x price per GPU-hour.
    pub usd_per_hour: f64,
    /// The whole run: `usd_per_hour` x duration in hours (start-up included, as the clock
    /// starts when the replicas are asked for).
    pub run_usd: f64,
    /// `run_usd` / (output tokens / 1e6); `None` when no token came out.
    pub usd_per_million_output_tokens: Option<f64>,
}

/// The cost of `gpus` GPUs held for `duration_s` seconds at `usd_per_gpu_hour`, producing
/// `output_tokens`.
pub fn cost(gpus: f64, duration_s: f64, output_tokens: u64, usd_per_gpu_hour: f64) -> Cost {
    let usd_per_hour = gpus * usd_per_gpu_hour;
    let run_usd = usd_per_hour * duration_s / 3600.0;
    let usd_per_million_output_tokens = (output_tokens > 0).then(|| run_usd / (output_tokens as f64 / 1e6));
    Cost { usd_per_hour, run_usd, usd_per_million_output_tokens }
}

/// Adds `cost_usd_per_hour`, `cost_usd_per_million_output_tokens` and, for a Ray Data batch
/// job, `job_cost_usd` (the job's GPU-hours, start-up included, times the price), priced over
/// the same GPUs and duration as `gpus` and `gpu_hours`.
pub fn add_cost(out: &mut Map<String, Value>, m: &Metrics, gpus_per_replica: u64, batch: bool, usd_per_gpu_hour: f64) {
    let gpus = mean_replicas(m) * gpus_per_replica as f64;
    let c = cost(gpus, m.last_finish.as_secs_f64(), m.total_output_tokens, usd_per_gpu_hour);
    out.insert("cost_usd_per_hour".into(), number(c.usd_per_hour));
    out.insert("cost_usd_per_million_output_tokens".into(), opt(c.usd_per_million_output_tokens));
    if batch {
        out.insert("job_cost_usd".into(), number(c.run_usd));
    }
}

/// The most half-open intervals `[start, end)` that overlap at one time, by a sweep in which
/// an end at time t comes before a start at t (vLLM's `max_concurrent_requests`).
pub fn peak_concurrency(intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut events: Vec<(u64, i8)> = intervals.flat_map(|(start, end)| [(start, 1), (end, -1)]).collect();
    events.sort_unstable();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, delta) in events {
        now += delta as i64;
        peak = peak.max(now);
    }
    peak as u64
}

/// vLLM's name for a percentile key: `p99`, `p99.9` (`str(int(p))` when whole).
pub fn percentile_word(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("p{}", p as u64)
    } else {
        format!("p{p}")
    }
}

/// Adds `p<q>_<metric>_ms` for every percentile in `percentiles` to TTFT, TPOT, ITL and E2EL,
/// each after that metric's `p99_` key, exact up to the exact-sample limit like `p99_<metric>_ms`.
/// Keys already present keep their values.
pub fn add_percentiles(out: &mut Map<String, Value>, m: &Metrics, percentiles: &[f64]) {
    if percentiles.is_empty() {
        return;
    }
    let at = |samples: &Samples| samples.summary_ms(percentiles).map(|s| s.percentiles);
    let (ttft, tpot, e2el) = (at(&m.ttft_ns), at(&m.tpot_ns), at(&m.e2el_ns));
    let itl = m.itl.summary_ms(percentiles).map(|s| s.percentiles);
    let pick = |values: &Option<Vec<Option<f64>>>, i: usize| values.as_ref().and_then(|v| v[i]);
    let mut extra: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    for metric in ["ttft", "tpot", "itl", "e2el"] {
        let keys = percentiles
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let value = match metric {
                    "ttft" => pick(&ttft, i),
                    "tpot" => pick(&tpot, i),
                    "e2el" => pick(&e2el, i),
                    _ => pick(&itl, i),
                };
                (format!("{}_{metric}_ms", percentile_word(p)), opt(value))
            })
            .filter(|(key, _)| !out.contains_key(key))
            .collect();
        extra.push((format!("p99_{metric}_ms"), keys));
    }
    let mut merged = Map::new();
    for (key, value) in std::mem::take(out) {
        let after = extra.iter_mut().find(|(anchor, _)| *anchor == key).map(|(_, keys)| std::mem::take(keys));
        merged.insert(key, value);
        for (k, v) in after.into_iter().flatten() {
            merged.insert(k, v);
        }
    }
    *out = merged;
}

/// Ray Data batch-job keys: makespan, rows/s, batch completion times.
fn batch_keys(out: &mut Map<String, Value>, m: &Metrics, makespan: f64) {
    out.insert("makespan_s".into(), number(makespan));
    out.insert("rows_per_s".into(), number(if makespan > 0.0 { m.completed as f64 / makespan } else { 0.0 }));
    out.insert("batches".into(), (m.batches.len() as u64).into());
    let mut secs: Vec<f64> = m.batches.iter().map(|b| b.completed.since(b.dispatched).as_secs_f64()).collect();
    secs.sort_by(f64::total_cmp);
    out.insert("mean_batch_time_s".into(), opt(mean_std(&secs).map(|s| s.0)));
    out.insert("median_batch_time_s".into(), opt(percentile_sorted(&secs, 50.0)));
    out.insert("p90_batch_time_s".into(), opt(percentile_sorted(&secs, 90.0)));
    out.insert("p99_batch_time_s".into(), opt(percentile_sorted(&secs, 99.0)));
}

/// Per-replica breakdown: requests, busy fraction, idle time, KV peak.
pub fn replica_summaries(m: &Metrics) -> Vec<Map<String, Value>> {
    let duration = m.last_finish.as_secs_f64();
    m.replicas
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let busy = r.busy_ns as f64 / 1e9;
            let mut row = Map::new();
            row.insert("replica".into(), (i as u64).into());
            row.insert("completed".into(), r.completed.into());
            row.insert("steps".into(), r.steps.into());
            row.insert("busy_fraction".into(), number(if duration > 0.0 { busy / duration } else { 0.0 }));
            row.insert("idle_s".into(), number((duration - busy).max(0.0)));
            row.insert("ready_at_s".into(), number(r.ready_at.as_secs_f64()));
            row.insert("kv_usage_peak".into(), number(r.kv_peak));
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from numpy: np.percentile([1, 2, 3, 4, 10], [50, 90, 99]) = 3, 7.6, 9.76.
    #[test]
    fn percentiles_interpolate_like_numpy() {
        let xs = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile_sorted(&xs, 50.0), Some(3.0));
        assert!((percentile_sorted(&xs, 90.0).unwrap() - 7.6).abs() < 1e-12);
        assert!((percentile_sorted(&xs, 99.0).unwrap() - 9.76).abs() < 1e-12);
        assert_eq!(percentile_sorted(&[], 50.0), None);
    }

    /// Against a naive implementation over many random samples.
    #[test]
    fn percentiles_agree_with_a_naive_oracle() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for n in [1usize, 2, 7, 100, 1001] {
            let mut xs: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..1000.0)).collect();
            xs.sort_by(f64::total_cmp);
            for q in [0.0, 12.5, 50.0, 90.0, 99.0, 100.0] {
                // numpy 'linear': h = (n - 1) q / 100, x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]).
                let h = (n - 1) as f64 * q / 100.0;
                let below = xs[h.floor() as usize];
                let above = xs[(h.floor() as usize + 1).min(n - 1)];
                let naive = below + (h - h.floor()) * (above - below);
                assert!((percentile_sorted(&xs, q).unwrap() - naive).abs() < 1e-9);
            }
        }
    }

    /// vLLM's sweep: [0, 10) and [10, 20) never overlap; [5, 15) overlaps both.
    #[test]
    fn peak_concurrency_counts_half_open_intervals() {
        assert_eq!(peak_concurrency([(0, 10), (10, 20)].into_iter()), 1);
        assert_eq!(peak_concurrency([(0, 10), (10, 20), (5, 15)].into_iter()), 2);
        assert_eq!(peak_concurrency([(0, 30), (1, 2), (1, 2), (3, 4)].into_iter()), 3);
        assert_eq!(peak_concurrency(std::iter::empty()), 0);
        assert_eq!(
            (percentile_word(99.0), percentile_word(99.9), percentile_word(50.0)),
            ("p99".into(), "p99.9".into(), "p50".into())
        );
    }

    fn metrics_of(ttfts_ms: &[u64], slo: Option<crate::scenario::GoodputSlo>) -> Metrics {
        use crate::report::metrics::{Capture, RequestRecord};
        use crate::sim::SimTime;
        let mut m = Metrics::new(Capture::default(), slo, 1);
        for (i, &ttft) in ttfts_ms.iter().enumerate() {
            let arrival = SimTime(i as u64 * 1_000_000);
            let first_token = SimTime(arrival.0 + ttft * 1_000_000);
            m.record_itl(i as u64, crate::sim::Nanos(2_000_000));
            m.record_request(RequestRecord {
                seq_no: i as u64,
                arrival,
                first_scheduled: arrival,
                first_token,
                finish: SimTime(first_token.0 + 2_000_000),
                prompt_tokens: 10,
                output_tokens: 2,
                cached_prompt_tokens: 0,
                preemptions: 0,
                recomputed_tokens: 0,
                replica: 0,
            });
        }
        m.arrivals = ttfts_ms.len() as u64;
        m
    }

    /// Extra percentiles sit after each metric's p99 key, existing keys keep their values, and
    /// goodput is absent without an SLO. Requests arrive each ms and last 3, 4, 5, 6 and 12 ms:
    /// at 4 ms the last four are in flight.
    #[test]
    fn extra_percentiles_follow_p99_and_goodput_needs_an_slo() {
        let m = metrics_of(&[1, 2, 3, 4, 10], None);
        let mut out = summarize(&m, 1);
        let before = out.clone();
        add_percentiles(&mut out, &m, &[50.0, 99.0, 99.9]);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        let at = |k: &str| keys.iter().position(|x| *x == k).unwrap();
        assert_eq!((at("p50_ttft_ms"), at("p99.9_ttft_ms")), (at("p99_ttft_ms") + 1, at("p99_ttft_ms") + 2));
        assert_eq!(at("p50_e2el_ms"), at("p99_e2el_ms") + 1);
        assert!(!out.contains_key("p50_queue_ms"));
        assert!(before.iter().all(|(k, v)| out[k] == *v));
        // numpy: np.percentile([1, 2, 3, 4, 10], 99.9) = 9.976.
        assert!((out["p99.9_ttft_ms"].as_f64().unwrap() - 9.976).abs() < 1e-9);
        // ITL from the HdrHistogram: the bucket's highest value, within 0.1% of 2 ms.
        assert!((out["p50_itl_ms"].as_f64().unwrap() - 2.0).abs() <= 2e-3);
        assert!(!out.contains_key("request_goodput"));
        assert_eq!((out["failed"].as_u64(), out["max_concurrent_requests"].as_u64()), (Some(0), Some(4)));
        let slo = crate::scenario::GoodputSlo { ttft: Some(crate::sim::Nanos(3_000_000)), ..Default::default() };
        let with_slo = summarize(&metrics_of(&[1, 2, 3, 4, 10], Some(slo)), 1);
        assert!(with_slo["request_goodput"].as_f64().unwrap() > 0.0);
    }

    /// By hand: 2 replicas x tp 4 = 8 GPUs at $2.50 = $20/h; 90 minutes cost $30; 3 million
    /// output tokens make $10 per million.
    #[test]
    fn cost_arithmetic_matches_a_hand_calculation() {
        let c = cost(8.0, 5400.0, 3_000_000, 2.5);
        assert_eq!((c.usd_per_hour, c.run_usd, c.usd_per_million_output_tokens), (20.0, 30.0, Some(10.0)));
        // One L4 at $0.684 for 10 minutes, 123,456 tokens: 0.114 / 0.123456 = $0.92341... per million.
        let c = cost(1.0, 600.0, 123_456, 0.684);
        assert!((c.run_usd - 0.114).abs() < 1e-12);
        assert!((c.usd_per_million_output_tokens.unwrap() - 0.114 / 0.123456).abs() < 1e-12);
        assert_eq!(cost(1.0, 0.0, 0, 3.0).usd_per_million_output_tokens, None);
    }

    /// The keys sit after the existing ones, change none of them, and `job_cost_usd` (the
    /// GPU-hours times the price) appears only for batch jobs.
    #[test]
    fn cost_keys_add_to_the_summary_without_changing_it() {
        let m = metrics_of(&[1, 2, 3, 4, 10], None);
        let plain = summarize(&m, 2);
        let mut priced = plain.clone();
        add_cost(&mut priced, &m, 2, true, 3.0);
        assert!(plain.iter().all(|(k, v)| priced[k] == *v));
        let added: Vec<&str> = priced.keys().skip(plain.len()).map(String::as_str).collect();
        assert_eq!(added, ["cost_usd_per_hour", "cost_usd_per_million_output_tokens", "job_cost_usd"]);
        // One replica x tp 2 at $3 = $6/h; the run lasts 16 ms (the last request finishes at 4 + 10 + 2).
        assert_eq!(priced["cost_usd_per_hour"].as_f64(), Some(6.0));
        let job = priced["job_cost_usd"].as_f64().unwrap();
        assert!((job - priced["gpu_hours"].as_f64().unwrap() * 3.0).abs() < 1e-15);
        assert!((job - 6.0 * 0.016 / 3600.0).abs() < 1e-15);
        // 5 requests of 2 output tokens.
        let per_million = priced["cost_usd_per_million_output_tokens"].as_f64().unwrap();
        assert!((per_million - job / (10.0 / 1e6)).abs() < 1e-9);
        let mut online = plain.clone();
        add_cost(&mut online, &m, 2, false, 3.0);
        assert!(!online.contains_key("job_cost_usd"));
    }

    #[test]
    fn std_is_numpys_population_std() {
        let (mean, std) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(mean, 5.0);
        assert_eq!(std, 2.0);
    }
}
