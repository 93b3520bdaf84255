//! Checks on a successful run's `report.json` and the per-run files beside it.

use std::path::Path;

use serde_json::Value;

use crate::exec::Problem;
use crate::input::{CommandSpec, Input};
use crate::oracle::Context;

/// The largest simulated time: `u64::MAX` ns is about 1.8e10 s.
const SATURATED_S: f64 = 9e9;

fn problem(signature: impl Into<String>, detail: impl Into<String>) -> Problem {
    Problem { signature: signature.into(), detail: detail.into() }
}

/// The file name the engine gives a case name (`scenario::names::file_name`).
fn slug(name: &str) -> String {
    symbiote::scenario::names::file_name(name)
}

fn has_flag(spec: &CommandSpec, flag: &str) -> bool {
    spec.args.iter().any(|a| a == flag)
}

fn flag_value(spec: &CommandSpec, flag: &str) -> Option<String> {
    spec.args.iter().position(|a| a == flag).and_then(|i| spec.args.get(i + 1)).cloned()
}

/// Requests a scenario must account for in every run that completes: `num_requests`, or the
/// batch job's `rows`, when no case or matrix axis changes the workload and nothing else ends
/// the arrivals (a duration, stages or a trace).
fn expected_requests(doc: &Value) -> Option<u64> {
    if !untouched(doc, &["workload", "batch"]) {
        return None;
    }
    let base = doc.get("base")?;
    if let Some(batch) = base.get("batch").filter(|b| !b.is_null()) {
        return batch.get("rows")?.as_u64();
    }
    let workload = base.get("workload")?;
    let ends_otherwise = ["duration_s", "trace"].iter().any(|k| workload.get(*k).is_some_and(|v| !v.is_null()))
        || workload.pointer("/arrival/stages").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
    if ends_otherwise {
        return None;
    }
    workload.get("num_requests")?.as_u64()
}

/// No case and no matrix axis sets anything under these top-level fields of a case.
fn untouched(doc: &Value, fields: &[&str]) -> bool {
    let touches = |key: &str| fields.iter().any(|f| key == *f || key.starts_with(&format!("{f}.")));
    let touched_by = |v: Option<&Value>| v.and_then(Value::as_object).is_some_and(|m| m.keys().any(|k| touches(k)));
    !touched_by(doc.get("matrix"))
        && !doc.get("cases").and_then(Value::as_array).is_some_and(|c| c.iter().any(|c| touched_by(Some(c))))
}

/// The workload's fields when no case or matrix axis changes them.
fn base_workload(doc: &Value) -> Option<&Value> {
    untouched(doc, &["workload"]).then(|| doc.pointer("/base/workload")).flatten()
}

/// The shortest prompt the workload can draw: the shared prefix every prompt carries (at
/// `fraction` 1) plus the prompt distribution's minimum.
fn min_prompt(doc: &Value) -> Option<u64> {
    let w = base_workload(doc)?;
    if ["trace", "shared_prefix"].iter().any(|k| w.get(*k).is_some_and(|v| !v.is_null())) {
        return None;
    }
    let prefix = match w.get("prefix") {
        Some(p) if p.get("fraction").and_then(Value::as_f64).is_some_and(|f| f >= 1.0) => p.get("tokens")?.as_u64()?,
        _ => 0,
    };
    let prompt = w.get("prompt");
    let unique = match prompt.and_then(|p| p.get("dist")).and_then(Value::as_str) {
        Some("fixed") => prompt?.get("value")?.as_u64()?,
        Some(_) => prompt?.get("min").and_then(Value::as_u64).unwrap_or(1),
        None if prompt.is_none() => 512,
        None => return None,
    };
    Some(prefix.saturating_add(unique))
}

/// What a replay must account for: the rows `trace-stats` read, up to `--limit`, when no time
/// window or bad-row skipping changes which rows count.
fn expected_replay(spec: &CommandSpec, context: &Context) -> Option<u64> {
    if ["--start-s", "--end-s", "--skip-bad-rows"].iter().any(|f| has_flag(spec, f)) {
        return None;
    }
    let rows = context.stats_rows?;
    let limit = flag_value(spec, "--limit").and_then(|l| l.parse::<u64>().ok()).unwrap_or(u64::MAX);
    Some(rows.min(limit))
}

