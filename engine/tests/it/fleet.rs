//! Fleets, Ray Data batch jobs and the static engine, with the constant step-time model where
//! every number can be worked by hand.

use symbiote::report::metrics::Capture;
use symbiote::report::summary::{replica_summaries, summarize};
use symbiote::sim::run::{run_case, Outcome};

use crate::scenario;

fn batch_case(batch: &str, engine: &str) -> String {
    format!(
        r#"{{"name": "t", "base": {{"model": "qwen2.5-0.5b", "gpu": "a100-80gb",
            "step_time": {{"model": "constant", "step_ms": 10}},
            "engine": {engine},
            "batch": {batch},
            "workload": {{"prompt": {{"dist": "fixed", "value": 100}}, "output": {{"dist": "fixed", "value": 5}}}}}}}}"#
    )
}

/// 4 replicas, 10 batches of 2 rows, one batch per replica at a time. A batch runs 5 steps of
/// 10 ms (one prefill, four decodes): batches 0-3 end at 50 ms, 4-7 at 100 ms, 8-9 at 150 ms.
#[test]
fn batch_job_makespan_matches_the_hand_calculation() {
    let s =
        scenario(&batch_case(r#"{"rows": 20, "batch_size": 2, "concurrency": 4, "max_concurrent_batches": 1}"#, "{}"));
    let result = run_case(&s.cases[0], 1, Capture::default());
    assert_eq!(result.outcome, Outcome::Completed);
    let m = summarize(&result.metrics, 1);
    assert_eq!(m["makespan_s"], 0.15);
    assert_eq!(m["rows_per_s"], 20.0 / 0.15);
    assert_eq!(m["batches"], 10);
    assert!((m["mean_batch_time_s"].as_f64().unwrap() - 0.05).abs() < 1e-12);
    let per_replica: Vec<u64> =
        replica_summaries(&result.metrics).iter().map(|r| r["completed"].as_u64().unwrap()).collect();
    assert_eq!(per_replica, vec![6, 6, 4, 4]);
    // 4 GPUs for 0.15 s.
    assert!((m["gpu_hours"].as_f64().unwrap() - 4.0 * 0.15 / 3600.0).abs() < 1e-15);
}

/// Two batches per replica at once: 8 batches run in the first 50 ms, the last 2 by 100 ms.
#[test]
fn max_concurrent_batches_lets_a_replica_run_batches_together() {
    let s =
        scenario(&batch_case(r#"{"rows": 20, "batch_size": 2, "concurrency": 4, "max_concurrent_batches": 2}"#, "{}"));
    let m = summarize(&run_case(&s.cases[0], 1, Capture::default()).metrics, 1);
    assert_eq!(m["makespan_s"], 0.1);
}

/// A start-up time delays every replica's first batch.
#[test]
fn replica_start_up_delays_the_job() {
    let s = scenario(&batch_case(
        r#"{"rows": 20, "batch_size": 2, "concurrency": 4, "max_concurrent_batches": 1, "startup_s": 2}"#,
        "{}",
    ));
    let result = run_case(&s.cases[0], 1, Capture::default());
    assert_eq!(summarize(&result.metrics, 1)["makespan_s"], 2.15);
    assert_eq!(replica_summaries(&result.metrics)[0]["ready_at_s"], 2.0);
}

/// The static engine pads to the longest prompt and runs until the longest output: rows of
/// 2, 5 and 3 output tokens all finish after 5 steps (50 ms); each gets its first token at 10 ms.
#[test]
fn static_batches_run_until_the_longest_row_is_done() {
    let s = scenario(
        r#"{"name": "t", "base": {"model": "qwen2.5-0.5b", "gpu": "a100-80gb",
            "step_time": {"model": "constant", "step_ms": 10},
            "engine": {"kind": "static", "max_num_seqs": 8, "max_model_len": 4096},
            "workload": {"clients": {"users": 3}, "num_requests": 3,
                         "prompt": {"dist": "uniform", "min": 50, "max": 100},
                         "output": {"dist": "uniform", "min": 2, "max": 5}}}}"#,
    );
    let result = run_case(&s.cases[0], 4, Capture { requests: true, ..Capture::default() });
    assert_eq!(result.outcome, Outcome::Completed);
    let records = result.metrics.records.as_ref().unwrap();
    let longest = records.iter().map(|r| r.output_tokens).max().unwrap() as u64;
    assert!(records.iter().all(|r| r.first_token.0 == 10_000_000));
    assert!(records.iter().all(|r| r.finish.0 == longest * 10_000_000));
    assert_eq!(result.metrics.steps, longest);
}

/// The phase-3 property: a batch of 8192 rows of a 7B fp16 model does not fit a 24 GB GPU
/// on the static engine, while vLLM completes the same rows by paging and queueing.
#[test]
fn static_engine_runs_out_of_memory_where_vllm_completes() {
    let text = |kind: &str| {
        format!(
            r#"{{"name": "t", "base": {{"model": "llama-2-7b", "gpu": "rtx-3090", "engine": {{"kind": "{kind}", "max_num_seqs": 8192, "max_num_batched_tokens": 8192}},
                "batch": {{"rows": 8192, "batch_size": 8192}},
                "step_time": {{"model": "constant", "step_ms": 10}},
                "workload": {{"prompt": {{"dist": "fixed", "value": 512}}, "output": {{"dist": "fixed", "value": 16}}}}}}}}"#
        )
    };
    let static_run = run_case(&scenario(&text("static")).cases[0], 1, Capture::default());
    assert_eq!(static_run.outcome, Outcome::Oom);
    let failure = static_run.startup_failure.unwrap();
    assert!(failure.message.starts_with("torch.OutOfMemoryError: CUDA out of memory. A static batch of 8192 rows"));
    assert!(!failure.static_batch.unwrap().fits());
    let vllm_run = run_case(&scenario(&text("vllm")).cases[0], 1, Capture::default());
    assert_eq!(vllm_run.outcome, Outcome::Completed);
    assert_eq!(vllm_run.metrics.completed, 8192);
}

