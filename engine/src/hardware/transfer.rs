//! The roofline's efficiencies for GPUs without measured vLLM runs, read off measured kernel
//! tables (issue 12, item 1), and the host profile in place of per-GPU guesses.
//!
//! A GPU's roofline needs the fraction of its datasheet peaks that vLLM's kernels reach. Where
//! the GPU has kernel tables (`models/kernels/`), the fractions are read off them; where it has
//! none, they are borrowed from the tabled GPU of the same generation (same tensor cores,
//! same compiler, same kernels): Ampere from the A100-80GB, Hopper from the H100, Ada Lovelace
//! from the L40S. A GPU of a generation without tables (Blackwell, CDNA 3) keeps the datasheet
//! priors. The host's CPU costs come from the shared host profile whatever the GPU. A GPU whose
//! roofline was calibrated to measured runs (`symbiote calibrate --gpu`) keeps its fit.
//!
//! What is read, from the 16-bit tables:
//! - **matmul**: FLOPs / time / dense peak of the four linear layers of a Llama-3.1-8B-shaped
//!   block (n x k: QKV 6144 x 4096, O 4096 x 4096, gate/up 28672 x 4096, down 4096 x 14336) at
//!   the largest measured m up to 2048 tokens (a prefill chunk at vLLM's default token budget on
//!   most GPUs), their mean;
//! - **bandwidth**: weight and activation bytes / time / datasheet bandwidth of the same
//!   GEMMs at m = 1 (a decode step streams the weights), their mean;
//! - **KV bandwidth**: KV bytes / time / datasheet bandwidth of one layer's decode attention,
//!   32 query and 8 KV heads of width 128, batch 64 at 4096 tokens each (or the nearest
//!   measured point below).

use super::catalog::{Catalog, GpuSpec};
use super::host::HostParams;
use super::kernels::tables;
use super::quant::Quant;

/// The fractions of peak a tabled GPU's kernels reach, and the tables they were read from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reached {
    pub matmul: f64,
    pub bandwidth: f64,
    pub kv_bandwidth: f64,
    pub tables: &'static str,
}

/// Linear-layer shapes (n, k) of a Llama-3.1-8B block on one GPU.
const SHAPES: [(f64, f64); 4] = [(6144.0, 4096.0), (4096.0, 4096.0), (28672.0, 4096.0), (4096.0, 14336.0)];

/// What `gpu`'s own kernel tables reach; `None` for a GPU without tables.
pub fn reached(gpu: &GpuSpec) -> Option<Reached> {
    let t = tables::for_gpu(&gpu.name)?;
    let gemm = t.gemm.get("bfloat16")?;
    let peak = Quant::Bf16.matmul_peak_flops(gpu);
    let bandwidth = gpu.hbm_bandwidth_gbps * 1e9;
    let big = gemm.m.iter().rposition(|&m| m <= 2048.0)?;
    let (m_big, m_one) = (gemm.m[big], gemm.m[0]);
    let (mut matmul, mut streamed) = (0.0, 0.0);
    for (n, k) in SHAPES {
        let curve = gemm.curve_for(n, k);
        matmul += 2.0 * m_big * n * k / curve[big] / peak;
        streamed += 2.0 * (n * k + m_one * (n + k)) / curve[0] / bandwidth;
    }
    let decode = t.generation.get("bfloat16")?.grid(32, 8, 1.0)?;
    let batch = 64.0_f64.min(*decode.xs.last()?);
    let length = 4096.0_f64.min(*decode.ys.last()?);
    // K and V, 8 heads of 128 16-bit values per token.
    let kv_bytes = batch * length * 2.0 * 8.0 * 128.0 * 2.0;
    let kv_bandwidth = kv_bytes / decode.at(batch, length) / bandwidth;
    let n = SHAPES.len() as f64;
    Some(Reached { matmul: matmul / n, bandwidth: streamed / n, kv_bandwidth, tables: t.dir })
}

/// The tabled catalog GPU whose fractions `gpu` borrows: its own when it has tables, else
/// its generation's; `None` for a generation without tables.
pub fn source_of(gpu: &GpuSpec) -> Option<&'static str> {
    if tables::for_gpu(&gpu.name).is_some() {
        return Some(Catalog::builtin().gpu(&gpu.name).ok()?.name.as_str());
    }
    let arch = gpu.architecture.as_str();
    [("Ampere", "a100-80gb"), ("Hopper", "h100-80gb"), ("Ada Lovelace", "l40s")]
        .into_iter()
        .find(|(prefix, _)| arch.starts_with(prefix))
        .map(|(_, name)| name)
}

