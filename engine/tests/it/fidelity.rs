//! The measurements reader on the shared sim2real file and on broken copies, the metric
//! definitions on a hand-built run, and calibration determinism. The two slow checks against
//! the whole trainval file (the shipped fit reproduced, held-out errors) are in the
//! `fidelity_slow` test target.

use std::path::{Path, PathBuf};

use symbiote::report::fidelity::{calibrate, cross_validate, simulate};
use symbiote::scenario::measurements::{load, Experiment, Measured};

fn shared_file() -> PathBuf {
    // A byte-for-byte copy of shared/reference/sim2real_trainval.json.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validation/sim2real_trainval.json")
}

#[test]
fn the_shared_measurements_file_reads_into_fifteen_experiments() {
    let (experiments, hash) = load(&shared_file(), false).unwrap();
    assert_eq!(experiments.len(), 15);
    assert_eq!(hash.len(), 16);
    let general = experiments.iter().find(|e| e.key.ends_with("llama-2-7b-tp1-general")).unwrap();
    assert_eq!(general.case.engine.num_gpu_blocks_override, Some(119_408 / 16));
    assert_eq!((general.case.engine.max_num_seqs, general.case.engine.max_num_batched_tokens), (128, 2048));
    assert_eq!(general.measured.ttft_mean, 44.7843);
    assert!(general.warnings.iter().any(|w| w.contains("CPU KV offload")));
    // The server generates output_len (248) tokens per request; the client counted 209.04 on
    // average, which only divides the ITL.
    let output = general.case.workload.shared_prefix.as_ref().unwrap().output_len;
    assert_eq!(output, 248);
    assert_eq!(general.measured.counted_output_tokens, Some(209.041));
    assert!(general.warnings.iter().any(|w| w.contains("client counted 209.0")));
    assert!(general.case.engine.async_scheduling, "v0.15.1 schedules asynchronously");
    let scout = experiments.iter().find(|e| e.model == "llama-4-scout").unwrap();
    assert_eq!((scout.case.tp, scout.case.quant.name()), (2, "fp8"));
    assert!(scout.warnings.iter().any(|w| w.contains("max_model_len not published")));
    // The MoE runs' notes say expert parallelism was on (EP = TP x DP); dense runs stay off.
    assert!(scout.case.engine.enable_expert_parallel);
    assert!(scout.warnings.iter().any(|w| w.contains("expert parallelism taken from the run's note")));
    assert!(!general.case.engine.enable_expert_parallel);
    // Qwen2.5-7B-Instruct is its own catalog entry, with the instruct repository's sampling
    // defaults; Mistral-Nemo-Instruct sets none, so its steps sort nothing.
    let qwen = experiments.iter().find(|e| e.key.contains("qwen")).unwrap();
    assert_eq!(qwen.model, "qwen2.5-7b-instruct");
    assert!(qwen.warnings.iter().any(|w| w.contains("generation_config applies (top_p 0.8, top_k 20)")));
    let nemo = experiments.iter().find(|e| e.model == "mistral-nemo").unwrap();
    assert!(!nemo.warnings.iter().any(|w| w.contains("generation_config")));
}

#[test]
fn a_broken_measurements_file_is_refused_with_the_path() {
    let dir = std::env::temp_dir().join(format!("symbiote-fidelity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("empty.json"), r#"{"title": "no experiments"}"#).unwrap();
    let err = load(&dir.join("empty.json"), true).unwrap_err();
    assert!(err[0].to_string().contains("missing the `experiments` list"), "{}", err[0]);
    std::fs::write(
        dir.join("partial.json"),
        r#"{"experiments": [{"key": "x", "model": {"hf_id": "meta-llama/Llama-2-7b-hf", "precision": "FP16"},
            "hardware": {"gpu": "H100"}, "serving_config": {"tensor_parallel_size": 1},
            "workload": {"type": "general"}, "ground_truth": {"summary": {"e2e_mean_ms": 1.0}}}]}"#,
    )
    .unwrap();
    let err = load(&dir.join("partial.json"), true).unwrap_err();
    assert!(
        err[0].to_string().contains("experiments[0].ground_truth.summary.e2e_p90_ms: missing or not a number"),
        "{}",
        err[0]
    );
    std::fs::write(dir.join("bad.json"), "{").unwrap();
    assert!(load(&dir.join("bad.json"), true).unwrap_err()[0].message.starts_with("not valid JSON"));
}

