//! Per-phase analyses of the seed document's six test phases: extra per-run metrics (queue
//! recovery after a spike, SLO violations around it) and scenario-level findings computed from
//! the runs (best configuration within the SLO, largest safe batch, best chunking strategy).
//! Every conclusion here is derived from simulated numbers; none is written by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::metrics::{Capture, Metrics};
use super::Report;
use crate::hardware::memory::{self, GIB};
use crate::hardware::Catalog;
use crate::scenario::{Case, Scenario};
use crate::sim::{Nanos, SimTime};
use crate::workload::LengthDist;

/// Which analysis a scenario asks for (`"analysis"` in the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Analysis {
    ConfigMatrix,
    Burstiness,
    Oom,
    KvStress,
    WeightStorage,
    ChunkedPrefill,
}

/// What a phase's findings say, for report.md, report.json and outputs/index.md.
#[derive(Clone, Debug, Serialize)]
pub struct Findings {
    pub headline: String,
    pub summary: String,
    pub details: Value,
    #[serde(skip)]
    pub markdown: String,
}

/// Queue sampling interval of the burstiness analysis.
pub const QUEUE_SAMPLE: Nanos = Nanos(100_000_000);

impl Analysis {
    /// What runs must capture for this analysis.
    pub fn capture(self) -> Capture {
        match self {
            Analysis::Burstiness => Capture { requests: true, timeline: None, queue: Some(QUEUE_SAMPLE) },
            _ => Capture::default(),
        }
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn mean_over_seeds(report: &Report, case: usize, key: &str) -> Option<f64> {
    let values: Vec<f64> =
        report.cases[case].runs.iter().filter_map(|r| r.metrics.get(key).and_then(Value::as_f64)).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn fixed_len(dist: &Option<LengthDist>) -> Option<u64> {
    match dist {
        Some(LengthDist::Fixed { value }) => Some(*value as u64),
        Some(d) => Some(d.mean().round() as u64),
        None => None,
    }
}

/// Extra per-run metrics, merged into the run's metrics object.
pub fn run_extras(analysis: Analysis, case: &Case, metrics: &Metrics, out: &mut Map<String, Value>) {
    if analysis == Analysis::Burstiness {
        burst_extras(case, metrics, out);
    }
}

/// The windows where the arrival rate is raised: consecutive multipliers above 1, merged.
fn spike_windows(case: &Case) -> Vec<(f64, f64)> {
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
fn burst_extras(case: &Case, metrics: &Metrics, out: &mut Map<String, Value>) {
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
fn slo_violations_around(case: &Case, metrics: &Metrics, windows: &[(f64, f64)]) -> (u64, u64) {
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

/// Scenario-level findings.
pub fn conclude(analysis: Analysis, scenario: &Scenario, report: &Report) -> Findings {
    match analysis {
        Analysis::ConfigMatrix => config_matrix(scenario, report),
        Analysis::Burstiness => burstiness(report),
        Analysis::Oom => oom(scenario, report),
        Analysis::KvStress => kv_stress(scenario, report),
        Analysis::WeightStorage => weight_storage(scenario, report),
        Analysis::ChunkedPrefill => chunked_prefill(scenario, report),
    }
}

fn all_slo_met(report: &Report, case: usize) -> bool {
    let runs = &report.cases[case].runs;
    !runs.is_empty() && runs.iter().all(|r| r.slo_met == Some(true) && r.outcome == "completed")
}

fn config_matrix(scenario: &Scenario, report: &Report) -> Findings {
    let mut rows = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (i, case) in scenario.cases.iter().enumerate() {
        let gpus = (case.replicas as u64 * case.tp) as f64;
        let out_tps = mean_over_seeds(report, i, "output_throughput").unwrap_or(0.0);
        let per_gpu = out_tps / gpus;
        let met = all_slo_met(report, i);
        if met && best.is_none_or(|(_, b)| per_gpu > b) {
            best = Some((i, per_gpu));
        }
        rows.push(json!({"case": case.name, "gpus": gpus, "output_tokens_per_s": number(out_tps),
            "output_tokens_per_s_per_gpu": number(per_gpu), "slo_met": met}));
    }
    let (headline, summary) = match best {
        Some((i, per_gpu)) => (
            format!("best within SLO: `{}` at {:.0} output tok/s per GPU", scenario.cases[i].name, per_gpu),
            format!(
                "The matrix varies batch size, replicas (concurrency), model size and load. Of {} configurations, {} met every SLO in every seed; the best output throughput per GPU among them is `{}` with {:.0} tok/s per GPU ({:.2} req/s in all).",
                scenario.cases.len(),
                (0..scenario.cases.len()).filter(|&i| all_slo_met(report, i)).count(),
                scenario.cases[i].name,
                per_gpu,
                mean_over_seeds(report, i, "request_throughput").unwrap_or(0.0)
            ),
        ),
        None => ("no configuration met the SLO".into(), "No configuration met every SLO in every seed.".into()),
    };
    let mut markdown =
        format!("{summary}\n\n| case | GPUs | out tok/s | out tok/s per GPU | SLO met |\n|---|---:|---:|---:|---|\n");
    for r in &rows {
        markdown.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {} |\n",
            r["case"].as_str().unwrap_or(""),
            r["gpus"],
            r["output_tokens_per_s"].as_f64().unwrap_or(0.0),
            r["output_tokens_per_s_per_gpu"].as_f64().unwrap_or(0.0),
            if r["slo_met"].as_bool() == Some(true) { "yes" } else { "no" }
        ));
    }
    Findings { headline, summary, details: json!({"configurations": rows}), markdown }
}

fn burstiness(report: &Report) -> Findings {
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
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"cases": rows}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}

fn oom(scenario: &Scenario, report: &Report) -> Findings {
    let case0 = &scenario.cases[0];
    let prompt = fixed_len(&case0.workload.prompt).unwrap_or(512);
    let output = fixed_len(&case0.workload.output).unwrap_or(128);
    let catalog = Catalog::builtin();
    let mut limits = Vec::new();
    let mut markdown = format!(
        "Largest safe batch of {prompt}-token prompts with {output} output tokens for {} ({}), found by binary search on the memory model: the static engine's batch must fit whole; vLLM's figure is how many such sequences stay resident without preemption (more only queue or preempt).\n\n| GPU | static engine | vLLM resident |\n|---|---:|---:|\n",
        case0.model.display_name, case0.quant
    );
    for gpu_name in ["rtx-3090", "rtx-4090", "l40", "a100-40gb", "a100-80gb", "h100"] {
        let gpu = catalog.gpu(gpu_name).expect("catalog GPU");
        let mut cfg = case0.memory_config();
        cfg.max_model_len = cfg.max_model_len.min(case0.model.max_position_embeddings);
        let static_rows = memory::largest_static_batch(&case0.model, gpu, &cfg, prompt, output);
        let vllm_rows =
            memory::plan(&case0.model, gpu, &cfg).map_or(0, |p| memory::largest_vllm_batch(&p, prompt, output));
        markdown.push_str(&format!("| {gpu_name} | {static_rows} | {vllm_rows} |\n"));
        limits.push(json!({"gpu": gpu_name, "static_rows": static_rows, "vllm_resident": vllm_rows}));
    }
    let mut first_static_oom: Option<String> = None;
    markdown.push_str("\n| case | outcome | preemptions | mean queueing ms | rows/s |\n|---|---|---:|---:|---:|\n");
    for (i, case) in report.cases.iter().enumerate() {
        let outcome = case.runs.first().map_or("-", |r| r.outcome.as_str());
        if outcome == "oom" && first_static_oom.is_none() {
            first_static_oom = Some(case.name.clone());
        }
        let cell = |k: &str, d: usize| mean_over_seeds(report, i, k).map_or("-".into(), |x| format!("{x:.d$}"));
        markdown.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            case.name,
            outcome,
            cell("preemptions", 0),
            cell("mean_queue_ms", 0),
            cell("rows_per_s", 1)
        ));
    }
    let ooms: Vec<&str> =
        report.cases.iter().filter(|c| c.runs.iter().any(|r| r.outcome == "oom")).map(|c| c.name.as_str()).collect();
    let home = limits
        .iter()
        .find(|l| l["gpu"] == case0.gpu.name.as_str())
        .map_or(0, |l| l["static_rows"].as_u64().unwrap_or(0));
    let headline = format!(
        "{} of {} cases ran out of memory; largest safe static batch on {}: {home}",
        ooms.len(),
        report.cases.len(),
        case0.gpu.name
    );
    let summary = format!(
        "Each batch size runs on the static engine (padded, KV reserved up front) and on vLLM (paged KV, continuous batching). Out of memory: {}. vLLM never runs out of memory at run time: beyond its resident capacity it queues and preempts instead. The largest static batch that fits on {} is {home} rows.",
        if ooms.is_empty() { "none".to_string() } else { ooms.join(", ") },
        case0.gpu.display_name
    );
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"safe_batch": limits, "oom_cases": ooms}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}

