//! CPU KV offload (issue 17, item 2): a prefix evicted from the GPU but kept in the CPU tier
//! costs its PCIe load, not its recompute; a GPU hit costs nothing; a miss in both tiers is
//! recomputed. Driven step by step on one replica with a constant step time, so every time is
//! worked by hand. See: issue 17

use std::sync::Arc;

use symbiote::hardware::ConstantStepTime;
use symbiote::report::metrics::{Capture, Metrics};
use symbiote::report::summary::summarize;
use symbiote::serving::cpu_tier::TierConfig;
use symbiote::serving::kv_cache::KvCache;
use symbiote::serving::offload::Offload;
use symbiote::serving::replica::Replica;
use symbiote::serving::request::Request;
use symbiote::serving::scheduler::SchedulerConfig;
use symbiote::sim::run::{run_case, Outcome};
use symbiote::sim::{Nanos, SimTime};
use symbiote::workload::{RequestSpec, Segment};

use crate::scenario;

/// Llama-2-7B in fp16: 2 x 32 layers x 32 heads x 128 x 2 bytes = 524,288 bytes per token, so
/// a 16-token block is 8,388,608 bytes; the A100's host link is 25 GB/s plus 10 us.
const BLOCK_BYTES: u64 = 16 * 524_288;
const MS: u64 = 1_000_000;

fn replica(offload: bool) -> Replica {
    let config = SchedulerConfig {
        max_num_batched_tokens: 2048,
        max_num_seqs: 16,
        max_model_len: 4096,
        enable_chunked_prefill: true,
        long_prefill_token_threshold: 0,
        async_scheduling: false,
    };
    // 24 usable blocks (block 0 is the null block); 10 ms per step plus 0.1 ms per token.
    let kv = KvCache::new(25, 16, true);
    let step = Arc::new(ConstantStepTime { per_step: Nanos(10 * MS), per_token: Nanos(MS / 10) });
    let mut r = Replica::new(0, config, kv, step);
    if offload {
        r.scheduler.offload = Some(Box::new(Offload::new(TierConfig {
            num_blocks: 100,
            rank_block_bytes: BLOCK_BYTES,
            ranks: 1,
            link_bytes_per_s: 25e9,
            link_latency: Nanos(10_000),
        })));
    }
    r
}

fn request(index: u64, arrival_ms: u64, segments: Vec<Segment>, output: u32) -> Request {
    let prompt_tokens = segments.iter().map(|s| s.len).sum();
    Request::new(
        index,
        RequestSpec {
            index,
            arrival: SimTime(arrival_ms * MS),
            prompt_tokens,
            output_tokens: output,
            segments,
            output_segment: 9000 + index,
            client: None,
            session: None,
            private_from: RequestSpec::SHARED,
        },
    )
}

/// Runs the replica until it is idle with nothing to wait for, starting at `now`; returns the
/// time it went idle.
fn drain(r: &mut Replica, metrics: &mut Metrics, mut now: SimTime) -> SimTime {
    let mut finished = Vec::new();
    loop {
        match r.start_step(now, metrics) {
            Some(duration) => {
                now += duration;
                r.finish_step(now, metrics, &mut finished);
            }
            None => match r.next_wake() {
                Some(at) => now = at.max(now),
                None => return now,
            },
        }
    }
}

/// A: the 320-token prefix (20 blocks) and 2 output tokens, at 0. B: 384 other tokens at
/// 100 ms, whose 24 blocks evict every block A left in the GPU. C: A's 320 tokens plus 16 of
/// its own at 200 ms. Returns C's TTFT and the metrics.
fn a_b_then_c(offload: bool, evict: bool) -> (u64, Metrics) {
    let mut r = replica(offload);
    let mut metrics = Metrics::new(Capture { requests: true, ..Capture::default() }, None, 1);
    let prefix = Segment { id: 1, len: 320 };
    r.admit(request(0, 0, vec![prefix], 2)).unwrap();
    drain(&mut r, &mut metrics, SimTime::ZERO);
    if evict {
        r.admit(request(1, 100, vec![Segment { id: 2, len: 384 }], 1)).unwrap();
        drain(&mut r, &mut metrics, SimTime(100 * MS));
    }
    r.admit(request(2, 200, vec![prefix, Segment { id: 3, len: 16 }], 1)).unwrap();
    drain(&mut r, &mut metrics, SimTime(200 * MS));
    r.check_invariants();
    let records = metrics.records.as_ref().unwrap();
    let c = records.iter().find(|x| x.seq_no == 2).unwrap();
    (c.first_token.0 - c.arrival.0, metrics)
}

