//! Phase 4: KV-cache pressure and the largest batch without preemption, by simulated search.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::hardware::memory;
use crate::report::metrics::Capture;
use crate::report::Report;
use crate::scenario::{Case, Scenario};
use crate::workload::LengthDist;

/// The largest number of concurrent sequences of `prompt + output` tokens that run without a
/// single preemption, by binary search over simulated runs of N simultaneous requests.
pub(super) fn search_no_preemption(case: &Case, prompt: u32, output: u32) -> u64 {
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

pub(super) fn kv_stress(scenario: &Scenario, report: &Report) -> Findings {
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
