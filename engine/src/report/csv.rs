//! CSV renderings: `summary.csv` (one row per case and seed, the same metric names as the
//! JSON), `timeline.csv` and `requests.csv` (one per case and seed). Pure functions.

use serde_json::Value;

use super::metrics::{RequestRecord, TimelineRow};
use super::Report;

fn writer() -> ::csv::Writer<Vec<u8>> {
    ::csv::WriterBuilder::new().terminator(::csv::Terminator::Any(b'\n')).from_writer(Vec::new())
}

fn finish(w: ::csv::Writer<Vec<u8>>) -> String {
    String::from_utf8(w.into_inner().expect("in-memory writer")).expect("csv is utf-8")
}

fn value_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One row per (case, seed): identity, outcome, then every metric key of the first run.
pub fn summary(report: &Report) -> String {
    let keys: Vec<String> = report
        .cases
        .iter()
        .flat_map(|c| &c.runs)
        .next()
        .map(|r| r.metrics.keys().cloned().collect())
        .unwrap_or_default();
    let mut w = writer();
    let mut header = vec!["scenario".to_string(), "case".into(), "seed".into(), "outcome".into()];
    header.extend(keys.iter().cloned());
    header.push("expectations_failed".into());
    w.write_record(&header).expect("csv row");
    for case in &report.cases {
        for run in &case.runs {
            let mut row = vec![report.scenario.clone(), case.name.clone(), run.seed.to_string(), run.outcome.clone()];
            row.extend(keys.iter().map(|k| value_cell(run.metrics.get(k))));
            row.push(run.expectations.iter().filter(|e| !e.pass).count().to_string());
            w.write_record(&row).expect("csv row");
        }
    }
    finish(w)
}

/// The engine state over time; an autoscaled run's rows add the fleet's replicas up,
/// starting and draining and a row per scale event (`scale_event` names it, empty on the
/// sampled rows). A fixed fleet's file keeps the first eight columns only.
pub fn timeline(rows: &[TimelineRow]) -> String {
    let mut w = writer();
    let scaled = rows.iter().any(|r| r.fleet.is_some());
    let mut header =
        vec!["time_s", "replica", "waiting", "running", "scheduled_tokens", "kv_usage", "preemptions", "completed"];
    if scaled {
        header.extend(["replicas_up", "replicas_starting", "replicas_draining", "scale_event"]);
    }
    w.write_record(&header).expect("csv row");
    for r in rows {
        let mut row = vec![
            format!("{:.6}", r.time.as_secs_f64()),
            r.replica.to_string(),
            r.waiting.to_string(),
            r.running.to_string(),
            r.scheduled_tokens.to_string(),
            format!("{:.6}", r.kv_usage),
            r.preemptions.to_string(),
            r.completed.to_string(),
        ];
        if scaled {
            let c = r.fleet.unwrap_or_default();
            row.extend([c.up.to_string(), c.starting.to_string(), c.draining.to_string()]);
            row.push(r.event.unwrap_or("").to_string());
        }
        w.write_record(&row).expect("csv row");
    }
    finish(w)
}

pub fn requests(records: &[RequestRecord]) -> String {
    let mut sorted: Vec<&RequestRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.seq_no);
    let mut w = writer();
    w.write_record([
        "id",
        "arrival_s",
        "first_scheduled_s",
        "first_token_s",
        "finish_s",
        "prompt_tokens",
        "output_tokens",
        "cached_tokens",
        "preemptions",
        "replica",
    ])
    .expect("csv row");
    for r in sorted {
        w.write_record([
            r.seq_no.to_string(),
            format!("{:.6}", r.arrival.as_secs_f64()),
            format!("{:.6}", r.first_scheduled.as_secs_f64()),
            format!("{:.6}", r.first_token.as_secs_f64()),
            format!("{:.6}", r.finish.as_secs_f64()),
            r.prompt_tokens.to_string(),
            r.output_tokens.to_string(),
            r.cached_prompt_tokens.to_string(),
            r.preemptions.to_string(),
            r.replica.to_string(),
        ])
        .expect("csv row");
    }
    finish(w)
}