#[test]
fn issue_17_a_prefix_hit_in_the_cpu_tier_costs_its_pcie_load_not_its_recompute() {
    // Offload on, prefix evicted from the GPU: C loads A's 20 blocks, 10 us + 20 x 8,388,608
    // bytes / 25e9 B/s = 10 us + 6.7108864 ms = 6.7208864 ms (A's copies were done at
    // 42 + 6.7208864 ms, long before), then one step computes its 16 own tokens:
    // 10 + 16 x 0.1 = 11.6 ms. TTFT 18.3208864 ms.
    let (ttft, _) = a_b_then_c(true, true);
    assert_eq!(ttft, 6_720_886 + 11_600_000);
    // Without the CPU tier, C recomputes all 336 tokens: 10 + 33.6 = 43.6 ms.
    let (ttft, _) = a_b_then_c(false, true);
    assert_eq!(ttft, 43_600_000);
    // A GPU hit (nothing evicted) costs nothing: only the 16 new tokens, 11.6 ms, with or
    // without the tier.
    assert_eq!(a_b_then_c(true, false).0, 11_600_000);
    assert_eq!(a_b_then_c(false, false).0, 11_600_000);
}

#[test]
fn issue_17_the_tier_counts_where_each_admitted_token_came_from() {
    let mut r = replica(true);
    let mut metrics = Metrics::new(Capture::default(), None, 1);
    let prefix = Segment { id: 1, len: 320 };
    r.admit(request(0, 0, vec![prefix], 2)).unwrap();
    drain(&mut r, &mut metrics, SimTime::ZERO);
    r.admit(request(1, 100, vec![Segment { id: 2, len: 384 }], 1)).unwrap();
    drain(&mut r, &mut metrics, SimTime(100 * MS));
    r.admit(request(2, 200, vec![prefix, Segment { id: 3, len: 16 }], 1)).unwrap();
    drain(&mut r, &mut metrics, SimTime(200 * MS));
    let stats = r.scheduler.offload.as_ref().unwrap().tier.stats;
    // A and B missed everything (320 + 384); C found 320 in the CPU tier and computed 16.
    assert_eq!((stats.gpu_hit_tokens, stats.cpu_hit_tokens, stats.miss_tokens), (0, 320, 704 + 16));
    assert_eq!((stats.loads, stats.loaded_blocks), (1, 20));
    // Stored: A's 20 full blocks, B's 24, C's one new full block (its 21st).
    assert_eq!(stats.stored_blocks, 20 + 24 + 1);
}

fn offload_scenario(engine: &str) -> String {
    format!(
        r#"{{"name": "t", "base": {{"model": "llama-3.1-8b", "gpu": "h100",
            "step_time": {{"model": "constant", "step_ms": 10}}, "vllm": {{"max_model_len": 8192}},
            "engine": {engine},
            "workload": {{"arrival": {{"process": "poisson", "rate": 4}}, "duration_s": 60,
                "shared_prefix": {{"num_groups": 5, "num_prompts_per_group": 8, "system_prompt_len": 500,
                    "question_len": 200, "output_len": 100, "enable_multi_turn_chat": true}}}}}}}}"#
    )
}