/// One request, prompt 100, output 5, 10 ms per step: E2E 50 ms, TTFT 10 ms, and the file's
/// ITL (mean E2E - mean TTFT) / (mean output tokens - 1) = 40 / 4 = 10 ms.
#[test]
fn metrics_follow_the_files_definitions() {
    let s = symbiote::scenario::parse(
        r#"{"name": "t", "base": {"model": "llama-2-7b", "gpu": "h100",
            "step_time": {"model": "constant", "step_ms": 10},
            "workload": {"clients": {"users": 1}, "num_requests": 1,
                         "prompt": {"dist": "fixed", "value": 100}, "output": {"dist": "fixed", "value": 5}}}}"#,
        "t.json",
    )
    .unwrap();
    let measured = Measured {
        e2e_mean: 40.0,
        e2e_p90: 50.0,
        e2e_p99: 50.0,
        ttft_mean: 10.0,
        ttft_p90: 10.0,
        ttft_p99: 10.0,
        itl: 10.0,
        counted_output_tokens: None,
    };
    let experiment = Experiment {
        key: "hand".into(),
        model: "llama-2-7b".into(),
        case: s.cases[0].clone(),
        measured,
        warnings: vec![],
    };
    let row = simulate(&experiment, None);
    assert_eq!(row.simulated, [50.0, 50.0, 50.0, 10.0, 10.0, 10.0, 10.0]);
    assert_eq!(row.ape[0], 0.25);
    assert_eq!(row.ape[6], 0.0);
    // A client that counted 3 tokens on average divides the same 40 ms by 2.
    let counted = Experiment {
        measured: Measured { counted_output_tokens: Some(3.0), ..experiment.measured },
        ..experiment.clone()
    };
    assert_eq!(simulate(&counted, None).simulated[6], 20.0);
}

/// A toy light-load experiment (Qwen2.5-0.5B on an H100 at 5 req/s) with reachable targets,
/// and the step-time parameters it starts from.
fn toy_experiments() -> (Vec<Experiment>, symbiote::hardware::catalog::StepTimeParams) {
    let s = symbiote::scenario::parse(
        r#"{"name": "t", "base": {"model": "qwen2.5-0.5b", "gpu": "h100",
            "workload": {"arrival": {"process": "poisson", "rate": 5}, "num_requests": 40,
                         "prompt": {"dist": "fixed", "value": 200}, "output": {"dist": "fixed", "value": 20}}}}"#,
        "t.json",
    )
    .unwrap();
    let measured = Measured {
        e2e_mean: 300.0,
        e2e_p90: 320.0,
        e2e_p99: 350.0,
        ttft_mean: 20.0,
        ttft_p90: 25.0,
        ttft_p99: 30.0,
        itl: 14.0,
        counted_output_tokens: None,
    };
    let experiments = vec![Experiment {
        key: "toy".into(),
        model: "qwen2.5-0.5b".into(),
        case: s.cases[0].clone(),
        measured,
        warnings: vec![],
    }];
    (experiments, s.cases[0].gpu.step_time.clone())
}

/// Calibrating twice on the same runs gives the same parameters.
#[test]
fn calibration_is_deterministic() {
    let (experiments, start) = toy_experiments();
    let a = calibrate(&experiments, &start, 25);
    let b = calibrate(&experiments, &start, 25);
    assert_eq!(a.params, b.params);
    assert!(a.objective_after <= a.objective_before);
    assert!(a.objective_after < a.objective_before, "the toy target is reachable by moving the overheads");
}