/// The largest number of concurrent sequences of `prompt + output` tokens that run without a
/// single preemption, by binary search over simulated runs of N simultaneous requests.
fn search_no_preemption(case: &Case, prompt: u32, output: u32) -> u64 {
    let runs_clean = |n: u64| {
        let mut probe = case.clone();
        probe.workload = crate::workload::WorkloadSpec {
            arrival: None,
            clients: Some(crate::workload::ClosedLoopSpec {
                users: n as u32,
                think_time_s: 0.0,
                think_time_exponential: false,
                ramp_up_s: 0.0,
            }),
            num_requests: Some(n),
            duration_s: None,
            prompt: Some(LengthDist::Fixed { value: prompt }),
            output: Some(LengthDist::Fixed { value: output }),
            prefix: None,
            shared_prefix: None,
            trace: None,
        };
        probe.engine.max_num_seqs = n.max(1) as u32;
        probe.engine.max_num_batched_tokens = probe.engine.max_num_batched_tokens.max(n as u32);
        probe.replicas = 1;
        probe.batch = None;
        let result = crate::sim::run::run_case(&probe, 1, Capture::default());
        result.outcome == crate::sim::run::Outcome::Completed && result.metrics.preemptions == 0
    };
    memory::largest_where(runs_clean, 1 << 16)
}

