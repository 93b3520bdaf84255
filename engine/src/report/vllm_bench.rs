//! `--vllm-bench-json`: one (case, seed) run written as `vllm bench serve --save-result
//! --save-detailed` writes its result file, so the scripts and dashboards that read vLLM's
//! benchmark files read symbiote's, and `symbiote check` reads either as a baseline.
//!
//! Keys, their order and units follow `vllm/benchmarks/serve.py` (vLLM commit 009e6d4):
//! `main_async` writes `date` (`%Y%m%d-%H%M%S`), `endpoint_type`, `backend`, `label`,
//! `model_id`, `tokenizer_id`, `num_prompts`, any `--metadata` pairs, `request_rate` (`"inf"`
//! when unbounded), `burstiness`, `max_concurrency`, then `benchmark()`'s `result`: `duration`
//! (s), `completed`, `failed`, `total_input_tokens`, `total_output_tokens`,
//! `request_throughput`, `request_goodput` (null without `--goodput`), `output_throughput`,
//! `total_token_throughput`, the per-request lists `input_lens`, `output_lens`, `ttfts` (s),
//! `itls` (a list of gaps per request, s), `latencies` (s), `start_times` (s), `queue_times`,
//! `generated_texts`, `errors`, then `max_output_tokens_per_s`, `max_concurrent_requests`,
//! `rtfx`, and per metric `mean_`, `median_`, `std_` and `p<q>_` keys in ms.
//!
//! What symbiote puts where vLLM measures a client:
//! - every arrival that ended is listed, in workload order: completed requests, and refused
//!   ones (`failed`) with TTFT and latency 0, no ITLs, output 0 and vLLM's HTTP 400 message
//!   under `errors`, as vLLM's client records a failed request; requests still unfinished when
//!   a run stops early count in `num_prompts` only (`outcome` says why);
//! - `start_times` are arrival times in seconds from the start of the run; `queue_times` are 0
//!   (no client-side semaphore); `generated_texts` are empty strings (no tokens are decoded);
//! - percentiles are computed like vLLM's: numpy's linear interpolation over the exact values
//!   (ITL included: every gap is kept), for TTFT, TPOT, ITL and E2EL (vLLM's
//!   `--percentile-metrics ttft,tpot,itl,e2el`), at the run's `--percentiles` or vLLM's default
//!   99; means, medians and standard deviations are numpy's, 0 when there are no values;
//! - `max_output_tokens_per_s` counts tokens in one-second buckets from the first arrival and
//!   `max_concurrent_requests` is the peak of requests in flight, both as vLLM computes them;
//! - `request_rate`/`burstiness` are the workload's when it is one rate (poisson: burstiness 1,
//!   gamma: 1/cv^2, constant: null), `"inf"` for a batch job or closed-loop users (with
//!   `max_concurrency` = users), null otherwise (stages, spikes, traces);
//! - `--metadata`-style keys say what this is: `simulator`, `scenario`, `case`, `seed`, `gpu`,
//!   `outcome`, all strings as vLLM writes metadata.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::metrics::{DetailedRequest, Metrics};
use super::summary::{mean_std, peak_concurrency, percentile_sorted, percentile_word};
use crate::scenario::Case;
use crate::workload::arrivals::ProcessKind;

/// Where `--vllm-bench-json` writes, and how each run's file is named.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchExport {
    /// The path given on the command line.
    pub path: PathBuf,
    /// Several runs: one file per run beside `path`, `<stem>__<case>__seed<N>.json`.
    pub per_run: bool,
    /// Several scenarios too: `<stem>__<scenario>__<case>__seed<N>.json`.
    pub with_scenario: bool,
    /// The `date` field, `%Y%m%d-%H%M%S`.
    pub date: String,
}

impl BenchExport {
    /// The file of one run: `path` itself when the command has one run.
    pub fn path_for(&self, scenario_folder: &str, case: &str, seed: u64) -> PathBuf {
        self.named(scenario_folder, &crate::runner::run_stem(case, seed))
    }

    /// Where the files go, for people: `path`, or its pattern (`bench__<case>__seed<N>.json`).
    pub fn pattern(&self) -> String {
        self.named("<scenario>", "<case>__seed<N>").display().to_string()
    }

    fn named(&self, scenario_folder: &str, run: &str) -> PathBuf {
        if !self.per_run {
            return self.path.clone();
        }
        let stem = self.path.file_stem().and_then(|s| s.to_str()).unwrap_or("vllm_bench");
        let name = match self.with_scenario {
            true => format!("{stem}__{scenario_folder}__{run}.json"),
            false => format!("{stem}__{run}.json"),
        };
        self.path.parent().unwrap_or(Path::new("")).join(name)
    }
}

