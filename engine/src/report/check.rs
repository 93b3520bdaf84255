//! Regression checks: a fresh report against a baseline report.json, metric by metric and
//! case by case (means over seeds), with the direction in which each metric gets worse.

use serde_json::Value;

/// Metrics compared when none are named.
pub const DEFAULT_METRICS: [&str; 7] = [
    "p99_ttft_ms",
    "p99_tpot_ms",
    "p99_itl_ms",
    "p99_e2el_ms",
    "mean_ttft_ms",
    "output_throughput",
    "request_throughput",
];

/// Whether a larger value of `metric` is better (throughputs, hit rates, completions).
pub fn higher_is_better(metric: &str) -> bool {
    metric.contains("throughput")
        || metric.contains("goodput")
        || metric.ends_with("per_s")
        || metric.contains("hit_rate")
        || metric == "completed"
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Improved,
    Regressed,
    /// The case or metric is in the baseline but not in the new report.
    Missing,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Row {
    pub case: String,
    pub metric: String,
    pub baseline: Option<f64>,
    pub now: Option<f64>,
    pub change: Option<f64>,
    pub status: Status,
}

/// Mean over seeds of `metric` for `case` in a report.json value.
fn mean_in(report: &Value, case: &str, metric: &str) -> Option<f64> {
    let case = report["cases"].as_array()?.iter().find(|c| c["name"] == case)?;
    let values: Vec<f64> = case["runs"].as_array()?.iter().filter_map(|r| r["metrics"][metric].as_f64()).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Compares every case of the baseline with the new report. `tolerance` is relative (0.05 =
/// 5%); a metric is worse when it moved in its bad direction by more than that fraction of
/// the baseline (and by more than 1e-9 in absolute terms).
pub fn compare(baseline: &Value, now: &Value, metrics: &[String], tolerance: f64) -> Vec<Row> {
    let now_value = now;
    let mut rows = Vec::new();
    for case in baseline["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or_default().to_string();
        for metric in metrics {
            let (b, n) = (mean_in(baseline, &name, metric), mean_in(now_value, &name, metric));
            let (status, change) = match (b, n) {
                (Some(b), Some(n)) => {
                    let delta = n - b;
                    let change = if b != 0.0 { Some(delta / b.abs()) } else { None };
                    let worse = if higher_is_better(metric) { -delta } else { delta };
                    let limit = (tolerance * b.abs()).max(1e-9);
                    let status = if worse > limit {
                        Status::Regressed
                    } else if -worse > limit {
                        Status::Improved
                    } else {
                        Status::Ok
                    };
                    (status, change)
                }
                (Some(_), None) => (Status::Missing, None),
                (None, _) => continue,
            };
            rows.push(Row { case: name.clone(), metric: metric.clone(), baseline: b, now: n, change, status });
        }
    }
    rows
}

/// The table `symbiote check` prints.
pub fn table(rows: &[Row]) -> String {
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    let mut out = String::from("| case | metric | baseline | now | change | status |\n|---|---|---:|---:|---:|---|\n");
    for r in rows {
        let status = match r.status {
            Status::Ok => "ok",
            Status::Improved => "improved",
            Status::Regressed => "REGRESSED",
            Status::Missing => "MISSING",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {status} |\n",
            r.case,
            r.metric,
            fmt(r.baseline),
            fmt(r.now),
            r.change.map_or("-".into(), |c| format!("{:+.2}%", 100.0 * c))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(ttft: f64, throughput: f64) -> Value {
        json!({"cases": [{"name": "a", "runs": [
            {"metrics": {"p99_ttft_ms": ttft, "output_throughput": throughput}},
            {"metrics": {"p99_ttft_ms": ttft + 2.0, "output_throughput": throughput}}
        ]}]})
    }

    fn statuses(baseline: &Value, now: &Value, tolerance: f64) -> Vec<Status> {
        let metrics = vec!["p99_ttft_ms".to_string(), "output_throughput".to_string()];
        compare(baseline, now, &metrics, tolerance).into_iter().map(|r| r.status).collect()
    }

    /// Means over seeds: TTFT (100 + 102) / 2 = 101 ms; 10% worse is 111.1 ms.
    #[test]
    fn latency_up_and_throughput_down_are_regressions() {
        let base = report(100.0, 1000.0);
        assert_eq!(mean_in(&base, "a", "p99_ttft_ms"), Some(101.0));
        assert_eq!(statuses(&base, &report(112.0, 1000.0), 0.1), vec![Status::Regressed, Status::Ok]);
        assert_eq!(statuses(&base, &report(109.0, 1000.0), 0.1), vec![Status::Ok, Status::Ok]);
        assert_eq!(statuses(&base, &report(100.0, 880.0), 0.1), vec![Status::Ok, Status::Regressed]);
        assert_eq!(statuses(&base, &report(80.0, 1200.0), 0.1), vec![Status::Improved, Status::Improved]);
        let gone = json!({"cases": []});
        assert_eq!(statuses(&base, &gone, 0.1), vec![Status::Missing, Status::Missing]);
        assert!(higher_is_better("output_throughput") && !higher_is_better("p99_itl_ms"));
    }
}