fn kv_stress(scenario: &Scenario, report: &Report) -> Findings {
    let case0 = &scenario.cases[0];
    let output = 128u32;
    let mut searched = Vec::new();
    let mut markdown = format!(
        "Largest batch without preemption on {} with {} ({} KV blocks of {} tokens), per sequence length (prompt + {output} output tokens), found by binary search over simulated runs of N simultaneous requests:\n\n| prompt tokens | largest batch without preemption |\n|---:|---:|\n",
        case0.gpu.display_name,
        case0.model.display_name,
        report.cases[0].runs.first().map_or(0, |r| r.memory.num_gpu_blocks),
        case0.engine.block_size
    );
    for prompt in [512u32, 1024, 2048, 4096, 8192] {
        if prompt + output > case0.engine.max_model_len {
            continue;
        }
        let n = search_no_preemption(case0, prompt, output);
        markdown.push_str(&format!("| {prompt} | {n} |\n"));
        searched.push(json!({"prompt_tokens": prompt, "output_tokens": output, "largest_batch": n}));
    }
    markdown.push_str("\n| case | KV peak | KV mean | prefix hit rate | preemptions | recomputed tokens |\n|---|---:|---:|---:|---:|---:|\n");
    let mut hit = BTreeMap::new();
    for (i, case) in report.cases.iter().enumerate() {
        let get = |k: &str| mean_over_seeds(report, i, k).unwrap_or(0.0);
        hit.insert(case.name.clone(), get("prefix_cache_hit_rate"));
        markdown.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.3} | {:.0} | {:.0} |\n",
            case.name,
            get("kv_usage_peak"),
            get("kv_usage_mean"),
            get("prefix_cache_hit_rate"),
            get("preemptions"),
            get("recomputed_tokens")
        ));
    }
    let thrash = report.cases.iter().position(|c| c.name.contains("thrash"));
    let fits = report.cases.iter().position(|c| c.name.contains("prefixes fit"));
    let thrash_note = match (fits, thrash) {
        (Some(f), Some(t)) => format!(
            " With a prefix working set that fits the cache the hit rate is {:.2}; when it outgrows the cache it falls to {:.2}.",
            hit[&report.cases[f].name], hit[&report.cases[t].name]
        ),
        _ => String::new(),
    };
    let worst_preempt = (0..report.cases.len())
        .max_by(|&a, &b| {
            mean_over_seeds(report, a, "preemptions")
                .unwrap_or(0.0)
                .total_cmp(&mean_over_seeds(report, b, "preemptions").unwrap_or(0.0))
        })
        .map(|i| (report.cases[i].name.clone(), mean_over_seeds(report, i, "preemptions").unwrap_or(0.0)));
    let first = searched.first().and_then(|s| s["largest_batch"].as_u64()).unwrap_or(0);
    let last =
        searched.last().map(|s| (s["prompt_tokens"].as_u64().unwrap_or(0), s["largest_batch"].as_u64().unwrap_or(0)));
    let headline = format!(
        "no-preemption batch: {first} at 512 tokens, {} at {} tokens; most preemptions: {}",
        last.map_or(0, |l| l.1),
        last.map_or(0, |l| l.0),
        worst_preempt.as_ref().map_or("-".into(), |(n, p)| format!("{n} ({p:.0})"))
    );
    let summary = format!(
        "KV utilisation, request rate, sequence length, concurrency and the prefix working set are pushed until the paged KV cache fills. The largest batch that never preempts falls from {first} sequences at 512 prompt tokens to {} at {} tokens.{thrash_note}",
        last.map_or(0, |l| l.1),
        last.map_or(0, |l| l.0)
    );
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"no_preemption_batch": searched, "hit_rate": hit}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}

