//! `report.md`: the tables a person reads first. A pure function of the report: one row per
//! case (means over seeds, with the 95% confidence half-width when there are several), the
//! expectations that failed, then per-case details with one row per seed.

use serde_json::{Map, Value};

use super::{CaseReport, Report};

/// Headline columns: (metric key, column title, decimals). The first four are the request
/// accounting: arrived = done + rejected + unfinished; the last two the cost, `-` when the GPU
/// has no price.
const HEADLINE: [(&str, &str, usize); 14] = [
    ("num_prompts", "arrived", 0),
    ("completed", "done", 0),
    ("rejected", "rejected", 0),
    ("unfinished", "unfinished", 0),
    ("request_throughput", "req/s", 2),
    ("output_throughput", "out tok/s", 0),
    ("mean_ttft_ms", "TTFT mean ms", 1),
    ("p99_ttft_ms", "TTFT p99 ms", 1),
    ("mean_tpot_ms", "TPOT mean ms", 2),
    ("p99_itl_ms", "ITL p99 ms", 2),
    ("p99_e2el_ms", "E2E p99 ms", 0),
    ("preemptions", "preempt", 0),
    ("cost_usd_per_hour", "$/h", 2),
    ("cost_usd_per_million_output_tokens", "$/M out tok", 3),
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

fn header(first: &str) -> String {
    let mut out = format!("| {first} |");
    for (_, title, _) in HEADLINE {
        out.push_str(&format!(" {title} |"));
    }
    let fixed = first.matches('|').count() + 1;
    out.push_str(&format!("\n|{}", "---|".repeat(fixed)));
    out.push_str(&"---:|".repeat(HEADLINE.len()));
    out.push('\n');
    out
}

/// One row per (case, seed) with the headline metrics (printed by `symbiote run`).
pub fn table(report: &Report) -> String {
    let mut out = header("case | seed | outcome");
    for case in &report.cases {
        for run in &case.runs {
            out.push_str(&format!("| {} | {} | {} |", md_text(&case.name), run.seed, run.outcome));
            for (key, _, decimals) in HEADLINE {
                out.push_str(&format!(" {} |", cell(&run.metrics, key, decimals)));
            }
            out.push('\n');
        }
    }
    out
}

/// CPU KV offload columns: (metric key, column title, decimals).
const OFFLOAD: [(&str, &str, usize); 7] = [
    ("offload_gpu_hit_rate", "GPU hit", 3),
    ("offload_cpu_hit_rate", "CPU hit", 3),
    ("offload_miss_rate", "miss", 3),
    ("offload_loads", "loads", 0),
    ("offload_loaded_bytes", "loaded bytes", 0),
    ("offload_stored_bytes", "stored bytes", 0),
    ("offload_evicted_blocks", "CPU evictions", 0),
];

/// Where prompt tokens came from when a case has a CPU KV tier, one row per (case, seed):
/// the share of admitted tokens found in the GPU prefix cache, loaded from the CPU tier or
/// computed, and what crossed the host link. `None` when no run has a CPU tier.
pub fn offload_table(report: &Report) -> Option<String> {
    let runs = || report.cases.iter().flat_map(|c| c.runs.iter().map(move |r| (c, r)));
    if !runs().any(|(_, r)| r.metrics.contains_key("offload_cpu_hit_rate")) {
        return None;
    }
    let mut out = String::from("| case | seed | CPU blocks |");
    for (_, title, _) in OFFLOAD {
        out.push_str(&format!(" {title} |"));
    }
    out.push_str(&format!("\n|---|---|---:|{}\n", "---:|".repeat(OFFLOAD.len())));
    for (case, run) in runs() {
        out.push_str(&format!(
            "| {} | {} | {} |",
            md_text(&case.name),
            run.seed,
            cell(&run.metrics, "offload_cpu_blocks", 0)
        ));
        for (key, _, decimals) in OFFLOAD {
            out.push_str(&format!(" {} |", cell(&run.metrics, key, decimals)));
        }
        out.push('\n');
    }
    Some(out)
}

/// How sure the report's latencies are, from each case's GPU calibration: `None` when no case
/// says (constant step times). Lists the GPUs on each side with their error bands.
pub fn sureness_line(report: &Report) -> Option<String> {
    use std::collections::BTreeMap;
    // (kernel tables, calibrated roofline, uncalibrated roofline): GPU -> band.
    let mut groups: [BTreeMap<String, f64>; 3] = Default::default();
    for case in &report.cases {
        let (Some(gpu), Some(sure), Some(band)) = (
            case.config.get("gpu").and_then(Value::as_str),
            case.config.get("step_time_calibrated").and_then(Value::as_bool),
            case.config.get("error_band").and_then(Value::as_f64),
        ) else {
            continue;
        };
        let kernels = case.config.get("step_time_model").and_then(Value::as_str) == Some("kernels");
        let group = if kernels {
            0
        } else if sure {
            1
        } else {
            2
        };
        groups[group].insert(gpu.to_string(), band);
    }
    let list = |m: &BTreeMap<String, f64>| {
        let band = m.values().fold(0.0f64, |a, &b| a.max(b));
        (m.keys().cloned().collect::<Vec<_>>().join(", "), band * 100.0)
    };
    let mut parts = Vec::new();
    if !groups[0].is_empty() {
        let (gpus, band) = list(&groups[0]);
        parts.push(format!(
            "step times from kernel timings measured on {gpus} plus the shared host profile (error band {band:.0}% at light to moderate load)"
        ));
    }
    if !groups[1].is_empty() {
        let (gpus, band) = list(&groups[1]);
        parts.push(format!(
            "step times calibrated to measured vLLM runs on {gpus} (error band {band:.0}% at light to moderate load)"
        ));
    }
    if !groups[2].is_empty() {
        let (gpus, band) = list(&groups[2]);
        parts.push(format!(
            "UNCALIBRATED on {gpus}: datasheet peaks with efficiencies borrowed from kernel tables, off by up to {band:.0}% on measured runs of uncalibrated GPUs"
        ));
    }
    // At saturation: which GPUs' sustained compute was fitted on their own rate-inf runs, which
    // carried over from those fits, and which have none (vLLM cases only).
    let mut saturation: [std::collections::BTreeSet<String>; 3] = Default::default();
    for case in &report.cases {
        let Some(gpu) = case.config.get("gpu").and_then(Value::as_str) else { continue };
        if case.config.get("engine").and_then(Value::as_str) != Some("vllm") || case.config.get("error_band").is_none()
        {
            continue;
        }
        let basis = case.config.get("sustained_basis").and_then(Value::as_str);
        let group = match basis {
            Some(b) if b.starts_with("fitted") => 0,
            Some(_) => 1,
            None => 2,
        };
        saturation[group].insert(gpu.to_string());
    }
    let names = |s: &std::collections::BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    // "l40s has ... its" or "h200, l40s have ... their".
    let agree = |s: &std::collections::BTreeSet<String>| if s.len() > 1 { ("have", "their") } else { ("has", "its") };
    if !saturation[0].is_empty() {
        parts.push(format!(
            "at saturation, compute-bound steps on {} run at the sustained fraction fitted on measured rate-inf vLLM runs \
             (README, Fidelity: median capacity error under 10% on the fitted runs)",
            names(&saturation[0])
        ));
    }
    if !saturation[1].is_empty() {
        let (has, its) = agree(&saturation[1]);
        parts.push(format!(
            "at saturation, {} {has} no measured runs: {its} sustained fraction is carried over from the A100/H100 \
             fits (same die, or by board power; left one GPU out, the rule missed capacity by up to 17%)",
            names(&saturation[1])
        ));
    }
    if !saturation[2].is_empty() {
        let (has, its) = agree(&saturation[2]);
        parts.push(format!(
            "at saturation, {} {has} no sustained fraction (no board power in the catalog): {its} capacity is likely \
             overstated, as the A100's and H100's were by up to 2x before their fits",
            names(&saturation[2])
        ));
    }
    // Short requests near saturation: the fewest tokens per request over the vLLM cases busy
    // enough for the measured shortfall to matter.
    let short = report
        .cases
        .iter()
        .filter(|c| c.config.get("engine").and_then(Value::as_str) == Some("vllm"))
        .flat_map(|c| &c.runs)
        .filter_map(|r| {
            let m = |k: &str| r.metrics.get(k).and_then(Value::as_f64);
            let busy = m("busy_fraction")?;
            let tokens = (m("total_input_tokens")? + m("total_output_tokens")?) / m("completed")?;
            (busy >= crate::report::caveats::NEAR_SATURATION_BUSY && tokens.is_finite()).then_some(tokens)
        })
        .fold(None, |least: Option<f64>, t| Some(least.map_or(t, |l| l.min(t))));
    if let Some(line) = short.and_then(crate::report::caveats::short_requests) {
        parts.push(line);
    }
    // Weight-only quantization: each (quant, GPU) pair of the vLLM cases that runs one.
    let catalog = crate::hardware::active_catalog();
    let weight_only: std::collections::BTreeSet<String> = report
        .cases
        .iter()
        .filter(|c| c.config.get("engine").and_then(Value::as_str) == Some("vllm"))
        .filter_map(|c| {
            let gpu = catalog.gpu(c.config.get("gpu")?.as_str()?).ok()?;
            let quant: crate::hardware::Quant = serde_json::from_value(c.config.get("quant")?.clone()).ok()?;
            quant.weight_only(gpu).then(|| format!("{quant} on {}", gpu.name))
        })
        .collect();
    if !weight_only.is_empty() {
        parts.push(crate::report::caveats::weight_only(&weight_only.into_iter().collect::<Vec<_>>()));
    }
    (!parts.is_empty()).then(|| format!("How sure: {}", parts.join("; ")))
}

/// One line on where every request went and how the runs ended, over all runs of the report:
/// `requests: 120 arrived = 100 completed + 15 rejected (15 prompt_too_long) + 5 unfinished;
/// 0 cut at max_model_len; runs: 1 of 2 completed (big seed 2: stalled)`.
pub fn summary_line(report: &Report) -> String {
    let runs: Vec<(&str, &super::RunReport)> =
        report.cases.iter().flat_map(|c| c.runs.iter().map(move |r| (c.name.as_str(), r))).collect();
    let total = |key: &str| runs.iter().filter_map(|(_, r)| r.metrics.get(key).and_then(Value::as_u64)).sum::<u64>();
    let mut reasons = std::collections::BTreeMap::new();
    for (_, run) in &runs {
        for (reason, n) in &run.rejections {
            *reasons.entry(reason.as_str()).or_insert(0u64) += n;
        }
    }
    let reasons = match reasons.is_empty() {
        true => String::new(),
        false => format!(" ({})", reasons.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")),
    };
    let not_completed: Vec<String> = runs
        .iter()
        .filter(|(_, r)| r.outcome != "completed")
        .map(|(case, r)| format!("{case} seed {}: {}", r.seed, r.outcome))
        .collect();
    let listed = match not_completed.len() {
        0 => String::new(),
        n if n <= 3 => format!(" ({})", not_completed.join(", ")),
        n => format!(" ({}, and {} more)", not_completed[..3].join(", "), n - 3),
    };
    format!(
        "requests: {} arrived = {} completed + {} rejected{reasons} + {} unfinished; {} cut at max_model_len; runs: {} of {} completed{listed}",
        total("num_prompts"),
        total("completed"),
        total("rejected"),
        total("unfinished"),
        total("length_capped"),
        runs.len() - not_completed.len(),
        runs.len()
    )
}

/// "12 / 12" style counts, or the single outcome when all seeds agree.
fn outcomes(case: &CaseReport) -> String {
    let first = case.runs.first().map_or("-", |r| r.outcome.as_str());
    if case.runs.iter().all(|r| r.outcome == first) {
        first.to_string()
    } else {
        let mut counts = std::collections::BTreeMap::new();
        for r in &case.runs {
            *counts.entry(r.outcome.as_str()).or_insert(0) += 1;
        }
        counts.iter().map(|(k, v)| format!("{k} x{v}")).collect::<Vec<_>>().join(", ")
    }
}

fn slo_status(case: &CaseReport) -> String {
    let known: Vec<bool> = case.runs.iter().filter_map(|r| r.slo_met).collect();
    if known.is_empty() {
        return "-".into();
    }
    let met = known.iter().filter(|&&m| m).count();
    match (met, known.len()) {
        (m, n) if m == n => "met".into(),
        (0, _) => "missed".into(),
        (m, n) => format!("met {m}/{n}"),
    }
}

/// The mean over seeds, with the 95% half-width when there is spread.
fn mean_cell(case: &CaseReport, key: &str, decimals: usize) -> String {
    let values: Vec<f64> = case.runs.iter().filter_map(|r| r.metrics.get(key).and_then(Value::as_f64)).collect();
    match crate::report::stats::seed_stats(&values) {
        None => "-".into(),
        Some(s) if s.n > 1 && s.ci95 > 0.0 => format!("{:.*} ± {:.*}", decimals, s.mean, decimals, s.ci95),
        Some(s) => format!("{:.*}", decimals, s.mean),
    }
}

pub fn render(report: &Report) -> String {
    let mut out = format!("# {}\n\n", report.scenario);
    if !report.description.is_empty() {
        out.push_str(&format!("{}\n\n", report.description));
    }
    out.push_str(&format!(
        "{} cases x {} seeds ({}). Values are means over seeds; ± is the 95% confidence half-width (Student t). \
         Percentiles of TTFT, TPOT, E2EL and queueing are exact (numpy's linear interpolation over every request), \
         and ITL's over every inter-token gap, as `vllm bench serve` pools them, unless the end of this page says \
         a run went beyond its exact-sample limit.\n\n",
        report.cases.len(),
        report.seeds.len(),
        report.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
    ));
    out.push_str(&format!("{}.\n\n", summary_line(report)));
    if let Some(line) = sureness_line(report) {
        out.push_str(&format!("{line}.\n\n"));
    }
    if let Some(findings) = &report.findings {
        out.push_str(&format!("## Findings\n\n{}\n\n", findings.markdown.trim_end()));
        out.push_str("## All cases\n\n");
    }
    out.push_str(&header("case | outcome | SLO"));
    for case in &report.cases {
        out.push_str(&format!("| {} | {} | {} |", md_text(&case.name), outcomes(case), slo_status(case)));
        for (key, _, decimals) in HEADLINE {
            out.push_str(&format!(" {} |", mean_cell(case, key, decimals)));
        }
        out.push('\n');
    }
    if let Some(table) = offload_table(report) {
        out.push_str(
            "\n## CPU KV offload\n\nShares of the tokens of admitted requests (re-admissions after preemption \
             included) found in the GPU prefix cache, loaded from the CPU tier over the host link, or computed; \
             bytes over all tensor-parallel ranks.\n\n",
        );
        out.push_str(&table);
    }
    out.push_str("\n## Expectations\n\n");
    let failures: Vec<String> = report
        .cases
        .iter()
        .flat_map(|c| c.runs.iter().map(move |r| (c, r)))
        .flat_map(|(c, r)| {
            r.expectations
                .iter()
                .filter(|e| !e.pass)
                .map(move |e| format!("- {} (seed {}): expected {}; {}", md_text(&c.name), r.seed, e.what, e.detail))
        })
        .collect();
    let checked: usize = report.cases.iter().flat_map(|c| &c.runs).map(|r| r.expectations.len()).sum();
    if failures.is_empty() {
        out.push_str(&format!("All {checked} expectations met.\n"));
    } else {
        out.push_str(&format!("{} of {checked} expectations failed:\n\n{}\n", failures.len(), failures.join("\n")));
    }
    measured_section(&mut out, report);
    out.push_str("\n## Cases\n");
    for case in &report.cases {
        details(&mut out, case);
    }
    let streamed: Vec<&str> = report
        .percentile_method
        .iter()
        .filter(|(_, m)| **m == super::samples::STREAMING_METHOD)
        .map(|(metric, _)| *metric)
        .collect();
    if streamed.is_empty() {
        out.push_str(
            "\nMetrics follow `vllm bench serve`: TTFT, TPOT, ITL, E2E and queueing percentiles are exact (numpy \
             linear interpolation; ITL over every inter-token gap); throughputs divide by the time from the start \
             to the last completion.\n",
        );
    } else {
        out.push_str(&format!(
            "\nMetrics follow `vllm bench serve`. Percentiles: streaming for {} (a run had more samples than its \
             exact-sample limit, `--exact-percentiles`): HdrHistogram, 3 significant digits, nearest rank, \
             relative error <= 0.1%, with means and std exact up to rounding; the other latencies are exact \
             (numpy linear interpolation); throughputs divide by the time from the start to the last completion.\n",
            streamed.join(", ")
        ));
    }
    out
}

/// Simulated means beside the measured values that cases carry (`expect.measured`).
fn measured_section(out: &mut String, report: &Report) {
    let rows: Vec<String> = report
        .cases
        .iter()
        .flat_map(|case| {
            case.measured.iter().map(move |(key, &measured)| {
                let values: Vec<f64> =
                    case.runs.iter().filter_map(|r| r.metrics.get(key).and_then(Value::as_f64)).collect();
                let simulated = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
                let error = simulated.map_or("-".into(), |s| format!("{:+.1}%", 100.0 * (s - measured) / measured));
                format!(
                    "| {} | {key} | {measured} | {} | {error} |",
                    md_text(&case.name),
                    simulated.map_or("-".into(), |s| format!("{s:.3}"))
                )
            })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "\n## Measured vs simulated\n\n| case | metric | measured | simulated | error |\n|---|---|---:|---:|---:|\n",
    );
    out.push_str(&rows.join("\n"));
    out.push('\n');
}

fn details(out: &mut String, case: &CaseReport) {
    out.push_str(&format!("\n### {}\n\n", md_text(&case.name)));
    let config: Vec<String> = case.config.iter().map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!("Configuration: {}.\n\n", config.join(", ")));
    if let Some(line) = cost_line(case) {
        out.push_str(&format!("{line}\n\n"));
    }
    if let Some(line) = scaling_line(case) {
        out.push_str(&format!("{line}\n\n"));
    }
    if let Some(run) = case.runs.first() {
        let [kv, conc] = run.memory.startup_lines();
        out.push_str(&format!("Start-up: {kv}; {conc}.\n"));
        if let Some(err) = &run.startup_error {
            out.push_str(&format!("\nThe replica did not start: {err}\n\n```\n{}```\n", run.memory.table()));
        }
        if let Some(first) = &run.first_rejection {
            let counts: Vec<String> = run.rejections.iter().map(|(k, v)| format!("{v} {k}")).collect();
            out.push_str(&format!("\nRejected requests (seed {}): {}; first: {first}\n", run.seed, counts.join(", ")));
        }
        if let Some(d) = &run.disaggregation {
            out.push_str(&disagg_line(run.seed, d));
        }
    }
    if let Some(run) = case.runs.first().filter(|r| r.replicas.len() > 1) {
        out.push_str(&format!(
            "\nPer replica (seed {}):\n\n| replica | completed | steps | busy fraction | idle s | KV peak |\n|---:|---:|---:|---:|---:|---:|\n",
            run.seed
        ));
        for r in &run.replicas {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                cell(r, "replica", 0),
                cell(r, "completed", 0),
                cell(r, "steps", 0),
                cell(r, "busy_fraction", 3),
                cell(r, "idle_s", 1),
                cell(r, "kv_usage_peak", 3)
            ));
        }
    }
    if case.runs.len() > 1 {
        out.push('\n');
        out.push_str(&header("seed | outcome"));
        for run in &case.runs {
            out.push_str(&format!("| {} | {} |", run.seed, run.outcome));
            for (key, _, decimals) in HEADLINE {
                out.push_str(&format!(" {} |", cell(&run.metrics, key, decimals)));
            }
            out.push('\n');
        }
    }
}

