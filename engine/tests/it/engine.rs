//! Whole runs with the constant step-time model, where every number can be worked by hand.

use symbiote::report::metrics::Capture;
use symbiote::report::summary::summarize;
use symbiote::sim::run::{run_case, Outcome};

use crate::scenario;

fn constant_case(workload: &str, engine: &str) -> String {
    format!(
        r#"{{"name": "t", "base": {{"model": "llama-2-7b", "gpu": "a100-80gb",
            "step_time": {{"model": "constant", "step_ms": 10}},
            "engine": {engine}, "workload": {workload}}}}}"#
    )
}

/// One request, prompt 100, output 5, every step 10 ms: the prefill step ends at 10 ms with
/// the first token; four decode steps follow. TTFT 10, E2E 50, TPOT and every ITL 10 ms.
#[test]
fn a_single_request_has_hand_computed_latencies() {
    let s = scenario(&constant_case(
        r#"{"arrival": {"process": "constant", "rate": 1}, "num_requests": 1,
            "prompt": {"dist": "fixed", "value": 100}, "output": {"dist": "fixed", "value": 5}}"#,
        "{}",
    ));
    let result = run_case(&s.cases[0], 1, Capture { requests: true, ..Capture::default() });
    assert_eq!(result.outcome, Outcome::Completed);
    let m = summarize(&result.metrics, 1);
    assert_eq!(m["completed"], 1);
    assert_eq!(m["mean_ttft_ms"], 10.0);
    assert_eq!(m["mean_e2el_ms"], 50.0);
    assert_eq!(m["mean_tpot_ms"], 10.0);
    assert_eq!(m["mean_itl_ms"], 10.0);
    assert_eq!(m["steps"], 5);
    assert_eq!(m["duration"], 0.05);
}

/// Two requests at t=0 with prompts of 1500 tokens and a 2048-token budget: the first step
/// runs 1500 + 548 tokens, the second finishes the other prompt (952) beside the first's
/// decode. TTFTs are 10 and 20 ms.
#[test]
fn chunked_prefill_splits_the_second_prompt_across_steps() {
    let s = scenario(&constant_case(
        r#"{"clients": {"users": 2}, "num_requests": 2,
            "prompt": {"dist": "fixed", "value": 1500}, "output": {"dist": "fixed", "value": 3}}"#,
        r#"{"max_num_batched_tokens": 2048}"#,
    ));
    let result = run_case(&s.cases[0], 1, Capture { requests: true, ..Capture::default() });
    let records = result.metrics.records.as_ref().unwrap();
    let ttfts: Vec<u64> = records.iter().map(|r| r.first_token.0 - r.arrival.0).collect();
    assert!(ttfts.contains(&10_000_000) && ttfts.contains(&20_000_000), "{ttfts:?}");
    let m = summarize(&result.metrics, 1);
    // Steps: 1500 + 548, then 1 + 952, then 1 + 1, then 1: both prompts plus two decodes each.
    assert_eq!(m["mean_tokens_per_step"], (1500.0 + 1500.0 + 2.0 + 2.0) / 4.0);
    assert_eq!(m["steps"], 4);
}

/// A prompt longer than max_model_len is refused with the engine's message (the offline `LLM`
/// class; the API server's 400 has its own words, see `serving::admission`); the run goes on.
#[test]
fn an_over_long_prompt_is_rejected_and_counted() {
    let s = scenario(&constant_case(
        r#"{"arrival": {"process": "constant", "rate": 10}, "num_requests": 4,
            "prompt": {"dist": "uniform", "min": 3000, "max": 5000}, "output": {"dist": "fixed", "value": 2}}"#,
        r#"{"max_model_len": 4096, "entrypoint": "offline"}"#,
    ));
    let result = run_case(&s.cases[0], 3, Capture::default());
    assert_eq!(result.outcome, Outcome::Completed);
    let rejected = result.metrics.rejected.get("prompt_too_long").copied().unwrap_or(0);
    assert!(rejected > 0, "seed 3 should draw at least one prompt above 4096");
    assert_eq!(result.metrics.completed + rejected, 4);
    let message = result.metrics.first_rejection.unwrap();
    assert!(message.starts_with("The decoder prompt (length "), "{message}");
    assert!(message.ends_with("is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens."));
}

