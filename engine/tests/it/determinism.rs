//! Same scenario and seed give byte-identical reports, in one process and across thread counts.

use symbiote::runner::{run_scenario, RunOptions};

use crate::scenario;

const SCENARIO: &str = r#"{
  "name": "determinism",
  "seeds": [1, 2, 3],
  "base": {
    "model": "qwen2.5-0.5b", "gpu": "l4",
    "engine": {"num_gpu_blocks_override": 300, "max_model_len": 4096},
    "workload": {"arrival": {"process": "gamma", "rate": 40, "cv": 3}, "num_requests": 300,
                 "prompt": {"dist": "lognormal", "mean": 400, "cv": 1.0, "max": 4000},
                 "output": {"dist": "lognormal", "mean": 100, "cv": 1.0, "max": 1000},
                 "prefix": {"groups": 4, "tokens": 256, "fraction": 0.7, "zipf_s": 1.0}}
  },
  "cases": [{"name": "a"}, {"name": "b", "engine.max_num_seqs": 16}],
  "matrix": {"engine.long_prefill_token_threshold": [0, 256]}
}"#;

#[test]
fn a_scenario_run_twice_gives_identical_reports() {
    let s = scenario(SCENARIO);
    assert_eq!(
        run_scenario(&s, &RunOptions::default()).unwrap().to_json(),
        run_scenario(&s, &RunOptions::default()).unwrap().to_json()
    );
}

#[test]
fn thread_count_does_not_change_the_report() {
    let s = scenario(SCENARIO);
    let with = |threads| crate::report_at_threads(&s, threads);
    let one = with(1);
    assert_eq!(one, with(4));
    // The report is not trivially empty: every case ran and completed.
    assert_eq!(one.matches("\"outcome\": \"completed\"").count(), 12);
}