/// `Cost: $20.00 per hour (8 GPUs at $2.50 per GPU-hour: <basis>); $10.000 per million output
/// tokens; job $30.0000.` from the case's price and the means over seeds; `None` unpriced.
fn cost_line(case: &CaseReport) -> Option<String> {
    let usd = case.config.get("usd_per_gpu_hour")?.as_f64()?;
    let basis = case.config.get("price_basis").and_then(Value::as_str).unwrap_or("");
    let mean = |key: &str| mean_cell(case, key, 2);
    // An autoscaled fleet's GPUs are a mean over the run.
    let gpus = mean_cell(case, "gpus", if case.config.contains_key("autoscaling_config") { 2 } else { 0 });
    let mut line =
        format!("Cost: ${} per hour ({gpus} GPUs at ${usd} per GPU-hour: {basis})", mean("cost_usd_per_hour"));
    line.push_str(&format!(
        "; ${} per million output tokens",
        mean_cell(case, "cost_usd_per_million_output_tokens", 3)
    ));
    if case.runs.iter().any(|r| r.metrics.contains_key("job_cost_usd")) {
        line.push_str(&format!("; job ${}", mean_cell(case, "job_cost_usd", 4)));
    }
    line.push('.');
    Some(line)
}

/// `Autoscaling: 2 scale-ups, ...` for an autoscaled case (means over seeds); `None` otherwise.
fn scaling_line(case: &CaseReport) -> Option<String> {
    let cold_start = case.config.get("cold_start_s")?.as_f64()?;
    Some(format!(
        "Autoscaling (Ray Serve's policy, means over seeds): {} scale-ups, {} scale-downs, {} replicas started, \
         peak {} replicas up; {} GPU-hours, counted from each scale-up decision (the GPUs are held \
         through the {cold_start:.1} s cold start) until the replica left or the last request finished.",
        mean_cell(case, "scale_ups", 1),
        mean_cell(case, "scale_downs", 1),
        mean_cell(case, "replicas_started", 1),
        mean_cell(case, "peak_replicas", 1),
        mean_cell(case, "gpu_hours", 4),
    ))
}