pub fn check_report(path: &Path, input: &Input, spec: &CommandSpec, context: &Context) -> Vec<Problem> {
    let cmd = spec.name;
    let report: Value = match std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
        Some(r) => r,
        None => return vec![problem(format!("report.json unreadable: {cmd}"), path.display().to_string())],
    };
    let dir = path.parent().unwrap();
    let expected = if cmd == "replay" {
        expected_replay(spec, context)
    } else if has_flag(spec, "--scale") {
        None
    } else {
        input.scenario.as_ref().and_then(expected_requests)
    };
    let shortest = if cmd == "run" { input.scenario.as_ref().and_then(min_prompt) } else { None };
    let mut problems = Vec::new();
    let mut runs_total = 0usize;
    for case in report["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or("");
        for run in case["runs"].as_array().into_iter().flatten() {
            runs_total += 1;
            problems.extend(check_run(run, cmd, expected));
            if has_flag(spec, "--requests") {
                let seed = run["seed"].as_u64().unwrap_or(0);
                let csv = dir.join("requests").join(format!("{}__seed{seed}.csv", slug(name)));
                let context_len = case["config"]["max_model_len"].as_u64();
                problems.extend(check_requests_csv(&csv, run, cmd, (shortest, context_len)));
            }
        }
    }
    for sub in ["runs", "requests"] {
        let files = std::fs::read_dir(dir.join(sub)).map_or(0, |d| d.count());
        if files != runs_total && (sub == "runs" || has_flag(spec, "--requests")) {
            problems.push(problem(
                format!("per-run files collide or go missing: {cmd}"),
                format!("{runs_total} runs in report.json but {files} files in {sub}/"),
            ));
        }
    }
    problems
}

fn check_run(run: &Value, cmd: &str, expected: Option<u64>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let outcome = run["outcome"].as_str().unwrap_or("");
    let m = &run["metrics"];
    let completed = m["completed"].as_u64().unwrap_or(0);
    let rejected = m["rejected"].as_u64().unwrap_or(0);
    if outcome == "stalled" {
        problems.push(problem(
            format!("run stalled yet the command succeeded: {cmd}"),
            format!("outcome stalled with {completed} completed, {rejected} rejected"),
        ));
    }
    if let (Some(n), "completed") = (expected, outcome) {
        if completed.checked_add(rejected) != Some(n) {
            problems.push(problem(
                format!("requests not accounted for: {cmd}"),
                format!("{n} requests, but {completed} completed + {rejected} rejected"),
            ));
        }
    }
    for (key, value) in m.as_object().into_iter().flatten() {
        match value.as_f64() {
            Some(x) if x < 0.0 => {
                problems.push(problem(format!("negative metric {key}: {cmd}"), format!("{key} = {x}")))
            }
            None if completed > 0
                && ["mean_ttft_ms", "mean_e2el_ms", "mean_queue_ms", "duration"].contains(&key.as_str()) =>
            {
                problems.push(problem(
                    format!("non-finite metric {key}: {cmd}"),
                    format!("{key} is {value} with {completed} completed"),
                ))
            }
            _ => {}
        }
    }
    if m["duration"].as_f64().is_some_and(|d| d >= SATURATED_S) {
        problems.push(problem(format!("simulated clock saturated: {cmd}"), format!("duration {} s", m["duration"])));
    }
    if m["kv_usage_peak"].as_f64().is_some_and(|k| k > 1.0 + 1e-9) {
        problems.push(problem(format!("KV usage above 100%: {cmd}"), format!("kv_usage_peak {}", m["kv_usage_peak"])));
    }
    let memory = &run["memory"];
    if outcome != "oom" {
        if memory["num_gpu_blocks"].as_u64().is_some_and(|b| b > u64::from(u32::MAX)) {
            problems.push(problem(
                format!("num_gpu_blocks beyond u32 served: {cmd}"),
                format!("num_gpu_blocks {} but a block index is a u32", memory["num_gpu_blocks"]),
            ));
        }
        for key in ["weights_bytes", "kv_bytes_per_token"] {
            if memory[key].as_u64() == Some(0) {
                problems.push(problem(format!("model of zero size served ({key} = 0): {cmd}"), String::new()));
            }
        }
    }
    let per_replica: u64 =
        run["replicas"].as_array().into_iter().flatten().filter_map(|r| r["completed"].as_u64()).sum();
    if per_replica != completed {
        problems.push(problem(
            format!("replica counts disagree with the total: {cmd}"),
            format!("replicas completed {per_replica}, metrics.completed {completed}"),
        ));
    }
    problems
}

