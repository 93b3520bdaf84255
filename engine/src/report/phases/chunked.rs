//! Phase 6: the best chunking strategy per model and prompt length.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::hardware::memory::GIB;
use crate::report::Report;
use crate::scenario::Scenario;

pub(super) fn chunked_prefill(scenario: &Scenario, report: &Report) -> Findings {
    // Group by (model, prompt length); the strategy is the case name's first word.
    let mut groups: BTreeMap<(String, u64), Vec<usize>> = BTreeMap::new();
    for (i, case) in scenario.cases.iter().enumerate() {
        let prompt = fixed_len(&case.workload.prompt).unwrap_or(0);
        groups.entry((case.model.name.clone(), prompt)).or_default().push(i);
    }
    let mut markdown = String::from(
        "Best strategy per model and prompt length: the lowest p99 inter-token latency among strategies whose output throughput is within 5% of the group's best (so a strategy cannot win by doing less work).\n\n| model | prompt | best strategy | p99 ITL ms | vs no chunking | out tok/s |\n|---|---:|---|---:|---:|---:|\n",
    );
    let mut best_list = Vec::new();
    for ((model, prompt), cases) in &groups {
        let get = |i: usize, k: &str| mean_over_seeds(report, i, k).unwrap_or(f64::NAN);
        let completed: Vec<usize> =
            cases.iter().copied().filter(|&i| report.cases[i].runs.iter().all(|r| r.outcome == "completed")).collect();
        let top = completed.iter().map(|&i| get(i, "output_throughput")).fold(0.0, f64::max);
        let best = completed
            .iter()
            .copied()
            .filter(|&i| get(i, "output_throughput") >= 0.95 * top)
            .min_by(|&a, &b| get(a, "p99_itl_ms").total_cmp(&get(b, "p99_itl_ms")));
        let Some(best) = best else { continue };
        let strategy = scenario.cases[best].name.split_whitespace().next().unwrap_or("").to_string();
        let baseline = cases.iter().copied().find(|&i| scenario.cases[i].name.starts_with("no_chunking"));
        let change = baseline
            .map_or("-".into(), |b| format!("{:+.0}%", 100.0 * (get(best, "p99_itl_ms") / get(b, "p99_itl_ms") - 1.0)));
        markdown.push_str(&format!(
            "| {model} | {prompt} | {strategy} | {:.1} | {change} | {:.0} |\n",
            get(best, "p99_itl_ms"),
            get(best, "output_throughput")
        ));
        best_list.push(json!({"model": model, "prompt_tokens": prompt, "best": strategy, "p99_itl_ms": number(get(best, "p99_itl_ms"))}));
    }
    // Activation peak per strategy and model: vLLM profiles a max_num_batched_tokens forward
    // pass, so the token budget decides it.
    let mut activation: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (i, case) in scenario.cases.iter().enumerate() {
        let strategy = case.name.split_whitespace().next().unwrap_or("").to_string();
        if let Some(run) = report.cases[i].runs.first() {
            activation.insert((case.model.name.clone(), strategy), run.memory.activation_peak_bytes as f64 / GIB);
        }
    }
    markdown.push_str("\nActivation peak reserved at start-up (GiB), per strategy:\n\n| model | strategy | activation GiB |\n|---|---|---:|\n");
    for ((model, strategy), gib) in &activation {
        markdown.push_str(&format!("| {model} | {strategy} | {gib:.2} |\n"));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for b in &best_list {
        *counts.entry(b["best"].as_str().unwrap_or("").to_string()).or_default() += 1;
    }
    let winner = counts
        .iter()
        .max_by_key(|(_, c)| **c)
        .map(|(s, c)| format!("{s} ({c} of {})", best_list.len()))
        .unwrap_or_default();
    let headline = format!("most often best: {winner}");
    let summary = format!(
        "Two models and three prompt lengths under a mixed load where long prefills arrive among running decodes, with five chunking strategies. The strategy most often best for p99 inter-token latency at near-best throughput is {winner}."
    );
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"best": best_list, "activation_peak_gib": activation.iter().map(|((m, s), g)| json!({"model": m, "strategy": s, "gib": number(*g)})).collect::<Vec<_>>()}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}
