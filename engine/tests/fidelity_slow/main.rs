//! The slow fidelity checks, apart so that `cargo test` stays quick: they rerun the shipped
//! H100 calibration and a leave-one-model-out cross-validation over the whole sim2real
//! trainval file. Ignored by default; `.ci/run` runs them in release:
//! `cargo test --release --test fidelity_slow -- --ignored` (a few seconds).

use std::path::{Path, PathBuf};

use symbiote::report::fidelity::{calibrate, cross_validate};
use symbiote::scenario::measurements::load;

fn shared_file() -> PathBuf {
    // A byte-for-byte copy of shared/reference/sim2real_trainval.json.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validation/sim2real_trainval.json")
}

fn gpustack_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/validation/gpustack_perf_lab.json")
}

/// The shipped H100 parameters are what `symbiote calibrate` produces from the trainval file
/// with its default budget: this reruns that calibration and compares every fitted value.
#[test]
#[ignore = "slow (about a minute in a debug build): cargo test --release --test fidelity_slow -- --ignored"]
fn shipped_h100_parameters_are_reproduced_by_the_calibration() {
    use symbiote::hardware::Catalog;
    use symbiote::report::fidelity::{uncalibrated, DEFAULT_EVALUATIONS};
    let (experiments, _) = load(&shared_file(), false).unwrap();
    let shipped = Catalog::builtin().gpu("h100").unwrap().step_time.clone();
    let h100: Vec<_> = experiments.into_iter().filter(|e| e.case.gpu.name == "h100-80gb").collect();
    let fit = calibrate(&h100, &uncalibrated(&shipped), DEFAULT_EVALUATIONS);
    let p = &fit.params;
    assert_eq!(
        (p.matmul_efficiency, p.bandwidth_efficiency, p.step_overhead_us, p.per_sequence_overhead_us),
        (
            shipped.matmul_efficiency,
            shipped.bandwidth_efficiency,
            shipped.step_overhead_us,
            shipped.per_sequence_overhead_us
        )
    );
    assert_eq!(
        (p.allreduce_efficiency, p.allreduce_latency_us, p.frontend_overhead_us),
        (shipped.allreduce_efficiency, shipped.allreduce_latency_us, shipped.frontend_overhead_us)
    );
    assert_eq!(
        (p.kv_bandwidth_efficiency, p.moe_bandwidth_efficiency),
        (shipped.kv_bandwidth_efficiency, shipped.moe_bandwidth_efficiency)
    );
    assert!(shipped
        .provenance
        .starts_with("calibrated by `symbiote calibrate sim2real_trainval.json --gpu h100-80gb`"));
}

/// The numbers that count: leave-one-model-out medians on the trainval file within the aims of
/// issue 6 (mean E2E and ITL at or under 5%, mean TTFT at or under 10%). Each fold's search is
/// cut to 60 evaluations to keep the test near a minute; with the full budget of `symbiote
/// calibrate` the medians were 3.5%, 5.9% and 3.4% when this test was written.
#[test]
#[ignore = "slow (about a minute in a debug build): cargo test --release --test fidelity_slow -- --ignored"]
fn held_out_errors_stay_within_the_aims() {
    use symbiote::report::fidelity::medians;
    let (experiments, _) = load(&shared_file(), false).unwrap();
    let held_out = cross_validate(&experiments, 60);
    assert_eq!(held_out.len(), 15);
    let m = medians(&held_out);
    let (e2e, ttft, itl) = (m[0], m[3], m[6]);
    assert!(e2e <= 0.05, "median held-out E2E error {:.1}%", 100.0 * e2e);
    assert!(itl <= 0.05, "median held-out ITL error {:.1}%", 100.0 * itl);
    assert!(ttft <= 0.10, "median held-out TTFT error {:.1}%", 100.0 * ttft);
}

/// Issue 12's saturation knee, as a finding: calibrated across load (the trainval file's
/// light-load runs and GPUStack's saturated H100 runs, `symbiote calibrate FILE FILE --gpu`),
/// the H100's matmul efficiency falls from the light-load fit's 0.51 to the search's lower
/// bound, the saturated runs' median duration error falls below 15% (10.4% when this test was
/// written; about 34% with the light-load fit alone), and the light-load medians stay within 5%
/// in sample. The shipped catalog reaches the same place by the sustained fraction instead,
/// which corrects every GPU at once (README, Fidelity): its median duration error on the same
/// runs is under 15% too (12.8% when the fraction was fitted).
#[test]
#[ignore = "slow (about 100 s in a release build): cargo test --release --test fidelity_slow -- --ignored"]
fn calibrating_across_load_pulls_the_h100_knee_in() {
    use symbiote::hardware::Catalog;
    use symbiote::report::bench_fidelity::{calibrate_across_load, simulate_all};
    use symbiote::report::fidelity::{medians, uncalibrated, DEFAULT_EVALUATIONS};
    let (experiments, _) = load(&shared_file(), false).unwrap();
    let h100: Vec<_> = experiments.into_iter().filter(|e| e.case.gpu.name == "h100-80gb").collect();
    let (runs, _) = symbiote::scenario::bench_runs::load(&gpustack_file()).unwrap();
    let saturated: Vec<_> = runs.into_iter().filter(|e| e.case.gpu.name == "h100-80gb").collect();
    assert_eq!((h100.len(), saturated.len()), (15, 14));
    let shipped = Catalog::builtin().gpu("h100").unwrap().step_time.clone();
    let fit = calibrate_across_load(&h100, &saturated, &uncalibrated(&shipped), DEFAULT_EVALUATIONS);
    let p = &fit.fit.params;
    assert!(p.matmul_efficiency <= 0.35, "matmul efficiency {}", p.matmul_efficiency);
    assert!(fit.saturated_after < fit.saturated_before);

    // Every request at t=0 (the latency runs cap concurrency at 1 to 8 and are left out).
    let at_once = |e: &&symbiote::scenario::bench_runs::BenchExperiment| !e.key.contains("latency");
    let duration_error = |params| {
        let chosen: Vec<_> = saturated.iter().filter(at_once).cloned().collect();
        let mut errors: Vec<f64> =
            simulate_all(&chosen, params).iter().filter_map(|r| r.ape.get("duration").copied()).collect();
        errors.sort_by(f64::total_cmp);
        errors[errors.len() / 2]
    };
    let (before, after) = (duration_error(Some(&shipped)), duration_error(Some(p)));
    assert!(
        before < 0.15 && after < 0.15,
        "median duration error {before:.3} with the shipped fit and its sustained fraction, {after:.3} across load"
    );

    let light = medians(&symbiote::report::fidelity::simulate_all(&h100, Some(p)));
    let (e2e, ttft, itl) = (light[0], light[3], light[6]);
    assert!(e2e <= 0.05 && ttft <= 0.05 && itl <= 0.05, "light-load medians {e2e:.3} {ttft:.3} {itl:.3}");
}
