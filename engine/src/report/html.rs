//! `report.html`: one self-contained page (no scripts, no external files) with a bar chart per
//! headline metric across cases and the per-case table. A pure function of the report.

use serde_json::Value;

use super::Report;

/// Charted metrics: (key, title, unit, higher is better).
const CHARTS: [(&str, &str, &str, bool); 5] = [
    ("request_throughput", "Throughput", "req/s", true),
    ("output_throughput", "Output throughput", "tok/s", true),
    ("p99_ttft_ms", "TTFT p99", "ms", false),
    ("mean_tpot_ms", "TPOT mean", "ms", false),
    ("p99_e2el_ms", "E2E latency p99", "ms", false),
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn mean(report: &Report, case: usize, key: &str) -> Option<f64> {
    let values: Vec<f64> =
        report.cases[case].runs.iter().filter_map(|r| r.metrics.get(key).and_then(Value::as_f64)).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// A horizontal bar chart of one metric, one bar per case.
fn chart(report: &Report, key: &str, title: &str, unit: &str, higher_is_better: bool) -> String {
    let values: Vec<Option<f64>> = (0..report.cases.len()).map(|i| mean(report, i, key)).collect();
    let max = values.iter().flatten().copied().fold(0.0, f64::max);
    if max <= 0.0 {
        return String::new();
    }
    let (label_w, bar_w, row_h) = (260.0, 360.0, 22.0);
    let height = row_h * report.cases.len() as f64 + 30.0;
    let mut svg = format!(
        "<h3>{} ({unit}, {} is better)</h3>\n<svg width=\"{}\" height=\"{height}\" role=\"img\">\n",
        escape(title),
        if higher_is_better { "higher" } else { "lower" },
        label_w + bar_w + 90.0
    );
    for (i, (case, value)) in report.cases.iter().zip(&values).enumerate() {
        let y = 10.0 + row_h * i as f64;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text>\n",
            label_w - 6.0,
            y + 14.0,
            escape(&case.name)
        ));
        if let Some(v) = value {
            let w = (v / max * bar_w).max(1.0);
            svg.push_str(&format!(
                "<rect x=\"{label_w}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"#4a7ab8\"/>\n<text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>\n",
                y + 2.0,
                row_h - 6.0,
                label_w + w + 4.0,
                y + 14.0,
                if *v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

pub fn render(report: &Report) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{name}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>\n</head>\n<body>\n<h1>{name}</h1>\n<p>{desc}</p>\n",
        name = escape(&report.scenario),
        desc = escape(&report.description)
    );
    if let Some(findings) = &report.findings {
        out.push_str(&format!(
            "<h2>Findings</h2>\n<p><b>{}</b></p>\n<p>{}</p>\n",
            escape(&findings.headline),
            escape(&findings.summary)
        ));
    }
    out.push_str(&format!(
        "<h2>Cases</h2>\n<p>{} cases x {} seeds; bars are means over seeds.</p>\n",
        report.cases.len(),
        report.seeds.len()
    ));
    for (key, title, unit, higher) in CHARTS {
        out.push_str(&chart(report, key, title, unit, higher));
    }
    out.push_str(&format!("<h2>Runs</h2>\n<p>{}.</p>\n", escape(&super::markdown::summary_line(report))));
    out.push_str("<table>\n<tr><th>case</th><th>seed</th><th>outcome</th>");
    for (_, title, unit, _) in CHARTS {
        out.push_str(&format!("<th>{} ({unit})</th>", escape(title)));
    }
    out.push_str("</tr>\n");
    for case in &report.cases {
        for run in &case.runs {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td>",
                escape(&case.name),
                run.seed,
                escape(&run.outcome)
            ));
            for (key, ..) in CHARTS {
                out.push_str(&format!("<td>{}</td>", super::markdown::cell(&run.metrics, key, 2)));
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}
