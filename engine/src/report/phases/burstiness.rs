//! Phase 2: peak queue, recovery after each spike, SLO violations during and after it.

use serde_json::{json, Map, Value};

use super::*;
use crate::report::metrics::Metrics;
use crate::report::Report;
use crate::scenario::Case;
use crate::sim::SimTime;

/// The windows where the arrival rate is raised: consecutive multipliers above 1, merged.
pub(super) fn spike_windows(case: &Case) -> Vec<(f64, f64)> {
    let Some(arrival) = &case.workload.arrival else { return Vec::new() };
    let mut windows: Vec<(f64, f64)> =
        arrival.multipliers.iter().filter(|m| m.factor > 1.0).map(|m| (m.start_s, m.end_s)).collect();
    windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for w in windows {
        match merged.last_mut() {
            Some(last) if w.0 <= last.1 => last.1 = last.1.max(w.1),
            _ => merged.push(w),
        }
    }
    merged
}

/// Recovery: from the end of a spike until the fleet-wide waiting queue is back within
/// `max(2, 10% of the spike's excess peak)` of its mean over the 30 s before the first spike.
pub(super) fn burst_extras(case: &Case, metrics: &Metrics, out: &mut Map<String, Value>) {
    let samples = &metrics.queue_samples;
    let windows = spike_windows(case);
    let at = |s: f64| SimTime::from_secs_f64(s);
    let peak = samples.iter().map(|s| s.waiting).max().unwrap_or(0);
    out.insert("peak_queue_depth".into(), peak.into());
    let Some(&(first_start, _)) = windows.first() else { return };
    let before: Vec<f64> = samples
        .iter()
        .filter(|s| s.time >= at((first_start - 30.0).max(0.0)) && s.time < at(first_start))
        .map(|s| s.waiting as f64)
        .collect();
    let baseline = if before.is_empty() { 0.0 } else { before.iter().sum::<f64>() / before.len() as f64 };
    let mut worst_recovery: Option<f64> = Some(0.0);
    for &(start, end) in &windows {
        let window_peak =
            samples.iter().filter(|s| s.time >= at(start) && s.time < at(end)).map(|s| s.waiting).max().unwrap_or(0);
        let tolerance = 2f64.max(0.1 * (window_peak as f64 - baseline));
        let recovered = samples.iter().find(|s| s.time >= at(end) && s.waiting as f64 <= baseline + tolerance);
        let recovery = recovered.map(|s| s.time.as_secs_f64() - end);
        worst_recovery = match (worst_recovery, recovery) {
            (Some(w), Some(r)) => Some(w.max(r)),
            _ => None,
        };
    }
    out.insert("baseline_queue_depth".into(), number(baseline));
    out.insert("recovery_time_s".into(), worst_recovery.map_or(Value::Null, number));
    let (during, after) = slo_violations_around(case, metrics, &windows);
    out.insert("slo_violations_during_spikes".into(), during.into());
    out.insert("slo_violations_after_spikes".into(), after.into());
}

/// Requests that missed a goodput threshold, by arrival: inside a spike window, or within the
/// 60 s after one.
pub(super) fn slo_violations_around(case: &Case, metrics: &Metrics, windows: &[(f64, f64)]) -> (u64, u64) {
    let (Some(slo), Some(records)) = (case.goodput, &metrics.records) else { return (0, 0) };
    let (mut during, mut after) = (0, 0);
    for r in records {
        let ttft = r.first_token.since(r.arrival).0;
        let e2el = r.finish.since(r.arrival).0;
        let tpot = if r.output_tokens > 1 { (e2el - ttft) / (r.output_tokens as u64 - 1) } else { 0 };
        let missed = slo.ttft.is_some_and(|l| ttft > l.0)
            || slo.tpot.is_some_and(|l| tpot > l.0)
            || slo.e2el.is_some_and(|l| e2el > l.0);
        if !missed {
            continue;
        }
        let t = r.arrival.as_secs_f64();
        if windows.iter().any(|&(s, e)| t >= s && t < e) {
            during += 1;
        } else if windows.iter().any(|&(_, e)| t >= e && t < e + 60.0) {
            after += 1;
        }
    }
    (during, after)
}

