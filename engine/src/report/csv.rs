//! CSV renderings: `summary.csv` (one row per case and seed, the same metric names as the
//! JSON), `timeline.csv` and `requests.csv` (one per case and seed). Pure functions.

use std::fmt::Write;

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
    // Numbers only, so no cell needs quoting: the rows are written as the csv writer would
    // write them, without a `String` per cell (this file was 5% of the six phases' time,
    // issue 15).
    let mut out = String::with_capacity(64 + sorted.len() * 72);
    out.push_str("id,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,output_tokens,cached_tokens,preemptions,replica\n");
    for r in sorted {
        write!(out, "{},", r.seq_no).expect("write to a String");
        for time in [r.arrival, r.first_scheduled, r.first_token, r.finish] {
            push_secs6(&mut out, time.0);
            out.push(',');
        }
        writeln!(
            out,
            "{},{},{},{},{}",
            r.prompt_tokens, r.output_tokens, r.cached_prompt_tokens, r.preemptions, r.replica
        )
        .expect("write to a String");
    }
    out
}

/// Times below this many nanoseconds (about 11.6 days) are printed from integers.
const EXACT_BELOW_NS: u64 = 1_000_000_000_000_000;

/// Appends `format!("{:.6}", ns as f64 / 1e9)`, the seconds to six decimals, from integers.
/// The division is correctly rounded and the quotient below 1e6 s, so the `f64` lies within
/// 1e6 * 2^-53 s (0.12 ns) of `ns / 1e9`; unless the nanoseconds past the microsecond are
/// exactly 500 (a decimal tie, which the `f64` breaks by its binary error), rounding the `f64`
/// to the microsecond gives the integer's rounding, as a remainder other than 500 lies at least
/// 1 ns from the tie. Ties and longer times take the float formatting itself.
fn push_secs6(out: &mut String, ns: u64) {
    let (micros, rest) = (ns / 1000, ns % 1000);
    if rest == 500 || ns >= EXACT_BELOW_NS {
        write!(out, "{:.6}", ns as f64 / 1e9).expect("write to a String");
        return;
    }
    let micros = micros + u64::from(rest > 500);
    write!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000).expect("write to a String");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    // See: issue 15
    /// The integer rendering of seconds equals the float formatting it replaces, on ties,
    /// near-ties, round numbers, carries into the next second and random times up to the bound.
    #[test]
    fn issue_15_integer_seconds_equal_the_float_formatting() {
        let mut values: Vec<u64> = vec![0, 1, 499, 500, 501, 999, 999_999_499, 999_999_500, 999_999_501, 999_999_999];
        for base in [0u64, 1_000_000_000, 123_456_789_000, 86_400_000_000_000, EXACT_BELOW_NS - 1_000_000] {
            values.extend((0..2000).map(|r| base + r));
        }
        values.push(EXACT_BELOW_NS - 1);
        values.push(EXACT_BELOW_NS + 1_234_567);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        values.extend((0..200_000).map(|_| rng.gen_range(0..EXACT_BELOW_NS)));
        values.extend((0..200_000).map(|_| rng.gen_range(0..10_000_000_000_000u64)));
        let mut out = String::new();
        for ns in values {
            out.clear();
            push_secs6(&mut out, ns);
            assert_eq!(out, format!("{:.6}", ns as f64 / 1e9), "{ns} ns");
        }
    }
}
