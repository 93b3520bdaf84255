//! `report.html`: one self-contained page (inline CSS and SVG, a ten-line inline script that
//! only checks the charts drew; nothing loaded from anywhere) that a person looks at rather
//! than reads. From top to bottom: the phase findings as text and tables, a heat map of the
//! KV room where the cases form a model x GPU grid, bar charts of throughput and cache use per
//! case, percentile ladders of each latency, CDFs and time series from `requests.csv` and
//! `timeline.csv` where the runs wrote them, and the table of every run.
//!
//! A pure function of the report and the per-run series ([`RunSeries`], read by the caller):
//! the same inputs give the same bytes. Scale, markers and labels are decided in [`svg`] and
//! [`scale`]; every name from the scenario is escaped.

mod findings;
mod scale;
pub mod series;
mod svg;

use serde_json::Value;

use self::scale::Unit;
use self::svg::{escape, Axis, Bar, Datum, Heat, Ladder, Line, Rule};
use super::{CaseReport, Report};
use crate::scenario::file::SloFile;
pub use series::{CaseSeries, Requests, RunSeries, Timeline};

/// Bar charts: (key, title, unit, always shown). The optional ones appear when some case has
/// a positive value.
const BARS: [(&str, &str, Unit, bool); 7] = [
    ("request_throughput", "Request throughput", Unit::Count("req/s"), true),
    ("output_throughput", "Output throughput", Unit::Count("tok/s"), true),
    ("rows_per_s", "Batch rows per second", Unit::Count("rows/s"), false),
    ("kv_usage_peak", "Peak KV-cache use", Unit::Fraction, false),
    ("prefix_cache_hit_rate", "Prefix-cache hit rate", Unit::Fraction, false),
    ("preemptions", "Preemptions", Unit::Count("preemptions"), false),
    ("peak_waiting", "Peak waiting requests", Unit::Count("requests"), false),
];

/// Latencies with percentile ladders: (metric stem, title).
const LATENCIES: [(&str, &str); 5] = [
    ("ttft", "Time to first token (TTFT)"),
    ("tpot", "Time per output token (TPOT)"),
    ("itl", "Inter-token latency (ITL)"),
    ("e2el", "End-to-end latency (E2EL)"),
    ("queue", "Queueing delay"),
];

