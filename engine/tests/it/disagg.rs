//! Disaggregated prefill/decode serving (issue 17, item 1), with the constant step-time model
//! so every time can be worked by hand: `10 ms + 0.1 ms x tokens` per step.

use symbiote::hardware::link::transfer_bytes_per_token;
use symbiote::report::metrics::Capture;
use symbiote::runner::run_report;
use symbiote::sim::run::{run_case, Outcome};

use crate::scenario;

/// Llama-3.1-8B on H100s, `prefill` and `decode` replicas over `link`, fixed lengths.
fn disagg(fleet: &str, workload: &str, engine: &str) -> String {
    format!(
        r#"{{"name": "t", "base": {{"model": "llama-3.1-8b", "gpu": "h100-80gb",
            "step_time": {{"model": "constant", "step_ms": 10, "token_us": 100}},
            "engine": {engine},
            "fleet": {{"disaggregation": {fleet}}},
            "workload": {workload}}}}}"#
    )
}

const ONE_REQUEST: &str = r#"{"arrival": {"process": "constant", "rate": 1}, "num_requests": 1,
    "prompt": {"dist": "fixed", "value": 1000}, "output": {"dist": "fixed", "value": 10}}"#;

// See: issue 17
/// One request, 1000 prompt tokens, 10 output tokens, one prefill and one decode H100 over a
/// 400 Gb/s NDR NIC (50 GB/s one way, 20 us latency):
/// - prefill: one step of 1000 tokens, 10 + 0.1 x 1000 = 110 ms (its one token is dropped);
/// - KV: Llama-3.1-8B holds 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 bytes = 131,072
///   bytes per token; the read moves whole blocks, ceil(1000 / 16) = 63 blocks = 1008 tokens
///   = 132,120,576 bytes, 132,120,576 / 50e9 s = 2,642,411.52 ns, rounded to 2,642,412 ns,
///   plus 20,000 ns = 2,662,412 ns;
/// - first decode step: the prompt's last token recomputed, 10 + 0.1 = 10.1 ms.
///   TTFT = 110 ms + 2.662412 ms + 10.1 ms = 122.762412 ms; the other 9 tokens take 10.1 ms
///   each: E2E = 122.762412 + 90.9 = 213.662412 ms.
#[test]
fn issue_17_one_request_ttft_is_prefill_plus_transfer_plus_first_decode_step() {
    let s = scenario(&disagg(
        r#"{"prefill": {"replicas": 1}, "decode": {"replicas": 1}, "link": "ib-ndr-400"}"#,
        ONE_REQUEST,
        "{}",
    ));
    let case = &s.cases[0];
    assert_eq!(transfer_bytes_per_token(&case.model, case.quant, case.kv_dtype, 1, 1), 2 * 32 * 8 * 128 * 2);
    let result = run_case(case, 1, Capture { requests: true, ..Capture::default() });
    assert_eq!(result.outcome, Outcome::Completed);
    assert!(result.violations.is_empty(), "{:?}", result.violations);
    let records = result.metrics.records.as_ref().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.first_token.since(r.arrival).0, 110_000_000 + 2_662_412 + 10_100_000);
    assert_eq!(r.finish.since(r.arrival).0, 122_762_412 + 9 * 10_100_000);
    // The queueing delay counts from the prefill side: the request was scheduled on arrival.
    assert_eq!(r.first_scheduled, r.arrival);
    // The first token comes from the decode replica (global index 1).
    assert_eq!(r.replica, 1);
    let d = result.metrics.disagg.as_ref().unwrap();
    assert_eq!((d.handoffs, d.transfers, d.bytes_per_gpu), (1, 1, 132_120_576));
    assert_eq!(d.transfer_ns.exact().unwrap(), &[2_662_412.0]);
}