/// One line on a disaggregated run's pools and transfers (`report::disagg`).
fn disagg_line(seed: u64, d: &serde_json::Map<String, Value>) -> String {
    let f = |key: &str, decimals: usize| {
        d.get(key).and_then(Value::as_f64).map_or("-".into(), |x| format!("{x:.decimals$}"))
    };
    format!(
        "\nDisaggregated (seed {seed}): {} prefill + {} decode replicas over {}; prefill busy {}, decode busy {}, \
         decode batch {} running on average, decode KV use {} mean / {} peak; {} KV transfers, {} GB per GPU link, \
         transfer {} ms mean / {} ms p99, decode block wait {} ms mean / {} ms p99.\n",
        f("prefill_replicas", 0),
        f("decode_replicas", 0),
        d.get("link").and_then(Value::as_str).unwrap_or("-"),
        f("prefill_busy_fraction", 3),
        f("decode_busy_fraction", 3),
        f("decode_mean_running", 1),
        f("decode_mean_kv_usage", 3),
        f("decode_kv_usage_peak", 3),
        f("transfers", 0),
        f("kv_gb_per_gpu_link", 3),
        f("mean_transfer_ms", 3),
        f("p99_transfer_ms", 3),
        f("mean_decode_block_wait_ms", 3),
        f("p99_decode_block_wait_ms", 3),
    )
}

/// A name as Markdown text that stays inside its table cell or heading: a `|` would end the
/// cell and a line break the row, so they are escaped and turned into spaces.
pub fn md_text(name: &str) -> String {
    name.chars()
        .flat_map(|c| match c {
            '|' => vec!['\\', '|'],
            c if c.is_control() => vec![' '],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::md_text;

    // See: issue 14
    #[test]
    fn issue_14_case_names_stay_inside_their_table_cell() {
        assert_eq!(md_text("a|b\nc"), "a\\|b c");
        assert_eq!(md_text("max_num_seqs=64 quant=fp16"), "max_num_seqs=64 quant=fp16");
    }
}
