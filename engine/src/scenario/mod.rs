//! What to run: scenario files (`file`), their validation into resolved cases (`validate`).
//! The engine only ever sees the validated types below: every default resolved, every unit
//! converted, no `Option` where a value is required. Nothing here touches simulated time.

pub mod autoscaling;
pub mod bench_runs;
mod disagg;
mod expand;
pub mod file;
mod hints;
pub mod measurements;
pub mod names;
pub mod validate;
mod vllm_args;

pub use file::{Bounds, Entrypoint, ExpectFile, SloFile};
pub use validate::{load, parse, parse_in, Diagnostic};

use crate::hardware::memory::MemoryConfig;
use crate::hardware::{GpuSpec, KvDtype, ModelSpec, Quant};
use crate::sim::run::Limits;
use crate::sim::Nanos;
use crate::workload::WorkloadSpec;

/// Resolved vLLM engine arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub max_num_batched_tokens: u32,
    pub max_num_seqs: u32,
    pub max_model_len: u32,
    pub block_size: u32,
    pub gpu_memory_utilization: f64,
    pub enable_prefix_caching: bool,
    pub enable_chunked_prefill: bool,
    pub long_prefill_token_threshold: u32,
    pub async_scheduling: bool,
    pub enable_expert_parallel: bool,
    pub generation_config: file::GenerationConfig,
    pub num_gpu_blocks_override: Option<u64>,
    /// CPU KV offload, when on.
    pub kv_offloading: Option<OffloadSize>,
    pub entrypoint: Entrypoint,
    pub kind: file::EngineKind,
}

/// The size of the CPU KV tier as the case gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OffloadSize {
    /// `--kv-offloading-size`, GiB over all ranks.
    Gib(f64),
    /// `num_cpu_blocks`.
    Blocks(u64),
}

impl OffloadSize {
    /// The tier's blocks: `CPUOffloadingSpec` divides the bytes by one block's bytes over all
    /// ranks (`page_size_bytes x layers x world_size`), rounding down.
    pub fn num_blocks(self, rank_block_bytes: u64, ranks: u64) -> u64 {
        match self {
            OffloadSize::Gib(gib) => (gib * crate::hardware::memory::GIB / (rank_block_bytes * ranks) as f64) as u64,
            OffloadSize::Blocks(n) => n,
        }
    }
}

/// A resolved Ray Data batch job.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchConfig {
    pub rows: u64,
    pub batch_size: u32,
    pub concurrency: u32,
    pub max_concurrent_batches: u32,
    pub startup: Nanos,
    /// Weight-loading bandwidth in bytes/s, if start-up includes loading.
    pub load_bytes_per_s: Option<f64>,
}

/// The resolved step-time model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepTimeChoice {
    /// The best-validated model for the GPU (the default): the roofline where the GPU's own
    /// parameters were fitted to measured vLLM runs (the H100), else the kernel tables where
    /// the GPU has tables that can price the case, else the roofline with efficiencies read off
    /// the tables of its generation (`hardware::transfer`).
    Auto,
    Roofline,
    /// The kernel-table model (`hardware::kernels`), or the roofline where it cannot price the
    /// case (with a warning: it was asked for by name).
    Kernels,
    Constant {
        per_step: Nanos,
        per_token: Nanos,
    },
}

/// One fully resolved case, ready to run with any seed.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub model: ModelSpec,
    pub gpu: GpuSpec,
    pub quant: Quant,
    pub kv_dtype: KvDtype,
    pub tp: u64,
    pub replicas: u32,
    pub router: crate::serving::router::RouterPolicy,
    /// Fleet-wide limit on waiting requests; arrivals beyond it are rejected.
    pub max_waiting: Option<u64>,
    /// Ray Serve autoscaling; `replicas` is then its `initial_replicas`.
    pub autoscaling: Option<crate::serving::autoscaler::AutoscalingConfig>,
    /// Offline batch inference instead of online arrivals.
    pub batch: Option<BatchConfig>,
    pub engine: EngineConfig,
    pub workload: WorkloadSpec,
    pub step_time: StepTimeChoice,
    /// The host's CPU costs (the shared profile, scaled as the case asks); the kernel-table
    /// model and the roofline of an uncalibrated GPU price host work with them.
    pub host: crate::hardware::HostParams,
    pub limits: Limits,
    pub expect: ExpectFile,
    /// Per-request thresholds that make a request count toward goodput.
    pub goodput: Option<GoodputSlo>,
    /// The scenario file's folder: relative trace paths start here.
    pub base_dir: std::path::PathBuf,
    /// SLO targets to count (and stop at) while running: set by `symbiote plan`, never by a file.
    pub slo_watch: Option<crate::report::attainment::WatchSpec>,
    /// The price of one GPU-hour of `gpu` (the catalog's lowest on-demand quote, or
    /// `--prices`); `None` leaves the run's cost keys out.
    pub price: Option<crate::hardware::Price>,
    /// Disaggregated prefill and decode pools; `None` for a unified fleet.
    pub disagg: Option<Disaggregation>,
}