/// Calibrating across load (issue 12): without saturated runs it is the light-load calibration
/// exactly; with a saturated run that the light-load fit simulates 1.5x too fast (prefill-bound:
/// every request at t=0), the matmul efficiency falls and that run's objective with it.
#[test]
fn calibration_across_load_fits_the_matmul_efficiency_to_saturated_runs() {
    use symbiote::report::bench_fidelity::{calibrate_across_load, simulate_all};
    use symbiote::scenario::bench_runs::BenchExperiment;
    let (light, start) = toy_experiments();
    let alone = calibrate_across_load(&light, &[], &start, 20);
    assert_eq!(alone.fit.params, calibrate(&light, &start, 20).params);

    let s = symbiote::scenario::parse(
        r#"{"name": "s", "base": {"model": "qwen2.5-0.5b", "gpu": "h100",
            "workload": {"clients": {"users": 200}, "num_requests": 200,
                         "prompt": {"dist": "fixed", "value": 2000}, "output": {"dist": "fixed", "value": 4}}}}"#,
        "s.json",
    )
    .unwrap();
    let mut saturated = vec![BenchExperiment {
        key: "s".into(),
        model: "qwen2.5-0.5b".into(),
        case: s.cases[0].clone(),
        measured: Default::default(),
        warnings: vec![],
    }];
    // Only keys a run measured are simulated: ask for the three of the objective, then set
    // the "measured" values 1.5x the light-load fit's.
    let keys = ["duration", "mean_ttft_ms", "mean_tpot_ms"];
    saturated[0].measured = keys.iter().map(|k| (k.to_string(), 1.0)).collect();
    let simulated = simulate_all(&saturated, Some(&alone.fit.params)).remove(0).simulated;
    for key in keys {
        saturated[0].measured.insert(key.to_string(), 1.5 * simulated[key]);
    }
    let across = calibrate_across_load(&light, &saturated, &start, 20);
    assert!(
        across.fit.params.matmul_efficiency < alone.fit.params.matmul_efficiency,
        "{} vs {}",
        across.fit.params.matmul_efficiency,
        alone.fit.params.matmul_efficiency
    );
    assert!(across.saturated_after < across.saturated_before);
    assert_eq!(across, calibrate_across_load(&light, &saturated, &start, 20), "deterministic");
}

/// Cross-validation must not see the held-out runs through the start of its search: the
/// shipped parameters were fitted to every run, so folds start from the uncalibrated ones and
/// the held-out predictions do not change when the shipped parameters do.
#[test]
fn cross_validation_does_not_start_from_the_shipped_fit() {
    let toy = |model: &str, e2e: f64| {
        let s = symbiote::scenario::parse(
            &format!(
                r#"{{"name": "t", "base": {{"model": "{model}", "gpu": "h100",
                    "workload": {{"arrival": {{"process": "poisson", "rate": 5}}, "num_requests": 30,
                                 "prompt": {{"dist": "fixed", "value": 200}}, "output": {{"dist": "fixed", "value": 20}}}}}}}}"#
            ),
            "t.json",
        )
        .unwrap();
        let measured = Measured {
            e2e_mean: e2e,
            e2e_p90: e2e,
            e2e_p99: e2e,
            ttft_mean: 20.0,
            ttft_p90: 25.0,
            ttft_p99: 30.0,
            itl: e2e / 20.0,
            counted_output_tokens: None,
        };
        Experiment { key: model.into(), model: model.into(), case: s.cases[0].clone(), measured, warnings: vec![] }
    };
    let experiments = vec![toy("qwen2.5-0.5b", 150.0), toy("qwen2.5-1.5b", 250.0)];
    let mut shifted = experiments.clone();
    for e in &mut shifted {
        e.case.gpu.step_time.step_overhead_us *= 3.0;
        e.case.gpu.step_time.matmul_efficiency /= 2.0;
    }
    let a = cross_validate(&experiments, 15);
    let b = cross_validate(&shifted, 15);
    assert_eq!(a.len(), 2);
    let simulated = |rows: &[symbiote::report::fidelity::Row]| rows.iter().map(|r| r.simulated).collect::<Vec<_>>();
    assert_eq!(simulated(&a), simulated(&b));
}
