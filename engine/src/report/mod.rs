//! What it means: metric collectors, summaries, the report value and its renderings
//! (JSON, Markdown), and atomic writes. Report code never changes simulation state.

pub mod attainment;
pub mod bench_fidelity;
pub mod caveats;
pub mod check;
pub mod concurrency;
pub mod csv;
pub mod disagg;
pub mod expect;
pub mod fidelity;
pub mod html;
pub mod markdown;
pub mod metrics;
pub mod phases;
pub mod png;
pub mod samples;
pub mod stats;
pub mod summary;
pub mod token_gaps;
pub mod vllm_bench;
pub mod write;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::hardware::MemoryBreakdown;

/// Version of the report.json layout; bump it when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The whole report of one scenario: every case and seed. Holds nothing that varies between
/// runs of the same scenario (no wall-clock time, paths or thread counts).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub scenario: String,
    pub description: String,
    pub seeds: Vec<u64>,
    /// How each latency's percentiles are computed, by metric: `exact` (numpy's linear
    /// interpolation over every sample) or the histogram and its precision.
    pub percentile_method: BTreeMap<&'static str, &'static str>,
    /// What the phase analysis concluded from the runs, if the scenario asked for one.
    pub findings: Option<phases::Findings>,
    pub cases: Vec<CaseReport>,
}

/// One case: its resolved configuration, each seed's run, and statistics over the seeds.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    pub name: String,
    pub config: Map<String, Value>,
    pub runs: Vec<RunReport>,
    /// Per headline metric over the seeds: mean, std, min, max and 95% CI half-width.
    pub over_seeds: BTreeMap<String, stats::SeedStats>,
    /// Reference values measured on real hardware (`expect.measured`), if the case has any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub measured: BTreeMap<String, f64>,
}

/// One (case, seed) run.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RunReport {
    pub seed: u64,
    pub outcome: String,
    /// vLLM's start-up error when the outcome is `oom`.
    pub startup_error: Option<String>,
    pub memory: MemoryBreakdown,
    pub metrics: Map<String, Value>,
    /// Whether every percentile SLO of the scenario was met; absent without one.
    pub slo_met: Option<bool>,
    /// Per replica: requests, steps, busy fraction, idle time, KV peak.
    pub replicas: Vec<Map<String, Value>>,
    /// For the static engine: the batch that did not fit.
    pub static_batch: Option<crate::hardware::memory::StaticMemory>,
    /// Requests refused at the door, by reason, and the first message.
    pub rejections: BTreeMap<String, u64>,
    pub first_rejection: Option<String>,
    pub expectations: Vec<expect::ExpectationResult>,
    /// The latencies whose samples went beyond the run's exact-sample limit, so that their
    /// percentiles come from a histogram (`report::samples`); absent when all are exact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streamed_percentiles: Vec<String>,
    /// Disaggregated serving's pools and KV transfers (`report::disagg`); absent for a unified
    /// fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaggregation: Option<Map<String, Value>>,
}

/// [`Report::percentile_method`]: per-request latencies and per-token gaps are kept whole
/// (`exact`) unless a run went beyond its exact-sample limit ([`samples::STREAMING_METHOD`]).
pub fn percentile_methods<'a>(runs: impl Iterator<Item = &'a RunReport>) -> BTreeMap<&'static str, &'static str> {
    let streamed: std::collections::BTreeSet<&str> =
        runs.flat_map(|r| r.streamed_percentiles.iter().map(String::as_str)).collect();
    ["ttft", "tpot", "itl", "e2el", "queue"]
        .map(|m| (m, if streamed.contains(m) { samples::STREAMING_METHOD } else { "exact" }))
        .into_iter()
        .collect()
}

impl Report {
    /// True when every expectation of every run passed.
    pub fn all_expectations_pass(&self) -> bool {
        self.cases.iter().flat_map(|c| &c.runs).flat_map(|r| &r.expectations).all(|e| e.pass)
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("report serializes");
        text.push('\n');
        text
    }
}