// See: issue 17
/// Tensor parallelism shards the KV heads: a TP-2 prefill replica sends half of each token's
/// KV per GPU link, in parallel, but a TP-1 decode replica receives all of it on one, so the
/// link carries the TP-1 share. With TP 2 on both sides each link carries 65,536 bytes per
/// token: 63 blocks x 16 x 65,536 = 66,060,288 bytes over NVLink (H100: 900 GB/s both ways,
/// 450 GB/s one way) = 146,800.64 ns, rounded to 146,801, plus 10 us.
#[test]
fn issue_17_tensor_parallel_pools_move_their_kv_shards_in_parallel() {
    let one_side = scenario(&disagg(
        r#"{"prefill": {"replicas": 1, "tp": 2}, "decode": {"replicas": 1}, "link": "nvlink"}"#,
        ONE_REQUEST,
        "{}",
    ));
    let c = &one_side.cases[0];
    assert_eq!(transfer_bytes_per_token(&c.model, c.quant, c.kv_dtype, 2, 1), 131_072);
    let both = scenario(&disagg(
        r#"{"prefill": {"replicas": 1, "tp": 2}, "decode": {"replicas": 1, "tp": 2}, "link": "nvlink"}"#,
        ONE_REQUEST,
        "{}",
    ));
    let result = run_case(&both.cases[0], 1, Capture::default());
    let d = result.metrics.disagg.as_ref().unwrap();
    assert_eq!(d.bytes_per_gpu, 66_060_288);
    assert_eq!(d.transfer_ns.exact().unwrap(), &[146_801.0 + 10_000.0]);
}

// See: issue 17
/// Every request is accounted for between the pools, under pressure: 200 requests at 40/s on
/// 2 prefill and 2 decode replicas whose KV caches hold 200 blocks (3 prompts of 63 blocks),
/// so decode replicas wait for free blocks before reading and prefill replicas hold parked
/// blocks until the read. Each request is handed off once, read once and completed once, and
/// the run's own checks (requests and KV blocks conserved on every replica, time order) hold.
#[test]
fn issue_17_every_request_is_accounted_for_between_pools() {
    let workload = r#"{"arrival": {"process": "poisson", "rate": 40}, "num_requests": 200,
        "prompt": {"dist": "fixed", "value": 1000}, "output": {"dist": "uniform", "min": 20, "max": 200}}"#;
    let s = scenario(&disagg(
        r#"{"prefill": {"replicas": 2}, "decode": {"replicas": 2, "router": "least_outstanding"}, "link": "ethernet-100"}"#,
        workload,
        r#"{"num_gpu_blocks_override": 200, "max_model_len": 2048}"#,
    ));
    let result = run_case(&s.cases[0], 3, Capture::default());
    assert_eq!(result.outcome, Outcome::Completed);
    assert!(result.violations.is_empty(), "{:?}", result.violations);
    let m = &result.metrics;
    assert_eq!((m.arrivals, m.completed, m.unfinished, m.rejected_total()), (200, 200, 0, 0));
    let d = m.disagg.as_ref().unwrap();
    assert_eq!((d.handoffs, d.transfers), (200, 200));
    // Only decode replicas (2 and 3) complete requests; prefill replicas only step.
    assert_eq!(m.replicas.iter().map(|r| r.completed).collect::<Vec<_>>()[..2], [0, 0]);
    assert!(m.replicas[..2].iter().all(|r| r.steps > 0));
    // The decode side did wait for blocks: the pressure reached the case we meant to test.
    let waits = d.block_wait_ns.exact().unwrap();
    assert!(waits.iter().any(|&w| w > 0.0), "no decode request waited for blocks");
    // The decode replicas' fast path for runs of decode steps gives the step-by-step result.
    let mut slow = s.cases[0].clone();
    slow.limits.step_by_step = true;
    let by_step = run_case(&slow, 3, Capture::default());
    let report = |r: &symbiote::sim::run::RunResult| {
        let mut m = symbiote::report::summary::summarize(&r.metrics, 1);
        let d = r.metrics.disagg.as_ref().unwrap();
        m.insert("disaggregation".into(), symbiote::report::disagg::summarize(&r.metrics, d).into());
        m
    };
    assert_eq!(report(&result), report(&by_step));
}

