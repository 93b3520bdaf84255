//! `report.md`: the tables a person reads first. A pure function of the report.

use serde_json::{Map, Value};

use super::Report;

/// Headline columns: (metric key, column title, decimals).
const HEADLINE: [(&str, &str, usize); 9] = [
    ("completed", "done", 0),
    ("request_throughput", "req/s", 2),
    ("output_throughput", "out tok/s", 0),
    ("mean_ttft_ms", "TTFT mean ms", 1),
    ("p99_ttft_ms", "TTFT p99 ms", 1),
    ("mean_tpot_ms", "TPOT mean ms", 2),
    ("p99_itl_ms", "ITL p99 ms", 2),
    ("p99_e2el_ms", "E2E p99 ms", 0),
    ("preemptions", "preempt", 0),
];

pub fn cell(metrics: &Map<String, Value>, key: &str, decimals: usize) -> String {
    match metrics.get(key) {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(i) => i.to_string(),
            None => format!("{:.*}", decimals, n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => "-".into(),
    }
}

/// One row per (case, seed) with the headline metrics.
pub fn table(report: &Report) -> String {
    let mut out = String::from("| case | seed | outcome |");
    for (_, title, _) in HEADLINE {
        out.push_str(&format!(" {title} |"));
    }
    out.push_str("\n|---|---:|---|");
    out.push_str(&"---:|".repeat(HEADLINE.len()));
    out.push('\n');
    for case in &report.cases {
        for run in &case.runs {
            out.push_str(&format!("| {} | {} | {} |", case.name, run.seed, run.outcome));
            for (key, _, decimals) in HEADLINE {
                out.push_str(&format!(" {} |", cell(&run.metrics, key, decimals)));
            }
            out.push('\n');
        }
    }
    out
}

pub fn render(report: &Report) -> String {
    let mut out = format!("# {}\n\n", report.scenario);
    if !report.description.is_empty() {
        out.push_str(&format!("{}\n\n", report.description));
    }
    out.push_str(&table(report));
    let failures: Vec<String> = report
        .cases
        .iter()
        .flat_map(|c| c.runs.iter().map(move |r| (c, r)))
        .flat_map(|(c, r)| {
            r.expectations
                .iter()
                .filter(|e| !e.pass)
                .map(move |e| format!("- {} (seed {}): expected {}; {}", c.name, r.seed, e.what, e.detail))
        })
        .collect();
    out.push_str("\n## Expectations\n\n");
    if failures.is_empty() {
        out.push_str("All expectations met.\n");
    } else {
        out.push_str(&failures.join("\n"));
        out.push('\n');
    }
    out.push_str("\n## Cases\n");
    for case in &report.cases {
        out.push_str(&format!("\n### {}\n\n", case.name));
        let config: Vec<String> = case.config.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!("Configuration: {}.\n\n", config.join(", ")));
        if let Some(run) = case.runs.first() {
            let [kv, conc] = run.memory.startup_lines();
            out.push_str(&format!("Start-up: {kv}; {conc}.\n"));
            if let Some(err) = &run.startup_error {
                out.push_str(&format!("\nThe replica did not start: {err}\n\n```\n{}```\n", run.memory.table()));
            }
            if let Some(first) = &run.first_rejection {
                out.push_str(&format!("\nRejected requests: {:?}; first: {first}\n", run.rejections));
            }
        }
    }
    out.push_str(
        "\nMetrics follow `vllm bench serve`: TTFT, TPOT, E2E and queueing percentiles are exact (numpy linear \
         interpolation); ITL percentiles come from an HdrHistogram with 3 significant digits; throughputs \
         divide by the time from the start to the last completion.\n",
    );
    out
}