/// A whole run with a CPU tier: the report carries the per-tier keys, the tokens add up, and
/// vLLM's flag spelling gives the same case as symbiote's field.
#[test]
fn issue_17_a_run_with_a_cpu_tier_reports_hits_per_tier() {
    let by_field = scenario(&offload_scenario(r#"{"num_gpu_blocks_override": 2000, "kv_offloading_size": 8}"#));
    let by_flag =
        scenario(&offload_scenario(r#"{"num_gpu_blocks_override": 2000}"#).replace(
            r#""engine""#,
            r#""vllm_args": "--kv-offloading-size 8 --kv-offloading-backend native", "engine""#,
        ));
    assert_eq!(by_field.cases[0].engine, by_flag.cases[0].engine);
    let result = run_case(&by_field.cases[0], 1, Capture::default());
    assert_eq!(result.outcome, Outcome::Completed);
    assert!(result.violations.is_empty(), "{:?}", result.violations);
    let m = summarize(&result.metrics, 1);
    // 8 GiB over 16 x 131,072-byte blocks (Llama-3.1-8B: 8 KV heads) = 4096 blocks.
    assert_eq!(m["offload_cpu_blocks"], 4096);
    let tokens = |k: &str| m[k].as_u64().unwrap();
    assert!(tokens("offload_cpu_hit_tokens") > 0, "multi-turn chat with a small GPU cache must hit the CPU tier");
    let rates: f64 = ["offload_gpu_hit_rate", "offload_cpu_hit_rate", "offload_miss_rate"]
        .iter()
        .map(|k| m[*k].as_f64().unwrap())
        .sum();
    assert!((rates - 1.0).abs() < 1e-12, "{rates}");
    assert_eq!(tokens("offload_loaded_bytes") % (16 * 131_072), 0);
    // Off, no offload key appears.
    let off = scenario(&offload_scenario(r#"{"num_gpu_blocks_override": 2000}"#));
    let m = summarize(&run_case(&off.cases[0], 1, Capture::default()).metrics, 1);
    assert!(!m.contains_key("offload_cpu_hit_rate"));
}

/// Bad tier settings are errors that name the field and the fix.
#[test]
fn issue_17_bad_tier_settings_name_the_field_and_the_fix() {
    let problems = |engine: &str| {
        let text = offload_scenario(engine);
        symbiote::scenario::parse(&text, "t.json")
            .err()
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e = problems(r#"{"kv_offloading_size": 0}"#);
    assert!(e.contains("base.engine.kv_offloading_size") && e.contains("must be a positive number of GiB"), "{e}");
    let e = problems(r#"{"kv_offloading_size": 4, "num_cpu_blocks": 100}"#);
    assert!(e.contains("base.engine.num_cpu_blocks") && e.contains("not both"), "{e}");
    let e = problems(r#"{"kv_offloading_size": 4, "kv_offloading_backend": "lmcache"}"#);
    assert!(e.contains("kv_offloading_backend") && e.contains("use `native`"), "{e}");
    let e = problems(r#"{"kv_offloading_backend": "native"}"#);
    assert!(e.contains("give `kv_offloading_size`"), "{e}");
    let e = problems(r#"{"kv_offloading_size": 4, "kind": "static"}"#);
    assert!(e.contains("base.engine.kind") && e.contains("static engine"), "{e}");
}

/// TTFT of one request whose whole prompt is in the CPU tier (and not in the GPU: prefix
/// caching off) against recomputing it, Llama-3.1-8B on an H100 with the H100's calibrated
/// roofline and 50 GB/s host link: (prompt tokens, TTFT recomputed ms, TTFT loaded ms).
fn single_request_ttfts(prompts: &[u32]) -> Vec<(u32, f64, f64)> {
    let s = scenario(
        r#"{"name": "t", "base": {"model": "llama-3.1-8b", "gpu": "h100", "engine": {"max_model_len": 65536},
            "workload": {"arrival": {"rate": 1}, "num_requests": 1}}}"#,
    );
    let case = &s.cases[0];
    let step: Arc<dyn symbiote::hardware::StepTimeModel> = Arc::new(symbiote::hardware::Roofline::new(
        &case.model,
        &case.gpu,
        case.quant,
        case.kv_dtype,
        case.tp,
        case.serving_options(),
    ));
    let memory = symbiote::hardware::memory::plan(&case.model, &case.gpu, &case.memory_config()).unwrap();
    let tier = TierConfig {
        num_blocks: 1 << 20,
        rank_block_bytes: memory.kv_bytes_per_token * 16,
        ranks: 1,
        link_bytes_per_s: case.gpu.host_link_gbps.unwrap() * 1e9,
        link_latency: Nanos::from_secs_f64(case.gpu.host_link_latency_us.unwrap() * 1e-6),
    };
    let e = &case.engine;
    let config = SchedulerConfig {
        max_num_batched_tokens: e.max_num_batched_tokens,
        max_num_seqs: e.max_num_seqs,
        max_model_len: e.max_model_len,
        enable_chunked_prefill: true,
        long_prefill_token_threshold: 0,
        async_scheduling: false,
    };
    let ttft = |prompt: u32, offload: bool| {
        let kv = KvCache::new(1 + 2 * prompt / 16 + 4, 16, false);
        let mut r = Replica::new(0, config, kv, step.clone());
        if offload {
            r.scheduler.offload = Some(Box::new(Offload::new(tier)));
        }
        let mut metrics = Metrics::new(Capture { requests: true, ..Capture::default() }, None, 1);
        let text = Segment { id: 7, len: prompt };
        r.admit(request(0, 0, vec![text], 1)).unwrap();
        drain(&mut r, &mut metrics, SimTime::ZERO);
        r.admit(request(1, 100_000, vec![text], 1)).unwrap();
        drain(&mut r, &mut metrics, SimTime(100_000 * MS));
        let c = *metrics.records.as_ref().unwrap().iter().find(|x| x.seq_no == 1).unwrap();
        (c.first_token.0 - c.arrival.0) as f64 / 1e6
    };
    prompts.iter().map(|&p| (p, ttft(p, false), ttft(p, true))).collect()
}

/// vLLM's offloading blog (blog.vllm.ai, 2026-01-08, H100) reports 2x to 22x lower TTFT for
/// a prompt served from the CPU tier than recomputed, growing with the prompt. symbiote's
/// direction must agree: faster at every length, more so for longer prompts (docs/offload.md
/// compares the sizes). `cargo test --test it offload -- --nocapture` prints the table.
#[test]
fn issue_17_a_cpu_hit_beats_recompute_more_the_longer_the_prompt() {
    let rows = single_request_ttfts(&[1024, 4096, 16384, 32768]);
    let mut last_speedup = 1.0;
    for (prompt, recompute, loaded) in rows {
        let speedup = recompute / loaded;
        println!("prompt {prompt:>6}: recompute {recompute:8.2} ms, CPU load {loaded:7.2} ms, speedup {speedup:5.2}x");
        assert!(speedup > last_speedup, "prompt {prompt}: speedup {speedup} not above {last_speedup}");
        last_speedup = speedup;
    }
}

/// The sim2real runs that used vLLM's OffloadingConnector (`cpu_kv_offload: true`, an 8 GiB
/// tier in their details) are simulated with that tier, and it is in use: blocks are stored.
/// `cargo test --test it offload -- --nocapture` prints where their tokens came from.
#[test]
fn issue_17_the_sim2real_runs_with_offload_simulate_their_cpu_tier() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validation/sim2real_trainval.json");
    let (experiments, _) = symbiote::scenario::measurements::load(&path, false).unwrap();
    let with_tier: Vec<_> = experiments.iter().filter(|e| e.case.engine.kv_offloading.is_some()).collect();
    assert_eq!(with_tier.len(), 3, "the three Feb-2026 Llama-2-7B runs");
    for e in with_tier {
        assert_eq!(e.case.engine.kv_offloading, Some(symbiote::scenario::OffloadSize::Gib(8.0)));
        let result = run_case(&e.case, 1, Capture::default());
        let t = result.metrics.offload.expect("a tier");
        println!(
            "{}: {} CPU blocks; tokens GPU hit {} CPU hit {} miss {}; stored {} blocks, evicted {}",
            e.key, t.cpu_blocks, t.gpu_hit_tokens, t.cpu_hit_tokens, t.miss_tokens, t.stored_blocks, t.evicted_blocks
        );
        // 8 GiB over 16 x 524,288-byte blocks (Llama-2-7B, fp16).
        assert_eq!(t.cpu_blocks, 1024);
        assert!(t.stored_blocks > 0);
    }
}
