//! Expectations and SLOs checked against a run: each becomes a pass/fail line that says by how
//! much it missed.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::scenario::{ExpectFile, SloFile};

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ExpectationResult {
    pub what: String,
    pub pass: bool,
    pub detail: String,
}

fn metric(metrics: &Map<String, Value>, key: &str) -> Option<f64> {
    metrics.get(key).and_then(Value::as_f64)
}

/// Whether every percentile threshold of the SLO is met; `None` when the SLO has none.
pub fn slo_met(slo: &SloFile, metrics: &Map<String, Value>) -> Option<bool> {
    let checks = [("p99_ttft_ms", slo.p99_ttft_ms), ("p99_tpot_ms", slo.p99_tpot_ms), ("p99_e2el_ms", slo.p99_e2el_ms)];
    let mut any = false;
    let mut met = true;
    for (key, limit) in checks {
        if let Some(limit) = limit {
            any = true;
            met &= metric(metrics, key).is_some_and(|v| v <= limit);
        }
    }
    any.then_some(met)
}

pub fn check(
    expect: &ExpectFile,
    slo: Option<&SloFile>,
    outcome: &str,
    metrics: &Map<String, Value>,
) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    if let Some(want) = &expect.outcome {
        out.push(ExpectationResult {
            what: format!("outcome == {want}"),
            pass: want.allows(outcome),
            detail: format!("outcome was {outcome}"),
        });
    } else if outcome != "completed" {
        // A run that did not complete fails unless the case asked for its outcome.
        let unfinished = metric(metrics, "unfinished").unwrap_or(0.0);
        out.push(ExpectationResult {
            what: "outcome == completed".into(),
            pass: false,
            detail: format!(
                "outcome was {outcome} with {unfinished} requests unfinished; if the case is meant to end so, set `expect.outcome` to \"{outcome}\" (in a sweep, a list such as [\"completed\", \"{outcome}\"])"
            ),
        });
    }
    if let Some(want) = expect.slo_met {
        let got = slo.and_then(|s| slo_met(s, metrics));
        out.push(ExpectationResult {
            what: format!("slo_met == {want}"),
            pass: got == Some(want),
            detail: match got {
                Some(got) => format!("slo_met was {got}"),
                None => "the scenario has no percentile SLO (p99_ttft_ms, p99_tpot_ms, p99_e2el_ms)".into(),
            },
        });
    }
    for (key, bounds) in &expect.metrics {
        let value = metric(metrics, key);
        let pass = value.is_some_and(|v| bounds.min.is_none_or(|lo| v >= lo) && bounds.max.is_none_or(|hi| v <= hi));
        let range = format!(
            "[{}, {}]",
            bounds.min.map_or("-inf".into(), |v| v.to_string()),
            bounds.max.map_or("inf".into(), |v| v.to_string())
        );
        let detail = match value {
            None => format!("{key} is not a metric of this run"),
            Some(v) if pass => format!("{key} = {v:.4} within {range}"),
            Some(v) => {
                let miss = match (bounds.min, bounds.max) {
                    (Some(lo), _) if v < lo => format!("{:.4} below the minimum", lo - v),
                    (_, Some(hi)) => format!("{:.4} above the maximum", v - hi),
                    _ => String::new(),
                };
                format!("{key} = {v:.4} outside {range}: {miss}")
            }
        };
        out.push(ExpectationResult { what: format!("{key} in {range}"), pass, detail });
    }
    out
}