/// The admission limit rejects, counts and names what it refused.
#[test]
fn the_admission_limit_rejects_and_counts() {
    let s = scenario(
        r#"{"name": "t", "base": {"model": "qwen2.5-0.5b", "gpu": "a100-80gb",
            "step_time": {"model": "constant", "step_ms": 10},
            "fleet": {"replicas": 2, "router": "least_outstanding", "max_waiting": 3},
            "workload": {"arrival": {"process": "constant", "rate": 100000}, "num_requests": 20,
                         "prompt": {"dist": "fixed", "value": 10}, "output": {"dist": "fixed", "value": 50}}}}"#,
    );
    let result = run_case(&s.cases[0], 1, Capture::default());
    let rejected = result.metrics.rejected["admission_limit"];
    assert!(rejected > 0);
    assert_eq!(result.metrics.completed + rejected, 20);
    assert!(result.metrics.first_rejection.as_ref().unwrap().contains("fleet.max_waiting"));
    // least_outstanding spreads the accepted requests evenly.
    let per_replica: Vec<u64> =
        replica_summaries(&result.metrics).iter().map(|r| r["completed"].as_u64().unwrap()).collect();
    assert!(per_replica[0].abs_diff(per_replica[1]) <= 1, "{per_replica:?}");
}

/// prefix_affinity sends requests that share a system prompt to the replica that cached it.
#[test]
fn prefix_affinity_keeps_a_shared_prefix_on_one_replica() {
    let text = |router: &str| {
        format!(
            r#"{{"name": "t", "base": {{"model": "qwen2.5-0.5b", "gpu": "a100-80gb",
                "fleet": {{"replicas": 4, "router": "{router}"}},
                "workload": {{"arrival": {{"process": "poisson", "rate": 20}}, "num_requests": 400,
                    "prompt": {{"dist": "fixed", "value": 64}}, "output": {{"dist": "fixed", "value": 32}},
                    "prefix": {{"groups": 4, "tokens": 1024}}}}}}}}"#
        )
    };
    let hit_rate = |router: &str| {
        let result = run_case(&scenario(&text(router)).cases[0], 1, Capture::default());
        summarize(&result.metrics, 1)["prefix_cache_hit_rate"].as_f64().unwrap()
    };
    let (affinity, round_robin) = (hit_rate("prefix_affinity"), hit_rate("round_robin"));
    assert!(affinity > round_robin, "affinity {affinity} vs round robin {round_robin}");
    assert!(affinity > 0.85, "{affinity}");
}