/// Columns of the runs table: (key, title, decimals).
const TABLE: [(&str, &str, usize); 7] = [
    ("request_throughput", "req/s", 2),
    ("output_throughput", "out tok/s", 0),
    ("p99_ttft_ms", "TTFT p99 (ms)", 1),
    ("mean_tpot_ms", "TPOT mean (ms)", 2),
    ("p99_itl_ms", "ITL p99 (ms)", 2),
    ("p99_e2el_ms", "E2E p99 (ms)", 0),
    ("preemptions", "preemptions", 0),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}\
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}\
td.num,th.num{text-align:right}code{background:#f3f3f3;padding:0 3px;border-radius:3px}\
figure{margin:1.5em 0}figcaption{margin-bottom:4px}.note{color:#666;font-size:13px}\
svg.chart{font-size:12px;max-width:100%;height:auto}svg .grid{stroke:#e3e3e3}svg .tick{fill:#555;font-size:11px}\
svg .bar{fill:#4e79a7}svg .spread{stroke:#222;fill:none}svg .marker{fill:#b00;font-weight:bold}svg rect.marker{fill:#bbb}\
svg .line{fill:none;stroke-width:1.8}svg .ladder{stroke:#6baed6;stroke-width:3}svg .value{fill:#333}svg .axis{fill:#333}";

/// Run by the browser after load: every chart must have drawn something. Writes the count to
/// `<body data-charts>` and logs a console error per empty chart (the Chromium test reads both).
const CHECK: &str = "<script>\nwindow.addEventListener('load',function(){var c=document.querySelectorAll('svg.chart'),bad=0;\
c.forEach(function(s){var ok=false;s.querySelectorAll('.data').forEach(function(e){var b=e.getBBox();if(b.width>0||b.height>0)ok=true;});\
if(!ok){bad++;console.error('empty chart: '+s.id);}});document.body.setAttribute('data-charts',c.length+' drawn, '+bad+' empty');});\n</script>\n";

/// The page for `report`, with the CDFs and time series of `series` where it has them, and the
/// scenario's `slo` drawn on the latency CDFs.
pub fn render(report: &Report, series: &RunSeries, slo: Option<&SloFile>) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>{name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{name}</h1>\n<p>{desc}</p>\n<p class=\"note\">{cases} cases x {seeds} seeds. {summary}.</p>\n",
        name = escape(&report.scenario),
        desc = escape(&report.description),
        cases = report.cases.len(),
        seeds = report.seeds.len(),
        summary = escape(&super::markdown::summary_line(report)),
    );
    if let Some(line) = super::markdown::sureness_line(report) {
        out.push_str(&format!("<p class=\"note\">{}.</p>\n", escape(&line)));
    }
    if let Some(f) = &report.findings {
        out.push_str(&format!(
            "<h2>Findings</h2>\n<p><b>{}</b></p>\n{}",
            findings::inline(&f.headline),
            findings::to_html(&f.markdown)
        ));
    }
    if let Some(chart) = kv_heatmap(report) {
        out.push_str(&format!("<h2>Memory</h2>\n{chart}"));
    }
    out.push_str("<h2>Throughput and cache</h2>\n");
    for (i, (key, title, unit, always)) in BARS.iter().enumerate() {
        let bars: Vec<Bar> = report.cases.iter().map(|c| bar(c, key)).collect();
        let any_positive = bars.iter().any(|b| matches!(b.datum, Datum::Value(v) if v > 0.0));
        if *always || any_positive {
            out.extend(svg::bars(&format!("bars-{i}"), title, *unit, &bars));
        }
    }
    out.push_str("<h2>Latency distributions</h2>\n");
    for (stem, title) in LATENCIES {
        let rows: Vec<Ladder> = report.cases.iter().map(|c| ladder(c, stem)).collect();
        let title = format!("{title}: percentiles per case");
        out.extend(svg::ladders(&format!("ladder-{stem}"), &title, Unit::Ms, &rows));
    }
    out.push_str(&request_charts(report, series, slo));
    out.push_str(&timeline_charts(report, series));
    out.push_str(&runs_table(report));
    out.push_str(CHECK);
    out.push_str("</body>\n</html>\n");
    out
}

/// The marker of a case without a value: its outcome (`OOM`), `rejected` when every request
/// was refused, else `n/a` (a metric the case does not have, such as rows/s online).
fn marker_of(case: &CaseReport) -> String {
    match case.runs.iter().find(|r| r.outcome != "completed") {
        Some(r) if r.outcome == "oom" => "OOM".into(),
        Some(r) => r.outcome.clone(),
        None if case.runs.is_empty() => "no runs".into(),
        None => {
            let sum = |k: &str| case.runs.iter().filter_map(|r| r.metrics.get(k).and_then(Value::as_f64)).sum::<f64>();
            if sum("completed") == 0.0 && sum("rejected") > 0.0 {
                "rejected".into()
            } else {
                "n/a".into()
            }
        }
    }
}

/// Values of `key` over the seeds whose run completed.
fn completed_values(case: &CaseReport, key: &str) -> Vec<f64> {
    case.runs
        .iter()
        .filter(|r| r.outcome == "completed")
        .filter_map(|r| r.metrics.get(key).and_then(Value::as_f64))
        .filter(|v| v.is_finite())
        .collect()
}

fn bar(case: &CaseReport, key: &str) -> Bar {
    let values = completed_values(case, key);
    let (datum, spread) = match values.len() {
        0 => (Datum::Marker(marker_of(case)), None),
        n => {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (Datum::Value(values.iter().sum::<f64>() / n as f64), (n > 1).then_some((lo, hi)))
        }
    };
    Bar { label: case.name.clone(), datum, spread }
}

/// The percentile keys of a latency in a run's metrics, in increasing order: `median_` as p50
/// and every `pNN_`.
fn percentile_keys(case: &CaseReport, stem: &str) -> Vec<(f64, String, String)> {
    let Some(run) = case.runs.first() else { return Vec::new() };
    let suffix = format!("_{stem}_ms");
    let mut keys: Vec<(f64, String, String)> = run
        .metrics
        .keys()
        .filter_map(|k| {
            let head = k.strip_suffix(&suffix)?;
            let p = if head == "median" { 50.0 } else { head.strip_prefix('p')?.parse::<f64>().ok()? };
            Some((p, format!("p{}", scale::sig3(p)), k.clone()))
        })
        .collect();
    keys.sort_by(|a, b| a.0.total_cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    keys
}

fn ladder(case: &CaseReport, stem: &str) -> Ladder {
    let mut points = Vec::new();
    for (_, name, key) in percentile_keys(case, stem) {
        let values = completed_values(case, &key);
        if !values.is_empty() {
            points.push((name, values.iter().sum::<f64>() / values.len() as f64));
        }
    }
    let marker = points.is_empty().then(|| marker_of(case));
    Ladder { label: case.name.clone(), points, marker }
}

/// KV room per configuration as a heat map, when the cases vary the GPU and the model or
/// quantization and each (model, quantization, GPU) appears at most once.
fn kv_heatmap(report: &Report) -> Option<String> {
    let key = |c: &CaseReport, k: &str| c.config.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut rows: Vec<String> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    for c in &report.cases {
        let row = format!("{} {}", key(c, "model"), key(c, "quant"));
        if !rows.contains(&row) {
            rows.push(row);
        }
        if !cols.contains(&key(c, "gpu")) {
            cols.push(key(c, "gpu"));
        }
    }
    if rows.len() < 2 || cols.len() < 2 {
        return None;
    }
    let mut cells: Vec<Vec<Option<Datum>>> = vec![vec![None; cols.len()]; rows.len()];
    for c in &report.cases {
        let i = rows.iter().position(|r| *r == format!("{} {}", key(c, "model"), key(c, "quant")))?;
        let j = cols.iter().position(|g| *g == key(c, "gpu"))?;
        let run = c.runs.first()?;
        if cells[i][j].is_some() {
            return None;
        }
        cells[i][j] = Some(match run.outcome.as_str() {
            "oom" => Datum::Marker("OOM".into()),
            _ => Datum::Value(run.memory.max_concurrency),
        });
    }
    let len = report.cases.first()?.runs.first()?.memory.max_model_len;
    let title = format!(
        "KV room: concurrent {len}-token sequences that fit in the KV cache (vLLM's \"maximum concurrency\"), by model and quantization (rows) and GPU (columns)"
    );
    svg::heatmap("heat-kv", &title, &Heat { rows, cols, cells, unit: Unit::Times })
}

fn case_lines(report: &Report, series: &RunSeries, pick: impl Fn(&CaseSeries) -> Option<Vec<(f64, f64)>>) -> Vec<Line> {
    report
        .cases
        .iter()
        .zip(&series.cases)
        .filter_map(|(c, s)| pick(s).map(|points| Line { name: format!("{} (seed {})", c.name, s.seed), points }))
        .collect()
}

fn time_axis(lines: &[Line]) -> Axis {
    let end = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).fold(0.0, f64::max);
    Axis { title: "simulated time".into(), unit: Unit::Seconds, scale: scale::Scale::linear(0.0, end.max(1e-3)) }
}

fn y_axis(title: &str, unit: Unit, lines: &[Line]) -> Axis {
    let hi = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let scale = scale::Scale::choose(&[0.0, hi]);
    Axis { title: title.into(), unit, scale: scale::Scale::linear(0.0, scale.max.max(1e-9)) }
}

fn zip(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    x.iter().copied().zip(y.iter().copied()).collect()
}

/// The SLO targets on one latency's CDF: the p99 target (a ring at 0.99 the CDF must pass
/// above) and the per-request goodput threshold, each where the scenario sets it.
fn slo_rules(p99: Option<f64>, goodput: Option<f64>) -> Vec<Rule> {
    if p99.is_some() && p99 == goodput {
        return vec![Rule { x: p99.unwrap_or_default(), label: "SLO p99 and goodput".into(), fraction: Some(0.99) }];
    }
    let p99 = p99.map(|x| Rule { x, label: "SLO p99".into(), fraction: Some(0.99) });
    let goodput = goodput.map(|x| Rule { x, label: "goodput threshold".into(), fraction: None });
    p99.into_iter().chain(goodput).collect()
}

/// CDFs of TTFT and E2EL (with the SLO's lines) and arrivals, queue and completions over time,
/// from requests.csv.
fn request_charts(report: &Report, series: &RunSeries, slo: Option<&SloFile>) -> String {
    let mut out = String::new();
    let note = "from requests.csv, completed requests of each case's first seed";
    let slo = slo.cloned().unwrap_or_default();
    for (id, title, pick, rules) in [
        (
            "cdf-ttft",
            "TTFT distribution (CDF)",
            (|r: &Requests| &r.ttft_ms) as fn(&Requests) -> &Vec<f64>,
            slo_rules(slo.p99_ttft_ms, slo.ttft_ms),
        ),
        (
            "cdf-e2el",
            "End-to-end latency distribution (CDF)",
            |r: &Requests| &r.e2el_ms,
            slo_rules(slo.p99_e2el_ms, slo.e2el_ms),
        ),
    ] {
        let lines = case_lines(report, series, |s| s.requests.as_ref().map(|r| series::cdf(pick(r))));
        // The targets widen the axis so that a CDF far below (or above) its SLO still shows it.
        let values: Vec<f64> =
            lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).chain(rules.iter().map(|r| r.x)).collect();
        let x = Axis { title: "latency".into(), unit: Unit::Ms, scale: scale::Scale::choose(&values) };
        let y =
            Axis { title: "fraction of requests".into(), unit: Unit::Fraction, scale: scale::Scale::linear(0.0, 1.0) };
        let note = if rules.is_empty() { note.to_string() } else { format!("{note}; red dashed: the scenario's SLO") };
        out.extend(svg::lines(id, title, &note, &x, &y, &lines, &rules));
    }
    for (id, title, unit, pick) in [
        (
            "req-arrivals",
            "Arrivals per second",
            Unit::Count("req/s"),
            (|r: &Requests| &r.arrivals_per_s) as fn(&Requests) -> &Vec<f64>,
        ),
        ("req-waiting", "Waiting requests (arrived, not yet scheduled)", Unit::Count("requests"), |r: &Requests| {
            &r.waiting
        }),
        ("req-completions", "Completions per second", Unit::Count("req/s"), |r: &Requests| &r.completions_per_s),
    ] {
        let lines = case_lines(report, series, |s| s.requests.as_ref().map(|r| zip(&r.time_s, pick(r))));
        let (x, y) = (time_axis(&lines), y_axis(title, unit, &lines));
        out.extend(svg::lines(id, title, note, &x, &y, &lines, &[]));
    }
    if out.is_empty() {
        out
    } else {
        format!("<h2>Requests over time</h2>\n{out}")
    }
}

/// Queue, running batch, KV use and throughput over time, from timeline.csv.
fn timeline_charts(report: &Report, series: &RunSeries) -> String {
    let mut out = String::new();
    let note = "from timeline.csv of each case's first seed, the largest sample in each interval (with several replicas, of the replica stepping at each sample)";
    for (id, title, unit, pick) in [
        (
            "tl-waiting",
            "Waiting queue",
            Unit::Count("requests"),
            (|t: &Timeline| &t.waiting) as fn(&Timeline) -> &Vec<f64>,
        ),
        ("tl-running", "Running batch", Unit::Count("sequences"), |t: &Timeline| &t.running),
        ("tl-kv", "KV-cache use", Unit::Fraction, |t: &Timeline| &t.kv_usage),
        ("tl-throughput", "Completions per second", Unit::Count("req/s"), |t: &Timeline| &t.completed_per_s),
    ] {
        let lines = case_lines(report, series, |s| s.timeline.as_ref().map(|t| zip(&t.time_s, pick(t))));
        let x = time_axis(&lines);
        let y = match unit {
            Unit::Fraction => Axis { title: title.into(), unit, scale: scale::Scale::linear(0.0, 1.0) },
            _ => y_axis(title, unit, &lines),
        };
        out.extend(svg::lines(id, title, note, &x, &y, &lines, &[]));
    }
    if out.is_empty() {
        out
    } else {
        format!("<h2>Engine state over time</h2>\n{out}")
    }
}

fn runs_table(report: &Report) -> String {
    let mut out = String::from("<h2>Runs</h2>\n<table>\n<tr><th>case</th><th>seed</th><th>outcome</th>");
    for (_, title, _) in TABLE {
        out.push_str(&format!("<th class=\"num\">{}</th>", escape(title)));
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
            for (key, _, decimals) in TABLE {
                out.push_str(&format!("<td class=\"num\">{}</td>", super::markdown::cell(&run.metrics, key, decimals)));
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</table>\n");
    out
}

/// A bar chart for [`render_page`]: `(label, value)` pairs, `None` drawn as the marker `n/a`.
pub struct PageChart {
    pub id: String,
    pub title: String,
    /// The values' unit name (`$/hour`, `req/s`).
    pub unit: &'static str,
    pub bars: Vec<(String, Option<f64>)>,
}

/// A self-contained page from a markdown report (the subset the findings use) and bar charts
/// placed after its first section: how `symbiote plan` writes report.html.
pub fn render_page(title: &str, markdown: &str, charts: &[PageChart]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    // The markdown's own title is the page's <h1>.
    let body: String = markdown.lines().skip_while(|l| l.starts_with("# ")).collect::<Vec<_>>().join("\n");
    let (first, rest) = body.split_once("\n## ").map_or((body.as_str(), ""), |(a, b)| (a, b));
    out.push_str(&findings::to_html(first));
    for chart in charts {
        let bars: Vec<Bar> = chart
            .bars
            .iter()
            .map(|(label, value)| Bar {
                label: label.clone(),
                datum: value.map_or(Datum::Marker("n/a".into()), Datum::Value),
                spread: None,
            })
            .collect();
        out.extend(svg::bars(&chart.id, &chart.title, Unit::Count(chart.unit), &bars));
    }
    if !rest.is_empty() {
        out.push_str(&findings::to_html(&format!("## {rest}")));
    }
    out.push_str(CHECK);
    out.push_str("</body>\n</html>\n");
    out
}