/// A validated disaggregated fleet: `replicas` is `prefill.replicas + decode.replicas`, the
/// prefill replicas first.
#[derive(Clone, Debug, PartialEq)]
pub struct Disaggregation {
    pub prefill: Pool,
    pub decode: Pool,
    pub link_name: String,
    pub link: crate::hardware::link::Link,
}

/// One pool: its GPU (already the effective one, as `Case::gpu`), TP size, replicas, router
/// and price.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub gpu: GpuSpec,
    pub tp: u64,
    pub replicas: u32,
    pub router: crate::serving::router::RouterPolicy,
    pub price: Option<crate::hardware::Price>,
}

impl Case {
    /// The case as one pool of its disaggregated fleet runs it: that pool's GPU, TP size,
    /// replicas and router (memory plan, step-time model).
    pub fn pool_case(&self, pool: &Pool) -> Case {
        let mut case = self.clone();
        case.gpu = pool.gpu.clone();
        case.tp = pool.tp;
        case.replicas = pool.replicas;
        case.router = pool.router;
        case.price = pool.price.clone();
        case.disagg = None;
        case
    }

    /// GPUs the case holds and their price per hour (every pool's, for a disaggregated fleet);
    /// `None` when a GPU has no price.
    pub fn fleet_usd_per_hour(&self) -> Option<(u64, f64)> {
        match &self.disagg {
            None => self
                .price
                .as_ref()
                .map(|p| (self.replicas as u64 * self.tp, self.replicas as f64 * self.tp as f64 * p.usd_per_gpu_hour)),
            Some(d) => {
                let pool = |p: &Pool| {
                    p.price.as_ref().map(|price| {
                        (p.replicas as u64 * p.tp, p.replicas as f64 * p.tp as f64 * price.usd_per_gpu_hour)
                    })
                };
                let (a, b) = (pool(&d.prefill)?, pool(&d.decode)?);
                Some((a.0 + b.0, a.1 + b.1))
            }
        }
    }
}

/// `vllm bench serve --goodput`: a request is good when each given latency is within its
/// threshold (TPOT counts as 0 for a single-token output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoodputSlo {
    pub ttft: Option<Nanos>,
    pub tpot: Option<Nanos>,
    pub e2el: Option<Nanos>,
}

impl Case {
    /// Replica slots a run sets up: the fixed fleet, or twice an autoscaled fleet's
    /// `max_replicas` (room for draining replicas beside a full fleet, `serving::scaled_fleet`).
    pub fn slots(&self) -> u32 {
        self.autoscaling.map_or(self.replicas, |a| 2 * a.max_replicas)
    }

    pub fn memory_config(&self) -> MemoryConfig {
        MemoryConfig {
            quant: self.quant,
            kv_dtype: self.kv_dtype,
            tp: self.tp,
            gpu_memory_utilization: self.engine.gpu_memory_utilization,
            max_num_batched_tokens: self.engine.max_num_batched_tokens as u64,
            max_num_seqs: self.engine.max_num_seqs as u64,
            max_model_len: self.engine.max_model_len as u64,
            block_size: self.engine.block_size as u64,
            num_gpu_blocks_override: self.engine.num_gpu_blocks_override,
        }
    }

    /// Why the kernel-table model asked for by name cannot price this case (the run uses the
    /// roofline instead); `None` when it can, or when another model was chosen.
    pub fn kernel_fallback(&self) -> Option<String> {
        if self.step_time != StepTimeChoice::Kernels {
            return None;
        }
        self.try_kernel_model().err()
    }

    /// The kernel-table model that prices this case's steps, when its choice allows it and the
    /// tables can price it.
    pub fn kernel_model(&self) -> Option<crate::hardware::KernelStepTime> {
        match self.step_time {
            StepTimeChoice::Auto if self.gpu.calibrated() => None,
            StepTimeChoice::Auto | StepTimeChoice::Kernels => self.try_kernel_model().ok(),
            StepTimeChoice::Roofline | StepTimeChoice::Constant { .. } => None,
        }
    }

    fn try_kernel_model(&self) -> Result<crate::hardware::KernelStepTime, String> {
        crate::hardware::KernelStepTime::new(
            &self.model,
            &self.gpu,
            self.quant,
            self.kv_dtype,
            self.tp,
            self.serving_options(),
            &self.host,
        )
    }