/// A model that does not fit is an outcome with vLLM's message and the breakdown, not a crash.
#[test]
fn a_model_that_does_not_fit_is_an_oom_outcome() {
    let s = scenario(
        r#"{"name": "t", "base": {"model": "llama-2-13b", "gpu": "rtx-3090", "quant": "fp16",
            "workload": {"arrival": {"rate": 1}, "num_requests": 5}}}"#,
    );
    let result = run_case(&s.cases[0], 1, Capture::default());
    assert_eq!(result.outcome, Outcome::Oom);
    let failure = result.startup_failure.unwrap();
    assert!(failure.message.starts_with("No available memory for the cache blocks."));
    assert!(failure.breakdown.weights_bytes > failure.breakdown.requested_bytes);
}

/// Under overload the KV cache fills and requests are preempted, yet every request finishes
/// (the debug-build invariant checks run after every step).
#[test]
fn overload_preempts_and_still_completes_every_request() {
    let s = scenario(&constant_case(
        r#"{"arrival": {"process": "poisson", "rate": 2000}, "num_requests": 400,
            "prompt": {"dist": "lognormal", "mean": 300, "cv": 0.5, "max": 2000},
            "output": {"dist": "uniform", "min": 50, "max": 400}}"#,
        r#"{"num_gpu_blocks_override": 400, "max_num_seqs": 128}"#,
    ));
    let result = run_case(&s.cases[0], 7, Capture::default());
    assert_eq!(result.outcome, Outcome::Completed);
    assert_eq!(result.metrics.completed, 400);
    assert!(result.metrics.preemptions > 0);
    assert!(result.metrics.kv_usage_peak > 0.9);
}