/// `gpu` as a case prices it with the roofline: a calibrated GPU unchanged; any other with the
/// fractions its tables or its generation's reach and the host profile's CPU costs, its
/// provenance saying so.
pub fn effective_gpu(gpu: &GpuSpec, host: &HostParams) -> GpuSpec {
    if gpu.calibrated() {
        return gpu.clone();
    }
    let mut g = gpu.clone();
    let p = &mut g.step_time;
    p.step_overhead_us = host.step_overhead_us;
    p.per_sequence_overhead_us = host.per_sequence_overhead_us;
    p.frontend_overhead_us = host.frontend_overhead_us;
    let from = source_of(gpu).and_then(|name| Catalog::builtin().gpu(name).ok()).and_then(reached);
    p.provenance = match from {
        Some(r) => {
            p.matmul_efficiency = r.matmul;
            p.bandwidth_efficiency = r.bandwidth;
            p.kv_bandwidth_efficiency = Some(r.kv_bandwidth);
            format!(
                "uncalibrated: efficiencies read off the {} kernel tables ({}), host costs from models/host.json",
                r.tables,
                if tables::for_gpu(&gpu.name).is_some() { "its own" } else { "its generation's" }
            )
        }
        None => "uncalibrated: datasheet priors (no kernel tables of its generation), host costs from models/host.json"
            .to_string(),
    };
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str) -> &'static GpuSpec {
        Catalog::builtin().gpu(name).unwrap()
    }

    /// The H100's bf16 GEMM of n 4096, k 4096 (on the table's grid) by hand: at m 1,
    /// 2 x (4096 x 4096 + 1 x 8192) bytes over its measured time at 3.35 TB/s; at m 2048,
    /// 2 x 2048 x 4096 x 4096 FLOPs over its measured time at the dense bf16 peak. Each is one
    /// of the four terms of its mean; the other three shapes are off the grid, so their terms
    /// come from the table's interpolation.
    #[test]
    fn fractions_are_read_off_the_tables() {
        let h100 = gpu("h100-80gb");
        let r = reached(h100).unwrap();
        let g = &tables::for_gpu("h100-80gb").unwrap().gemm["bfloat16"];
        let (bandwidth, peak) = (h100.hbm_bandwidth_gbps * 1e9, Quant::Bf16.matmul_peak_flops(h100));
        let stream = 2.0 * (4096.0 * 4096.0 + 8192.0) / g.at(1.0, 4096.0, 4096.0).unwrap() / bandwidth;
        let compute = 2.0 * 2048.0 * 4096.0 * 4096.0 / g.at(2048.0, 4096.0, 4096.0).unwrap() / peak;
        let big = g.m.iter().position(|&m| m == 2048.0).unwrap();
        let (mut streams, mut computes) = (Vec::new(), Vec::new());
        for (n, k) in SHAPES {
            let curve = g.curve_for(n, k);
            streams.push(2.0 * (n * k + n + k) / curve[0] / bandwidth);
            computes.push(2.0 * 2048.0 * n * k / curve[big] / peak);
        }
        let close = |a: f64, b: f64| (a / b - 1.0).abs() < 1e-9;
        assert!(close(streams[1], stream) && close(computes[1], compute), "{streams:?} {computes:?}");
        assert!(close(r.bandwidth, streams.iter().sum::<f64>() / 4.0), "{r:?}");
        assert!(close(r.matmul, computes.iter().sum::<f64>() / 4.0), "{r:?}");
        assert!(r.bandwidth > 0.3 && r.bandwidth < 1.0 && r.matmul > 0.3 && r.matmul < 1.0, "{r:?}");
        assert!(r.kv_bandwidth > 0.2 && r.kv_bandwidth < 1.2, "{r:?}");
        assert_eq!(r.tables, "h100_sxm");
    }

    #[test]
    fn generations_borrow_their_tabled_sibling() {
        assert_eq!(source_of(gpu("a100-40gb")), Some("a100-80gb"));
        assert_eq!(source_of(gpu("h100-pcie")), Some("h100-80gb"));
        assert_eq!(source_of(gpu("rtx-4090")), Some("l40s"));
        assert_eq!(source_of(gpu("h200")), Some("h200"));
        assert_eq!(source_of(gpu("b200")), None);
        assert_eq!(source_of(gpu("mi300x")), None);
    }

    #[test]
    fn effective_gpu_takes_the_host_profile_and_keeps_a_calibrated_fit() {
        let host = HostParams::shipped();
        let a100 = effective_gpu(gpu("a100-40gb"), host);
        let r = reached(gpu("a100-80gb")).unwrap();
        assert_eq!(a100.step_time.matmul_efficiency, r.matmul);
        assert_eq!(a100.step_time.step_overhead_us, host.step_overhead_us);
        assert_eq!(a100.step_time.frontend_overhead_us, host.frontend_overhead_us);
        assert!(!a100.calibrated());
        let b200 = effective_gpu(gpu("b200"), host);
        assert_eq!(b200.step_time.matmul_efficiency, gpu("b200").step_time.matmul_efficiency);
        assert_eq!(b200.step_time.step_overhead_us, host.step_overhead_us);
        assert_eq!(&effective_gpu(gpu("h100-80gb"), host), gpu("h100-80gb"));
    }
}
