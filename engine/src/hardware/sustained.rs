//! Sustained compute in a saturated server (issue 12, the saturation knee): the fraction of a
//! GPU's dense peak that compute-bound linear layers keep up when every request arrives at once.
//!
//! Kernel timings measured one kernel at a time reach 77-85% of the 16-bit peak at 2,048 tokens
//! on every tabled GPU ([`super::transfer::reached`]). GPUStack's vLLM runs at request rate inf
//! (`scenarios/validation/gpustack_perf_lab.json`) sustain far less: with the tables alone,
//! their prefill-bound runs finish 1.1-1.4x (A100-80GB) and 1.7-2x (H100) sooner in simulation
//! than they did. Light-load runs cannot show it: their steps stream weights and barely compute.
//! The cause is not identified (sustained clocks under the board power limit explain part of it
//! at most), so the fix is one number per GPU, fitted on those runs (`scripts/fit_sustained.py`),
//! that caps the linear layers' FLOP rate: a step's linear time is never under its FLOPs at
//! this fraction of the peak. Memory-bound steps (decode) are untouched.
//!
//! A GPU without saturated runs gets its fraction, in order:
//! - **from a sibling**: a fitted GPU of the same architecture and board power (the H200 and
//!   the H100 share the GH100 die and 700 W; the A100-40GB and -80GB the GA100 and 400 W);
//! - **from its board power**: the fitted GPUs' mean sustained TFLOPS per watt of TDP, times its
//!   TDP, over its peak. Left one GPU out, this rule predicts the other's fraction within the
//!   error README's Fidelity section gives; it is an assumption beyond those two GPUs;
//! - none, where the catalog gives no TDP: the GPU's steps are priced at the tables' or the
//!   roofline's own efficiency, which overstates capacity at saturation.

use super::catalog::{Catalog, GpuSpec};
use super::quant::Quant;

/// Where a GPU's sustained fraction comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Basis {
    /// Fitted on this GPU's own saturated runs.
    Fitted,
    /// Borrowed from the named fitted GPU of the same architecture and board power.
    Sibling(String),
    /// The fitted GPUs' mean sustained TFLOPS per watt of TDP (given here) times this GPU's TDP.
    Power { tflops_per_watt: f64 },
}

/// A GPU's sustained fraction of its dense peak and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sustained {
    pub fraction: f64,
    pub basis: Basis,
}

impl Sustained {
    /// A few words for reports: "fitted on its saturated runs", "borrowed from h100-80gb (same
    /// die and power)", "from its 350 W TDP at 0.46 TFLOPS/W (A100/H100 fits)".
    pub fn describe(&self) -> String {
        match &self.basis {
            Basis::Fitted => "fitted on its own saturated vLLM runs".into(),
            Basis::Sibling(name) => format!("borrowed from {name} (same die and board power)"),
            Basis::Power { tflops_per_watt } => {
                format!("derived from its board power at {tflops_per_watt:.3} TFLOPS per watt (the fitted GPUs' mean)")
            }
        }
    }
}

/// The built-in GPUs with a fitted fraction and a TDP.
fn fitted() -> impl Iterator<Item = (&'static GpuSpec, f64, f64)> {
    Catalog::builtin().gpus.iter().filter_map(|g| Some((g, g.step_time.sustained_matmul_fraction?, g.tdp_watts?)))
}

/// Sustained 16-bit TFLOPS per watt of TDP, the mean over the fitted built-in GPUs.
pub fn tflops_per_watt() -> Option<f64> {
    let rates: Vec<f64> =
        fitted().map(|(g, fraction, tdp)| fraction * Quant::Bf16.matmul_peak_flops(g) / 1e12 / tdp).collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

/// `gpu`'s sustained fraction: its own fit, a sibling's, or its TDP's; `None` without a TDP.
pub fn sustained(gpu: &GpuSpec) -> Option<Sustained> {
    if let Some(fraction) = gpu.step_time.sustained_matmul_fraction {
        return Some(Sustained { fraction, basis: Basis::Fitted });
    }
    let tdp = gpu.tdp_watts?;
    if let Some((sibling, fraction, _)) =
        fitted().find(|(g, _, watts)| g.architecture == gpu.architecture && *watts == tdp)
    {
        return Some(Sustained { fraction, basis: Basis::Sibling(sibling.name.clone()) });
    }
    let tflops_per_watt = tflops_per_watt()?;
    let fraction = (tflops_per_watt * tdp * 1e12 / Quant::Bf16.matmul_peak_flops(gpu)).min(1.0);
    Some(Sustained { fraction, basis: Basis::Power { tflops_per_watt } })
}

/// The fraction of the peak `gpu`'s linear layers are priced at, at most: its sustained
/// fraction, or 1 (no cap) where it has none.
pub fn cap(gpu: &GpuSpec) -> f64 {
    sustained(gpu).map_or(1.0, |s| s.fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str) -> &'static GpuSpec {
        Catalog::builtin().gpu(name).unwrap()
    }

    #[test]
    fn the_fitted_gpus_keep_their_own_fraction() {
        for name in ["a100-80gb", "h100-80gb"] {
            let s = sustained(gpu(name)).unwrap();
            assert_eq!(s.basis, Basis::Fitted);
            assert_eq!(Some(s.fraction), gpu(name).step_time.sustained_matmul_fraction);
        }
    }

    #[test]
    fn siblings_borrow_and_the_rest_follow_their_board_power() {
        let h100 = sustained(gpu("h100-80gb")).unwrap().fraction;
        assert_eq!(
            sustained(gpu("h200")),
            Some(Sustained { fraction: h100, basis: Basis::Sibling("h100-80gb".into()) })
        );
        let a100 = sustained(gpu("a100-80gb")).unwrap().fraction;
        assert_eq!(sustained(gpu("a100-40gb")).unwrap().fraction, a100);
        // By hand: the mean of the two fits' TFLOPS per watt, times the L40S's 350 W, over its
        // 362.05 TFLOPS.
        let per_watt = (a100 * 312.0 / 400.0 + h100 * 989.4 / 700.0) / 2.0;
        let l40s = sustained(gpu("l40s")).unwrap();
        assert!((l40s.fraction - per_watt * 350.0 / 362.05).abs() < 1e-12, "{l40s:?}");
        assert!(matches!(l40s.basis, Basis::Power { .. }));
    }

    #[test]
    fn a_gpu_without_a_tdp_is_not_capped() {
        let mut g = gpu("l40s").clone();
        g.tdp_watts = None;
        assert_eq!(sustained(&g), None);
        assert_eq!(cap(&g), 1.0);
    }
}