// See: issue 17
/// Same scenario and seed, same report, twice in one process; and a unified fleet of the same
/// GPUs has no `disaggregation` object at all.
#[test]
fn issue_17_disaggregated_runs_are_deterministic() {
    let workload = r#"{"arrival": {"process": "gamma", "rate": 30, "cv": 2}, "num_requests": 300,
        "prompt": {"dist": "lognormal", "mean": 2000, "cv": 1, "max": 8000}, "output": {"dist": "lognormal", "mean": 150, "cv": 1, "max": 1000}}"#;
    let s = scenario(&disagg(
        r#"{"prefill": {"replicas": 1}, "decode": {"replicas": 3, "router": "random"}, "link": "ib-ndr-400"}"#,
        workload,
        "{}",
    ));
    let report = |seed| {
        let r = run_case(&s.cases[0], seed, Capture::default());
        serde_json::to_string(&run_report(&s.cases[0], seed, &r, &s)).unwrap()
    };
    let first = report(5);
    assert_eq!(first, report(5));
    assert!(first.contains("\"disaggregation\""));
    assert_ne!(first, report(6));
}

// See: issue 17
/// Bad fleets are refused with the field and the fix.
#[test]
fn issue_17_bad_disaggregated_fleets_name_the_field_and_the_fix() {
    let problems = |fleet: &str| {
        let text = format!(
            r#"{{"name": "t", "base": {{"model": "llama-3.1-8b", "gpu": "l40s", "fleet": {fleet},
                "workload": {{"arrival": {{"rate": 1}}, "num_requests": 1}}}}}}"#
        );
        symbiote::scenario::parse(&text, "t.json")
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let both = problems(
        r#"{"replicas": 2, "disaggregation": {"prefill": {"replicas": 1}, "decode": {"replicas": 1}, "link": "pcie"}}"#,
    );
    assert!(both.contains("base.fleet.replicas") && both.contains("remove `fleet.replicas`"), "{both}");
    let nvlink =
        problems(r#"{"disaggregation": {"prefill": {"replicas": 1}, "decode": {"replicas": 1}, "link": "nvlink"}}"#);
    assert!(nvlink.contains("fleet.disaggregation.link") && nvlink.contains("choose `pcie`"), "{nvlink}");
    let unknown =
        problems(r#"{"disaggregation": {"prefill": {"replicas": 1}, "decode": {"replicas": 1}, "link": "wifi"}}"#);
    assert!(unknown.contains("unknown link `wifi`") && unknown.contains("ib-ndr-400"), "{unknown}");
    let empty = problems(
        r#"{"disaggregation": {"prefill": {"replicas": 0}, "decode": {"replicas": 1, "tp": 3}, "link": "pcie"}}"#,
    );
    assert!(empty.contains("prefill.replicas") && empty.contains("decode.tp"), "{empty}");
    let affinity = problems(
        r#"{"disaggregation": {"prefill": {"replicas": 1}, "decode": {"replicas": 1, "router": "prefix_affinity"}, "link": "pcie"}}"#,
    );
    assert!(affinity.contains("decode.router"), "{affinity}");
    let typo =
        problems(r#"{"disaggregation": {"prefil": {"replicas": 1}, "decode": {"replicas": 1}, "link": "pcie"}}"#);
    assert!(typo.contains("prefil"), "{typo}");
}

// See: issue 17
/// The example in docs/disaggregation.md is a valid scenario, and so is the example scenario.
#[test]
fn issue_17_the_documented_examples_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/disaggregation.md")).unwrap();
    let block = doc.split("```json\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a JSON example");
    let s = scenario(block);
    assert_eq!(s.cases[0].disagg.as_ref().map(|d| (d.prefill.replicas, d.decode.replicas)), Some((1, 3)));
    symbiote::scenario::validate::load(&root.join("scenarios/examples/disaggregated_prefill_decode.json"))
        .unwrap_or_else(|p| panic!("{}", p.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n")));
}
