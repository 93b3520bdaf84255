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
