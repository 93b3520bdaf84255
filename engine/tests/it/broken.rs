//! A catalogue of broken scenario files: each must be refused with a message that names the
//! JSON path and says what to fix, and none may panic.

use symbiote::scenario::parse;

const GOOD_BASE: &str = r#"{"model": "llama-2-7b", "gpu": "a100-80gb",
    "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#;

/// (what, file text, expected path, expected words in the message)
fn catalogue() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let with_base = |base: &str, rest: &str| format!(r#"{{"name": "t", "base": {base}{rest}}}"#);
    let engine = |e: &str| {
        with_base(
            &format!(
                r#"{{"model": "llama-2-7b", "gpu": "a100-80gb", "engine": {e}, "workload": {{"arrival": {{"rate": 5}}, "num_requests": 10}}}}"#
            ),
            "",
        )
    };
    let workload =
        |w: &str| with_base(&format!(r#"{{"model": "llama-2-7b", "gpu": "a100-80gb", "workload": {w}}}"#), "");
    vec![
        (
            "unknown top-level field",
            with_base(GOOD_BASE, r#", "seed": [1]"#),
            "",
            "unknown field `seed`; did you mean `seeds`?",
        ),
        (
            "unknown engine field",
            engine(r#"{"max_num_seq": 4}"#),
            "base.engine",
            "unknown field `max_num_seq`; did you mean `max_num_seqs`?",
        ),
        (
            "unknown field in a case override",
            with_base(
                GOOD_BASE,
                r#", "cases": [{"name": "a"}, {"name": "b"}, {"name": "c", "engine.max_num_seq": 5}]"#,
            ),
            "cases[2].engine",
            "did you mean `max_num_seqs`?",
        ),
        (
            "wrong type",
            with_base(
                r#"{"model": "llama-2-7b", "gpu": "a100-80gb", "tp": "two", "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#,
                "",
            ),
            "base.tp",
            "invalid type: string \"two\", expected u32",
        ),
        (
            "unknown model",
            with_base(&GOOD_BASE.replace("llama-2-7b", "llama-9"), ""),
            "base.model",
            "unknown model `llama-9`; known: ",
        ),
        (
            "unknown gpu",
            with_base(&GOOD_BASE.replace("a100-80gb", "a100"), ""),
            "base.gpu",
            "unknown gpu `a100`; known: a100-40gb, a100-80gb",
        ),
        (
            "unknown quantization",
            with_base(
                r#"{"model": "llama-2-7b", "gpu": "a100-80gb", "quant": "int3", "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#,
                "",
            ),
            "base.quant",
            "unknown value `int3`; did you mean `int4`?",
        ),
        (
            "negative rate",
            workload(r#"{"arrival": {"rate": -2}, "num_requests": 10}"#),
            "base.workload.arrival.rate",
            "rate must be a positive number of requests/s, got -2",
        ),
        (
            "gamma without cv",
            workload(r#"{"arrival": {"process": "gamma", "rate": 2}, "num_requests": 10}"#),
            "base.workload.arrival.cv",
            "a gamma process needs `cv`",
        ),
        (
            "no arrival and no clients",
            workload(r#"{"num_requests": 10}"#),
            "base.workload.arrival",
            "needs `arrival` (open loop) or `clients` (closed loop)",
        ),
        (
            "a workload that never ends",
            workload(r#"{"arrival": {"rate": 2}}"#),
            "base.workload.num_requests",
            "set `num_requests`, `duration_s` or arrival `stages`",
        ),
        (
            "bad length distribution",
            workload(
                r#"{"arrival": {"rate": 2}, "num_requests": 3, "prompt": {"dist": "lognormal", "mean": 100, "cv": -1}}"#,
            ),
            "base.workload.prompt.mean",
            "need mean > 0 and cv >= 0",
        ),
        (
            "empty matrix axis",
            with_base(GOOD_BASE, r#", "matrix": {"engine.max_num_seqs": []}"#),
            "matrix.engine.max_num_seqs",
            "a matrix axis needs a non-empty list of values",
        ),
        (
            "duplicate case name",
            with_base(GOOD_BASE, r#", "cases": [{"name": "a"}, {"name": "a"}]"#),
            "cases[1].name",
            "duplicate case name `a`; case names must be unique",
        ),
        (
            "empty dotted path part",
            with_base(GOOD_BASE, r#", "cases": [{"name": "a", "engine..x": 1}]"#),
            "cases[0].engine..x",
            "is not a dotted path like `engine.max_num_seqs`",
        ),
        (
            "dotted path through a number",
            with_base(GOOD_BASE, r#", "cases": [{"name": "a", "workload.num_requests.x": 1}]"#),
            "cases[0].workload.num_requests.x",
            "can only be set inside an object",
        ),
        ("seed range backwards", with_base(GOOD_BASE, r#", "seeds": {"from": 5, "to": 1}"#), "seeds", "use from <= to"),
        (
            "negative seed",
            with_base(GOOD_BASE, r#", "seeds": [-1]"#),
            "seeds",
            "seeds must be a list of non-negative integers",
        ),
        ("empty seed list", with_base(GOOD_BASE, r#", "seeds": []"#), "seeds", "the seed list is empty"),
        (
            "budget below max_num_seqs",
            engine(r#"{"max_num_batched_tokens": 64, "max_num_seqs": 128}"#),
            "base.engine.max_num_batched_tokens",
            "is smaller than max_num_seqs (128); raise it or lower max_num_seqs",
        ),
        (
            "chunked prefill off with a small budget",
            engine(r#"{"enable_chunked_prefill": false, "max_num_batched_tokens": 2048}"#),
            "base.engine.max_num_batched_tokens",
            "must be at least max_model_len (4096)",
        ),
        (
            "utilization above 1",
            engine(r#"{"gpu_memory_utilization": 1.5}"#),
            "base.engine.gpu_memory_utilization",
            "must be within (0, 1], got 1.5",
        ),
        (
            "max_model_len beyond the model",
            engine(r#"{"max_model_len": 100000}"#),
            "base.engine.max_model_len",
            "exceeds the model's max_position_embeddings (4096)",
        ),
        (
            "unknown expected outcome",
            with_base(GOOD_BASE, r#", "cases": [{"name": "a", "expect": {"outcome": "crashed"}}]"#),
            "cases[0].expect.outcome",
            "unknown outcome `crashed`; use one of completed, oom",
        ),
        (
            "missing model",
            with_base(r#"{"gpu": "a100-80gb", "workload": {"arrival": {"rate": 5}, "num_requests": 10}}"#, ""),
            "base",
            "missing field `model`; add it",
        ),
        ("not JSON at all", "{\"name\": \"t\", \"base\": {".to_string(), "", "line 1"),
    ]
}

#[test]
fn every_broken_file_is_refused_with_its_path_and_a_fix() {
    let cases = catalogue();
    assert!(cases.len() >= 15);
    for (what, text, path, words) in cases {
        let problems = match parse(&text, "broken.json") {
            Ok(_) => panic!("{what}: accepted a broken file:\n{text}"),
            Err(problems) => problems,
        };
        assert!(
            problems.iter().any(|p| p.path == path && p.message.contains(words) && p.file == "broken.json"),
            "{what}: expected path `{path}` and `{words}`, got:\n{}",
            problems.iter().map(|p| format!("  [{}] {}", p.path, p.message)).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = r#"{"name": "t", "base": {"model": "llama-9", "gpu": "a100", "tp": 9,
        "workload": {"arrival": {"rate": -1}, "num_requests": 10}}}"#;
    let problems = parse(text, "many.json").unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in ["base.model", "base.gpu", "base.tp", "base.workload.arrival.rate"] {
        assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
    }
}
