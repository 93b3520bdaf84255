//! Phase 1: the best configuration within the SLO.

use serde_json::json;

use super::*;
use crate::report::Report;
use crate::scenario::Scenario;

pub(super) fn config_matrix(scenario: &Scenario, report: &Report) -> Findings {
    let mut rows = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (i, case) in scenario.cases.iter().enumerate() {
        let gpus = (case.replicas as u64 * case.tp) as f64;
        let out_tps = mean_over_seeds(report, i, "output_throughput").unwrap_or(0.0);
        let per_gpu = out_tps / gpus;
        let met = all_slo_met(report, i);
        if met && best.is_none_or(|(_, b)| per_gpu > b) {
            best = Some((i, per_gpu));
        }
        rows.push(json!({"case": case.name, "gpus": gpus, "output_tokens_per_s": number(out_tps),
            "output_tokens_per_s_per_gpu": number(per_gpu), "slo_met": met}));
    }
    let (headline, summary) = match best {
        Some((i, per_gpu)) => (
            format!("best within SLO: `{}` at {:.0} output tok/s per GPU", scenario.cases[i].name, per_gpu),
            format!(
                "The matrix varies batch size, replicas (concurrency), model size and load. Of {} configurations, {} met every SLO in every seed; the best output throughput per GPU among them is `{}` with {:.0} tok/s per GPU ({:.2} req/s in all).",
                scenario.cases.len(),
                (0..scenario.cases.len()).filter(|&i| all_slo_met(report, i)).count(),
                scenario.cases[i].name,
                per_gpu,
                mean_over_seeds(report, i, "request_throughput").unwrap_or(0.0)
            ),
        ),
        None => ("no configuration met the SLO".into(), "No configuration met every SLO in every seed.".into()),
    };
    let mut markdown =
        format!("{summary}\n\n| case | GPUs | out tok/s | out tok/s per GPU | SLO met |\n|---|---:|---:|---:|---|\n");
    for r in &rows {
        markdown.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {} |\n",
            r["case"].as_str().unwrap_or(""),
            r["gpus"],
            r["output_tokens_per_s"].as_f64().unwrap_or(0.0),
            r["output_tokens_per_s_per_gpu"].as_f64().unwrap_or(0.0),
            if r["slo_met"].as_bool() == Some(true) { "yes" } else { "no" }
        ));
    }
    Findings { headline, summary, details: json!({"configurations": rows}), markdown }
}
