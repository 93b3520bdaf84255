//! Per-phase analyses of the seed document's six test phases: extra per-run metrics (queue
//! recovery after a spike, SLO violations around it) and scenario-level findings computed from
//! the runs (best configuration within the SLO, largest safe batch, best chunking strategy).
//! Every conclusion here is derived from simulated numbers; none is written by hand.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::metrics::{Capture, Metrics};
use super::Report;
use crate::scenario::{Case, Scenario};
use crate::sim::Nanos;
use crate::workload::LengthDist;

mod burstiness;
mod chunked;
mod config;
mod kv;
mod oom;
mod storage;

/// Which analysis a scenario asks for (`"analysis"` in the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Analysis {
    ConfigMatrix,
    Burstiness,
    Oom,
    KvStress,
    WeightStorage,
    ChunkedPrefill,
}

/// What a phase's findings say, for report.md, report.json and outputs/index.md.
#[derive(Clone, Debug, Serialize)]
pub struct Findings {
    pub headline: String,
    pub summary: String,
    pub details: Value,
    #[serde(skip)]
    pub markdown: String,
}

/// Queue sampling interval of the burstiness analysis.
pub const QUEUE_SAMPLE: Nanos = Nanos(100_000_000);

impl Analysis {
    /// What runs must capture for this analysis.
    pub fn capture(self) -> Capture {
        match self {
            Analysis::Burstiness => Capture { requests: true, queue: Some(QUEUE_SAMPLE), ..Capture::default() },
            _ => Capture::default(),
        }
    }
}

pub(super) fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

pub(super) fn mean_over_seeds(report: &Report, case: usize, key: &str) -> Option<f64> {
    let values: Vec<f64> =
        report.cases[case].runs.iter().filter_map(|r| r.metrics.get(key).and_then(Value::as_f64)).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub(super) fn fixed_len(dist: &Option<LengthDist>) -> Option<u64> {
    match dist {
        Some(LengthDist::Fixed { value }) => Some(*value as u64),
        Some(d) => Some(d.mean().round() as u64),
        None => None,
    }
}

/// Extra per-run metrics, merged into the run's metrics object.
pub fn run_extras(analysis: Analysis, case: &Case, metrics: &Metrics, out: &mut Map<String, Value>) {
    if analysis == Analysis::Burstiness {
        burstiness::burst_extras(case, metrics, out);
    }
}

/// Scenario-level findings.
pub fn conclude(analysis: Analysis, scenario: &Scenario, report: &Report) -> Findings {
    match analysis {
        Analysis::ConfigMatrix => config::config_matrix(scenario, report),
        Analysis::Burstiness => burstiness::burstiness(report),
        Analysis::Oom => oom::oom(scenario, report),
        Analysis::KvStress => kv::kv_stress(scenario, report),
        Analysis::WeightStorage => storage::weight_storage(scenario, report),
        Analysis::ChunkedPrefill => chunked::chunked_prefill(scenario, report),
    }
}

pub(super) fn all_slo_met(report: &Report, case: usize) -> bool {
    let runs = &report.cases[case].runs;
    !runs.is_empty() && runs.iter().all(|r| r.slo_met == Some(true) && r.outcome == "completed")
}
