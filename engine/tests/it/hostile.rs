//! Hostile but fair input (issue 14): numbers at and beyond the edge of what a run can hold.
//! Each was found by mutating scenario files and config.json; each must be refused at
//! validation with its JSON path and the fix, or run to an honest outcome, never panic, hang,
//! wrap or saturate.
// See: issue 14

use symbiote::report::metrics::Capture;
use symbiote::scenario::parse;
use symbiote::sim::run::{run_case, Outcome};

/// A case whose workload (or other parts) the test writes.
fn with_base(base: &str) -> String {
    format!(r#"{{"name": "t", "base": {base}}}"#)
}

fn workload(w: &str) -> String {
    with_base(&format!(r#"{{"model": "llama-2-7b", "gpu": "a100-80gb", "workload": {w}}}"#))
}

fn engine(e: &str) -> String {
    with_base(&format!(
        r#"{{"model": "llama-2-7b", "gpu": "a100-80gb", "engine": {e}, "workload": {{"arrival": {{"rate": 5}}, "num_requests": 10}}}}"#
    ))
}

/// Asserts the text is refused with a problem at `path` whose message contains `words`.
fn refused(text: &str, path: &str, words: &str) {
    let problems = parse(text, "t.json").expect_err("must be refused");
    assert!(
        problems.iter().any(|p| p.path == path && p.message.contains(words)),
        "expected `{words}` at `{path}`, got: {problems:#?}"
    );
}

#[test]
fn issue_14_distribution_parameters_that_overflow_are_refused() {
    // Log-normal cv 1e155: cv^2 overflows, and rand_distr's constructor error was unwrapped.
    refused(
        &workload(
            r#"{"arrival": {"rate": 5}, "num_requests": 10, "prompt": {"dist": "lognormal", "mean": 500, "cv": 1e155}}"#,
        ),
        "base.workload.prompt.cv",
        "above 100",
    );
    // Gamma cv 1e-170: shape 1/cv^2 is infinite.
    refused(
        &workload(r#"{"arrival": {"process": "gamma", "rate": 5, "cv": 1e-170}, "num_requests": 10}"#),
        "base.workload.arrival.cv",
        "process \"constant\"",
    );
}

#[test]
fn issue_14_rates_that_flood_or_freeze_the_clock_are_refused() {
    // A multiplier of 1e308 generated arrivals without bound.
    refused(
        &workload(
            r#"{"arrival": {"rate": 5, "multipliers": [{"start_s": 0, "end_s": 10, "factor": 1e308}]}, "duration_s": 20}"#,
        ),
        "base.workload.arrival.multipliers[0].factor",
        "at most 10000",
    );
    // Overlapping multipliers, each allowed, multiply beyond the fastest rate.
    refused(
        &workload(
            r#"{"arrival": {"rate": 1000, "multipliers": [{"start_s": 0, "end_s": 10, "factor": 1e4},
                {"start_s": 5, "end_s": 10, "factor": 1e4}]}, "duration_s": 20}"#,
        ),
        "base.workload.arrival.multipliers",
        "overlapping multipliers raise the rate",
    );
    // A rate of 1e-12 ran the clock to its limit and reported 0 ms latencies.
    refused(&workload(r#"{"arrival": {"rate": 1e-12}, "num_requests": 10}"#), "base.workload.arrival.rate", "1e-6");
    refused(
        &with_base(
            r#"{"model": "llama-2-7b", "gpu": "a100-80gb", "step_time": {"model": "constant", "step_ms": 1e308},
                "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#,
        ),
        "base.step_time",
        "step_ms",
    );
}

#[test]
fn issue_14_sizes_beyond_their_integer_types_are_refused() {
    // 2^32 panicked, 2^32 + 10 silently became 10 blocks, 1e12 allocated 57 GB.
    for blocks in ["4294967296", "4294967306", "1000000000000"] {
        refused(
            &engine(&format!(r#"{{"num_gpu_blocks_override": {blocks}}}"#)),
            "base.engine.num_gpu_blocks_override",
            "above the limit",
        );
    }
    // 4294967295 wrapped to 511-token prompts.
    refused(
        &workload(r#"{"arrival": {"rate": 5}, "num_requests": 10, "prefix": {"tokens": 4294967295}}"#),
        "base.workload.prefix.tokens",
        "above the limit of 16777216",
    );
    refused(&engine(r#"{"max_num_seqs": 4294967295}"#), "base.engine.max_num_seqs", "above the limit");
}

#[test]
fn issue_14_a_huge_matrix_is_refused_instead_of_wrapping_to_zero_cases() {
    let axes: Vec<String> = (0..64).map(|i| format!(r#""engine.x{i}": [1, 2]"#)).collect();
    let text = format!(
        r#"{{"name": "t", "base": {{"model": "llama-2-7b", "gpu": "a100-80gb",
            "workload": {{"arrival": {{"rate": 5}}, "num_requests": 10}}}}, "matrix": {{{}}}}}"#,
        axes.join(", ")
    );
    refused(&text, "matrix", "more than 2^64 cases");
}

#[test]
fn issue_14_a_run_past_the_clock_horizon_says_so() {
    // The slowest rate allowed, for more requests than the horizon holds: 1e6 s between
    // arrivals on average passes 1e10 s after about 10,000 of them.
    let scenario = crate::scenario(&workload(r#"{"arrival": {"rate": 1e-6}, "num_requests": 1000000}"#));
    let result = run_case(&scenario.cases[0], 1, Capture::default());
    assert_eq!(result.outcome, Outcome::TimeOverflow);
    assert!(result.end_time.as_secs_f64() > 1e10 && result.end_time.0 < u64::MAX);
}

#[test]
fn issue_14_a_refused_multi_turn_burst_does_not_overflow_the_stack() {
    // One chat session whose system prompt is longer than max_model_len: every turn is refused,
    // and each refusal releases the next turn parked behind it. The front end's 6.9 ms on an
    // H100 parks about 69,000 turns at 1e7 requests/s; a recursive hand-off overflowed the stack.
    let scenario = crate::scenario(&with_base(
        r#"{"model": "llama-3.1-8b", "gpu": "h100", "engine": {"max_model_len": 4096},
            "workload": {"arrival": {"rate": 1e7}, "num_requests": 100000,
              "shared_prefix": {"num_groups": 1, "num_prompts_per_group": 1, "system_prompt_len": 8192,
                                "question_len": 16, "output_len": 16, "enable_multi_turn_chat": true}}}"#,
    ));
    let result = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || run_case(&scenario.cases[0], 1, Capture::default()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(result.outcome, Outcome::Completed);
    assert_eq!(result.metrics.rejected.values().sum::<u64>(), 100_000);
}

#[test]
fn issue_14_config_json_fields_out_of_range_are_refused() {
    // Zero layers divided by zero, a zero hidden size allocated 17 GB, zero heads or vocabulary
    // "completed"; each now names the field and its range.
    let dir = crate::temp_dir("hostile-config");
    let good = serde_json::json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096});
    let text = r#"{"name": "t", "base": {"model": "config.json", "gpu": "a100-80gb",
        "workload": {"arrival": {"rate": 1}, "num_requests": 1}}}"#;
    for (field, value, words) in [
        ("num_hidden_layers", serde_json::json!(0), "`num_hidden_layers` is 0; it must be an integer within 1..1024"),
        ("hidden_size", serde_json::json!(0), "`hidden_size` is 0"),
        ("num_attention_heads", serde_json::json!(0), "`num_attention_heads` is 0"),
        ("vocab_size", serde_json::json!(0), "`vocab_size` is 0"),
        ("num_key_value_heads", serde_json::json!(5), "must divide `num_attention_heads` (32)"),
        ("hidden_size", serde_json::json!(4096.5), "must be an integer"),
    ] {
        let mut config = good.clone();
        config[field] = value;
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let problems = symbiote::scenario::parse_in(text, "t.json", &dir).expect_err(field);
        assert!(problems[0].path == "base.model" && problems[0].message.contains(words), "{field}: {problems:#?}");
    }
    // A key given twice (found by the fuzzer): JSON readers differ on which wins, so refuse it.
    let twice = good.to_string().replacen('{', r#"{"hidden_size": 0, "#, 1);
    std::fs::write(dir.join("config.json"), twice).unwrap();
    let problems = symbiote::scenario::parse_in(text, "t.json", &dir).expect_err("a key twice");
    assert!(problems[0].message.contains("`hidden_size` is given twice"), "{problems:#?}");
    std::fs::write(dir.join("config.json"), good.to_string()).unwrap();
    assert!(symbiote::scenario::parse_in(text, "t.json", &dir).is_ok());
}

#[test]
fn issue_14_command_line_numbers_out_of_range_are_refused() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/bench/llama2_7b_a100_100k.json");
    let (code, _, stderr) = crate::symbiote(&["run", file, "--scale", "1e300", "--out", "/nonexistent"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--scale must be a factor within 1e-6..1000"), "{stderr}");
    let (code, _, stderr) = crate::symbiote(&[
        "run",
        file,
        "--timeline",
        "--timeline-interval-ms",
        "18446744073709551615",
        "--out",
        "/nonexistent",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--timeline-interval-ms must be at most"), "{stderr}");
}

#[test]
fn issue_14_text_after_the_scenario_is_an_error_not_a_panic() {
    // Found by the fuzzer: `serde_json::from_str` refused what the streaming parse accepted.
    let text = r#"{"name": "t", "base": {"model": "llama-2-7b", "gpu": "a100-80gb",
        "workload": {"arrival": {"rate": 5}, "num_requests": 10}}} }"#;
    let problems = parse(text, "t.json").expect_err("trailing text");
    assert!(problems[0].message.contains("trailing characters at line 2"), "{problems:#?}");
}

#[test]
fn issue_14_a_batch_job_of_refused_rows_stops_at_the_event_limit() {
    // Found by the fuzzer: every row longer than max_model_len, so each batch ended as it was
    // handed out and the whole dataset was dispatched inside one event, past the event limit.
    let scenario = crate::scenario(&with_base(
        r#"{"model": "qwen2.5-7b", "gpu": "l40s", "batch": {"rows": 100000000}, "limits": {"max_events": 1000},
            "workload": {"prompt": {"dist": "fixed", "value": 100000}}}"#,
    ));
    let started = std::time::Instant::now();
    let result = run_case(&scenario.cases[0], 1, Capture::default());
    assert_eq!(result.outcome, Outcome::EventLimit);
    assert!(result.metrics.arrivals < 1_000_000, "{} rows dispatched", result.metrics.arrivals);
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn issue_14_an_invalid_tp_or_block_size_is_reported_not_divided_by() {
    // Found by the fuzzer: the cache-size check planned memory with tp 0 and divided by zero.
    refused(
        &with_base(
            r#"{"model": "llama-2-7b", "gpu": "a100-80gb", "tp": 0,
        "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#,
        ),
        "base.tp",
        "1 to 8",
    );
    refused(&engine(r#"{"block_size": 0}"#), "base.engine.block_size", "not one vLLM offers");
}

#[test]
fn issue_14_failed_expectations_do_not_flood_stderr() {
    // Found by the fuzzer: every failed run printed a line with its (70 KB) case name.
    let long = "y".repeat(70_000);
    let cases: Vec<String> = (0..30).map(|i| format!(r#"{{"name": "{long}{i}"}}"#)).collect();
    let text = format!(
        r#"{{"name": "t", "base": {{"model": "qwen2.5-0.5b", "gpu": "a100-40gb", "limits": {{"max_events": 5}},
            "workload": {{"arrival": {{"rate": 50}}, "num_requests": 100}}}}, "cases": [{}]}}"#,
        cases.join(", ")
    );
    let dir = crate::temp_dir("flood");
    std::fs::write(dir.join("s.json"), text).unwrap();
    let out = dir.join("out");
    let (code, _, stderr) =
        crate::symbiote(&["run", dir.join("s.json").to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{}", &stderr[..stderr.len().min(2000)]);
    assert!(stderr.len() < 20_000, "{} bytes on stderr", stderr.len());
    assert!(stderr.contains("... and 10 more expectations"), "{}", &stderr[..stderr.len().min(2000)]);
}