    /// What of the engine's settings changes a step's cost beyond model, GPU, precision and TP.
    pub fn serving_options(&self) -> crate::hardware::step_time::ServingOptions {
        crate::hardware::step_time::ServingOptions {
            expert_parallel: self.engine.enable_expert_parallel,
            model_sampling_defaults: self.engine.generation_config == file::GenerationConfig::Auto,
        }
    }

    /// Whether the step times rest on measurements of this GPU: a roofline fitted to its
    /// measured vLLM runs, or its measured kernel timings.
    pub fn step_time_calibrated(&self) -> bool {
        match self.step_model_name() {
            "kernels" => true,
            "roofline" => self.gpu.calibrated(),
            _ => false,
        }
    }

    /// How far the simulated latencies may be from vLLM's (a fraction); `None` for a constant
    /// step time, a hand-set experiment.
    pub fn error_band(&self) -> Option<f64> {
        match self.step_model_name() {
            "kernels" => Some(crate::hardware::catalog::KERNEL_TABLES_ERROR_BAND),
            "roofline" => Some(self.gpu.error_band()),
            _ => None,
        }
    }

    /// The name of the model that prices the steps: `kernels`, `roofline` or `constant`.
    pub fn step_model_name(&self) -> &'static str {
        match self.step_time {
            StepTimeChoice::Constant { .. } => "constant",
            _ if self.kernel_model().is_some() => "kernels",
            _ => "roofline",
        }
    }
}

/// A validated scenario: named cases and the seeds each runs with.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub seeds: Vec<u64>,
    pub slo: Option<SloFile>,
    pub cases: Vec<Case>,
    pub analysis: Option<crate::report::phases::Analysis>,
    /// Hash of the file's content (and of any `--scale` or `--percentiles`): finished runs
    /// written under another hash are not reused by `--resume` or `merge`.
    pub content_hash: String,
    /// Percentiles every run adds to its metrics beyond p90 and p99 (`--percentiles`).
    pub percentiles: Vec<f64>,
}

/// FNV-1a, 64 bits: a fixed, portable hash for content identity (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl Scenario {
    /// The name of the scenario's report folder under `--out`: [`names::file_name`].
    pub fn folder(&self) -> String {
        names::file_name(&self.name)
    }

    /// Adds `percentiles` (0 to 100) to every run's metrics, as `p<q>_<metric>_ms` keys.
    pub fn set_percentiles(&mut self, percentiles: &[f64]) {
        if percentiles.is_empty() {
            return;
        }
        let list: Vec<String> = percentiles.iter().map(|p| p.to_string()).collect();
        let key = format!("{}|percentiles={}", self.content_hash, list.join(","));
        self.content_hash = format!("{:016x}", fnv1a(key.as_bytes()));
        self.percentiles = percentiles.to_vec();
    }

    /// Prices every case's GPU-hours from `book`; overrides join the content hash, so
    /// `--resume` and `merge` never mix runs priced differently.
    pub fn set_prices(&mut self, book: &crate::hardware::PriceBook) {
        if book.has_overrides() {
            let key = format!("{}|prices={}", self.content_hash, book.fingerprint());
            self.content_hash = format!("{:016x}", fnv1a(key.as_bytes()));
        }
        for case in &mut self.cases {
            case.price = book.price(&case.gpu);
            if let Some(d) = &mut case.disagg {
                d.prefill.price = book.price(&d.prefill.gpu);
                d.decode.price = book.price(&d.decode.gpu);
            }
        }
    }

    /// Shrinks (or grows) every workload by `factor`: request counts, durations, stage and
    /// spike times, and batch-job rows; rates are unchanged. For quick CI runs (`--scale`).
    pub fn scale(&mut self, factor: f64) {
        self.content_hash = format!("{:016x}", fnv1a(format!("{}|scale={factor}", self.content_hash).as_bytes()));
        let count = |n: u64| ((n as f64 * factor).round() as u64).max(1);
        for case in &mut self.cases {
            let w = &mut case.workload;
            w.num_requests = w.num_requests.map(count);
            w.duration_s = w.duration_s.map(|d| d * factor);
            if let Some(arrival) = &mut w.arrival {
                arrival.stages.iter_mut().for_each(|s| s.duration_s *= factor);
                for m in &mut arrival.multipliers {
                    m.start_s *= factor;
                    m.end_s *= factor;
                }
            }
            if let Some(batch) = &mut case.batch {
                batch.rows = count(batch.rows);
            }
        }
    }
}