/// Limits end a run with an outcome instead of running on.
#[test]
fn limits_end_the_run_with_an_outcome() {
    let s =
        scenario(&constant_case(r#"{"arrival": {"process": "poisson", "rate": 50}, "num_requests": 100000}"#, "{}"));
    let mut case = s.cases[0].clone();
    case.limits.max_events = 1000;
    assert_eq!(run_case(&case, 1, Capture::default()).outcome, Outcome::EventLimit);
    let mut case = s.cases[0].clone();
    case.limits.max_sim_time = symbiote::sim::SimTime::from_secs_f64(2.0);
    assert_eq!(run_case(&case, 1, Capture::default()).outcome, Outcome::TimeLimit);
}

/// Async scheduling (vLLM's default since PR #27614): step N+1 is planned when step N starts, so a
/// request arriving during step N first runs in step N+2. Steps of 10 ms; request A arrives at
/// 0, B at 12.5 ms (inside A's second step, 10-20 ms). Synchronously B is scheduled at 20 and
/// has its first token at 30 (TTFT 17.5 ms); asynchronously the 20-30 step was already planned
/// (A's decode), so B's first token comes at 40 (TTFT 27.5 ms). When A finishes at 20 the
/// planned step would be empty, vLLM queues none, and B runs at once (TTFT 17.5 ms again).
#[test]
fn async_scheduling_delays_an_arrival_by_the_step_already_planned() {
    let ttft_of_b = |output: u32, async_scheduling: bool| {
        let s = scenario(&constant_case(
            &format!(
                r#"{{"arrival": {{"process": "constant", "rate": 80}}, "num_requests": 2,
                    "prompt": {{"dist": "fixed", "value": 100}}, "output": {{"dist": "fixed", "value": {output}}}}}"#
            ),
            &format!(r#"{{"async_scheduling": {async_scheduling}}}"#),
        ));
        let result = run_case(&s.cases[0], 1, Capture { requests: true, ..Capture::default() });
        assert_eq!(result.outcome, Outcome::Completed);
        let records = result.metrics.records.as_ref().unwrap();
        let b = records.iter().max_by_key(|r| r.arrival).unwrap();
        assert_eq!(b.arrival.0, 12_500_000);
        (b.first_token.0 - b.arrival.0) as f64 / 1e6
    };
    assert_eq!(ttft_of_b(10, false), 17.5);
    assert_eq!(ttft_of_b(10, true), 27.5);
    assert_eq!(ttft_of_b(2, true), 17.5);
}

// See: issue 14
/// A prompt exactly max_model_len long used to be admitted: its chunked prefill stopped at
/// max_model_len - 1, it never finished and the run ended `stalled`. vLLM refuses it at either
/// front door (the server's 400; the engine's `_validate_prompt_len` for the offline class).
#[test]
fn issue_14_a_prompt_of_exactly_max_model_len_is_refused_not_left_stalled() {
    for entrypoint in ["server", "offline"] {
        let s = scenario(&constant_case(
            r#"{"arrival": {"process": "constant", "rate": 10}, "num_requests": 2,
                "prompt": {"dist": "fixed", "value": 4096}, "output": {"dist": "fixed", "value": 8}}"#,
            &format!(r#"{{"max_model_len": 4096, "max_num_batched_tokens": 2048, "entrypoint": "{entrypoint}"}}"#),
        ));
        let result = run_case(&s.cases[0], 1, Capture::default());
        assert_eq!(result.outcome, Outcome::Completed, "{entrypoint}");
        assert_eq!(result.metrics.rejected.get("prompt_too_long"), Some(&2), "{entrypoint}");
        assert!(result.violations.is_empty(), "{:?}", result.violations);
    }
}

// See: issue 14
/// Prompt 4000 + output 200 passes max_model_len 4096. `vllm serve` answers 400 (what `vllm
/// bench serve`, which sends the output length as max_tokens, counts as failed); the offline
/// `LLM` class accepts the request and stops it at 4096 tokens, 96 generated, finish reason
/// "length".
#[test]
fn issue_14_prompt_plus_output_over_max_model_len_is_refused_by_the_server_and_cut_offline() {
    let run = |entrypoint: &str| {
        let s = scenario(&constant_case(
            r#"{"arrival": {"process": "constant", "rate": 10}, "num_requests": 3,
                "prompt": {"dist": "fixed", "value": 4000}, "output": {"dist": "fixed", "value": 200}}"#,
            &format!(r#"{{"max_model_len": 4096, "entrypoint": "{entrypoint}"}}"#),
        ));
        run_case(&s.cases[0], 1, Capture::default())
    };
    let server = run("server");
    assert_eq!(server.outcome, Outcome::Completed);
    assert_eq!(server.metrics.completed, 0);
    assert_eq!(server.metrics.rejected.get("max_tokens_too_large"), Some(&3));
    assert_eq!(
        server.metrics.first_rejection.as_deref(),
        Some("'max_tokens' or 'max_completion_tokens' is too large: 200. This model's maximum context length is 4096 tokens and your request has 4000 input tokens (200 > 4096 - 4000).")
    );
    let offline = run("offline");
    assert_eq!(offline.outcome, Outcome::Completed);
    let m = summarize(&offline.metrics, 1);
    let get = |key: &str| m[key].as_u64().unwrap();
    assert_eq!((get("num_prompts"), get("completed"), get("length_capped")), (3, 3, 3));
    assert_eq!(get("total_output_tokens"), 3 * 96);
}

// See: issue 14
/// A run stopped by its time limit leaves requests queued, running, parked behind their
/// session's previous turn or inside the front end: all of them are counted, so that
/// num_prompts = completed + rejected + unfinished (the run itself checks it, in every build).
#[test]
fn issue_14_every_arrival_is_accounted_for_when_a_run_stops_early() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples");
    let chat = symbiote::scenario::load(&dir.join("shared_prefix_chat.json")).unwrap();
    let constant = scenario(&constant_case(
        r#"{"arrival": {"process": "poisson", "rate": 50}, "num_requests": 100000,
            "prompt": {"dist": "uniform", "min": 100, "max": 5000}}"#,
        r#"{"max_model_len": 4096}"#,
    ));
    for (mut case, stop_s) in [(chat.cases[0].clone(), 90.0), (constant.cases[0].clone(), 2.0)] {
        case.limits.max_sim_time = symbiote::sim::SimTime::from_secs_f64(stop_s);
        let result = run_case(&case, 1, Capture::default());
        assert_eq!(result.outcome, Outcome::TimeLimit, "{}", case.name);
        assert!(result.violations.is_empty(), "{:?}", result.violations);
        let m = summarize(&result.metrics, 1);
        let get = |key: &str| m[key].as_u64().unwrap();
        assert!(get("unfinished") > 0 && get("completed") > 0, "{m:?}");
        assert_eq!(get("num_prompts"), get("completed") + get("rejected") + get("unfinished"), "{}", case.name);
    }
}