/// One run to write.
pub struct BenchRun<'a> {
    pub scenario: &'a str,
    pub case: &'a Case,
    pub seed: u64,
    pub outcome: &'a str,
    pub metrics: &'a Metrics,
    /// Percentiles to write; vLLM's default (99) when empty.
    pub percentiles: &'a [f64],
    pub date: &'a str,
}

/// The result file's text (compact JSON, as vLLM's `json.dump` writes it, plus a newline).
/// Needs the run's request detail (`Capture::request_detail`).
pub fn render(run: &BenchRun<'_>) -> String {
    let m = run.metrics;
    let detail = m.detail.as_ref().expect("--vllm-bench-json runs capture request detail");
    let mut requests: Vec<&DetailedRequest> = detail.requests.iter().collect();
    requests.sort_by_key(|r| r.seq_no);
    let ok: Vec<&DetailedRequest> = requests.iter().copied().filter(|r| r.error.is_none()).collect();
    let mut out = header(run);
    let duration = m.last_finish.as_secs_f64();
    let per_s = |x: u64| if duration > 0.0 { x as f64 / duration } else { 0.0 };
    let input: u64 = ok.iter().map(|r| r.prompt_tokens as u64).sum();
    let output: u64 = ok.iter().map(|r| r.output_tokens as u64).sum();
    out.insert("duration".into(), number(duration));
    out.insert("completed".into(), (ok.len() as u64).into());
    out.insert("failed".into(), m.rejected_total().into());
    out.insert("total_input_tokens".into(), input.into());
    out.insert("total_output_tokens".into(), output.into());
    out.insert("request_throughput".into(), number(per_s(ok.len() as u64)));
    let goodput = m.goodput_slo().map(|_| number(per_s(m.good)));
    out.insert("request_goodput".into(), goodput.unwrap_or(Value::Null));
    out.insert("output_throughput".into(), number(per_s(output)));
    out.insert("total_token_throughput".into(), number(per_s(input + output)));
    per_request_lists(&mut out, &requests);
    out.insert("max_output_tokens_per_s".into(), number(max_output_tokens_per_s(&ok)));
    let intervals = ok.iter().map(|r| (r.arrival.0, r.finish.0));
    out.insert("max_concurrent_requests".into(), peak_concurrency(intervals).into());
    out.insert("rtfx".into(), number(0.0));
    let percentiles = if run.percentiles.is_empty() { &[99.0][..] } else { run.percentiles };
    let ms = |ns: u64| ns as f64 / 1e6;
    let ttft: Vec<f64> = ok.iter().map(|r| ms(r.first_token.since(r.arrival).0)).collect();
    let tpot: Vec<f64> = ok
        .iter()
        .filter(|r| r.output_tokens > 1)
        .map(|r| ms(r.finish.since(r.first_token).0) / (r.output_tokens - 1) as f64)
        .collect();
    let itl: Vec<f64> = ok.iter().flat_map(|r| r.itl_ns.iter().map(|&ns| ms(ns))).collect();
    let e2el: Vec<f64> = ok.iter().map(|r| ms(r.finish.since(r.arrival).0)).collect();
    for (name, values) in [("ttft", ttft), ("tpot", tpot), ("itl", itl), ("e2el", e2el)] {
        stat_keys(&mut out, name, values, percentiles);
    }
    let mut text = serde_json::to_string(&Value::Object(out)).expect("result serializes");
    text.push('\n');
    text
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// `date` to `max_concurrency`: what vLLM's `main_async` writes before the results.
fn header(run: &BenchRun<'_>) -> Map<String, Value> {
    let case = run.case;
    let model_id = if case.model.hf_id.is_empty() { case.model.name.clone() } else { case.model.hf_id.clone() };
    let mut out = Map::new();
    out.insert("date".into(), run.date.into());
    out.insert("endpoint_type".into(), "vllm".into());
    out.insert("backend".into(), "vllm".into());
    out.insert("label".into(), "symbiote".into());
    out.insert("model_id".into(), model_id.clone().into());
    out.insert("tokenizer_id".into(), model_id.into());
    out.insert("num_prompts".into(), run.metrics.arrivals.into());
    for (key, value) in [
        ("simulator", format!("symbiote {}", env!("CARGO_PKG_VERSION"))),
        ("scenario", run.scenario.to_string()),
        ("case", case.name.clone()),
        ("seed", run.seed.to_string()),
        ("gpu", case.gpu.name.clone()),
        ("outcome", run.outcome.to_string()),
    ] {
        out.insert(key.into(), value.into());
    }
    let (rate, burstiness, max_concurrency) = traffic(case);
    out.insert("request_rate".into(), rate);
    out.insert("burstiness".into(), burstiness);
    out.insert("max_concurrency".into(), max_concurrency);
    out
}

/// `request_rate`, `burstiness` and `max_concurrency` of the case's workload.
fn traffic(case: &Case) -> (Value, Value, Value) {
    let w = &case.workload;
    if case.batch.is_some() {
        return ("inf".into(), number(1.0), Value::Null);
    }
    if let Some(clients) = &w.clients {
        return ("inf".into(), number(1.0), (clients.users as u64).into());
    }
    match &w.arrival {
        Some(a) if w.trace.is_none() && a.stages.is_empty() && a.multipliers.is_empty() => {
            let rate = a.rate.map_or(Value::Null, number);
            let burstiness = match a.process {
                ProcessKind::Poisson => number(1.0),
                // vLLM draws gamma gaps of shape `burstiness`, whose CV is 1/sqrt(burstiness).
                ProcessKind::Gamma => a.cv.filter(|cv| *cv > 0.0).map_or(Value::Null, |cv| number(1.0 / (cv * cv))),
                ProcessKind::Constant => Value::Null,
            };
            (rate, burstiness, Value::Null)
        }
        _ => (Value::Null, Value::Null, Value::Null),
    }
}

/// vLLM's per-request lists, one entry per request in workload order.
fn per_request_lists(out: &mut Map<String, Value>, requests: &[&DetailedRequest]) {
    let secs = |ns: u64| number(ns as f64 / 1e9);
    let ok = |r: &DetailedRequest| r.error.is_none();
    let list = |f: &dyn Fn(&DetailedRequest) -> Value| Value::Array(requests.iter().map(|r| f(r)).collect());
    out.insert("input_lens".into(), list(&|r| (r.prompt_tokens as u64).into()));
    out.insert("output_lens".into(), list(&|r| (r.output_tokens as u64).into()));
    out.insert("ttfts".into(), list(&|r| if ok(r) { secs(r.first_token.since(r.arrival).0) } else { number(0.0) }));
    out.insert("itls".into(), list(&|r| Value::Array(r.itl_ns.iter().map(|&ns| secs(ns)).collect())));
    out.insert("latencies".into(), list(&|r| if ok(r) { secs(r.finish.since(r.arrival).0) } else { number(0.0) }));
    out.insert("start_times".into(), list(&|r| secs(r.arrival.0)));
    out.insert("queue_times".into(), list(&|_| number(0.0)));
    out.insert("generated_texts".into(), list(&|_| "".into()));
    out.insert("errors".into(), list(&|r| r.error.clone().unwrap_or_default().into()));
}

/// Output tokens in one-second buckets from the first arrival; the fullest bucket (vLLM's
/// `calculate_metrics`).
fn max_output_tokens_per_s(ok: &[&DetailedRequest]) -> f64 {
    let Some(start) = ok.iter().map(|r| r.arrival.0).min() else { return 0.0 };
    let end = ok.iter().map(|r| r.finish.0).max().unwrap_or(start);
    let buckets = (end - start).div_ceil(1_000_000_000) as usize + 1;
    let mut tokens = vec![0u64; buckets];
    for r in ok {
        let mut time = r.first_token.0;
        tokens[((time - start) / 1_000_000_000) as usize] += 1;
        for gap in &r.itl_ns {
            time += gap;
            tokens[((time - start) / 1_000_000_000) as usize] += 1;
        }
    }
    tokens.into_iter().max().unwrap_or(0) as f64
}

/// `mean_`, `median_`, `std_` and `p<q>_<name>_ms`, numpy's values (0 without samples).
fn stat_keys(out: &mut Map<String, Value>, name: &str, mut values: Vec<f64>, percentiles: &[f64]) {
    values.sort_by(f64::total_cmp);
    let (mean, std) = mean_std(&values).unwrap_or((0.0, 0.0));
    out.insert(format!("mean_{name}_ms"), number(mean));
    out.insert(format!("median_{name}_ms"), number(percentile_sorted(&values, 50.0).unwrap_or(0.0)));
    out.insert(format!("std_{name}_ms"), number(std));
    for &p in percentiles {
        out.insert(format!("{}_{name}_ms", percentile_word(p)), number(percentile_sorted(&values, p).unwrap_or(0.0)));
    }
}

/// Whether a JSON value is a `vllm bench serve` result rather than a symbiote report.json: an
/// object with vLLM's result keys and no `cases`.
pub fn is_bench_result(value: &Value) -> bool {
    let has = |key: &str| value.get(key).is_some();
    value.is_object()
        && !has("cases")
        && has("completed")
        && has("duration")
        && (has("request_throughput") || has("mean_ttft_ms") || has("mean_e2el_ms"))
}

/// The percentiles a `vllm bench serve` result holds (`p99_ttft_ms` -> 99), sorted.
pub fn percentiles_in(value: &Value) -> Vec<f64> {
    let mut found: Vec<f64> = value
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter_map(|key| {
            let rest = key.strip_prefix('p')?;
            let (number, metric) = rest.split_once('_')?;
            ["ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"].contains(&metric).then_some(())?;
            number.parse::<f64>().ok().filter(|p| (0.0..=100.0).contains(p))
        })
        .collect();
    found.sort_by(f64::total_cmp);
    found.dedup();
    found
}

/// A `vllm bench serve` result as a one-case, one-run report value that `check::compare`
/// reads: its numeric keys (lists and strings left out) become the run's metrics.
pub fn as_report(value: &Value, case: &str) -> Value {
    let metrics: Map<String, Value> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.is_number())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_json::json!({"cases": [{"name": case, "runs": [{"metrics": metrics}]}]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimTime;

    fn request(seq_no: u64, arrival_ms: u64, ttft_ms: u64, itl_ms: &[u64]) -> DetailedRequest {
        let first = arrival_ms + ttft_ms;
        let finish = first + itl_ms.iter().sum::<u64>();
        DetailedRequest {
            seq_no,
            arrival: SimTime(arrival_ms * 1_000_000),
            first_token: SimTime(first * 1_000_000),
            finish: SimTime(finish * 1_000_000),
            prompt_tokens: 10,
            output_tokens: itl_ms.len() as u32 + 1,
            itl_ns: itl_ms.iter().map(|ms| ms * 1_000_000).collect(),
            error: None,
        }
    }

    /// Two requests: tokens at 0.1, 0.3, 0.5, 1.2 s and at 1.1, 1.3 s; bucket 1 (1.0-2.0 s)
    /// holds three tokens.
    #[test]
    fn peak_tokens_per_second_counts_one_second_buckets_from_the_first_arrival() {
        let a = request(0, 0, 100, &[200, 200, 700]);
        let b = request(1, 1000, 100, &[200]);
        assert_eq!(max_output_tokens_per_s(&[&a, &b]), 3.0);
        assert_eq!(max_output_tokens_per_s(&[]), 0.0);
    }

    #[test]
    fn file_names_carry_the_run_only_when_there_are_several() {
        let mut export = BenchExport { path: PathBuf::from("out/bench.json"), ..Default::default() };
        assert_eq!(export.path_for("s", "c", 1), PathBuf::from("out/bench.json"));
        export.per_run = true;
        assert_eq!(export.path_for("s", "tp 2", 3), PathBuf::from("out/bench__tp_2__seed3.json"));
        assert_eq!(export.pattern(), "out/bench__<case>__seed<N>.json");
        export.with_scenario = true;
        assert_eq!(export.path_for("s", "c", 3), PathBuf::from("out/bench__s__c__seed3.json"));
    }

    #[test]
    fn a_vllm_result_is_told_from_a_report_and_read_as_one() {
        let vllm = serde_json::json!({"date": "20250101-000000", "completed": 10, "duration": 2.0,
            "request_throughput": 5.0, "p99_ttft_ms": 30.0, "p95_itl_ms": 4.0, "p99.9_e2el_ms": 90.0,
            "p50_other": 1.0, "ttfts": [0.1], "request_goodput": null});
        assert!(is_bench_result(&vllm));
        assert!(!is_bench_result(&serde_json::json!({"scenario": "s", "cases": []})));
        assert_eq!(percentiles_in(&vllm), vec![95.0, 99.0, 99.9]);
        let report = as_report(&vllm, "only");
        assert_eq!(report["cases"][0]["name"], "only");
        let metrics = &report["cases"][0]["runs"][0]["metrics"];
        assert_eq!(metrics["p99_ttft_ms"], 30.0);
        assert!(metrics.get("ttfts").is_none() && metrics.get("request_goodput").is_none());
    }
}