/// One (GPU, quantization) configuration of a model in the weight-storage phase.
struct StorageRow {
    gpu: String,
    quant: String,
    gpu_memory_gib: f64,
    max_concurrency: f64,
    fits: bool,
    weights_bytes: f64,
}

/// Concurrent 4,096-token sequences a configuration must hold to be recommended.
const MIN_CONCURRENCY: f64 = 8.0;

fn weight_storage(scenario: &Scenario, report: &Report) -> Findings {
    let mut by_model: BTreeMap<String, Vec<StorageRow>> = BTreeMap::new();
    let mut markdown = String::from("| case | weights GiB | activation GiB | KV room tokens | max concurrency | fits |\n|---|---:|---:|---:|---:|---|\n");
    for (i, case) in scenario.cases.iter().enumerate() {
        let Some(run) = report.cases[i].runs.first() else { continue };
        let m = &run.memory;
        let fits = run.outcome == "completed";
        markdown.push_str(&format!(
            "| {} | {:.2} | {:.2} | {} | {:.1}x | {} |\n",
            case.name,
            m.weights_bytes as f64 / GIB,
            m.activation_peak_bytes as f64 / GIB,
            m.kv_cache_tokens,
            m.max_concurrency,
            if fits { "yes" } else { "no" }
        ));
        by_model.entry(case.model.display_name.clone()).or_default().push(StorageRow {
            gpu: case.gpu.name.clone(),
            quant: case.quant.name().to_string(),
            gpu_memory_gib: case.gpu.memory_gib,
            max_concurrency: m.max_concurrency,
            fits,
            weights_bytes: m.weights_bytes as f64,
        });
    }
    let precision_rank = |q: &str| match q {
        "fp16" | "bf16" => 0,
        "int8" | "fp8" => 1,
        "int4" => 2,
        _ => 3,
    };
    let mut recommendations = Vec::new();
    let mut lines = Vec::new();
    for (model, configs) in &by_model {
        let best = configs.iter().filter(|c| c.fits && c.max_concurrency >= MIN_CONCURRENCY).min_by(|a, b| {
            a.gpu_memory_gib.total_cmp(&b.gpu_memory_gib).then(precision_rank(&a.quant).cmp(&precision_rank(&b.quant)))
        });
        let fp32 = configs.iter().find(|c| c.quant == "fp32").map(|c| c.weights_bytes);
        let int4 = configs.iter().find(|c| c.quant == "int4").map(|c| c.weights_bytes);
        let ratio = match (fp32, int4) {
            (Some(a), Some(b)) if a > 0.0 => format!("; int4 weights are {:.1}% of fp32", 100.0 * b / a),
            _ => String::new(),
        };
        let line = match best {
            Some(c) => format!(
                "{model}: {} at {} ({:.1}x concurrency at 4,096 tokens){ratio}",
                c.gpu, c.quant, c.max_concurrency
            ),
            None => {
                format!("{model}: no configuration holds {MIN_CONCURRENCY:.0} concurrent 4,096-token sequences{ratio}")
            }
        };
        recommendations.push(json!({"model": model, "recommendation": best.map(|c| json!({"gpu": c.gpu, "quant": c.quant, "max_concurrency": number(c.max_concurrency)}))}));
        lines.push(line);
    }
    let fitting = report.cases.iter().filter(|c| c.runs.iter().all(|r| r.outcome == "completed")).count();
    let headline = format!("{fitting} of {} configurations fit", report.cases.len());
    let summary = format!(
        "Three models on five GPUs in four precisions: weights, vLLM's profiled activation peak, the KV room left and the concurrency it allows at 4,096 tokens, as vLLM computes them at start-up. {fitting} of {} configurations fit. Recommended (the smallest GPU that holds at least {MIN_CONCURRENCY:.0} concurrent 4,096-token sequences, preferring higher precision): {}.",
        report.cases.len(),
        lines.join("; ")
    );
    Findings {
        headline,
        summary: summary.clone(),
        details: json!({"recommendations": recommendations}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}

fn chunked_prefill(scenario: &Scenario, report: &Report) -> Findings {
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
        details: json!({"best": best_list}),
        markdown: format!("{summary}\n\n{markdown}"),
    }
}