/// One row of `requests.csv`: `id, arrival_s, first_scheduled_s, first_token_s, finish_s,
/// prompt_tokens, output_tokens, cached_tokens, preemptions, replica`.
fn check_request_row(f: &[f64], cmd: &str, (shortest, context_len): (Option<u64>, Option<u64>)) -> Option<Problem> {
    if f.len() < 8 || f.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Some(problem(format!("request row non-finite or negative: {cmd}"), "a value"));
    }
    let (arrival, scheduled, first, finish) = (f[1], f[2], f[3], f[4]);
    if !(arrival <= scheduled + 1e-6 && scheduled <= first + 1e-6 && first <= finish + 1e-6) {
        return Some(problem(format!("request times out of order: {cmd}"), "arrival, scheduled, first token, finish"));
    }
    let (prompt, output) = (f[5] as u64, f[6] as u64);
    if prompt < 1 || output < 1 || f[7] > f[5] {
        return Some(problem(format!("request token counts impossible: {cmd}"), "prompt, output or cached tokens"));
    }
    if let Some(s) = shortest.filter(|&s| prompt < s) {
        return Some(problem(
            format!("prompt shorter than the workload allows: {cmd}"),
            format!("a {prompt} token prompt; the prefix and prompt distribution give at least {s}"),
        ));
    }
    // vLLM stops a request once prompt + output reaches max_model_len, after at least one
    // token (a prompt of exactly max_model_len still gets its first token).
    if let Some(l) = context_len.filter(|&l| prompt + output > l.max(prompt + 1)) {
        return Some(problem(
            format!("request ran past max_model_len: {cmd}"),
            format!("{prompt} prompt + {output} output tokens with max_model_len {l}"),
        ));
    }
    None
}

/// `requests/<case>__seed<N>.csv`: one row per completed request, times in order, sums equal
/// to the report's totals.
fn check_requests_csv(
    path: &Path,
    run: &Value,
    cmd: &str,
    (shortest, context_len): (Option<u64>, Option<u64>),
) -> Vec<Problem> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![problem(format!("requests CSV missing: {cmd}"), path.display().to_string())];
    };
    let m = &run["metrics"];
    let (mut rows, mut prompt_sum, mut output_sum) = (0u64, 0u64, 0u64);
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        rows += 1;
        let f: Vec<f64> = line.split(',').map(|x| x.parse::<f64>().unwrap_or(f64::NAN)).collect();
        if let Some(p) = check_request_row(&f, cmd, (shortest, context_len)) {
            return vec![Problem { detail: format!("{}: {line}", p.detail), ..p }];
        }
        prompt_sum += f[5] as u64;
        output_sum += f[6] as u64;
    }
    let totals = (m["completed"].as_u64(), m["total_input_tokens"].as_u64(), m["total_output_tokens"].as_u64());
    if totals == (Some(rows), Some(prompt_sum), Some(output_sum)) {
        return Vec::new();
    }
    vec![problem(
        format!("requests CSV disagrees with report.json: {cmd}"),
        format!("csv rows/prompt/output {rows}/{prompt_sum}/{output_sum}, report {totals:?}"),
    )]
}