pub(super) fn burstiness(report: &Report) -> Findings {
    let mut markdown = String::from(
        "Recovery time: from the end of a spike until the fleet-wide waiting queue is back within max(2 requests, 10% of the spike's excess peak) of its mean over the 30 s before the first spike; the worst spike of a case counts, and `-` means the queue never recovered before the run ended. SLO violations count requests that missed a per-request goodput threshold, by arrival: during a spike, or within 60 s after it.\n\n| case | peak queue | rejected | SLO violations during | after | recovery s |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut rows = Vec::new();
    let mut worst: Option<(String, f64)> = None;
    let mut unrecovered = Vec::new();
    for (i, case) in report.cases.iter().enumerate() {
        let get = |k: &str| mean_over_seeds(report, i, k);
        let recovery = get("recovery_time_s");
        let never = case.runs.iter().any(|r| r.metrics.get("recovery_time_s") == Some(&Value::Null));
        if never {
            unrecovered.push(case.name.clone());
        } else if let Some(r) = recovery {
            if worst.as_ref().is_none_or(|(_, w)| r > *w) {
                worst = Some((case.name.clone(), r));
            }
        }
        let cell = |v: Option<f64>, d: usize| v.map_or("-".into(), |x| format!("{x:.d$}"));
        markdown.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            case.name,
            cell(get("peak_queue_depth"), 0),
            cell(get("rejected"), 0),
            cell(get("slo_violations_during_spikes"), 0),
            cell(get("slo_violations_after_spikes"), 0),
            if never { "-".into() } else { cell(recovery, 1) }
        ));
        rows.push(json!({"case": case.name, "peak_queue_depth": get("peak_queue_depth").map(number),
            "rejected": get("rejected").map(number), "recovery_time_s": if never { Value::Null } else { recovery.map_or(Value::Null, number) }}));
    }
    let peak =
        (0..report.cases.len()).filter_map(|i| mean_over_seeds(report, i, "peak_queue_depth")).fold(0.0, f64::max);
    let headline = match (&worst, unrecovered.is_empty()) {
        (_, false) => format!("queue never recovered in: {}", unrecovered.join(", ")),
        (Some((name, r)), true) => format!("peak queue {peak:.0}; slowest recovery {r:.1} s ({name})"),
        (None, true) => format!("peak queue {peak:.0}"),
    };
    let summary = format!(
        "A fleet serving a steady load meets 5x and 10x spikes, an oscillating load and a ramp with a drop. The deepest fleet-wide queue was {peak:.0} requests; {}.",
        match (&worst, unrecovered.is_empty()) {
            (_, false) => format!("the queue did not recover before the end of the run in {}", unrecovered.join(", ")),
            (Some((name, r)), true) => format!("the slowest recovery took {r:.1} s after the end of its spike (`{name}`)"),
            (None, true) => "no spike windows were found".to_string(),
        }
    );
    let (summary, details, markdown) = match fixed_vs_autoscaled(report) {
        Some((sentence, pairs, table)) => (
            format!("{summary} {sentence}"),
            json!({"cases": rows, "fixed_vs_autoscaled": pairs}),
            format!("{markdown}\n{table}"),
        ),
        None => (summary, json!({"cases": rows}), markdown),
    };
    Findings { headline, summary: summary.clone(), details, markdown: format!("{summary}\n\n{markdown}") }
}

/// Each autoscaled case (`<burst> autoscaled`) beside its fixed-fleet case (`<burst>`): p99
/// TTFT and GPU-hours (means over seeds), and a sentence counting where autoscaling won.
/// `None` when the scenario has no such pair.
fn fixed_vs_autoscaled(report: &Report) -> Option<(String, Vec<Value>, String)> {
    let mut table = String::from("| burst | p99 TTFT ms, fixed | autoscaled | GPU-hours, fixed | autoscaled | scale-ups | peak replicas |\n|---|---:|---:|---:|---:|---:|---:|\n");
    let (mut pairs, mut faster, mut same, mut cheaper) = (Vec::new(), 0, 0, 0);
    let mut cold_start = None;
    for (i, case) in report.cases.iter().enumerate() {
        let Some(burst) = case.name.strip_suffix(" autoscaled") else { continue };
        let Some(j) = report.cases.iter().position(|c| c.name == burst && !c.config.contains_key("autoscaling_config"))
        else {
            continue;
        };
        cold_start = cold_start.or_else(|| case.config.get("cold_start_s").and_then(Value::as_f64));
        let (fixed, auto) = (|k| mean_over_seeds(report, j, k), |k| mean_over_seeds(report, i, k));
        let (fixed_ttft, auto_ttft) = (fixed("p99_ttft_ms")?, auto("p99_ttft_ms")?);
        let (fixed_hours, auto_hours) = (fixed("gpu_hours")?, auto("gpu_hours")?);
        faster += usize::from(auto_ttft < fixed_ttft);
        same += usize::from(auto_ttft == fixed_ttft);
        cheaper += usize::from(auto_hours < fixed_hours);
        let (ups, peak) = (auto("scale_ups").unwrap_or(0.0), auto("peak_replicas").unwrap_or(0.0));
        table.push_str(&format!(
            "| {burst} | {fixed_ttft:.0} | {auto_ttft:.0} | {fixed_hours:.3} | {auto_hours:.3} | {ups:.1} | {peak:.1} |\n"
        ));
        pairs.push(
            json!({"burst": burst, "fixed_p99_ttft_ms": number(fixed_ttft), "autoscaled_p99_ttft_ms": number(auto_ttft),
            "fixed_gpu_hours": number(fixed_hours), "autoscaled_gpu_hours": number(auto_hours),
            "scale_ups": number(ups), "peak_replicas": number(peak)}),
        );
    }
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len();
    let sentence = format!(
        "Fixed vs autoscaled fleet (Ray Serve's policy; a new replica serves {:.1} s after its scale-up decision): the autoscaled fleet's p99 TTFT was lower in {faster}, the same in {same} and higher in {} of {n} bursts, and it used fewer GPU-hours (cold starts and drains counted) in {cheaper} of {n}.",
        cold_start.unwrap_or(0.0),
        n - faster - same
    );
    Some((sentence, pairs, table))
}
