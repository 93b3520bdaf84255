//! Where measured runs say the model is off, in words a report can print beside its numbers.
//! Two regimes, both from GPUStack's rate-inf runs (`scenarios/validation/gpustack_perf_lab.json`,
//! issue 12): short requests near saturation, and weight-only quantization (FP8 or INT4 on a GPU
//! without tensor cores for it), whose capacity those runs put below the simulated. Each range
//! below is what this version of the model gives on those runs; the tests
//! `short_request_caveat_matches_the_gpustack_runs` and `weight_only_caveat_matches_the_gpustack_runs`
//! (`engine/tests/it/bench_runs.rs`) re-run them and fail when the model drifts out of what the
//! sentences say.

/// Mean prompt + output tokens per request below which the caveat applies. GPUStack's runs of
/// 128 + 4 tokens (132) and of ShareGPT (about 420) took longer than simulated at rate inf; its
/// runs of 2,000 + 100 tokens and longer are within 17% of the measured duration.
pub const SHORT_REQUEST_TOKENS: f64 = 512.0;

/// Measured over simulated duration of GPUStack's four `random-128-4` runs (1,000 requests of
/// 128 + 4 tokens at rate inf; Qwen3-14B and 32B on A100-80GB and H100): 1.22 to 1.98.
pub const TINY_REQUEST_SLOWDOWN: (f64, f64) = (1.2, 2.0);

/// The same for its four bf16 ShareGPT runs (1,000 requests, about 217 + 202 tokens on average;
/// the per-request lengths are not published, so the simulation uses the means): 1.14 to 1.52.
pub const SHAREGPT_SLOWDOWN: (f64, f64) = (1.1, 1.6);

/// A run report's case counts as near saturation when its GPUs were stepping at least this
/// fraction of the run (`busy_fraction`).
pub const NEAR_SATURATION_BUSY: f64 = 0.8;

/// The caveat for a workload of `mean_tokens` prompt + output tokens per request; `None` at or
/// above [`SHORT_REQUEST_TOKENS`] (or for an empty workload).
pub fn short_requests(mean_tokens: f64) -> Option<String> {
    (mean_tokens > 0.0 && mean_tokens < SHORT_REQUEST_TOKENS).then(|| {
        let ((a, b), (c, d)) = (TINY_REQUEST_SLOWDOWN, SHAREGPT_SLOWDOWN);
        format!(
            "requests average {mean_tokens:.0} tokens (prompt + output), and near saturation the capacity of such short \
             requests is likely overstated: measured rate-inf vLLM runs took {a:.1}-{b:.1}x (128 + 4 tokens) and \
             {c:.1}-{d:.1}x (ShareGPT, about 420 tokens) the simulated time, per-request costs the model does not have \
             (README, Fidelity)"
        )
    })
}

/// Duration of GPUStack's A100-80GB ShareGPT runs with weight-only weights over the bf16 run of
/// the same model: measured FP8 1.18 (Qwen3-14B) and 1.11 (32B), AWQ INT4 1.05 and 0.98.
pub const WEIGHT_ONLY_MEASURED_VS_BF16: (f64, f64) = (0.95, 1.2);

/// The same ratios as this version of the model simulates them: 0.66 to 0.95 (it gives the
/// quantized runs the 16-bit GEMM rate and more room for KV, so they come out faster).
pub const WEIGHT_ONLY_SIMULATED_VS_BF16: (f64, f64) = (0.65, 0.95);

/// The caveat for the weight-only `pairs` (e.g. `fp8 on a100-80gb`); empty for none.
pub fn weight_only(pairs: &[String]) -> String {
    let ((a, b), (c, d)) = (WEIGHT_ONLY_MEASURED_VS_BF16, WEIGHT_ONLY_SIMULATED_VS_BF16);
    let verb = if pairs.len() > 1 { "run" } else { "runs" };
    format!(
        "{} {verb} as weight-only kernels (no tensor cores for the format), and capacity is likely overstated: on an \
         A100, measured ShareGPT runs with FP8 or AWQ weights took {a:.2}-{b:.2}x the bf16 run's time, where the \
         simulator gives {c:.2}-{d:.2}x (README, Fidelity)",
        pairs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_requests_get_the_caveat() {
        assert!(short_requests(0.0).is_none());
        assert!(short_requests(512.0).is_none());
        assert!(short_requests(2100.0).is_none());
        let line = short_requests(132.0).unwrap();
        assert!(line.starts_with("requests average 132 tokens"), "{line}");
        assert!(line.contains("1.2-2.0x (128 + 4 tokens)") && line.contains("1.1-1.6x (ShareGPT"), "{line}");
    }

    #[test]
    fn the_weight_only_caveat_names_what_and_both_ranges() {
        let line = weight_only(&["fp8 on a100-80gb".to_string()]);
        assert!(line.starts_with("fp8 on a100-80gb runs as weight-only kernels"), "{line}");
        let two = weight_only(&["int4 on h100-80gb".to_string(), "fp8 on a100-80gb".to_string()]);
        assert!(two.starts_with("int4 on h100-80gb, fp8 on a100-80gb run as"), "{two}");
        assert!(line.contains("0.95-1.20x the bf16") && line.contains("gives 0.65-0.95x"), "{line}");
    }
}
