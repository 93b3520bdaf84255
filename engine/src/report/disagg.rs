//! Disaggregated serving's own numbers: per pool (prefill utilisation, decode batch and KV
//! use) and per KV transfer (time from the read's start to its arrival, link queueing
//! included; the decode side's wait for free blocks). Collected by the loop, summarised here
//! into report.json's `disaggregation` object. The system's TTFT/ITL/E2E stay where they are.

use serde_json::{Map, Value};

use super::metrics::Metrics;
use super::samples::Samples;
use super::summary::number;

/// What the loop records about the pools and the transfers.
#[derive(Debug)]
pub struct DisaggMetrics {
    pub prefill_replicas: u32,
    pub decode_replicas: u32,
    pub link: String,
    /// Prefill requests that finished and were handed to the decode pool.
    pub handoffs: u64,
    /// Reads that arrived.
    pub transfers: u64,
    /// KV bytes read, per GPU link (TP shards move in parallel).
    pub bytes_per_gpu: u128,
    /// From the read's start (blocks allocated on the decode side) to its arrival.
    pub transfer_ns: Samples,
    /// From the hand-off to the read's start: the decode side's wait for free KV blocks.
    pub block_wait_ns: Samples,
}

impl DisaggMetrics {
    pub fn new(prefill_replicas: u32, decode_replicas: u32, link: &str) -> DisaggMetrics {
        DisaggMetrics {
            prefill_replicas,
            decode_replicas,
            link: link.to_string(),
            handoffs: 0,
            transfers: 0,
            bytes_per_gpu: 0,
            transfer_ns: Samples::new(None),
            block_wait_ns: Samples::new(None),
        }
    }
}

/// report.json's `disaggregation` object: pool sizes, each pool's busy fraction (GPU time
/// stepping over the run's duration, averaged over its replicas), the decode pool's mean
/// running batch per step and mean and peak KV use (time-weighted over its steps), and the
/// transfers' count, bytes and time distribution.
pub fn summarize(m: &Metrics, d: &DisaggMetrics) -> Map<String, Value> {
    let duration_ns = m.last_finish.0 as f64;
    let (prefill, decode) = m.replicas.split_at((d.prefill_replicas as usize).min(m.replicas.len()));
    let busy = |pool: &[super::metrics::ReplicaStats]| {
        let total: u64 = pool.iter().map(|r| r.busy_ns).sum();
        if duration_ns > 0.0 && !pool.is_empty() {
            total as f64 / (duration_ns * pool.len() as f64)
        } else {
            0.0
        }
    };
    let decode_steps: u64 = decode.iter().map(|r| r.steps).sum();
    let decode_running: u64 = decode.iter().map(|r| r.running_sum).sum();
    let decode_busy: u64 = decode.iter().map(|r| r.busy_ns).sum();
    let decode_kv: f64 = decode.iter().map(|r| r.kv_usage_weighted).sum();
    let mut out = Map::new();
    out.insert("prefill_replicas".into(), d.prefill_replicas.into());
    out.insert("decode_replicas".into(), d.decode_replicas.into());
    out.insert("link".into(), d.link.clone().into());
    out.insert("prefill_busy_fraction".into(), number(busy(prefill)));
    out.insert("decode_busy_fraction".into(), number(busy(decode)));
    out.insert(
        "decode_mean_running".into(),
        number(if decode_steps > 0 { decode_running as f64 / decode_steps as f64 } else { 0.0 }),
    );
    out.insert(
        "decode_mean_kv_usage".into(),
        number(if decode_busy > 0 { decode_kv / decode_busy as f64 } else { 0.0 }),
    );
    out.insert("decode_kv_usage_peak".into(), number(decode.iter().map(|r| r.kv_peak).fold(0.0, f64::max)));
    out.insert("handoffs".into(), d.handoffs.into());
    out.insert("transfers".into(), d.transfers.into());
    out.insert("kv_gb_per_gpu_link".into(), number(d.bytes_per_gpu as f64 / 1e9));
    let qs = [50.0, 99.0];
    for (name, samples) in [("transfer", &d.transfer_ns), ("decode_block_wait", &d.block_wait_ns)] {
        if let Some(s) = samples.summary_ms(&qs) {
            out.insert(format!("mean_{name}_ms"), number(s.mean));
            out.insert(format!("median_{name}_ms"), s.percentiles[0].map_or(Value::Null, number));
            out.insert(format!("p99_{name}_ms"), s.percentiles[1].map_or(Value::Null, number));
        }
    }
    out
}
